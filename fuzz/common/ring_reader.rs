//! A named queue whose segment a hostile peer scribbles on between legal
//! operations.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/ring_reader.rs`) and the
//! corpus replay on stable Rust (`tests/fuzz_corpus.rs`), both of which
//! include this file and `bytes.rs` with `#[path]`.
//!
//! The input picks a queue type and ring size, then a list of [`Op`]s. The
//! queue is created in a private directory; the "peer" writes to its
//! segment file with `pwrite` (the queue's mapping is `MAP_SHARED`, so it
//! sees every write at once): raw bytes anywhere after the 128-byte header,
//! a chosen index or flag of the control block, or a well-formed record
//! header at `head` or `tail`. The other operations are the queue's own,
//! with `try_` or 1 ms timeouts, and blocking calls only where the state
//! read back from the file shows they cannot wait (see [`would_block`]).
//!
//! Contract under test: every operation ends in an error or in data, never
//! a panic, an out-of-bounds access or a hang (libFuzzer's `-timeout`, and
//! a time limit in the replay). Until the first hostile write, the queue
//! must also behave exactly as a FIFO of what was put.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use multiproc::channel::{Failure, Message, RecvTimeoutError, TryRecvError};
use multiproc::{JoinableQueue, Name, Queue, SimpleQueue};

use super::bytes::{Input, Output, pattern};

/// The segment header; the control block follows it.
const DATA: u64 = 128;
/// Offsets in the control block (from [`DATA`]); checked once per process
/// by [`check_layout`], so a change of `RingCtrl` or `QueueCtrl` fails
/// loudly instead of silently fuzzing the wrong bytes.
const SEND_LOCK: u64 = 0;
/// `owner` u64, `prev` u64, `owner_ns`, `prev_ns`, `busy`, `revoke`,
/// `last`, `streak`, `after` (u32 each).
const SEND_BIAS: u64 = 64;
const RECV_LOCK: u64 = 128;
const RECV_BIAS: u64 = 192;
const TAIL: u64 = 256;
const CACHED_HEAD: u64 = 264;
const PUBLISHED: u64 = 272;
const HEAD: u64 = 320;
const DELIVERED: u64 = 328;
const READERS: u64 = 384;
const WRITERS: u64 = 448;
const CLOSED: u64 = 512;
const HOLDERS: u64 = 576;
const TASKS: u64 = 640;

/// The fields [`Op::Poke`] can set: (offset from [`DATA`], width in bytes).
pub const FIELDS: &[(u64, u8)] = &[
    (TAIL, 8),
    (CACHED_HEAD, 8),
    (PUBLISHED, 8),
    (HEAD, 8),
    (DELIVERED, 8),
    (READERS, 4),
    (READERS + 4, 4),
    (WRITERS, 4),
    (WRITERS + 4, 4),
    (CLOSED, 4),
    (HOLDERS, 4),
    (HOLDERS + 4, 4),
    (HOLDERS + 8, 4),
    (TASKS, 8),
    (TASKS + 8, 4),
    (TASKS + 12, 4),
    (SEND_LOCK, 4),
    (RECV_LOCK, 4),
    (SEND_BIAS, 8),
    (SEND_BIAS + 8, 8),
    (SEND_BIAS + 16, 4),
    (SEND_BIAS + 24, 4),
    (SEND_BIAS + 28, 4),
    (SEND_BIAS + 40, 4),
    (RECV_BIAS, 8),
    (RECV_BIAS + 8, 8),
    (RECV_BIAS + 16, 4),
    (RECV_BIAS + 24, 4),
    (RECV_BIAS + 28, 4),
    (RECV_BIAS + 40, 4),
];

/// The longest any call here may wait.
const SHORT: Duration = Duration::from_millis(1);
/// At most this many operations per input.
const MAX_OPS: usize = 64;
/// Record kinds (see `src/channel/ring.rs`).
const KINDS: u8 = 6;

/// How a [`Op::Poke`] changes a field.
#[derive(Debug, Clone, Copy)]
pub enum Poke {
    /// Stores this value (truncated to the field's width).
    Set(u64),
    /// Adds this many 8-byte steps (wrapping).
    Add(i8),
    /// Copies the value of another field (an index into [`FIELDS`]).
    Copy(u8),
}

