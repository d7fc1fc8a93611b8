//! Four processes print one word each while holding one lock, so lines never
//! interleave (order is up to the scheduler).

use std::io::Write;

use multiproc::{Lock, Process};

fn say(arg: (Lock, String)) {
    let (lock, word) = arg;
    let _held = lock.lock().expect("lock");
    let mut out = std::io::stdout().lock();
    // Written in pieces on purpose: without the lock, pieces could interleave.
    for piece in [word.as_str(), "\n"] {
        out.write_all(piece.as_bytes()).expect("stdout");
        out.flush().expect("stdout");
    }
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let lock = Lock::new(()).expect("lock");
    let words = ["Hello", "World", "From", "Multiprocessing"];
    let mut children: Vec<Process> = words.iter().map(|w| Process::new(say, (lock.clone(), w.to_string()))).collect();
    for p in &mut children {
        p.start().expect("start");
    }
    for p in &mut children {
        p.join().expect("join");
    }
}
