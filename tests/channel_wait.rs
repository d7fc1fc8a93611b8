multiproc::test_support!();
// `channel::wait` over pipes and queues written by real processes.

mod common;

use std::time::{Duration, Instant};

use common::join;
use multiproc::channel::{Connection, Pipe, RecvOnly, SendOnly, wait};
use multiproc::{Process, Queue};

const LIMIT: Duration = Duration::from_secs(20);

/// The sending ends of three pipes, a queue, which of the four to write to,
/// and a pipe to wait on until the parent is done.
type Writers = ([Connection<SendOnly>; 3], Queue<u32>, usize, Connection<RecvOnly>);

fn write_to_one(arg: Writers) {
    let (pipes, queue, which, quit) = arg;
    std::thread::sleep(Duration::from_millis(100));
    match pipes.get(which) {
        Some(tx) => tx.send(&(which as u32)).unwrap(),
        None => queue.put(which as u32).unwrap(),
    }
    // Keep every end alive (so no other pipe is at the end of its stream)
    // until the parent has looked.
    let _ = quit.recv::<()>();
}

fn three_pipes_and_a_queue_with_a_child_writing_to(which: usize) {
    let (mut rxs, mut txs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (rx, tx) = Pipe::one_way_with_capacity(4096).unwrap();
        rxs.push(rx);
        txs.push(tx);
    }
    let queue: Queue<u32> = Queue::new(4096).unwrap();
    let (quit_rx, quit_tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let txs: [Connection<SendOnly>; 3] = txs.try_into().unwrap();
    let mut p = Process::new(write_to_one, (txs, queue.clone(), which, quit_rx));
    p.start().unwrap();

    let start = Instant::now();
    let ready = wait(&[&rxs[0], &rxs[1], &rxs[2], &queue], Some(LIMIT));
    assert_eq!(ready, [which], "exactly the one written to");
    assert!(start.elapsed() < Duration::from_secs(10));
    let got = match rxs.get(which) {
        Some(rx) => rx.try_recv::<u32>().unwrap(),
        None => queue.try_get().unwrap(),
    };
    assert_eq!(got, which as u32);
    assert!(wait(&[&rxs[0], &rxs[1], &rxs[2], &queue], Some(Duration::ZERO)).is_empty(), "nothing left");

    quit_tx.send(&()).unwrap();
    assert_eq!(join(&mut p), 0);
}

#[test]
fn wait_returns_exactly_the_pipe_a_child_wrote_to() {
    three_pipes_and_a_queue_with_a_child_writing_to(1);
}

#[test]
fn wait_returns_exactly_the_queue_a_child_put_on() {
    three_pipes_and_a_queue_with_a_child_writing_to(3);
}

#[test]
fn wait_times_out_with_nothing_ready() {
    let (_a, b) = Pipe::new().unwrap();
    let (_c, d) = Pipe::new().unwrap();
    let q: Queue<u8> = Queue::new(4096).unwrap();
    let start = Instant::now();
    assert!(wait(&[&b, &d, &q], Some(Duration::ZERO)).is_empty());
    assert!(wait(&[&b, &d, &q], Some(Duration::from_millis(150))).is_empty());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(150), "returned early: {waited:?}");
    assert!(waited < Duration::from_secs(2), "returned late: {waited:?}");
    let start = Instant::now();
    assert!(wait(&[], Some(Duration::from_millis(20))).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn wait_returns_every_ready_object_in_order() {
    let (a, b) = Pipe::new().unwrap();
    let (_c, d) = Pipe::new().unwrap();
    let q: Queue<u8> = Queue::new(4096).unwrap();
    a.send(&1u8).unwrap();
    q.put(2).unwrap();
    assert_eq!(wait(&[&q, &d, &b], Some(Duration::ZERO)), [0, 2]);
    assert_eq!(wait(&[&b, &b], None), [0, 1], "the same end twice");
    q.close();
    b.recv::<u8>().unwrap();
    q.get().unwrap();
    assert_eq!(wait(&[&b, &d, &q], Some(LIMIT)), [2], "a closed queue is ready: its get returns at once");
}

fn hold_then_exit(arg: (Connection<SendOnly>, u64)) {
    let (tx, ms) = arg;
    std::thread::sleep(Duration::from_millis(ms));
    drop(tx);
}

fn hold_forever(_tx: Connection<SendOnly>) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn wait_counts_an_end_of_stream_as_ready() {
    let (idle_rx, _idle_tx) = Pipe::one_way_with_capacity(4096).unwrap();

    // The peer drops its end: noticed at once.
    let (rx, tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let mut p = Process::new(hold_then_exit, (tx, 200));
    p.start().unwrap();
    assert_eq!(wait(&[&idle_rx, &rx], Some(LIMIT)), [1]);
    assert_eq!(rx.try_recv::<u8>(), Err(multiproc::channel::TryRecvError::Disconnected));
    assert_eq!(join(&mut p), 0);

    // The peer is killed: noticed at the end of a liveness slice.
    let (rx, tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let mut p = Process::new(hold_forever, tx);
    p.start().unwrap();
    assert!(wait(&[&idle_rx, &rx], Some(Duration::from_millis(300))).is_empty(), "the holder is alive");
    p.kill().unwrap();
    let killed = Instant::now();
    assert_eq!(join(&mut p), -9);
    assert_eq!(wait(&[&idle_rx, &rx], Some(LIMIT)), [1]);
    let after = killed.elapsed();
    assert!(after < Duration::from_millis(1500), "noticed {after:?} after the kill");
}

#[test]
fn wait_on_a_queue_whose_writer_died_is_ready() {
    let q: Queue<u8> = Queue::new(4096).unwrap();
    let (idle_rx, _idle_tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let mut p = Process::new(put_one, q.clone());
    p.start().unwrap();
    assert_eq!(wait(&[&idle_rx, &q], Some(LIMIT)), [1]);
    assert_eq!(q.get_timeout(LIMIT), Ok(1));
    assert_eq!(join(&mut p), 0);
    assert_eq!(wait(&[&idle_rx, &q], Some(LIMIT)), [1], "every writer is gone");
}

fn put_one(q: Queue<u8>) {
    q.put(1).unwrap();
}

#[test]
fn wait_over_more_than_128_objects_checks_every_millisecond() {
    // futex_waitv takes at most 128 words; beyond that `wait` polls.
    let queues: Vec<Queue<u8>> = (0..130).map(|_| Queue::new(4096).unwrap()).collect();
    let objects: Vec<&dyn multiproc::channel::Waitable> = queues.iter().map(|q| q as _).collect();
    assert!(wait(&objects, Some(Duration::from_millis(20))).is_empty());
    let writer = queues[129].clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.put(9).unwrap();
    });
    let start = Instant::now();
    assert_eq!(wait(&objects, Some(LIMIT)), [129]);
    assert!(start.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
    assert_eq!(queues[129].try_get(), Ok(9));
}