/// One step of a fuzz input.
#[derive(Debug, Clone)]
pub enum Op {
    /// The peer writes `bytes` at `offset` (modulo the bytes after the
    /// header) of the segment file.
    Write {
        offset: u32,
        bytes: Vec<u8>,
    },
    /// The peer changes a control field (an index into [`FIELDS`]).
    Poke {
        field: u8,
        how: Poke,
    },
    /// The peer writes a record header of `kind` (modulo 6; 0 is "none")
    /// and `len` at `head` (or `tail`) plus `skip` 8-byte steps, with the
    /// right lap number unless `bad_lap`.
    Forge {
        at_tail: bool,
        skip: u8,
        kind: u8,
        len: u16,
        bad_lap: bool,
    },
    TryPut {
        len: u16,
        seed: u8,
    },
    PutTimeout {
        len: u16,
        seed: u8,
    },
    /// `put_bytes` when it cannot wait; `put_timeout` otherwise.
    PutBytes {
        len: u16,
        seed: u8,
    },
    /// `reserve`, fill, then commit or drop, when it cannot wait.
    Reserve {
        len: u16,
        seed: u8,
        commit: bool,
    },
    TryGet,
    GetTimeout,
    /// `get_bytes` when it cannot wait; `get_timeout` otherwise.
    GetBytes,
    /// `get_in_place` when it cannot wait; `try_get` otherwise.
    GetInPlace,
    /// Up to 4 messages from `try_iter`.
    TryIter,
    /// `len`, `is_empty`, `is_full`, `is_closed`, `capacity`.
    Inspect,
    Close,
    /// `task_done` and `join_timeout` (a `JoinableQueue`; else `Inspect`).
    TaskDone,
    /// Opens a second handle by name and takes a message with it.
    Reopen,
}

/// A decoded input: queue type (0 `Queue`, 1 `SimpleQueue`, 2
/// `JoinableQueue`), ring size, operations.
#[derive(Debug, Clone)]
pub struct Program {
    pub flavor: u8,
    pub big: bool,
    pub ops: Vec<Op>,
}

impl Program {
    pub fn decode(data: &[u8]) -> Program {
        let mut inp = Input::new(data);
        let head = inp.u8();
        let mut ops = Vec::new();
        while !inp.is_empty() && ops.len() < MAX_OPS {
            ops.push(Op::decode(&mut inp));
        }
        Program { flavor: head % 3, big: head & 0x80 != 0, ops }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Output::default();
        out.u8(self.flavor | if self.big { 0x80 } else { 0 });
        for op in &self.ops {
            op.encode(&mut out);
        }
        out.0
    }
}

impl Op {
    fn decode(inp: &mut Input<'_>) -> Op {
        match inp.u8() % 17 {
            0 => {
                let offset = inp.u32();
                let n = usize::from(inp.u8() % 64) + 1;
                Op::Write { offset, bytes: inp.bytes(n).to_vec() }
            }
            1 => {
                let field = inp.u8();
                let how = match inp.u8() % 3 {
                    0 => Poke::Set(inp.u64()),
                    1 => Poke::Add(inp.u8() as i8),
                    _ => Poke::Copy(inp.u8()),
                };
                Op::Poke { field, how }
            }
            2 => {
                let flags = inp.u8();
                Op::Forge {
                    at_tail: flags & 1 != 0,
                    bad_lap: flags & 2 != 0,
                    skip: inp.u8(),
                    kind: inp.u8(),
                    len: inp.u16(),
                }
            }
            3 => Op::TryPut { len: inp.u16(), seed: inp.u8() },
            4 => Op::PutTimeout { len: inp.u16(), seed: inp.u8() },
            5 => Op::PutBytes { len: inp.u16(), seed: inp.u8() },
            6 => Op::Reserve { len: inp.u16(), seed: inp.u8(), commit: inp.bool() },
            7 => Op::TryGet,
            8 => Op::GetTimeout,
            9 => Op::GetBytes,
            10 => Op::GetInPlace,
            11 => Op::TryIter,
            12 => Op::Inspect,
            13 => Op::Close,
            14 => Op::TaskDone,
            15 => Op::Reopen,
            _ => Op::Inspect,
        }
    }

