//! `Queue`, `SimpleQueue` and `JoinableQueue` across real processes.

multiproc::test_support!();

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{join, unique};
use multiproc::channel::{Plain, RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};
use multiproc::{JoinableQueue, Process, Queue, ShmError, SimpleQueue};

const PRODUCERS: u32 = 4;
const PER_PRODUCER: u32 = 20_000;
const CONSUMERS: u32 = 3;

/// A message tagged with its producer and its sequence number there.
type Tagged = (u32, u32);

fn produce(arg: (Queue<Tagged>, u32)) {
    let (q, id) = arg;
    for seq in 0..PER_PRODUCER {
        q.put((id, seq)).unwrap();
    }
}

/// Takes messages until the stop marker, checks per-producer order, and
/// reports what it got on `results`.
fn consume(arg: (Queue<Tagged>, Queue<Vec<Tagged>>)) {
    let (q, results) = arg;
    let mut got = Vec::new();
    let mut last: HashMap<u32, u32> = HashMap::new();
    loop {
        let (id, seq) = q.get().unwrap();
        if id == u32::MAX {
            break;
        }
        if let Some(&prev) = last.get(&id) {
            assert!(seq > prev, "producer {id}: {seq} after {prev}");
        }
        last.insert(id, seq);
        got.push((id, seq));
    }
    results.put(got).unwrap();
}

#[test]
fn queue_four_producers_three_consumers_exactly_once_in_order() {
    let q = Queue::new(256 * 1024).unwrap();
    let results = Queue::new(4 << 20).unwrap();
    let mut consumers: Vec<Process> =
        (0..CONSUMERS).map(|_| Process::new(consume, (q.clone(), results.clone()))).collect();
    let mut producers: Vec<Process> = (0..PRODUCERS).map(|id| Process::new(produce, (q.clone(), id))).collect();
    for p in consumers.iter_mut().chain(producers.iter_mut()) {
        p.start().unwrap();
    }
    for p in &mut producers {
        assert_eq!(join(p), 0);
    }
    for _ in 0..CONSUMERS {
        q.put((u32::MAX, 0)).unwrap();
    }
    let mut all = Vec::new();
    for _ in 0..CONSUMERS {
        all.extend(results.get_timeout(Duration::from_secs(60)).unwrap());
    }
    for c in &mut consumers {
        assert_eq!(join(c), 0);
    }
    all.sort_unstable();
    let expected: Vec<Tagged> = (0..PRODUCERS).flat_map(|id| (0..PER_PRODUCER).map(move |s| (id, s))).collect();
    assert_eq!(all.len(), expected.len(), "every message exactly once");
    assert_eq!(all, expected);
}

#[test]
fn queue_try_put_full_try_get_empty_and_timeouts() {
    let q: Queue<Plain<[u8; 1000]>> = Queue::new(4096).unwrap();
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    let mut n = 0;
    while q.try_put(Plain([n as u8; 1000])).is_ok() {
        n += 1;
    }
    assert!(n >= 3, "a 4 KiB ring holds three 1 KiB messages, got {n}");
    assert!(matches!(q.try_put(Plain([0; 1000])), Err(TrySendError::Full(_))));
    let start = Instant::now();
    assert!(q.put_timeout(Plain([0; 1000]), Duration::from_millis(30)).unwrap_err().is_timeout());
    assert!(start.elapsed() >= Duration::from_millis(30));
    for i in 0..n {
        assert_eq!(q.get().unwrap().0[0], i as u8);
    }
    assert!(q.get_timeout(Duration::from_millis(30)).unwrap_err().is_timeout());
}

#[test]
fn queue_close_drains_then_reports_closed() {
    let q = Queue::new(4096).unwrap();
    q.put(1u8).unwrap();
    q.put(2u8).unwrap();
    q.close();
    assert!(q.is_closed());
    assert!(matches!(q.put(3), Err(SendError::Closed(3))));
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.try_get().unwrap(), 2);
    assert_eq!(q.get(), Err(RecvError::Closed));
    assert_eq!(q.try_get(), Err(TryRecvError::Closed));
}

