//! Queues whose producers and consumers are killed (`SIGKILL`) at awkward
//! moments, with real processes: nothing is duplicated, truncated or
//! corrupted, the killed process loses at most its own message in flight,
//! and the queue keeps working for everyone else.

multiproc::test_support!();

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{WATCH, join, wait_for_flag, watchdog};
use multiproc::channel::{Message, Plain, TryRecvError};
use multiproc::{Process, Queue, Value};

const LONG: Duration = Duration::from_secs(20);
/// Producer id of the stop marker.
const STOP: u32 = u32::MAX;

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A number that differs from run to run, for kill timings.
fn jitter(range: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    u64::from(nanos ^ std::process::id().rotate_left(16)).wrapping_mul(0x9e37_79b9_7f4a_7c15) % range
}

/// Sleeps until the victim has had time to get somewhere random, then
/// kills it (see [`kill_now`]).
fn kill_at_random(victim: &mut Process, max_ms: u64) {
    std::thread::sleep(Duration::from_millis(jitter(max_ms)));
    kill_now(victim);
}

/// Kills the victim and checks it died of the signal.
fn kill_now(victim: &mut Process) {
    victim.kill().unwrap();
    assert_eq!(join(victim), -9);
}

/// Starts `p` and waits until it sets `flag` to `want` (it has got where
/// the test wants it).
fn start_until(mut p: Process, flag: &Value<u32>, want: u32) -> Process {
    p.start().unwrap();
    wait_for_flag(flag, want);
    p
}

