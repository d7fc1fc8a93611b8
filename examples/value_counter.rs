//! Ten processes each add one to a shared `Value` under its lock.

use multiproc::{Process, Value};

fn increment(counter: Value<i32>) {
    *counter.lock().expect("lock") += 1;
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let counter = Value::new(0i32).expect("value");
    let mut children: Vec<Process> = (0..10).map(|_| Process::new(increment, counter.clone())).collect();
    for p in &mut children {
        p.start().expect("start");
    }
    for p in &mut children {
        p.join().expect("join");
    }
    println!("Final counter value: {}", counter.get().expect("get"));
}