    fn encode(&self, out: &mut Output) {
        match self {
            Op::Write { offset, bytes } => {
                assert!((1..=64).contains(&bytes.len()));
                out.u8(0).u32(*offset).u8(bytes.len() as u8 - 1).bytes(bytes);
            }
            Op::Poke { field, how } => {
                out.u8(1).u8(*field);
                match *how {
                    Poke::Set(v) => out.u8(0).u64(v),
                    Poke::Add(d) => out.u8(1).u8(d as u8),
                    Poke::Copy(f) => out.u8(2).u8(f),
                };
            }
            Op::Forge { at_tail, skip, kind, len, bad_lap } => {
                out.u8(2).u8(u8::from(*at_tail) | u8::from(*bad_lap) << 1).u8(*skip).u8(*kind).u16(*len);
            }
            Op::TryPut { len, seed } => {
                out.u8(3).u16(*len).u8(*seed);
            }
            Op::PutTimeout { len, seed } => {
                out.u8(4).u16(*len).u8(*seed);
            }
            Op::PutBytes { len, seed } => {
                out.u8(5).u16(*len).u8(*seed);
            }
            Op::Reserve { len, seed, commit } => {
                out.u8(6).u16(*len).u8(*seed).bool(*commit);
            }
            Op::TryGet => {
                out.u8(7);
            }
            Op::GetTimeout => {
                out.u8(8);
            }
            Op::GetBytes => {
                out.u8(9);
            }
            Op::GetInPlace => {
                out.u8(10);
            }
            Op::TryIter => {
                out.u8(11);
            }
            Op::Inspect => {
                out.u8(12);
            }
            Op::Close => {
                out.u8(13);
            }
            Op::TaskDone => {
                out.u8(14);
            }
            Op::Reopen => {
                out.u8(15);
            }
        }
    }
}

/// The three queue types, for one set of operations.
enum Q {
    Plain(Queue<Vec<u8>>),
    Simple(SimpleQueue<Vec<u8>>),
    Joinable(JoinableQueue<Vec<u8>>),
}

/// Runs `$e` with `$x` bound to whichever queue `$q` holds.
macro_rules! on {
    ($q:expr, $x:ident => $e:expr) => {
        match $q {
            Q::Plain($x) => $e,
            Q::Simple($x) => $e,
            Q::Joinable($x) => $e,
        }
    };
}

impl Q {
    fn create(flavor: u8, name: &Name, cap: usize) -> Q {
        let made = match flavor {
            0 => Queue::create(name, cap).map(Q::Plain),
            1 => SimpleQueue::create(name, cap).map(Q::Simple),
            _ => JoinableQueue::create(name, cap).map(Q::Joinable),
        };
        made.unwrap_or_else(|e| panic!("create the queue: {e}"))
    }

    /// Opens another handle of the same type by name.
    fn reopen(&self, name: &Name) -> Result<Q, multiproc::ShmError> {
        match self {
            Q::Plain(_) => Queue::open(name).map(Q::Plain),
            Q::Simple(_) => SimpleQueue::open(name).map(Q::Simple),
            Q::Joinable(_) => JoinableQueue::open(name).map(Q::Joinable),
        }
    }
}

/// The segment file, as the hostile peer sees it.
struct Peer {
    file: File,
    len: u64,
    /// File offset of the ring buffer.
    ring: u64,
    cap: u64,
}