/// In a child that holds what the test wants it to hold: tells the
/// parent (`flag` becomes `value`), then waits to be killed.
fn flag_and_hang(flag: &Value<u32>, value: u32) -> ! {
    flag.set(value).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Checks what consumers got from producers that put `0..count` (or, for
/// `victim`, were killed half-way): no duplicates, every message of the
/// others, and for the victim exactly `0..k` with `k >= at_least` — its one
/// message in flight, at most, is missing. Returns `k`.
fn check_delivery(got: &[(u32, u32)], full: &[(u32, u32)], victim: u32, at_least: u32) -> u32 {
    let mut by_producer: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(id, seq) in got {
        by_producer.entry(id).or_default().push(seq);
    }
    for (id, seqs) in &mut by_producer {
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "producer {id}: a message was delivered twice");
    }
    for &(id, count) in full {
        let seqs = by_producer.remove(&id).unwrap_or_default();
        assert!(seqs.iter().copied().eq(0..count), "producer {id}: got {} of its {count} messages", seqs.len());
    }
    let seqs = by_producer.remove(&victim).unwrap_or_default();
    let k = seqs.len() as u32;
    assert!(seqs.iter().copied().eq(0..k), "killed producer: a gap in what arrived (0..{k} expected)");
    assert!(k >= at_least, "killed producer: {k} arrived, it had put {at_least}");
    assert!(by_producer.is_empty(), "messages from unknown producers: {:?}", by_producer.keys());
    k
}

/// What consumers report: the (producer, seq) of each message they got.
type Reports = Queue<Vec<(u32, u32)>>;

/// A queue for the children's reports. A get on an empty queue whose every
/// writer is gone reports `Disconnected`, and a process counts as a writer
/// from its first put: so the parent puts (and takes back) one message
/// first, or its gets would end as soon as the first reporter exits.
fn report_queue<T: Message + Default + PartialEq + std::fmt::Debug>() -> Queue<T> {
    let q = Queue::new(1 << 20).unwrap();
    q.put(T::default()).unwrap();
    assert_eq!(q.get().unwrap(), T::default());
    q
}

// ----- small messages -----

/// (producer, seq, payload, checksum of the three).
type Tagged = (u32, u32, Vec<u8>, u64);

fn tagged(id: u32, seq: u32) -> Tagged {
    let payload: Vec<u8> = (0..(seq * 7 + id) % 300).map(|i| (i ^ seq) as u8).collect();
    let sum = checksum(id, seq, &payload);
    (id, seq, payload, sum)
}

fn checksum(id: u32, seq: u32, payload: &[u8]) -> u64 {
    fnv(&[&id.to_le_bytes()[..], &seq.to_le_bytes(), payload].concat())
}

/// Puts `count` tagged messages (`u32::MAX`: until killed); sets `flag` to
/// 1 after `flag_after` of them.
fn produce_tagged(arg: (Queue<Tagged>, u32, u32, Value<u32>, u32)) {
    let (q, id, count, flag, flag_after) = arg;
    for seq in 0..count {
        q.put(tagged(id, seq)).unwrap();
        if seq + 1 == flag_after {
            flag.set(1).unwrap();
        }
    }
}

/// Takes tagged messages until a stop marker, checking each one and each
/// producer's order, and reports (producer, seq) pairs on `results`.
fn consume_tagged(arg: (Queue<Tagged>, Reports)) {
    let (q, results) = arg;
    let mut got = Vec::new();
    let mut last: HashMap<u32, u32> = HashMap::new();
    loop {
        let (id, seq, payload, sum) = q.get_timeout(LONG).unwrap();
        if id == STOP {
            break;
        }
        assert_eq!(checksum(id, seq, &payload), sum, "producer {id} seq {seq}: corrupt message");
        if let Some(prev) = last.insert(id, seq) {
            assert!(seq > prev, "producer {id}: {seq} after {prev}");
        }
        got.push((id, seq));
    }
    results.put(got).unwrap();
}

#[test]
fn queue_producer_killed_mid_put_loses_at_most_its_message_in_flight() {
    const STEADY: u32 = 3_000;
    const CONSUMERS: usize = 2;
    const FLAG_AFTER: u32 = 500;
    let _watchdog = watchdog(WATCH);
    for round in 0..10 {
        let q: Queue<Tagged> = Queue::new(16 * 1024).unwrap();
        let results = report_queue();
        // The parent puts the stop markers; registered as a writer from the
        // start, it keeps consumers from seeing every writer gone meanwhile.
        q.put(tagged(0, 0)).unwrap();
        assert_eq!(q.get().unwrap(), tagged(0, 0));
        let flag = Value::new(0u32).unwrap();
        let unused = Value::new(0u32).unwrap();
        let mut consumers: Vec<Process> =
            (0..CONSUMERS).map(|_| Process::new(consume_tagged, (q.clone(), results.clone()))).collect();
        let mut victim = Process::new(produce_tagged, (q.clone(), 0, u32::MAX, flag.clone(), FLAG_AFTER));
        let mut steady: Vec<Process> =
            (1..=2).map(|id| Process::new(produce_tagged, (q.clone(), id, STEADY, unused.clone(), 0))).collect();
        for p in consumers.iter_mut().chain([&mut victim]).chain(steady.iter_mut()) {
            p.start().unwrap();
        }
        wait_for_flag(&flag, 1);
        kill_at_random(&mut victim, 30);
        for p in &mut steady {
            assert_eq!(join(p), 0);
        }
        for _ in 0..CONSUMERS {
            q.put_timeout((STOP, 0, Vec::new(), 0), LONG).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..CONSUMERS {
            got.extend(results.get_timeout(LONG).unwrap());
        }
        for c in &mut consumers {
            assert_eq!(join(c), 0, "a consumer failed a check");
        }
        let k = check_delivery(&got, &[(1, STEADY), (2, STEADY)], 0, FLAG_AFTER);
        eprintln!("round {round}: the killed producer's first {k} messages arrived");
        // Still a working queue.
        q.put(tagged(9, 9)).unwrap();
        assert_eq!(q.get_timeout(LONG).unwrap(), tagged(9, 9));
        assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    }
}

// ----- large (streamed) messages -----

/// The ring of the large-message tests: one record holds at most 2040 bytes.
const SMALL_RING: usize = 4096;

/// A message of 2,100..20,000 bytes: producer, seq, length, a pattern, and
/// a checksum of all that in the last 8 bytes.
fn large(id: u32, seq: u32) -> Vec<u8> {
    let len = 2_100 + (seq as usize * 7_919 + id as usize * 104_729) % 17_900;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&(len as u32).to_le_bytes());
    m.extend((m.len()..len - 8).map(|i| (i as u32).wrapping_mul(seq | 1).wrapping_add(id) as u8));
    let sum = fnv(&m);
    m.extend_from_slice(&sum.to_le_bytes());
    m
}

/// Checks a large message and returns its (producer, seq).
fn check_large(m: &[u8]) -> (u32, u32) {
    assert!(m.len() >= 20, "a truncated message of {} bytes", m.len());
    let word = |i: usize| u32::from_le_bytes(m[i..i + 4].try_into().unwrap());
    let (id, seq, len) = (word(0), word(4), word(8) as usize);
    assert_eq!(m.len(), len, "producer {id} seq {seq}: {} bytes arrived of {len}", m.len());
    let (body, sum) = m.split_at(len - 8);
    assert_eq!(fnv(body).to_le_bytes(), sum, "producer {id} seq {seq}: checksum mismatch");
    (id, seq)
}

const LARGE_STOP: &[u8] = b"stop";

fn produce_large(arg: (Queue<Vec<u8>>, u32, u32, Value<u32>, u32)) {
    let (q, id, count, flag, flag_after) = arg;
    for seq in 0..count {
        q.put_bytes(&large(id, seq)).unwrap();
        if seq + 1 == flag_after {
            flag.set(1).unwrap();
        }
    }
}

/// As `consume_tagged`, for large messages, taken with `get_in_place`
/// (which assembles streamed messages itself) or with `get_bytes`.
fn consume_large(arg: (Queue<Vec<u8>>, Reports, bool)) {
    let (q, results, in_place) = arg;
    let mut got = Vec::new();
    let mut last: HashMap<u32, u32> = HashMap::new();
    loop {
        let m = if in_place { q.get_in_place().unwrap().to_vec() } else { q.get_bytes().unwrap() };
        if m == LARGE_STOP {
            break;
        }
        let (id, seq) = check_large(&m);
        if let Some(prev) = last.insert(id, seq) {
            assert!(seq > prev, "producer {id}: {seq} after {prev}");
        }
        got.push((id, seq));
    }
    results.put(got).unwrap();
}

#[test]
fn queue_producer_killed_mid_stream_never_delivers_a_truncated_message() {
    const STEADY: u32 = 300;
    const CONSUMERS: usize = 2;
    const FLAG_AFTER: u32 = 50;
    let _watchdog = watchdog(WATCH);
    for round in 0..10 {
        let q: Queue<Vec<u8>> = Queue::new(SMALL_RING).unwrap();
        let results = report_queue();
        q.put_bytes(b"warm-up").unwrap();
        assert_eq!(q.get_bytes().unwrap(), b"warm-up");
        let flag = Value::new(0u32).unwrap();
        let unused = Value::new(0u32).unwrap();
        let mut consumers: Vec<Process> =
            (0..CONSUMERS).map(|i| Process::new(consume_large, (q.clone(), results.clone(), i % 2 == 0))).collect();
        let mut victim = Process::new(produce_large, (q.clone(), 0, u32::MAX, flag.clone(), FLAG_AFTER));
        let mut steady = Process::new(produce_large, (q.clone(), 1, STEADY, unused.clone(), 0));
        for p in consumers.iter_mut().chain([&mut victim, &mut steady]) {
            p.start().unwrap();
        }
        wait_for_flag(&flag, 1);
        kill_at_random(&mut victim, 30);
        assert_eq!(join(&mut steady), 0);
        // The queue still carries large messages after the kill.
        for seq in 0..10 {
            q.put_bytes(&large(2, seq)).unwrap();
        }
        for _ in 0..CONSUMERS {
            q.put_bytes(LARGE_STOP).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..CONSUMERS {
            got.extend(results.get_timeout(LONG).unwrap());
        }
        for c in &mut consumers {
            assert_eq!(join(c), 0, "a consumer failed a check");
        }
        let k = check_delivery(&got, &[(1, STEADY), (2, 10)], 0, FLAG_AFTER);
        eprintln!("round {round}: the killed producer's first {k} messages arrived");
        assert!(q.is_empty());
    }
}

// ----- consumers -----

/// Takes one message in place (holding the receive lock), reports its
/// value + 1 on `flag`, and holds on to it until killed.
fn take_in_place_and_hang(arg: (Queue<Plain<u32>>, Value<u32>)) {
    let (q, flag) = arg;
    let view = q.get_in_place().unwrap();
    assert!(view.is_in_place());
    let value = u32::from_le_bytes((*view).try_into().unwrap());
    flag_and_hang(&flag, value + 1)
}

/// Says it is about to get, gets one message and reports it.
fn get_one(arg: (Queue<Plain<u32>>, Value<u32>, Queue<u32>)) {
    let (q, ready, results) = arg;
    ready.set(1).unwrap();
    let Plain(v) = q.get_timeout(LONG).unwrap();
    results.put(v).unwrap();
}

#[test]
fn queue_consumer_killed_holding_the_lock_loses_nothing() {
    let _watchdog = watchdog(WATCH);
    let q: Queue<Plain<u32>> = Queue::new(SMALL_RING).unwrap();
    let results: Queue<u32> = report_queue();
    for i in 0..10 {
        q.put(Plain(i)).unwrap();
    }
    let holding = Value::new(0u32).unwrap();
    // It holds message 0, and the receive lock.
    let mut holder = start_until(Process::new(take_in_place_and_hang, (q.clone(), holding.clone())), &holding, 1);
    let ready = Value::new(0u32).unwrap();
    let mut waiter = start_until(Process::new(get_one, (q.clone(), ready.clone(), results.clone())), &ready, 1);
    std::thread::sleep(Duration::from_millis(100)); // let it block on the lock
    assert!(matches!(results.try_get(), Err(TryRecvError::Empty)), "got a message while the lock was held");
    assert_eq!(q.len(), 10);
    kill_now(&mut holder);
    // The message the dead consumer held was never delivered: the waiting
    // consumer gets it, then the parent gets the rest in order.
    assert_eq!(results.get_timeout(LONG).unwrap(), 0);
    assert_eq!(join(&mut waiter), 0);
    for i in 1..10 {
        assert_eq!(q.get_timeout(LONG).unwrap(), Plain(i));
    }
    assert!(q.is_empty());
    assert_eq!(q.len(), 0);
    // Puts and gets keep working, in place too.
    q.put(Plain(100)).unwrap();
    assert_eq!(&*q.get_in_place().unwrap(), &100u32.to_le_bytes()[..]);
    q.put(Plain(101)).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), Plain(101));
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
}

