//! A child process computes a square and prints it.
//!
//! Python: `Process(target=square, args=(5,))`.

use multiproc::Process;

fn square(n: u64) {
    println!("The square of {n} is {}", n * n);
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut p = Process::new(square, 5);
    p.start().expect("start");
    p.join().expect("join");
}
