//! A property test: random sequences of operations on one `Queue<Vec<u8>>`,
//! in this process, checked against a model.
//!
//! The model is a `VecDeque` of the messages in the queue plus the ring's
//! byte accounting, as the ring's module docs describe it: a record is an
//! 8-byte header and its payload rounded up to 8; a record that does not fit
//! before the end of the buffer is preceded by a padding record up to the
//! end; a message larger than half the ring minus a header is streamed in
//! chunks of that size; a stream cut short by a `put_timeout` stays in the
//! ring as garbage until a get skips it. With one thread and a small ring
//! (4 KiB), the model predicts exactly which puts fit, so `Full` and
//! `Timeout` are checked exactly, and blocking calls are made only where the
//! model says they cannot block (a hang is a failure, caught by a watchdog).

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::{WATCH, watchdog};
use multiproc::Queue;
use multiproc::channel::{
    Failure, Message, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use proptest::prelude::*;

const CAP: u64 = 4096;
const HEADER: u64 = 8;
/// The largest payload of one record; larger messages are streamed.
const MAX_CHUNK: u64 = CAP / 2 - HEADER;
const SHORT: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
enum Op {
    /// `put` of a `Vec<u8>` when the model says it fits; `put_timeout` otherwise.
    Put(usize, u8),
    TryPut(usize, u8),
    PutTimeout(usize, u8),
    /// `put_bytes` when it fits; skipped otherwise.
    PutBytes(usize, u8),
    /// `reserve`, fill, then commit (`true`) or drop; when it fits.
    Reserve(usize, u8, bool),
    /// `get` when it cannot block; `get_timeout` otherwise.
    Get,
    TryGet,
    GetTimeout,
    /// `get_bytes` when it cannot block; skipped otherwise.
    GetBytes,
    /// `get_in_place` when it cannot block; skipped otherwise.
    GetInPlace,
    Close,
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        4 => 1..64usize,
        4 => 64..1500usize,
        // Around the largest record: 2038 encodes to 2040 bytes, one record;
        // 2039 encodes to 2041, streamed.
        3 => 2030..2050usize,
        3 => 2050..10_000usize,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (len(), any::<u8>()).prop_map(|(n, s)| Op::Put(n, s)),
        15 => (len(), any::<u8>()).prop_map(|(n, s)| Op::TryPut(n, s)),
        12 => (len(), any::<u8>()).prop_map(|(n, s)| Op::PutTimeout(n, s)),
        10 => (len(), any::<u8>()).prop_map(|(n, s)| Op::PutBytes(n, s)),
        10 => (len(), any::<u8>(), any::<bool>()).prop_map(|(n, s, c)| Op::Reserve(n, s, c)),
        10 => Just(Op::Get),
        15 => Just(Op::TryGet),
        10 => Just(Op::GetTimeout),
        10 => Just(Op::GetBytes),
        10 => Just(Op::GetInPlace),
        1 => Just(Op::Close),
    ]
}

/// Distinct-looking bytes, so a reordered or truncated chunk shows.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(u32::from(seed) << 24) >> 24) as u8).collect()
}

fn encode(v: &Vec<u8>) -> Vec<u8> {
    let mut raw = Vec::new();
    v.encode(&mut raw).unwrap();
    raw
}

/// What a message occupies in the ring, up to the next message.
struct Segment {
    /// Ring bytes, padding records included.
    bytes: u64,
    /// The message's bytes as stored (`None`: an abandoned stream).
    msg: Option<Vec<u8>>,
}

#[derive(Default)]
struct Model {
    head: u64,
    tail: u64,
    segs: VecDeque<Segment>,
    closed: bool,
}

/// How much of a message fits now.
enum Plan {
    /// All of it, taking this many ring bytes.
    Fits(u64),
    /// Not all: the chunks before the first that does not fit take this
    /// many bytes (a `put_timeout` publishes them, then gives up).
    Partial(u64),
}

impl Model {
    fn used(&self) -> u64 {
        self.tail - self.head
    }

    fn messages(&self) -> usize {
        self.segs.iter().filter(|s| s.msg.is_some()).count()
    }

    fn plan(&self, len: u64) -> Plan {
        let mut tail = self.tail;
        let mut left = len;
        loop {
            let chunk = left.min(MAX_CHUNK);
            let size = HEADER + chunk.next_multiple_of(8);
            let to_end = CAP - tail % CAP;
            let need = if size <= to_end { size } else { to_end + size };
            // The ring also keeps the 8 bytes after a record free (it zeroes
            // them, as the slot of the next header).
            if CAP - (tail - self.head) < need + HEADER {
                return Plan::Partial(tail - self.tail);
            }
            tail += need;
            left -= chunk;
            if left == 0 {
                return Plan::Fits(tail - self.tail);
            }
        }
    }

    fn fits(&self, len: usize) -> bool {
        matches!(self.plan(len as u64), Plan::Fits(_))
    }

    fn push(&mut self, bytes: u64, msg: Option<Vec<u8>>) {
        if bytes > 0 {
            self.tail += bytes;
            self.segs.push_back(Segment { bytes, msg });
        }
    }