/// Writes `0..n` in place (by then the send side is biased to this
/// thread, and `reserve` takes its inline path), then reserves one more
/// slot, writes `u32::MAX` into it, says so on `flag` and hangs without
/// committing it, inside the send side, until killed.
fn write_in_place_and_hang(arg: (Queue<Plain<u32>>, u32, Value<u32>)) {
    let (q, n, flag) = arg;
    for i in 0..n {
        let mut slot = q.reserve(4).unwrap();
        slot.copy_from_slice(&i.to_le_bytes());
        slot.commit();
    }
    let mut slot = q.reserve(4).unwrap();
    slot.copy_from_slice(&u32::MAX.to_le_bytes());
    flag_and_hang(&flag, 1)
}

#[test]
fn queue_producer_killed_holding_a_slot_loses_only_that_message() {
    let _watchdog = watchdog(WATCH);
    let q: Queue<Plain<u32>> = Queue::new(64 << 10).unwrap();
    let holding = Value::new(0u32).unwrap();
    let mut writer = start_until(Process::new(write_in_place_and_hang, (q.clone(), 500, holding.clone())), &holding, 1);
    assert_eq!(q.len(), 500);
    kill_now(&mut writer);
    // The dead writer's side (biased to it, and entered) is taken over; its
    // slot was never committed, so nothing of it arrives.
    q.put_timeout(Plain(1000), LONG).unwrap();
    for i in 0..500 {
        assert_eq!(q.get_timeout(LONG).unwrap(), Plain(i));
    }
    assert_eq!(q.get_timeout(LONG).unwrap(), Plain(1000));
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
}

