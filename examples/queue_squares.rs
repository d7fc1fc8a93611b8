//! Five processes each put the square of their number on one `Queue`; the
//! parent collects the five results (in whatever order they came) and
//! prints them sorted.

use multiproc::{Process, Queue};

fn square(arg: (Queue<u64>, u64)) {
    let (results, n) = arg;
    results.put(n * n).expect("put");
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let results = Queue::new(4096).expect("queue");
    let mut children: Vec<Process> = (1..=5).map(|n| Process::new(square, (results.clone(), n))).collect();
    for p in &mut children {
        p.start().expect("start");
    }
    let mut squares: Vec<u64> = (0..children.len()).map(|_| results.get().expect("get")).collect();
    for p in &mut children {
        p.join().expect("join");
    }
    squares.sort_unstable();
    for s in squares {
        println!("{s}");
    }
}
