//! The `try_` and `_timeout` forms of the byte-level and in-place calls:
//! `Queue`'s `put_bytes`, `get_bytes`, `reserve` and `get_in_place`, and a
//! pipe `Connection`'s `reserve`, `recv_in_place` and `recv_bytes_into`.
//! Each form: Full or Empty now, Timeout within bounds, Closed (queues) or
//! Disconnected (pipes), TooLarge for an in-place message over the limit,
//! and real bytes moving between a parent and a child process.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, join, serial, watchdog};
use multiproc::channel::{
    Connection, Failure, Pipe, RecvIntoTimeoutError, RecvTimeoutError, SendTimeoutError, TryRecvError,
    TryRecvIntoError, TrySendError, WriteSlot,
};
use multiproc::{Process, Queue};

/// The bound on every blocking call that is expected to succeed.
const LIMIT: Duration = Duration::from_secs(20);
/// The timeout of calls expected to time out.
const SHORT: Duration = Duration::from_millis(100);
/// Generous upper bound on how long a timed-out call may take.
const SLACK: Duration = Duration::from_secs(5);
/// The smallest ring: one in-place record holds at most half of it, less
/// its 8-byte header. A record fits when its size (header and padding
/// included) plus 8 more bytes are free, so one record of `MAX_RECORD`
/// leaves no room for a second.
const RING: usize = 4096;
const MAX_RECORD: usize = RING / 2 - 8;

/// Distinct, position-dependent bytes, so a shifted or mixed-up message
/// cannot pass for another.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(u32::from(seed)).to_le_bytes()[3]).collect()
}

/// What the children answer for a message: every byte plus one.
fn answer(msg: &[u8]) -> Vec<u8> {
    msg.iter().map(|b| b.wrapping_add(1)).collect()
}

/// Runs `call` until it stops returning an "empty/full now" error (`again`),
/// sleeping a little in between; panics after [`LIMIT`].
fn retry<R, E: std::fmt::Debug>(mut call: impl FnMut() -> Result<R, E>, again: impl Fn(&E) -> bool) -> R {
    let start = Instant::now();
    loop {
        match call() {
            Ok(r) => return r,
            Err(e) if again(&e) && start.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("gave up: {e:?}"),
        }
    }
}

/// Asserts that `call` fails after at least [`SHORT`] and well within
/// [`SLACK`], and returns its error.
fn timed<R, E>(call: impl FnOnce() -> Result<R, E>) -> E {
    let start = Instant::now();
    let Err(e) = call() else { panic!("expected a timeout") };
    let took = start.elapsed();
    assert!(took >= SHORT, "gave up after {took:?}, before its timeout of {SHORT:?}");
    assert!(took < SLACK, "took {took:?} for a timeout of {SHORT:?}");
    e
}

/// A message whose record (8-byte header included) is a quarter of [`RING`].
const QUARTER: usize = RING / 4 - 8;

/// Asserts that both reserve forms refused `MAX_RECORD + 1` bytes as
/// [`Failure::TooLarge`], the `_timeout` one at once.
fn assert_too_large<'a>(
    tried: Result<WriteSlot<'a>, TrySendError<()>>,
    timed_form: impl FnOnce() -> Result<WriteSlot<'a>, SendTimeoutError<()>>,
) {
    let too_large = |e: Failure| matches!(e, Failure::TooLarge { len, max: MAX_RECORD } if len == MAX_RECORD + 1);
    match tried {
        Err(TrySendError::Failed((), e)) => assert!(too_large(e)),
        other => panic!("try_reserve over the limit: {:?}", other.map(|s| s.len())),
    }
    let start = Instant::now();
    match timed_form() {
        Err(SendTimeoutError::Failed((), e)) => assert!(too_large(e)),
        other => panic!("reserve_timeout over the limit: {:?}", other.map(|s| s.len())),
    }
    assert!(start.elapsed() < SLACK, "refused at once, without waiting for room");
}

/// Fills `q` through `try_put_bytes` with messages of [`QUARTER`] bytes
/// until one does not fit; how many fit.
fn fill(q: &Queue<Vec<u8>>) -> usize {
    let mut n = 0;
    while q.try_put_bytes(&pattern(QUARTER, n as u8)).is_ok() {
        n += 1;
    }
    n
}