/// Takes `n` messages in place, checking they are `0..n` (by then the
/// receive side is biased to this thread, and `get_in_place` takes its
/// inline path), then takes one more in place, reports its value + 1 on
/// `flag` and holds it until killed.
fn take_many_in_place_and_hang(arg: (Queue<Plain<u32>>, u32, Value<u32>)) {
    let (q, n, flag) = arg;
    for i in 0..n {
        let view = q.get_in_place().unwrap();
        assert_eq!(&*view, &i.to_le_bytes()[..]);
    }
    let view = q.get_in_place().unwrap();
    assert!(view.is_in_place());
    flag_and_hang(&flag, u32::from_le_bytes((*view).try_into().unwrap()) + 1)
}

#[test]
fn queue_consumer_killed_holding_a_view_loses_nothing() {
    let _watchdog = watchdog(WATCH);
    let q: Queue<Plain<u32>> = Queue::new(64 << 10).unwrap();
    for i in 0..600 {
        q.put(Plain(i)).unwrap();
    }
    let holding = Value::new(0u32).unwrap();
    // It holds message 500.
    let mut reader =
        start_until(Process::new(take_many_in_place_and_hang, (q.clone(), 500, holding.clone())), &holding, 501);
    kill_now(&mut reader);
    // The message it held was never delivered: it comes first.
    for i in 500..600 {
        assert_eq!(q.get_timeout(LONG).unwrap(), Plain(i));
    }
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    assert_eq!(q.len(), 0);
}

