//! A producer process puts a greeting on a `Queue`; a consumer process
//! takes it and prints it.

use multiproc::{Process, Queue};

fn producer(q: Queue<String>) {
    q.put("Hello from producer!".to_string()).expect("put");
}

fn consumer(q: Queue<String>) {
    let greeting = q.get().expect("get");
    println!("Consumer received: {greeting}");
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let q = Queue::new(4096).expect("queue");
    let mut p = Process::new(producer, q.clone());
    let mut c = Process::new(consumer, q);
    p.start().expect("start");
    c.start().expect("start");
    p.join().expect("join");
    c.join().expect("join");
}