    /// The next message, freeing it and any garbage before it; with no
    /// message, frees all garbage.
    fn pop(&mut self) -> Option<Vec<u8>> {
        self.pop_after_garbage().0
    }

    /// As `pop`, and whether an abandoned stream was skipped first.
    fn pop_after_garbage(&mut self) -> (Option<Vec<u8>>, bool) {
        let mut skipped = false;
        while let Some(seg) = self.segs.pop_front() {
            self.head += seg.bytes;
            if seg.msg.is_some() {
                return (seg.msg, skipped);
            }
            skipped = true;
        }
        (None, skipped)
    }

    /// Whether a blocking get would return at once.
    fn get_ready(&self) -> bool {
        self.closed || self.messages() > 0
    }
}

/// What a typed get of stored bytes gives.
fn typed(raw: &[u8]) -> Result<Vec<u8>, RecvTimeoutError> {
    Vec::<u8>::decode(raw).map_err(|e| RecvTimeoutError::Failed(Failure::Decode(e)))
}

/// Compares a typed get with the model's next message (or end).
fn check_get(
    model: &mut Model,
    got: Result<Vec<u8>, RecvTimeoutError>,
    none: RecvTimeoutError,
) -> Result<(), TestCaseError> {
    let want = match model.pop() {
        Some(raw) => typed(&raw),
        None if model.closed => Err(RecvTimeoutError::Closed),
        None => Err(none),
    };
    match (&got, &want) {
        // The decoder's wording is not part of the contract.
        (Err(RecvTimeoutError::Failed(Failure::Decode(_))), Err(RecvTimeoutError::Failed(Failure::Decode(_)))) => {}
        _ => prop_assert_eq!(got, want),
    }
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let q: Queue<Vec<u8>> = Queue::new(CAP as usize).unwrap();
    prop_assert_eq!(q.capacity() as u64, CAP);
    let mut m = Model::default();
    for op in ops {
        match *op {
            Op::Put(n, seed) => {
                let v = data(n, seed);
                let raw = encode(&v);
                if m.closed {
                    prop_assert!(matches!(q.put(v), Err(SendError::Closed(_))));
                } else if let Plan::Fits(bytes) = m.plan(raw.len() as u64) {
                    prop_assert!(q.put(v).is_ok());
                    m.push(bytes, Some(raw));
                } else {
                    put_timeout(&q, &mut m, v)?;
                }
            }
            Op::TryPut(n, seed) => {
                let v = data(n, seed);
                let raw = encode(&v);
                match q.try_put(v.clone()) {
                    Ok(()) => {
                        prop_assert!(!m.closed, "try_put succeeded on a closed queue");
                        let Plan::Fits(bytes) = m.plan(raw.len() as u64) else {
                            return Err(TestCaseError::fail(format!(
                                "try_put of {} bytes fitted; model: full",
                                raw.len()
                            )));
                        };
                        m.push(bytes, Some(raw));
                    }
                    Err(TrySendError::Closed(back)) => {
                        prop_assert!(m.closed);
                        prop_assert_eq!(back, v);
                    }
                    Err(TrySendError::Full(back)) => {
                        prop_assert!(!m.closed, "full instead of closed");
                        prop_assert!(!m.fits(raw.len()), "try_put of {} bytes full; model: fits", raw.len());
                        prop_assert_eq!(back, v);
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("try_put: {e:?}"))),
                }
            }
            Op::PutTimeout(n, seed) => put_timeout(&q, &mut m, data(n, seed))?,
            Op::PutBytes(n, seed) => {
                let b = data(n, seed);
                if m.closed {
                    prop_assert!(matches!(q.put_bytes(&b), Err(SendError::Closed(()))));
                } else if let Plan::Fits(bytes) = m.plan(n as u64) {
                    prop_assert!(q.put_bytes(&b).is_ok());
                    m.push(bytes, Some(b));
                }
            }
            Op::Reserve(n, seed, commit) => {
                if n as u64 > MAX_CHUNK {
                    let too_large = Failure::TooLarge { len: n, max: MAX_CHUNK as usize };
                    match q.reserve(n) {
                        Err(SendError::Failed((), f)) => prop_assert_eq!(f, too_large),
                        Err(e) => return Err(TestCaseError::fail(format!("reserve({n}): {e:?}"))),
                        Ok(_) => return Err(TestCaseError::fail(format!("reserve({n}) above {MAX_CHUNK}"))),
                    }
                } else if m.closed {
                    prop_assert!(matches!(q.reserve(n), Err(SendError::Closed(()))));
                } else if let Plan::Fits(bytes) = m.plan(n as u64) {
                    let b = data(n, seed);
                    let mut slot = q.reserve(n).unwrap();
                    prop_assert_eq!(slot.len(), n);
                    slot.copy_from_slice(&b);
                    if commit {
                        slot.commit();
                        m.push(bytes, Some(b));
                    } else {
                        drop(slot);
                    }
                }
            }
            Op::Get => {
                if m.get_ready() {
                    let got = q.get().map_err(RecvTimeoutError::from);
                    check_get(&mut m, got, RecvTimeoutError::Timeout)?;
                } else {
                    check_get(&mut m, q.get_timeout(SHORT), RecvTimeoutError::Timeout)?;
                }
            }
            Op::TryGet => {
                let got = q.try_get().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Closed => RecvTimeoutError::Closed,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                    TryRecvError::Failed(f) => RecvTimeoutError::Failed(f),
                });
                check_get(&mut m, got, RecvTimeoutError::Timeout)?;
            }
            Op::GetTimeout => check_get(&mut m, q.get_timeout(SHORT), RecvTimeoutError::Timeout)?,
            Op::GetBytes => {
                if m.get_ready() {
                    let got = q.get_bytes();
                    match m.pop() {
                        Some(raw) => prop_assert_eq!(got, Ok(raw)),
                        None => prop_assert_eq!(got, Err(RecvError::Closed)),
                    }
                }
            }
            Op::GetInPlace => {
                if m.get_ready() {
                    match (q.get_in_place(), m.pop_after_garbage()) {
                        (Ok(view), (Some(raw), skipped)) => {
                            prop_assert_eq!(&*view, &raw[..]);
                            // In place when it is one record; but a view that
                            // first met an abandoned stream assembled the next
                            // message the way it assembles streams.
                            prop_assert_eq!(view.is_in_place(), raw.len() as u64 <= MAX_CHUNK && !skipped);
                        }
                        (Err(e), (None, _)) => prop_assert_eq!(e, RecvError::Closed),
                        (got, want) => {
                            let got = got.map(|v| v.to_vec());
                            return Err(TestCaseError::fail(format!("get_in_place: {got:?}, model: {want:?}")));
                        }
                    }
                }
            }
            Op::Close => {
                q.close();
                m.closed = true;
            }
        }
        prop_assert_eq!(q.len(), m.messages(), "len after {:?}", op);
        prop_assert_eq!(q.is_empty(), m.segs.is_empty(), "is_empty after {:?}", op);
        prop_assert_eq!(q.is_full(), CAP - m.used() < 8, "is_full after {:?}", op);
        prop_assert_eq!(q.is_closed(), m.closed);
    }
    // Whatever is left comes out whole and in order, then the end.
    q.close();
    let mut rest = Vec::new();
    let end = loop {
        match q.get_bytes() {
            Ok(raw) => rest.push(raw),
            Err(e) => break e,
        }
    };
    prop_assert_eq!(end, RecvError::Closed);
    let want: Vec<Vec<u8>> = std::iter::from_fn(|| m.pop()).collect();
    prop_assert_eq!(rest, want);
    prop_assert!(q.is_empty());
    Ok(())
}

