//! Four processes each do 1,000 locked increments of one counter.

use multiproc::{Process, Value};

fn add_many(counter: Value<u64>) {
    for _ in 0..1_000 {
        *counter.lock().expect("lock") += 1;
    }
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let counter = Value::new(0u64).expect("value");
    let mut children: Vec<Process> = (0..4).map(|_| Process::new(add_many, counter.clone())).collect();
    for p in &mut children {
        p.start().expect("start");
    }
    for p in &mut children {
        p.join().expect("join");
    }
    println!("Counter: {}", counter.get().expect("get"));
}