impl Peer {
    fn read_u64(&self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, DATA + off).expect("read the segment");
        u64::from_le_bytes(b)
    }

    fn read_u32(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.file.read_exact_at(&mut b, DATA + off).expect("read the segment");
        u32::from_le_bytes(b)
    }

    fn write_at(&self, file_offset: u64, bytes: &[u8]) {
        self.file.write_all_at(bytes, file_offset).expect("write the segment");
    }

    fn field(&self, i: u8) -> (u64, u8) {
        FIELDS[usize::from(i) % FIELDS.len()]
    }

    fn get(&self, (off, width): (u64, u8)) -> u64 {
        if width == 8 { self.read_u64(off) } else { u64::from(self.read_u32(off)) }
    }

    fn set(&self, (off, width): (u64, u8), v: u64) {
        self.write_at(DATA + off, &v.to_le_bytes()[..usize::from(width)]);
    }

    /// The ring's header word at position `pos`.
    fn word(&self, pos: u64) -> u64 {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, self.ring + (pos & (self.cap - 1) & !7)).expect("read the ring");
        u64::from_le_bytes(b)
    }

    fn apply(&self, op: &Op) {
        match op {
            Op::Write { offset, bytes } => {
                let room = self.len - DATA;
                let at = DATA + u64::from(*offset) % room;
                let n = (bytes.len() as u64).min(self.len - at) as usize;
                self.write_at(at, &bytes[..n]);
            }
            Op::Poke { field, how } => {
                let f = self.field(*field);
                let v = match *how {
                    Poke::Set(v) => v,
                    Poke::Add(d) => self.get(f).wrapping_add_signed(i64::from(d) * 8),
                    Poke::Copy(other) => self.get(self.field(other)),
                };
                self.set(f, v);
            }
            Op::Forge { at_tail, skip, kind, len, bad_lap } => {
                let base = self.read_u64(if *at_tail { TAIL } else { HEAD });
                let pos = base.wrapping_add(u64::from(*skip) * 8) & !7;
                let lap = if *bad_lap { pos / self.cap + 1 } else { pos / self.cap };
                let word = u64::from(*len) | (u64::from(kind % KINDS) << 32) | ((lap & 0xff_ffff) << 40);
                self.write_at(self.ring + (pos & (self.cap - 1)), &word.to_le_bytes());
            }
            _ => unreachable!("not a peer's write: {op:?}"),
        }
    }

    /// Whether a blocking call could wait: a lock that looks held, or (for
    /// a put of `put` payload bytes, at most one record) a ring without
    /// room, or (for a get) an open ring. Mirrors the checks of
    /// `src/channel/ring.rs` in the order it makes them.
    fn would_block(&self, put: Option<u64>) -> bool {
        // A side is held by a thread in its lock word, or by a bias owner
        // busy inside it (which may look alive, or be in another pid
        // namespace, where it is waited for).
        let biased_busy = |bias: u64| self.read_u64(bias) != 0 && self.read_u32(bias + 24) != 0;
        let locks_free = self.read_u32(SEND_LOCK) == 0
            && self.read_u32(RECV_LOCK) == 0
            && !biased_busy(SEND_BIAS)
            && !biased_busy(RECV_BIAS);
        let closed = self.read_u32(CLOSED) != 0;
        let Some(len) = put else {
            // A get waits in only two places: for data while open, and for
            // the rest of a stream while `send_lock` is held.
            return !(locks_free && closed);
        };
        if !locks_free {
            return true;
        }
        if closed {
            return false;
        }
        let cap = self.cap;
        let tail = self.read_u64(TAIL);
        let size = 8 + len.next_multiple_of(8);
        let to_end = cap - (tail & (cap - 1));
        let need = if size <= to_end { size + 8 } else { to_end + size + 8 };
        let cached = self.read_u64(CACHED_HEAD);
        if tail.wrapping_sub(cached) <= cap && cap - tail.wrapping_sub(cached) >= need {
            return false;
        }
        let used = tail.wrapping_sub(self.read_u64(HEAD));
        if used > cap || used & 7 != 0 {
            return false; // corrupt: an error at once
        }
        cap - used < need
    }
}

/// What a typed get of the stored bytes `raw` gives.
fn typed(raw: &[u8]) -> Result<Vec<u8>, RecvTimeoutError> {
    Vec::<u8>::decode(raw).map_err(|e| RecvTimeoutError::Failed(Failure::Decode(e)))
}

fn encoded(v: &Vec<u8>) -> Vec<u8> {
    let mut raw = Vec::new();
    v.encode(&mut raw).expect("encode a Vec<u8>");
    raw
}

fn from_try(e: TryRecvError) -> RecvTimeoutError {
    match e {
        TryRecvError::Empty => RecvTimeoutError::Timeout,
        TryRecvError::Closed => RecvTimeoutError::Closed,
        TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
        TryRecvError::Failed(f) => RecvTimeoutError::Failed(f),
    }
}

/// The FIFO the queue must match until the peer's first write.
struct Fifo {
    clean: bool,
    msgs: VecDeque<Vec<u8>>,
}