/// `put_timeout`: all of it when it fits; otherwise a timeout, after
/// publishing the chunks that fitted (a stream the model keeps as garbage).
fn put_timeout(q: &Queue<Vec<u8>>, m: &mut Model, v: Vec<u8>) -> Result<(), TestCaseError> {
    let raw = encode(&v);
    let got = q.put_timeout(v.clone(), SHORT);
    if m.closed {
        prop_assert!(matches!(got, Err(SendTimeoutError::Closed(_))), "{:?}", got);
        return Ok(());
    }
    match m.plan(raw.len() as u64) {
        Plan::Fits(bytes) => {
            prop_assert!(got.is_ok(), "put_timeout of {} bytes: {:?}; model: fits", raw.len(), got);
            m.push(bytes, Some(raw));
        }
        Plan::Partial(bytes) => {
            match got {
                Err(SendTimeoutError::Timeout(back)) => prop_assert_eq!(back, v),
                other => return Err(TestCaseError::fail(format!("put_timeout of {}: {other:?}", raw.len()))),
            }
            m.push(bytes, None);
        }
    }
    Ok(())
}

proptest! {
    // No regression file: a failure prints its minimal case.
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_a_vecdeque_model(ops in proptest::collection::vec(op(), 1..200)) {
        let _watchdog = watchdog(WATCH);
        run(&ops)?;
    }
}

/// A `try_put` of a streamed message that would need padding at the end of
/// the buffer must report `Full`, not start the stream and wait half-way.
#[test]
fn queue_try_put_of_a_streamed_message_never_waits() {
    let _watchdog = watchdog(Duration::from_secs(20));
    let q: Queue<Vec<u8>> = Queue::new(CAP as usize).unwrap();
    // Move the ring's position to 2600 of 4096.
    for n in [1500, 1080] {
        q.put_bytes(&vec![1; n]).unwrap();
        assert_eq!(q.get_bytes().unwrap().len(), n);
    }
    // 3000 bytes: padding of 1496 and a first chunk of 2048 fit, the
    // second chunk of 968 does not.
    assert!(q.try_put(vec![2; 2998]).unwrap_err().is_full());
    assert!(q.is_empty(), "nothing of the refused message was published");
    q.close();
    assert!(matches!(q.try_put(vec![3; 5000]), Err(TrySendError::Closed(_))), "closed comes before full");
}