#[test]
fn queue_keeps_boundaries_and_empty_messages_and_streams_large_ones() {
    let q: Queue<Vec<u8>> = Queue::new(4096).unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let sender = q.clone();
    let big2 = big.clone();
    let t = std::thread::spawn(move || {
        sender.put_bytes(&[]).unwrap();
        sender.put_bytes(b"ab").unwrap();
        sender.put(big2).unwrap();
    });
    assert_eq!(q.get_bytes().unwrap(), b"");
    assert_eq!(q.get_bytes().unwrap(), b"ab");
    assert_eq!(q.get().unwrap(), big, "a message 25x the ring arrives whole");
    t.join().unwrap();
}

#[test]
fn queue_in_place_write_and_read() {
    let q: Queue<Vec<u8>> = Queue::new(8192).unwrap();
    let mut slot = q.reserve(100).unwrap();
    slot.copy_from_slice(&[9; 100]);
    slot.commit();
    drop(q.reserve(5).unwrap()); // dropped uncommitted: nothing sent
    let view = q.get_in_place().unwrap();
    assert!(view.is_in_place());
    assert_eq!(&*view, &[9; 100][..]);
    drop(view);
    assert!(q.is_empty());
    assert!(q.reserve(8192).is_err(), "larger than one record");
}

fn put_then_exit(q: Queue<u32>) {
    q.put(7).unwrap();
}

fn put_then_hang(q: Queue<u32>) {
    q.put(8).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn queue_get_reports_disconnected_when_the_only_writer_exits() {
    let q = Queue::new(4096).unwrap();
    let mut p = Process::new(put_then_exit, q.clone());
    p.start().unwrap();
    assert_eq!(q.get().unwrap(), 7);
    assert_eq!(join(&mut p), 0);
    assert_eq!(q.get_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn queue_blocked_get_returns_within_a_second_of_the_writer_being_killed() {
    let q = Queue::new(4096).unwrap();
    let mut p = Process::new(put_then_hang, q.clone());
    p.start().unwrap();
    assert_eq!(q.get().unwrap(), 8);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        p.kill().unwrap();
        join(&mut p)
    });
    let start = Instant::now();
    assert_eq!(q.get_timeout(Duration::from_secs(20)), Err(RecvTimeoutError::Disconnected));
    let waited = start.elapsed();
    assert_eq!(killer.join().unwrap(), -9);
    assert!(waited < Duration::from_millis(100) + Duration::from_secs(1), "took {waited:?}");
}

#[test]
fn queue_named_kinds_do_not_mix() {
    let (name, _cleanup) = unique("queue-kinds");
    let q: Queue<u8> = Queue::create(name.as_str(), 4096).unwrap();
    assert!(matches!(JoinableQueue::<u8>::open(name.as_str()), Err(ShmError::Mismatch { .. })));
    assert!(matches!(SimpleQueue::<u8>::open(name.as_str()), Err(ShmError::Mismatch { .. })));
    let other: Queue<u8> = Queue::open(name.as_str()).unwrap();
    other.put(3).unwrap();
    assert_eq!(q.get().unwrap(), 3);
    assert_eq!(other.capacity(), 4096);
    assert!(matches!(Queue::<u8>::open_or_create(name.as_str(), 8192), Err(ShmError::Mismatch { .. })));
}

fn work(arg: (JoinableQueue<u32>, u32)) {
    let (q, n) = arg;
    for _ in 0..n {
        q.get().unwrap();
        q.task_done().unwrap();
    }
}

#[test]
fn joinable_queue_join_waits_for_task_done_in_another_process() {
    let q = JoinableQueue::new(4096).unwrap();
    for i in 0..10u32 {
        q.put(i).unwrap();
    }
    assert!(!q.join_timeout(Duration::from_millis(20)));
    let mut p = Process::new(work, (q.clone(), 10));
    p.start().unwrap();
    assert!(q.join_timeout(Duration::from_secs(20)), "join returned once all ten were done");
    assert_eq!(join(&mut p), 0);
    assert!(q.task_done().is_err());
}

#[test]
fn queue_used_by_threads_of_one_process_never_reports_disconnected() {
    let q: Queue<u8> = Queue::new(4096).unwrap();
    let sender = q.clone();
    let t = std::thread::spawn(move || {
        // Past several liveness slices of the blocked get.
        std::thread::sleep(Duration::from_millis(350));
        sender.put(1).unwrap();
    });
    assert_eq!(q.get_timeout(Duration::from_secs(20)).unwrap(), 1);
    t.join().unwrap();
}

fn exit_at_once(_q: Queue<u32>) {}

#[test]
fn queue_get_reports_disconnected_only_when_no_other_process_holds_it() {
    let q: Queue<u32> = Queue::new(4096).unwrap();
    let mut quick = Process::new(exit_at_once, q.clone());
    quick.start().unwrap();
    assert_eq!(join(&mut quick), 0);
    // The only other holder is gone: nothing can arrive.
    assert_eq!(q.get_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
    // A new holder that puts later is waited for.
    let mut slow = Process::new(put_then_hang, q.clone());
    slow.start().unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(20)).unwrap(), 8);
    slow.kill().unwrap();
    assert_eq!(join(&mut slow), -9);
}