impl Fifo {
    /// Checks a typed get (raw gets are checked as `typed(raw)` too).
    fn got(&mut self, got: Result<Vec<u8>, RecvTimeoutError>, what: &str) {
        if !self.clean {
            return;
        }
        match self.msgs.pop_front() {
            Some(raw) => match (&got, typed(&raw)) {
                (
                    Err(RecvTimeoutError::Failed(Failure::Decode(_))),
                    Err(RecvTimeoutError::Failed(Failure::Decode(_))),
                ) => {}
                (got, want) => assert_eq!(*got, want, "{what} on an untouched queue"),
            },
            None => assert!(
                matches!(got, Err(RecvTimeoutError::Timeout | RecvTimeoutError::Closed)),
                "{what} of an empty untouched queue: {got:?}"
            ),
        }
    }

    fn got_raw(&mut self, got: Result<Vec<u8>, RecvTimeoutError>, what: &str) {
        if !self.clean {
            return;
        }
        match self.msgs.pop_front() {
            Some(raw) => assert_eq!(got, Ok(raw), "{what} on an untouched queue"),
            None => assert_eq!(got, Err(RecvTimeoutError::Closed), "{what} of an empty untouched queue"),
        }
    }
}

/// Checks once per process that the offsets above match the library's
/// layout: one message in, one out, on a fresh queue.
fn check_layout(dir: &Path) {
    static CHECKED: AtomicBool = AtomicBool::new(false);
    if CHECKED.load(Ordering::Relaxed) {
        return;
    }
    let name = Name::new("layout").in_dir(dir);
    let _ = std::fs::remove_file(name.path());
    let q: Queue<Vec<u8>> = Queue::create(&name, 4096).expect("create the layout queue");
    let file = File::open(name.path()).expect("open the layout queue's file");
    let len = file.metadata().expect("stat").len();
    let peer = Peer { file, len, ring: len - 4096, cap: 4096 };
    q.try_put(vec![1, 2, 3]).expect("put");
    assert_eq!((peer.read_u64(TAIL), peer.read_u64(PUBLISHED)), (16, 1), "ring layout changed: tail, published");
    assert_eq!(peer.word(0), 4 | 1 << 32, "ring layout changed: the first record is not at the end of the file");
    q.try_get().expect("get");
    assert_eq!((peer.read_u64(HEAD), peer.read_u64(DELIVERED)), (16, 1), "ring layout changed: head, delivered");
    q.close();
    assert_eq!(peer.read_u32(CLOSED), 1, "ring layout changed: closed");
    drop(q);
    std::fs::remove_file(name.path()).expect("remove the layout queue");
    CHECKED.store(true, Ordering::Relaxed);
}

/// Runs one input in `dir` (which it leaves empty).
pub fn run(dir: &Path, data: &[u8]) {
    check_layout(dir);
    let program = Program::decode(data);
    let name = Name::new("ring").in_dir(dir);
    let _ = std::fs::remove_file(name.path());
    let cap = if program.big { 8192 } else { 4096 };
    let q = Q::create(program.flavor, &name, cap);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(name.path()).expect("open the segment file");
    let len = file.metadata().expect("stat the segment file").len();
    let cap = on!(&q, x => x.capacity()) as u64;
    let peer = Peer { file, len, ring: len - cap, cap };
    let max_chunk = cap / 2 - 8;
    let mut fifo = Fifo { clean: true, msgs: VecDeque::new() };
    for op in &program.ops {
        step(&q, &name, &peer, &mut fifo, op, max_chunk);
    }
    drop(q);
    std::fs::remove_file(name.path()).expect("remove the segment file");
}