/// Says it is about to get, then takes messages until `u32::MAX` and
/// reports them.
fn get_until_stop(arg: (Queue<u32>, Value<u32>, Queue<Vec<u32>>)) {
    let (q, ready, results) = arg;
    ready.set(1).unwrap();
    let got: Vec<u32> = std::iter::from_fn(|| Some(q.get_timeout(LONG).unwrap())).take_while(|&v| v != STOP).collect();
    results.put(got).unwrap();
}

#[test]
fn queue_consumer_killed_blocked_in_get_leaves_the_others_working() {
    let _watchdog = watchdog(WATCH);
    let q: Queue<u32> = Queue::new(SMALL_RING).unwrap();
    let results: Queue<Vec<u32>> = report_queue();
    q.put(STOP - 1).unwrap(); // registers the parent as a writer
    assert_eq!(q.get().unwrap(), STOP - 1);
    let flags: Vec<Value<u32>> = (0..3).map(|_| Value::new(0u32).unwrap()).collect();
    let mut consumers: Vec<Process> =
        flags.iter().map(|f| Process::new(get_until_stop, (q.clone(), f.clone(), results.clone()))).collect();
    for (c, f) in consumers.iter_mut().zip(&flags) {
        c.start().unwrap();
        wait_for_flag(f, 1);
    }
    std::thread::sleep(Duration::from_millis(200)); // all three asleep in get
    let mut victim = consumers.remove(0);
    kill_now(&mut victim);
    let start = Instant::now();
    for i in 0..1_000 {
        q.put_timeout(i, LONG).unwrap();
    }
    for _ in &consumers {
        q.put_timeout(STOP, LONG).unwrap();
    }
    let mut all: Vec<u32> = (0..consumers.len()).flat_map(|_| results.get_timeout(LONG).unwrap()).collect();
    for c in &mut consumers {
        assert_eq!(join(c), 0);
    }
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..1_000), "every message exactly once");
    assert!(q.is_empty());
}