fn put_one(arg: (Queue<u32>, u32)) {
    let (q, n) = arg;
    q.put(n).unwrap();
}

/// Children that put and exit at once, while their siblings are still
/// starting: a sibling holds the queue from `start()` (it inherits its
/// parent's hold), so the parent's get never sees a moment with no other
/// holder and never reports a false end of stream.
#[test]
fn queue_children_hold_it_from_start_so_no_false_disconnect() {
    for _round in 0..10 {
        let q: Queue<u32> = Queue::new(4096).unwrap();
        let mut kids: Vec<Process> = (0..5).map(|n| Process::new(put_one, (q.clone(), n))).collect();
        for k in &mut kids {
            k.start().unwrap();
        }
        let mut got: Vec<u32> = (0..5).map(|_| q.get_timeout(Duration::from_secs(20)).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        for k in &mut kids {
            assert_eq!(join(k), 0);
        }
    }
}

/// Bytes that are no message of the queue's type: an error of each get's
/// own type, the message consumed, and the next one delivered (a serde type,
/// whose inline get hands the bytes to postcard, and a `Plain` one, whose
/// get sends a record of another size the general way).
#[test]
fn queue_undecodable_messages_are_errors_of_each_get_form_and_consumed() {
    let decode_failed = |e: &multiproc::channel::Failure| matches!(e, multiproc::channel::Failure::Decode(_));
    let q = Queue::<u64>::new(4096).unwrap();
    let p = Queue::<Plain<u64>>::new(4096).unwrap();
    for bad in [&[0xffu8; 11][..], &[0xff; 40][..]] {
        q.put_bytes(bad).unwrap();
        q.put(7).unwrap();
        assert!(matches!(q.get(), Err(RecvError::Failed(f)) if decode_failed(&f)), "{} bytes", bad.len());
        assert_eq!(q.get(), Ok(7));
        q.put_bytes(bad).unwrap();
        assert!(matches!(q.try_get(), Err(TryRecvError::Failed(f)) if decode_failed(&f)));
        assert_eq!(q.try_get(), Err(TryRecvError::Empty));
        p.put_bytes(bad).unwrap();
        p.put(Plain(9)).unwrap();
        assert!(
            matches!(p.get_timeout(Duration::from_secs(20)), Err(RecvTimeoutError::Failed(f)) if decode_failed(&f))
        );
        assert_eq!(p.get_timeout(Duration::from_secs(20)), Ok(Plain(9)));
        p.put_bytes(bad).unwrap();
        assert!(matches!(p.get(), Err(RecvError::Failed(f)) if decode_failed(&f)));
    }
}