// ---- Queue ----

#[test]
fn queue_try_put_bytes_full_and_try_get_bytes_empty() {
    let _w = watchdog(WATCH);
    let q: Queue<Vec<u8>> = Queue::new(RING).unwrap();
    assert_eq!(q.try_get_bytes(), Err(TryRecvError::Empty));
    let n = fill(&q);
    assert_eq!(n, 3, "a 4 KiB ring holds three records of 1 KiB (and 8 bytes more)");
    assert!(matches!(q.try_put_bytes(&[0; QUARTER]), Err(TrySendError::Full(()))));
    for i in 0..n {
        assert_eq!(q.try_get_bytes().unwrap(), pattern(QUARTER, i as u8));
    }
    assert!(q.try_get_bytes().unwrap_err().is_empty());
}

#[test]
fn queue_put_bytes_timeout_and_get_bytes_timeout_time_out() {
    let _w = watchdog(WATCH);
    let q: Queue<Vec<u8>> = Queue::new(RING).unwrap();
    let e = timed(|| q.get_bytes_timeout(SHORT));
    assert_eq!(e, RecvTimeoutError::Timeout);
    let n = fill(&q);
    let e = timed(|| q.put_bytes_timeout(&[0; QUARTER], SHORT));
    assert!(matches!(e, SendTimeoutError::Timeout(())));
    assert_eq!(q.get_bytes_timeout(LIMIT).unwrap(), pattern(QUARTER, 0));
    q.put_bytes_timeout(&[1; QUARTER], LIMIT).unwrap();
    for i in 1..n {
        assert_eq!(q.get_bytes_timeout(LIMIT).unwrap(), pattern(QUARTER, i as u8));
    }
    assert_eq!(q.get_bytes_timeout(LIMIT).unwrap(), [1; QUARTER], "fits again after one get");
}

