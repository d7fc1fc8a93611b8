//! A child sums 0..50,000,000 and sends the result back to its parent on a
//! `Queue`.

use multiproc::{Process, Queue};

fn sum_range(results: Queue<u64>) {
    let sum: u64 = (0..50_000_000u64).sum();
    results.put(sum).expect("put");
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let results = Queue::new(4096).expect("queue");
    let mut child = Process::new(sum_range, results.clone());
    child.start().expect("start");
    let sum = results.get().expect("get");
    child.join().expect("join");
    println!("Result: {sum}");
}