fn step(q: &Q, name: &Name, peer: &Peer, fifo: &mut Fifo, op: &Op, max_chunk: u64) {
    let msg_len = |len: &u16| usize::from(*len) % (3 * peer.cap as usize + 1);
    match op {
        Op::Write { .. } | Op::Poke { .. } | Op::Forge { .. } => {
            peer.apply(op);
            fifo.clean = false;
        }
        Op::TryPut { len, seed } => {
            let v = pattern(msg_len(len), *seed);
            let raw = encoded(&v);
            if on!(q, x => x.try_put(v)).is_ok() {
                fifo.msgs.push_back(raw);
            }
        }
        Op::PutTimeout { len, seed } => {
            let v = pattern(msg_len(len), *seed);
            let raw = encoded(&v);
            if on!(q, x => x.put_timeout(v, SHORT)).is_ok() {
                fifo.msgs.push_back(raw);
            }
        }
        Op::PutBytes { len, seed } => {
            let b = pattern(msg_len(len), *seed);
            if b.len() as u64 <= max_chunk && !peer.would_block(Some(b.len() as u64)) {
                if on!(q, x => x.put_bytes(&b)).is_ok() {
                    fifo.msgs.push_back(b);
                }
            } else {
                let raw = encoded(&b);
                if on!(q, x => x.put_timeout(b, SHORT)).is_ok() {
                    fifo.msgs.push_back(raw);
                }
            }
        }
        Op::Reserve { len, seed, commit } => {
            let n = msg_len(len);
            if n as u64 > max_chunk || !peer.would_block(Some(n as u64)) {
                match on!(q, x => x.reserve(n)) {
                    Ok(mut slot) => {
                        assert_eq!(slot.len(), n, "reserve({n}) gave a slot of {}", slot.len());
                        let b = pattern(n, *seed);
                        slot.copy_from_slice(&b);
                        if *commit {
                            slot.commit();
                            fifo.msgs.push_back(b);
                        }
                    }
                    Err(e) => assert!(!fifo.clean || n as u64 > max_chunk || e.is_closed(), "reserve({n}): {e:?}"),
                }
            }
        }
        Op::TryGet => fifo.got(on!(q, x => x.try_get()).map_err(from_try), "try_get"),
        Op::GetTimeout => fifo.got(on!(q, x => x.get_timeout(SHORT)), "get_timeout"),
        Op::GetBytes => {
            if peer.would_block(None) {
                fifo.got(on!(q, x => x.get_timeout(SHORT)), "get_timeout");
            } else {
                fifo.got_raw(on!(q, x => x.get_bytes()).map_err(RecvTimeoutError::from), "get_bytes");
            }
        }
        Op::GetInPlace => {
            if peer.would_block(None) {
                fifo.got(on!(q, x => x.try_get()).map_err(from_try), "try_get");
            } else {
                let got = on!(q, x => x.get_in_place().map(|v| {
                    assert!(v.len() as u64 <= peer.cap || !v.is_in_place(), "an in-place view larger than the ring");
                    v.to_vec()
                }));
                fifo.got_raw(got.map_err(RecvTimeoutError::from), "get_in_place");
            }
        }
        Op::TryIter => {
            let got = on!(q, x => x.try_iter().take(4).collect::<Vec<_>>());
            let n = got.len();
            for v in got {
                fifo.got(Ok(v), "try_iter");
            }
            if n < 4 && fifo.clean {
                // It ends at the first error: an empty queue, or a message
                // that does not decode as `Vec<u8>` (which is consumed).
                if let Some(raw) = fifo.msgs.pop_front() {
                    assert!(typed(&raw).is_err(), "try_iter ended before a message that decodes");
                }
            }
        }
        Op::Inspect => inspect(q, fifo),
        Op::Close => on!(q, x => x.close()),
        Op::TaskDone => match q {
            Q::Joinable(j) => {
                let _ = j.task_done();
                let _ = j.join_timeout(SHORT);
            }
            _ => inspect(q, fifo),
        },
        Op::Reopen => match q.reopen(name) {
            Ok(other) => fifo.got(on!(&other, x => x.try_get()).map_err(from_try), "try_get (second handle)"),
            // The peer may have broken what an open checks.
            Err(e) => assert!(!fifo.clean, "reopen of an untouched queue: {e}"),
        },
    }
}

fn inspect(q: &Q, fifo: &Fifo) {
    let (len, empty, full, closed, cap) =
        on!(q, x => (x.len(), x.is_empty(), x.is_full(), x.is_closed(), x.capacity()));
    let _ = std::hint::black_box((full, closed, cap));
    if fifo.clean {
        assert_eq!(len, fifo.msgs.len(), "len of an untouched queue");
        if len > 0 {
            assert!(!empty, "is_empty with {len} messages");
        }
    }
}