#[test]
fn queue_try_reserve_full_and_try_get_in_place_empty() {
    let _w = watchdog(WATCH);
    let q: Queue<Vec<u8>> = Queue::new(RING).unwrap();
    assert!(q.try_get_in_place().unwrap_err().is_empty());
    let mut slot = q.try_reserve(MAX_RECORD).unwrap();
    slot.copy_from_slice(&pattern(MAX_RECORD, 1));
    slot.commit();
    assert!(matches!(q.try_reserve(MAX_RECORD), Err(TrySendError::Full(()))));
    let view = q.try_get_in_place().unwrap();
    assert!(view.is_in_place());
    assert_eq!(&*view, &pattern(MAX_RECORD, 1)[..]);
    drop(view);
    assert_eq!(q.try_get_in_place().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn queue_reserve_timeout_and_get_in_place_timeout_time_out() {
    let _w = watchdog(WATCH);
    let q: Queue<Vec<u8>> = Queue::new(RING).unwrap();
    let e = timed(|| q.get_in_place_timeout(SHORT));
    assert!(e.is_timeout());
    fill(&q);
    let e = timed(|| q.reserve_timeout(QUARTER, SHORT));
    assert!(e.is_timeout());
    drop(q.get_in_place_timeout(LIMIT).unwrap()); // room for one record again
    let mut slot = q.reserve_timeout(QUARTER, LIMIT).unwrap();
    slot.fill(3);
    slot.commit();
}

#[test]
fn queue_reserve_forms_refuse_an_in_place_message_over_one_record() {
    let _w = watchdog(WATCH);
    let q: Queue<Vec<u8>> = Queue::new(RING).unwrap();
    assert_too_large(q.try_reserve(MAX_RECORD + 1), || q.reserve_timeout(MAX_RECORD + 1, LIMIT));
    assert!(q.is_empty());
}

#[test]
fn queue_new_forms_report_closed_after_close_once_drained() {
    let _w = watchdog(WATCH);
    let q: Queue<Vec<u8>> = Queue::new(RING).unwrap();
    q.put_bytes(b"one").unwrap();
    q.put_bytes(b"two").unwrap();
    q.close();
    assert!(matches!(q.try_put_bytes(b"x"), Err(TrySendError::Closed(()))));
    assert!(matches!(q.put_bytes_timeout(b"x", LIMIT), Err(SendTimeoutError::Closed(()))));
    assert!(matches!(q.try_reserve(1), Err(TrySendError::Closed(()))));
    assert!(matches!(q.reserve_timeout(1, LIMIT), Err(SendTimeoutError::Closed(()))));
    // What was put before the close is still there.
    assert_eq!(q.try_get_bytes().unwrap(), b"one");
    assert_eq!(&*q.get_in_place_timeout(LIMIT).unwrap(), b"two");
    let start = Instant::now();
    assert_eq!(q.try_get_bytes(), Err(TryRecvError::Closed));
    assert_eq!(q.get_bytes_timeout(LIMIT), Err(RecvTimeoutError::Closed));
    assert_eq!(q.try_get_in_place().unwrap_err(), TryRecvError::Closed);
    assert_eq!(q.get_in_place_timeout(LIMIT).unwrap_err(), RecvTimeoutError::Closed);
    assert!(start.elapsed() < SLACK, "a closed, drained queue answers at once");
}

/// The sizes of the four messages each way: a small one, one streamed
/// through the ring in parts (byte forms only), and two in-place ones.
const SIZES: [usize; 4] = [1000, 100_000, 3000, 7000];
const QUEUE_RING: usize = 16 * 1024;

/// Takes the parent's four messages, one with each receiving form, and
/// answers each with a different sending form.
fn queue_echo(arg: (Queue<Vec<u8>>, Queue<Vec<u8>>)) {
    let (down, up) = arg;
    // One statement each: a view holds the queue's receive lock until it
    // drops, so it must not outlive its statement.
    let first = down.get_bytes_timeout(LIMIT).unwrap();
    let second = retry(|| down.try_get_bytes(), TryRecvError::is_empty);
    let third = down.get_in_place_timeout(LIMIT).unwrap().to_vec();
    let fourth = retry(|| down.try_get_in_place(), TryRecvError::is_empty).to_vec();
    let got = [first, second, third, fourth];
    let mut slot = up.reserve_timeout(got[0].len(), LIMIT).unwrap();
    slot.copy_from_slice(&answer(&got[0]));
    slot.commit();
    up.put_bytes_timeout(&answer(&got[1]), LIMIT).unwrap();
    let mut slot = retry(|| up.try_reserve(got[2].len()), TrySendError::is_full);
    slot.copy_from_slice(&answer(&got[2]));
    slot.commit();
    retry(|| up.try_put_bytes(&answer(&got[3])), TrySendError::is_full);
}

#[test]
fn queue_new_forms_move_bytes_between_parent_and_child() {
    let _serial = serial();
    let _w = watchdog(WATCH);
    let down: Queue<Vec<u8>> = Queue::new(QUEUE_RING).unwrap();
    let up: Queue<Vec<u8>> = Queue::new(QUEUE_RING).unwrap();
    let mut child = Process::new(queue_echo, (down.clone(), up.clone()));
    child.start().unwrap();
    let sent: Vec<Vec<u8>> = SIZES.iter().zip(1..).map(|(&len, seed)| pattern(len, seed)).collect();
    retry(|| down.try_put_bytes(&sent[0]), TrySendError::is_full);
    down.put_bytes_timeout(&sent[1], LIMIT).unwrap(); // six times the ring: streamed
    let mut slot = retry(|| down.try_reserve(sent[2].len()), TrySendError::is_full);
    slot.copy_from_slice(&sent[2]);
    slot.commit();
    let mut slot = down.reserve_timeout(sent[3].len(), LIMIT).unwrap();
    slot.copy_from_slice(&sent[3]);
    slot.commit();

    let view = up.get_in_place_timeout(LIMIT).unwrap();
    assert!(view.is_in_place());
    assert!(*view == answer(&sent[0]), "first answer");
    drop(view);
    assert!(up.get_bytes_timeout(LIMIT).unwrap() == answer(&sent[1]), "the streamed answer arrived whole");
    assert!(*retry(|| up.try_get_in_place(), TryRecvError::is_empty) == answer(&sent[2]), "third answer");
    assert!(retry(|| up.try_get_bytes(), TryRecvError::is_empty) == answer(&sent[3]), "fourth answer");
    assert_eq!(join(&mut child), 0);
    // The child was the only other holder: nothing more can arrive. (A
    // queue's `try_` forms say only `Empty` here, as `try_get` does.)
    assert_eq!(up.get_in_place_timeout(LIMIT).unwrap_err(), RecvTimeoutError::Disconnected);
    assert_eq!(up.get_bytes_timeout(LIMIT), Err(RecvTimeoutError::Disconnected));
}

// ---- Pipe ----

#[test]
fn pipe_try_reserve_full_and_try_recv_forms_empty() {
    let _w = watchdog(WATCH);
    let (a, b) = Pipe::with_capacity(RING).unwrap();
    let mut buf = [0xAAu8; 16];
    assert_eq!(b.try_recv_bytes_into(&mut buf), Err(TryRecvIntoError::Empty));
    assert_eq!(buf, [0xAA; 16], "an empty receive leaves the buffer alone");
    assert!(b.try_recv_in_place().unwrap_err().is_empty());
    for seed in 0..2 {
        let mut slot = a.try_reserve(MAX_RECORD).unwrap();
        slot.copy_from_slice(&pattern(MAX_RECORD, seed));
        slot.commit();
        assert!(matches!(a.try_reserve(MAX_RECORD), Err(TrySendError::Full(()))));
        if seed == 0 {
            assert_eq!(&*b.try_recv_in_place().unwrap(), &pattern(MAX_RECORD, 0)[..]);
        }
    }
    let mut big = vec![0; RING];
    assert_eq!(b.try_recv_bytes_into(&mut big), Ok(MAX_RECORD));
    assert_eq!(big[..MAX_RECORD], pattern(MAX_RECORD, 1)[..]);
    assert_eq!(b.try_recv_in_place().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn pipe_reserve_and_recv_timeouts_time_out() {
    let _w = watchdog(WATCH);
    let (a, b) = Pipe::with_capacity(RING).unwrap();
    assert!(timed(|| b.recv_in_place_timeout(SHORT)).is_timeout());
    let mut buf = [0xAAu8; 16];
    assert_eq!(timed(|| b.recv_bytes_into_timeout(&mut buf, SHORT)), RecvIntoTimeoutError::Timeout);
    assert_eq!(buf, [0xAA; 16]);
    a.reserve(MAX_RECORD).unwrap().commit();
    assert!(matches!(timed(|| a.reserve_timeout(MAX_RECORD, SHORT)), SendTimeoutError::Timeout(())));
    drop(b.recv_in_place_timeout(LIMIT).unwrap());
    a.reserve_timeout(MAX_RECORD, LIMIT).unwrap().commit();
}

#[test]
fn pipe_reserve_forms_refuse_an_in_place_message_over_one_record() {
    let _w = watchdog(WATCH);
    let (a, _b) = Pipe::with_capacity(RING).unwrap();
    assert_too_large(a.try_reserve(MAX_RECORD + 1), || a.reserve_timeout(MAX_RECORD + 1, LIMIT));
}

#[test]
fn pipe_recv_bytes_into_forms_hand_over_a_message_too_long_for_the_buffer() {
    let _w = watchdog(WATCH);
    let (a, b) = Pipe::new().unwrap();
    a.send_bytes(b"hello world").unwrap();
    a.send_bytes(b"goodbye world").unwrap();
    a.send_bytes(b"ok").unwrap();
    let mut buf = [0u8; 4];
    let e = b.try_recv_bytes_into(&mut buf).unwrap_err();
    assert!(e.is_buffer_too_short());
    assert_eq!(e.into_message().unwrap(), b"hello world");
    let e = b.recv_bytes_into_timeout(&mut buf, LIMIT).unwrap_err();
    assert_eq!(e, RecvIntoTimeoutError::BufferTooShort(b"goodbye world".to_vec()));
    assert_eq!(buf, [0; 4], "a message too long leaves the buffer alone");
    assert_eq!(b.recv_bytes_into_timeout(&mut buf, LIMIT), Ok(2));
    assert_eq!(&buf[..2], b"ok");
}

#[test]
fn pipe_new_forms_report_disconnected_after_the_peer_closes() {
    let _serial = serial();
    let _w = watchdog(WATCH);
    let (a, b) = Pipe::new().unwrap();
    a.send_bytes(b"one").unwrap();
    a.send_bytes(b"two").unwrap();
    a.close();
    assert!(matches!(b.try_reserve(1), Err(TrySendError::Disconnected(()))));
    assert!(matches!(b.reserve_timeout(1, LIMIT), Err(SendTimeoutError::Disconnected(()))));
    // What was sent before the close is still there.
    assert_eq!(&*b.try_recv_in_place().unwrap(), b"one");
    let mut buf = [0u8; 8];
    assert_eq!(b.try_recv_bytes_into(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"two");
    let start = Instant::now();
    assert_eq!(b.try_recv_in_place().unwrap_err(), TryRecvError::Disconnected);
    assert_eq!(b.recv_in_place_timeout(LIMIT).unwrap_err(), RecvTimeoutError::Disconnected);
    assert_eq!(b.try_recv_bytes_into(&mut buf), Err(TryRecvIntoError::Disconnected));
    assert_eq!(b.recv_bytes_into_timeout(&mut buf, LIMIT), Err(RecvIntoTimeoutError::Disconnected));
    assert!(start.elapsed() < SLACK, "a closed peer is noticed at once");
}

const PIPE_RING: usize = 16 * 1024;
/// In-place messages each way (at most one record of `PIPE_RING`).
const PIPE_SIZES: [usize; 4] = [1000, 8000, 1, 5000];

/// Takes the parent's four messages, one with each receiving form, and
/// answers each with an in-place form.
fn pipe_echo(conn: Connection) {
    let mut buf = vec![0; PIPE_RING];
    let mut into = |try_now: bool| {
        let n = if try_now {
            retry(|| conn.try_recv_bytes_into(&mut buf), TryRecvIntoError::is_empty)
        } else {
            conn.recv_bytes_into_timeout(&mut buf, LIMIT).unwrap()
        };
        buf[..n].to_vec()
    };
    // One statement each: a view holds the end's receive lock until it
    // drops, so it must not outlive its statement.
    let first = conn.recv_in_place_timeout(LIMIT).unwrap().to_vec();
    let second = into(true);
    let third = retry(|| conn.try_recv_in_place(), TryRecvError::is_empty).to_vec();
    let fourth = into(false);
    let got = [first, second, third, fourth];
    for (i, msg) in got.iter().enumerate() {
        let mut slot = if i % 2 == 0 {
            conn.reserve_timeout(msg.len(), LIMIT).unwrap()
        } else {
            retry(|| conn.try_reserve(msg.len()), TrySendError::is_full)
        };
        slot.copy_from_slice(&answer(msg));
        slot.commit();
    }
}

#[test]
fn pipe_new_forms_move_bytes_between_parent_and_child() {
    let _serial = serial();
    let _w = watchdog(WATCH);
    let (here, there) = Pipe::with_capacity(PIPE_RING).unwrap();
    let mut child = Process::new(pipe_echo, there);
    child.start().unwrap();
    let sent: Vec<Vec<u8>> = PIPE_SIZES.iter().zip(1..).map(|(&len, seed)| pattern(len, seed)).collect();
    for (i, msg) in sent.iter().enumerate() {
        let mut slot = if i % 2 == 0 {
            retry(|| here.try_reserve(msg.len()), TrySendError::is_full)
        } else {
            here.reserve_timeout(msg.len(), LIMIT).unwrap()
        };
        slot.copy_from_slice(msg);
        slot.commit();
    }
    let mut buf = vec![0; PIPE_RING];
    let view = retry(|| here.try_recv_in_place(), TryRecvError::is_empty);
    assert!(view.is_in_place());
    assert!(*view == answer(&sent[0]), "first answer");
    drop(view);
    let n = here.recv_bytes_into_timeout(&mut buf, LIMIT).unwrap();
    assert!(buf[..n] == answer(&sent[1]), "second answer");
    assert!(*here.recv_in_place_timeout(LIMIT).unwrap() == answer(&sent[2]), "third answer");
    let n = retry(|| here.try_recv_bytes_into(&mut buf), TryRecvIntoError::is_empty);
    assert!(buf[..n] == answer(&sent[3]), "fourth answer");
    assert_eq!(join(&mut child), 0);
    // The child's end went with it: the stream has ended.
    assert_eq!(here.try_recv_bytes_into(&mut buf), Err(TryRecvIntoError::Disconnected));
    assert!(matches!(here.try_reserve(1), Err(TrySendError::Disconnected(()))));
}
