//! One producer puts ten items on a `Queue`, then one stop marker per
//! consumer; two consumers take items until they see a stop marker. Each
//! item is taken exactly once, by whichever consumer gets to it first (each
//! pauses a little per item, so that both get some).

use std::time::Duration;

use multiproc::{Process, Queue};

const CONSUMERS: u32 = 2;

/// `None` is the stop marker.
fn producer(q: Queue<Option<String>>) {
    for i in 0..10 {
        q.put(Some(format!("item-{i}"))).expect("put");
    }
    for _ in 0..CONSUMERS {
        q.put(None).expect("put");
    }
}

fn consumer(arg: (Queue<Option<String>>, u32)) {
    let (q, id) = arg;
    while let Some(item) = q.get().expect("get") {
        println!("[Consumer-{id}] {item}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let q = Queue::new(4096).expect("queue");
    let mut children = vec![Process::new(producer, q.clone())];
    children.extend((1..=CONSUMERS).map(|id| Process::new(consumer, (q.clone(), id))));
    for p in &mut children {
        p.start().expect("start");
    }
    for p in &mut children {
        p.join().expect("join");
    }
}
