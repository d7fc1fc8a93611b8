//! Differential test: operation sequences on one `Queue` or `Pipe`, in one
//! thread, against an in-memory model.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/channel_model.rs`), the
//! corpus replay on stable Rust (`tests/fuzz_corpus.rs`) and the proptest
//! in `tests/channel_model.rs`, which makes [`Program`]s itself and runs
//! them with [`run_program`]; all three include this file and `bytes.rs`
//! with `#[path]`.
//!
//! The model, per ring: a `VecDeque` of the messages in it, as stored bytes,
//! plus the ring's byte accounting from `src/channel/ring.rs` — a record is
//! an 8-byte header and its payload rounded up to 8; a record that does not
//! fit before the end of the buffer is preceded by a padding record up to
//! the end; the 8 bytes after the last record stay free; a message larger
//! than half the ring minus a header is streamed in chunks of that size; a
//! stream cut short by a `_timeout` send stays in the ring as garbage until
//! a receive skips it. A pipe's ring also has a mailbox
//! (`src/channel/mail.rs`): a message of at most 16 stored bytes goes there
//! instead when the slot is free and the receiver last found the ring empty
//! at the current `tail` (every `poll` below looks, so: when the ring was
//! empty after the previous op), and is received before anything in the
//! ring. With one thread the model predicts every outcome
//! exactly: `Full`, `Empty`, `Timeout`, `Closed` and `Disconnected` (a pipe
//! end dropped), the bytes of every message, the message a failed send
//! hands back, `len`, `is_empty`, `is_full` and `poll`. Blocking calls are
//! made only where the model says they return at once; elsewhere their
//! `try_` or 1 ms `_timeout` twin runs.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use multiproc::channel::{
    CanRecv, CanSend, Connection, Failure, Message, RecvError, RecvIntoError, RecvOnly, RecvTimeoutError, SendError,
    SendOnly, SendTimeoutError, TryRecvError, TrySendError,
};
use multiproc::{Name, Pipe, Queue};

use super::bytes::{Input, Output, pattern};

const HEADER: u64 = 8;
/// `multiproc::channel::mail::MAIL_MAX`.
const MAIL_MAX: usize = 16;
const SHORT: Duration = Duration::from_millis(1);
/// At most this many operations per input.
const MAX_OPS: usize = 96;

/// Which channel an input drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chan {
    /// `Queue::new(4096)`, or 8192 with `big`.
    Queue,
    /// `Queue::create` in a private directory.
    NamedQueue,
    /// `Pipe::with_capacity(4096)` (8192 with `big`), or `Pipe::new()`
    /// (1 MiB) with `default`.
    Pipe,
    /// `Pipe::one_way_with_capacity`, or `Pipe::one_way()`.
    OneWay,
}

/// One step. `side` picks the sending end of a duplex pipe (the receiver
/// is the other end); it is ignored for queues and one-way pipes. `len` is
/// a length code, see [`msg_len`].
#[derive(Debug, Clone)]
pub enum Op {
    /// Typed send: blocking where the model says it returns at once,
    /// `_timeout` elsewhere.
    Send {
        side: bool,
        len: u16,
        seed: u8,
    },
    TrySend {
        side: bool,
        len: u16,
        seed: u8,
    },
    SendTimeout {
        side: bool,
        len: u16,
        seed: u8,
    },
    /// Raw bytes: `put_bytes`/`send_bytes` where they return at once.
    SendBytes {
        side: bool,
        len: u16,
        seed: u8,
    },
    /// `try_send_bytes` (pipe); a queue has none and does `SendBytes`.
    TrySendBytes {
        side: bool,
        len: u16,
        seed: u8,
    },
    /// `send_bytes_timeout` (pipe); a queue does `SendTimeout`.
    SendBytesTimeout {
        side: bool,
        len: u16,
        seed: u8,
    },
    /// `reserve`, fill, then commit or drop, where it returns at once.
    Reserve {
        side: bool,
        len: u16,
        seed: u8,
        commit: bool,
    },
    /// Typed receive: blocking where it returns at once, else `_timeout`.
    Recv {
        side: bool,
    },
    TryRecv {
        side: bool,
    },
    RecvTimeout {
        side: bool,
    },
    /// `get_bytes`/`recv_bytes` where they return at once.
    RecvBytes {
        side: bool,
    },
    /// `try_recv_bytes` (pipe); a queue does `TryRecv`.
    TryRecvBytes {
        side: bool,
    },
    /// `recv_bytes_timeout` (pipe); a queue does `RecvTimeout`.
    RecvBytesTimeout {
        side: bool,
    },
    /// `recv_bytes_into` a buffer of `buf` bytes (pipe), where it returns
    /// at once; a queue does `RecvInPlace`.
    RecvInto {
        side: bool,
        buf: u16,
    },
    /// `get_in_place`/`recv_in_place`, where it returns at once.
    RecvInPlace {
        side: bool,
    },
    /// Queue: `close()`. Pipe: drops the end `side` (for a one-way pipe:
    /// `side` drops the sender, else the receiver).
    Close {
        side: bool,
    },
}

/// A decoded input.
#[derive(Debug, Clone)]
pub struct Program {
    pub chan: Chan,
    pub big: bool,
    pub default: bool,
    pub ops: Vec<Op>,
}

impl Program {
    pub fn decode(data: &[u8]) -> Program {
        let mut inp = Input::new(data);
        let head = inp.u8();
        let chan = [Chan::Queue, Chan::NamedQueue, Chan::Pipe, Chan::OneWay][usize::from(head & 3)];
        let mut ops = Vec::new();
        while !inp.is_empty() && ops.len() < MAX_OPS {
            ops.push(Op::decode(&mut inp));
        }
        // The 1 MiB default rings only one time in eight: they cost more to
        // make, and are full far less often.
        Program { chan, big: head & 4 != 0, default: head & 0x38 == 0x38, ops }
    }

    pub fn encode(&self) -> Vec<u8> {
        let chan = match self.chan {
            Chan::Queue => 0,
            Chan::NamedQueue => 1,
            Chan::Pipe => 2,
            Chan::OneWay => 3,
        };
        let mut out = Output::default();
        out.u8(chan | if self.big { 4 } else { 0 } | if self.default { 0x38 } else { 0 });
        for op in &self.ops {
            op.encode(&mut out);
        }
        out.0
    }
}

impl Op {
    fn decode(inp: &mut Input<'_>) -> Op {
        let tag = inp.u8();
        let side = tag & 0x80 != 0;
        match (tag & 0x7f) % 16 {
            0 => Op::Send { side, len: inp.u16(), seed: inp.u8() },
            1 => Op::TrySend { side, len: inp.u16(), seed: inp.u8() },
            2 => Op::SendTimeout { side, len: inp.u16(), seed: inp.u8() },
            3 => Op::SendBytes { side, len: inp.u16(), seed: inp.u8() },
            4 => Op::TrySendBytes { side, len: inp.u16(), seed: inp.u8() },
            5 => Op::SendBytesTimeout { side, len: inp.u16(), seed: inp.u8() },
            6 => Op::Reserve { side, len: inp.u16(), seed: inp.u8(), commit: inp.bool() },
            7 => Op::Recv { side },
            8 => Op::TryRecv { side },
            9 => Op::RecvTimeout { side },
            10 => Op::RecvBytes { side },
            11 => Op::TryRecvBytes { side },
            12 => Op::RecvBytesTimeout { side },
            13 => Op::RecvInto { side, buf: inp.u16() },
            14 => Op::RecvInPlace { side },
            // Rarer than the others: after it, half the operations are moot.
            _ if tag & 0x40 != 0 => Op::Close { side },
            _ => Op::TryRecv { side },
        }
    }

    fn encode(&self, out: &mut Output) {
        let tag = |n: u8, side: bool| n | if side { 0x80 } else { 0 };
        match *self {
            Op::Send { side, len, seed } => out.u8(tag(0, side)).u16(len).u8(seed),
            Op::TrySend { side, len, seed } => out.u8(tag(1, side)).u16(len).u8(seed),
            Op::SendTimeout { side, len, seed } => out.u8(tag(2, side)).u16(len).u8(seed),
            Op::SendBytes { side, len, seed } => out.u8(tag(3, side)).u16(len).u8(seed),
            Op::TrySendBytes { side, len, seed } => out.u8(tag(4, side)).u16(len).u8(seed),
            Op::SendBytesTimeout { side, len, seed } => out.u8(tag(5, side)).u16(len).u8(seed),
            Op::Reserve { side, len, seed, commit } => out.u8(tag(6, side)).u16(len).u8(seed).bool(commit),
            Op::Recv { side } => out.u8(tag(7, side)),
            Op::TryRecv { side } => out.u8(tag(8, side)),
            Op::RecvTimeout { side } => out.u8(tag(9, side)),
            Op::RecvBytes { side } => out.u8(tag(10, side)),
            Op::TryRecvBytes { side } => out.u8(tag(11, side)),
            Op::RecvBytesTimeout { side } => out.u8(tag(12, side)),
            Op::RecvInto { side, buf } => out.u8(tag(13, side)).u16(buf),
            Op::RecvInPlace { side } => out.u8(tag(14, side)),
            Op::Close { side } => out.u8(tag(15 | 0x40, side)),
        };
    }
}

/// The payload length a length code means for a ring of `cap` bytes: the
/// top two bits pick a range — small (0..64), medium (0..2048), around the
/// largest record (so that the encoded length falls on either side of it),
/// or any length below 16 KiB (streamed in a small ring).
pub fn msg_len(code: u16, cap: u64) -> usize {
    let v = usize::from(code & 0x3fff);
    let max_chunk = (cap / 2 - HEADER) as usize;
    match code >> 14 {
        0 => v % 64,
        1 => v % 2048,
        2 => max_chunk - 16 + v % 32,
        _ => v,
    }
}

/// The length code that [`msg_len`] reads as exactly `len` (below 16 KiB).
pub fn len_code(len: usize) -> u16 {
    assert!(len < 0x4000, "a length code holds at most 16383");
    0xc000 | len as u16
}

/// What a message occupies in a ring, up to the next message.
struct Seg {
    /// Ring bytes, padding records included.
    bytes: u64,
    /// The message as stored (`None`: an abandoned stream).
    msg: Option<Vec<u8>>,
}

/// How much of a message fits now.
enum Plan {
    /// All of it, taking this many ring bytes.
    Fits(u64),
    /// Not all: the chunks before the first that does not fit take this
    /// many bytes (a `_timeout` send publishes them, then gives up).
    Partial(u64),
}

/// One ring (one direction of a pipe) and who is left at its ends.
struct Ring {
    cap: u64,
    head: u64,
    tail: u64,
    segs: VecDeque<Seg>,
    /// Queue: `close()` was called.
    closed: bool,
    /// Pipe: the sending end was dropped.
    sender_gone: bool,
    /// Pipe: the receiving end was dropped.
    receiver_gone: bool,
    /// Pipe: the ring has a mailbox.
    mailbox: bool,
    /// The message in the mailbox.
    mail: Option<Vec<u8>>,
    /// The `head` at which the receiver last found nothing.
    idle: u64,
}

impl Ring {
    fn new(cap: u64) -> Ring {
        Ring {
            cap,
            head: 0,
            tail: 0,
            segs: VecDeque::new(),
            closed: false,
            sender_gone: false,
            receiver_gone: false,
            mailbox: false,
            mail: None,
            idle: 0,
        }
    }

    /// Whether a send of `len` stored bytes goes into the mailbox.
    fn to_mail(&self, len: usize) -> bool {
        self.mailbox && len <= MAIL_MAX && self.mail.is_none() && self.idle == self.tail
    }

    /// What `poll` on the receiving end answers; the look tells the sender,
    /// with nothing at `head`, that the ring is drained.
    fn poll(&mut self) -> bool {
        let data = !self.segs.is_empty() || self.mail.is_some();
        if !data {
            self.idle = self.head;
        }
        data || self.sender_gone
    }

    fn max_chunk(&self) -> u64 {
        self.cap / 2 - HEADER
    }

    fn messages(&self) -> usize {
        self.segs.iter().filter(|s| s.msg.is_some()).count() + usize::from(self.mail.is_some())
    }

    fn plan(&self, len: u64) -> Plan {
        let mut tail = self.tail;
        let mut left = len;
        loop {
            let chunk = left.min(self.max_chunk());
            let size = HEADER + chunk.next_multiple_of(8);
            let to_end = self.cap - tail % self.cap;
            let need = if size <= to_end { size } else { to_end + size };
            if self.cap - (tail - self.head) < need + HEADER {
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
            self.segs.push_back(Seg { bytes, msg });
        }
    }

    /// The next message, freeing it and any garbage before it (with no
    /// message, all garbage), and whether it cannot be read in place:
    /// garbage was skipped first, or it was in the mailbox.
    fn pop(&mut self) -> (Option<Vec<u8>>, bool) {
        if let Some(mail) = self.mail.take() {
            return (Some(mail), true);
        }
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

    fn is_full(&self) -> bool {
        self.cap - (self.tail - self.head) < 8
    }

    /// What a send finds before it looks at the room: the end of the
    /// channel, if any.
    fn send_stop(&self) -> Option<Sent> {
        if self.receiver_gone {
            Some(Sent::Disconnected)
        } else if self.closed {
            Some(Sent::Closed)
        } else {
            None
        }
    }

    /// Whether a blocking send of `len` stored bytes returns at once.
    fn send_ready(&self, len: usize) -> bool {
        self.send_stop().is_some() || self.to_mail(len) || self.fits(len)
    }

    /// Whether a blocking receive returns at once.
    fn recv_ready(&self) -> bool {
        self.messages() > 0 || self.closed || (self.sender_gone && self.segs.is_empty())
    }

    /// What a receive that finds no message reports (after freeing garbage).
    fn recv_end(&self, nothing: Got) -> Got {
        if self.closed {
            Got::Closed
        } else if self.sender_gone {
            Got::Disconnected
        } else {
            nothing
        }
    }

    /// The model's side of a send of `raw` (stored bytes): `partial` for a
    /// `_timeout` send, which leaves the chunks that fitted.
    fn send(&mut self, raw: Vec<u8>, partial: bool) -> Sent {
        if let Some(stop) = self.send_stop() {
            return stop;
        }
        if self.to_mail(raw.len()) {
            self.mail = Some(raw);
            return Sent::Ok;
        }
        match self.plan(raw.len() as u64) {
            Plan::Fits(bytes) => {
                self.push(bytes, Some(raw));
                Sent::Ok
            }
            Plan::Partial(bytes) => {
                if partial {
                    self.push(bytes, None);
                }
                Sent::Full
            }
        }
    }

    /// The model's side of a typed receive.
    fn recv_typed(&mut self, nothing: Got) -> Got {
        match self.pop().0 {
            Some(raw) => typed(&raw),
            None => self.recv_end(nothing),
        }
    }

    /// The model's side of a raw receive.
    fn recv_raw(&mut self, nothing: Got) -> Got {
        match self.pop().0 {
            Some(raw) => Got::Msg(raw),
            None => self.recv_end(nothing),
        }
    }
}

/// A send's outcome, whatever the call (`Full` stands for `Full` and
/// `Timeout`).
#[derive(Debug, PartialEq)]
enum Sent {
    Ok,
    Full,
    Closed,
    Disconnected,
    TooLarge { len: usize, max: usize },
    Other(String),
}

/// A receive's outcome, whatever the call (`Empty` stands for `Empty` and
/// `Timeout`).
#[derive(Debug, PartialEq)]
enum Got {
    Msg(Vec<u8>),
    Decode,
    Empty,
    Closed,
    Disconnected,
    TooShort(Vec<u8>),
    Other(String),
}

fn failed_send(f: Failure) -> Sent {
    match f {
        Failure::TooLarge { len, max } => Sent::TooLarge { len, max },
        other => Sent::Other(format!("{other:?}")),
    }
}

/// A failed send's outcome, after checking that the message it handed back
/// is the one it was `given` (a queue's typed sends hand back the value;
/// the others `()`).
fn handed_back<T: PartialEq + Debug>(back: T, given: &T, outcome: Sent) -> Sent {
    assert!(back == *given, "{outcome:?}: the message handed back is not the one given");
    outcome
}

fn sent<T: PartialEq + Debug>(r: Result<(), SendError<T>>, given: &T) -> Sent {
    match r {
        Ok(()) => Sent::Ok,
        Err(SendError::Closed(t)) => handed_back(t, given, Sent::Closed),
        Err(SendError::Disconnected(t)) => handed_back(t, given, Sent::Disconnected),
        Err(SendError::Failed(t, f)) => handed_back(t, given, failed_send(f)),
    }
}

fn try_sent<T: PartialEq + Debug>(r: Result<(), TrySendError<T>>, given: &T) -> Sent {
    match r {
        Ok(()) => Sent::Ok,
        Err(TrySendError::Full(t)) => handed_back(t, given, Sent::Full),
        Err(TrySendError::Closed(t)) => handed_back(t, given, Sent::Closed),
        Err(TrySendError::Disconnected(t)) => handed_back(t, given, Sent::Disconnected),
        Err(TrySendError::Failed(t, f)) => handed_back(t, given, failed_send(f)),
    }
}

fn timed_sent<T: PartialEq + Debug>(r: Result<(), SendTimeoutError<T>>, given: &T) -> Sent {
    match r {
        Ok(()) => Sent::Ok,
        Err(SendTimeoutError::Timeout(t)) => handed_back(t, given, Sent::Full),
        Err(SendTimeoutError::Closed(t)) => handed_back(t, given, Sent::Closed),
        Err(SendTimeoutError::Disconnected(t)) => handed_back(t, given, Sent::Disconnected),
        Err(SendTimeoutError::Failed(t, f)) => handed_back(t, given, failed_send(f)),
    }
}

fn failed_recv(f: Failure) -> Got {
    match f {
        Failure::Decode(_) => Got::Decode,
        other => Got::Other(format!("{other:?}")),
    }
}

fn got<T: Into<Vec<u8>>>(r: Result<T, RecvError>) -> Got {
    match r {
        Ok(v) => Got::Msg(v.into()),
        Err(RecvError::Closed) => Got::Closed,
        Err(RecvError::Disconnected) => Got::Disconnected,
        Err(RecvError::Failed(f)) => failed_recv(f),
    }
}

fn try_got(r: Result<Vec<u8>, TryRecvError>) -> Got {
    match r {
        Ok(v) => Got::Msg(v),
        Err(TryRecvError::Empty) => Got::Empty,
        Err(TryRecvError::Closed) => Got::Closed,
        Err(TryRecvError::Disconnected) => Got::Disconnected,
        Err(TryRecvError::Failed(f)) => failed_recv(f),
    }
}

fn timed_got(r: Result<Vec<u8>, RecvTimeoutError>) -> Got {
    match r {
        Ok(v) => Got::Msg(v),
        Err(RecvTimeoutError::Timeout) => Got::Empty,
        Err(RecvTimeoutError::Closed) => Got::Closed,
        Err(RecvTimeoutError::Disconnected) => Got::Disconnected,
        Err(RecvTimeoutError::Failed(f)) => failed_recv(f),
    }
}

fn into_got(r: Result<usize, RecvIntoError>, buf: &[u8]) -> Got {
    match r {
        Ok(n) => Got::Msg(buf[..n].to_vec()),
        Err(RecvIntoError::BufferTooShort(m)) => Got::TooShort(m),
        Err(RecvIntoError::Closed) => Got::Closed,
        Err(RecvIntoError::Disconnected) => Got::Disconnected,
        Err(RecvIntoError::Failed(f)) => failed_recv(f),
    }
}

/// What a typed receive of the stored bytes `raw` gives.
fn typed(raw: &[u8]) -> Got {
    match Vec::<u8>::decode(raw) {
        Ok(v) => Got::Msg(v),
        Err(_) => Got::Decode,
    }
}

fn encoded(v: &Vec<u8>) -> Vec<u8> {
    let mut raw = Vec::new();
    v.encode(&mut raw).expect("encode a Vec<u8>");
    raw
}

/// The channel under test.
enum Ends {
    Queue(Queue<Vec<u8>>),
    /// End 0 sends on ring 0 and receives on ring 1; end 1 the reverse.
    Pipe([Option<Connection>; 2]),
    /// Ring 0 from the sender to the receiver.
    OneWay(Option<Connection<SendOnly>>, Option<Connection<RecvOnly>>),
}

/// Runs one input; a named queue lives in `dir`, which it leaves empty.
pub fn run(dir: &Path, data: &[u8]) {
    run_program(dir, &Program::decode(data));
}

/// Runs `p` against the model, panicking at the first difference (the
/// proptest in `tests/channel_model.rs` makes programs directly, with no
/// limit on their length); a named queue lives in `dir`, which it leaves
/// empty.
pub fn run_program(dir: &Path, p: &Program) {
    let cap = if p.big { 8192 } else { 4096 };
    let name = Name::new("chan").in_dir(dir);
    let mut ends = match (p.chan, p.default) {
        (Chan::Queue, _) => Ends::Queue(Queue::new(cap).expect("Queue::new")),
        (Chan::NamedQueue, _) => {
            let _ = std::fs::remove_file(name.path());
            Ends::Queue(Queue::create(&name, cap).expect("Queue::create"))
        }
        (Chan::Pipe, false) => {
            let (a, b) = Pipe::with_capacity(cap).expect("Pipe::with_capacity");
            Ends::Pipe([Some(a), Some(b)])
        }
        (Chan::Pipe, true) => {
            let (a, b) = Pipe::new().expect("Pipe::new");
            Ends::Pipe([Some(a), Some(b)])
        }
        (Chan::OneWay, false) => {
            let (rx, tx) = Pipe::one_way_with_capacity(cap).expect("Pipe::one_way_with_capacity");
            Ends::OneWay(Some(tx), Some(rx))
        }
        (Chan::OneWay, true) => {
            let (rx, tx) = Pipe::one_way().expect("Pipe::one_way");
            Ends::OneWay(Some(tx), Some(rx))
        }
    };
    let cap = match &ends {
        Ends::Queue(q) => q.capacity(),
        Ends::Pipe(e) => e[0].as_ref().map_or(0, Connection::capacity),
        Ends::OneWay(tx, _) => tx.as_ref().map_or(0, Connection::capacity),
    } as u64;
    let default = p.default && matches!(p.chan, Chan::Pipe | Chan::OneWay);
    let expected_cap = if default {
        1 << 20
    } else if p.big {
        8192
    } else {
        4096
    };
    assert_eq!(cap, expected_cap, "capacity of {:?}", p.chan);
    let mut rings = [Ring::new(cap), Ring::new(cap)];
    for ring in &mut rings {
        ring.mailbox = !matches!(ends, Ends::Queue(_));
    }
    for (i, op) in p.ops.iter().enumerate() {
        step(&mut ends, &mut rings, op, i);
        check_state(&ends, &mut rings, op);
    }
    drain(ends, rings);
    if p.chan == Chan::NamedQueue {
        std::fs::remove_file(name.path()).expect("remove the named queue");
    }
}

/// The ring an op with `side` sends on (and receives from at the other end).
fn ring_of(ends: &Ends, side: bool) -> usize {
    match ends {
        Ends::Pipe(_) => usize::from(side),
        _ => 0,
    }
}

fn step(ends: &mut Ends, rings: &mut [Ring; 2], op: &Op, i: usize) {
    let what = format!("op {i}: {op:?}");
    match *op {
        Op::Send { side, len, seed }
        | Op::TrySend { side, len, seed }
        | Op::SendTimeout { side, len, seed }
        | Op::SendBytes { side, len, seed }
        | Op::TrySendBytes { side, len, seed }
        | Op::SendBytesTimeout { side, len, seed } => {
            let r = ring_of(ends, side);
            let ring = &mut rings[r];
            let v = pattern(msg_len(len, ring.cap), seed);
            let raw_send = matches!(op, Op::SendBytes { .. } | Op::TrySendBytes { .. } | Op::SendBytesTimeout { .. });
            let stored = if raw_send { v.clone() } else { encoded(&v) };
            let Some(result) = send(ends, op, side, &v, ring.send_ready(stored.len())) else { return };
            // A queue has no `try_` or `_timeout` raw send: the op fell back.
            let fell_back = matches!(ends, Ends::Queue(_)) && raw_send && !matches!(op, Op::SendBytes { .. });
            let stored = if fell_back && matches!(op, Op::SendBytesTimeout { .. }) { encoded(&v) } else { stored };
            if let Some((outcome, partial)) = result {
                let want = ring.send(stored, partial);
                assert_eq!(outcome, want, "{what}");
            }
        }
        Op::Reserve { side, len, seed, commit } => {
            let r = ring_of(ends, side);
            let ring = &mut rings[r];
            let n = msg_len(len, ring.cap);
            let max = ring.max_chunk() as usize;
            let too_large = Sent::TooLarge { len: n, max };
            let pipe = !matches!(ends, Ends::Queue(_));
            // Queue: too large, then closed. Pipe: a gone peer first.
            let want_now = match (ring.send_stop(), n > max) {
                (Some(Sent::Disconnected), _) if pipe => Some(Sent::Disconnected),
                (_, true) => Some(too_large),
                (Some(stop), false) => Some(stop),
                (None, false) if ring.fits(n) => None,
                // It would wait.
                (None, false) => return,
            };
            let b = pattern(n, seed);
            let Some(got) = reserve(ends, side, n, &b, commit) else { return };
            match want_now {
                Some(want) => assert_eq!(got, want, "{what}"),
                None => {
                    assert_eq!(got, Sent::Ok, "{what}");
                    if commit {
                        let Plan::Fits(bytes) = ring.plan(n as u64) else { unreachable!() };
                        ring.push(bytes, Some(b));
                    }
                }
            }
        }
        Op::Recv { side }
        | Op::TryRecv { side }
        | Op::RecvTimeout { side }
        | Op::RecvBytes { side }
        | Op::TryRecvBytes { side }
        | Op::RecvBytesTimeout { side }
        | Op::RecvInto { side, .. }
        | Op::RecvInPlace { side } => {
            let r = ring_of(ends, side);
            let ring = &mut rings[r];
            let ready = ring.recv_ready();
            if ring.receiver_gone {
                return;
            }
            recv(ends, ring, op, side, ready, &what);
        }
        Op::Close { side } => match ends {
            Ends::Queue(q) => {
                q.close();
                rings[0].closed = true;
            }
            Ends::Pipe(e) => {
                let end = usize::from(side);
                if e[end].take().is_some() {
                    // End `end` sent on ring `end` and received on the other.
                    rings[end].sender_gone = true;
                    rings[1 - end].receiver_gone = true;
                }
            }
            Ends::OneWay(tx, rx) => {
                if side {
                    if tx.take().is_some() {
                        rings[0].sender_gone = true;
                    }
                } else if rx.take().is_some() {
                    rings[0].receiver_gone = true;
                }
            }
        },
    }
}

/// Runs a send op on the channel: `None` when its sending end is gone,
/// else `Some(None)` when it was skipped (it could wait) and
/// `Some(Some((outcome, partial)))` when it ran, `partial` meaning a
/// `_timeout` send that may leave part of a stream behind.
#[allow(clippy::option_option)]
fn send(ends: &Ends, op: &Op, side: bool, v: &Vec<u8>, ready: bool) -> Option<Option<(Sent, bool)>> {
    match ends {
        Ends::Queue(q) => Some(Some(match op {
            Op::Send { .. } if ready => (sent(q.put(v.clone()), v), false),
            Op::Send { .. } | Op::SendTimeout { .. } | Op::SendBytesTimeout { .. } => {
                (timed_sent(q.put_timeout(v.clone(), SHORT), v), true)
            }
            Op::TrySend { .. } => (try_sent(q.try_put(v.clone()), v), false),
            Op::SendBytes { .. } | Op::TrySendBytes { .. } if ready => (sent(q.put_bytes(v), &()), false),
            _ => return Some(None),
        })),
        Ends::Pipe(e) => e[usize::from(side)].as_ref().map(|c| send_on(c, op, v, ready)),
        Ends::OneWay(tx, _) => tx.as_ref().map(|c| send_on(c, op, v, ready)),
    }
}

fn send_on<D: CanSend>(c: &Connection<D>, op: &Op, v: &Vec<u8>, ready: bool) -> Option<(Sent, bool)> {
    Some(match op {
        Op::Send { .. } if ready => (sent(c.send(v), &()), false),
        Op::Send { .. } | Op::SendTimeout { .. } => (timed_sent(c.send_timeout(v, SHORT), &()), true),
        Op::TrySend { .. } => (try_sent(c.try_send(v), &()), false),
        Op::SendBytes { .. } if ready => (sent(c.send_bytes(v), &()), false),
        Op::SendBytes { .. } => return None,
        Op::TrySendBytes { .. } => (try_sent(c.try_send_bytes(v), &()), false),
        Op::SendBytesTimeout { .. } => (timed_sent(c.send_bytes_timeout(v, SHORT), &()), true),
        _ => unreachable!("not a send: {op:?}"),
    })
}

/// Reserves `n` bytes, fills them with `b` and commits (or drops) the slot.
fn reserve(ends: &Ends, side: bool, n: usize, b: &[u8], commit: bool) -> Option<Sent> {
    macro_rules! fill {
        ($r:expr) => {
            match $r {
                Ok(mut slot) => {
                    assert_eq!(slot.len(), n, "reserve({n}) gave {} bytes", slot.len());
                    slot.copy_from_slice(b);
                    if commit {
                        slot.commit();
                    }
                    Sent::Ok
                }
                Err(e) => sent(Err(e), &()),
            }
        };
    }
    match ends {
        Ends::Queue(q) => Some(fill!(q.reserve(n))),
        Ends::Pipe(e) => e[usize::from(side)].as_ref().map(|c| fill!(c.reserve(n))),
        Ends::OneWay(tx, _) => tx.as_ref().map(|c| fill!(c.reserve(n))),
    }
}

fn recv(ends: &Ends, ring: &mut Ring, op: &Op, side: bool, ready: bool, what: &str) {
    match ends {
        Ends::Queue(q) => {
            let (outcome, want) = match *op {
                Op::Recv { .. } if ready => (got(q.get()), ring.recv_typed(Got::Empty)),
                Op::RecvBytes { .. } if ready => (got(q.get_bytes()), ring.recv_raw(Got::Empty)),
                Op::RecvInPlace { .. } | Op::RecvInto { .. } if ready => {
                    return check_view(q.get_in_place().map(|v| (v.to_vec(), v.is_in_place())), ring, what);
                }
                Op::TryRecv { .. } | Op::TryRecvBytes { .. } => (try_got(q.try_get()), ring.recv_typed(Got::Empty)),
                Op::RecvInPlace { .. } | Op::RecvInto { .. } => return,
                _ => (timed_got(q.get_timeout(SHORT)), ring.recv_typed(Got::Empty)),
            };
            compare(outcome, want, what);
        }
        // End `1 - side` receives what `side` sends.
        Ends::Pipe(e) => {
            if let Some(c) = &e[usize::from(!side)] {
                recv_on(c, ring, op, ready, what);
            }
        }
        Ends::OneWay(_, rx) => {
            if let Some(c) = rx {
                recv_on(c, ring, op, ready, what);
            }
        }
    }
}

fn recv_on<D: CanRecv>(c: &Connection<D>, ring: &mut Ring, op: &Op, ready: bool, what: &str) {
    let (outcome, want) = match *op {
        Op::Recv { .. } if ready => (got(c.recv::<Vec<u8>>()), ring.recv_typed(Got::Empty)),
        Op::RecvBytes { .. } if ready => (got(c.recv_bytes()), ring.recv_raw(Got::Empty)),
        Op::RecvInPlace { .. } if ready => {
            return check_view(c.recv_in_place().map(|v| (v.to_vec(), v.is_in_place())), ring, what);
        }
        Op::RecvInto { buf, .. } if ready => {
            let mut b = vec![0u8; usize::from(buf) % (3 * ring.cap as usize)];
            let outcome = into_got(c.recv_bytes_into(&mut b), &b);
            let want = match ring.recv_raw(Got::Empty) {
                Got::Msg(m) if m.len() > b.len() => Got::TooShort(m),
                other => other,
            };
            (outcome, want)
        }
        Op::RecvInPlace { .. } | Op::RecvInto { .. } => return,
        Op::TryRecv { .. } => (try_got(c.try_recv::<Vec<u8>>()), ring.recv_typed(Got::Empty)),
        Op::TryRecvBytes { .. } => (try_got(c.try_recv_bytes()), ring.recv_raw(Got::Empty)),
        Op::RecvBytesTimeout { .. } | Op::RecvBytes { .. } => {
            (timed_got(c.recv_bytes_timeout(SHORT)), ring.recv_raw(Got::Empty))
        }
        _ => (timed_got(c.recv_timeout::<Vec<u8>>(SHORT)), ring.recv_typed(Got::Empty)),
    };
    compare(outcome, want, what);
}

/// Checks an in-place receive: the bytes, and whether they were read in
/// place — when the message is one record, unless the view first met an
/// abandoned stream (then it assembles the next message as streams are) or
/// the message was in the mailbox (then it is copied out).
fn check_view(r: Result<(Vec<u8>, bool), RecvError>, ring: &mut Ring, what: &str) {
    let (msg, not_in_place) = ring.pop();
    match (r, msg) {
        (Ok((bytes, in_place)), Some(raw)) => {
            assert_eq!(bytes, raw, "{what}");
            assert_eq!(in_place, raw.len() as u64 <= ring.max_chunk() && !not_in_place, "{what}: in place");
        }
        (r, None) => compare(got(r.map(|(b, _)| b)), ring.recv_end(Got::Empty), what),
        (r, Some(raw)) => panic!("{what}: {:?}, model: a message of {} bytes", r.map(|(b, _)| b.len()), raw.len()),
    }
}

fn compare(outcome: Got, want: Got, what: &str) {
    assert_eq!(outcome, want, "{what}");
}

/// After every op: what the channel says about itself matches the model.
fn check_state(ends: &Ends, rings: &mut [Ring; 2], op: &Op) {
    match ends {
        Ends::Queue(q) => {
            let m = &rings[0];
            assert_eq!(q.len(), m.messages(), "len after {op:?}");
            assert_eq!(q.is_empty(), m.segs.is_empty(), "is_empty after {op:?}");
            assert_eq!(q.is_full(), m.is_full(), "is_full after {op:?}");
            assert_eq!(q.is_closed(), m.closed, "is_closed after {op:?}");
        }
        Ends::Pipe(e) => {
            for (end, c) in e.iter().enumerate() {
                if let Some(c) = c {
                    // End `end` receives on ring `1 - end`.
                    assert_eq!(c.poll(Duration::ZERO), rings[1 - end].poll(), "poll({end}) after {op:?}");
                }
            }
        }
        Ends::OneWay(_, rx) => {
            if let Some(c) = rx {
                assert_eq!(c.poll(Duration::ZERO), rings[0].poll(), "poll after {op:?}");
            }
        }
    }
}

/// Ends the channel and takes what is left: every message the model still
/// holds, whole and in order, then the end.
fn drain(ends: Ends, mut rings: [Ring; 2]) {
    let rest = |ring: &mut Ring| std::iter::from_fn(|| ring.pop().0).collect::<Vec<_>>();
    match ends {
        Ends::Queue(q) => {
            q.close();
            let mut got_all = Vec::new();
            let end = loop {
                match q.get_bytes() {
                    Ok(m) => got_all.push(m),
                    Err(e) => break e,
                }
            };
            assert_eq!(end, RecvError::Closed, "the end of a drained, closed queue");
            assert_eq!(got_all, rest(&mut rings[0]), "what was left in the queue");
        }
        Ends::Pipe(e) => {
            // Ring `r` goes from end `r` to end `1 - r`. Drained with `try_`
            // calls: a blocking one could wait a liveness slice for the
            // producer of an abandoned stream.
            for (r, ring) in rings.iter_mut().enumerate() {
                if let Some(receiver) = &e[1 - r] {
                    let gone = ring.sender_gone;
                    let want = rest(ring);
                    assert_eq!(drain_pipe(receiver, gone), want, "what was left in ring {r}");
                }
            }
        }
        Ends::OneWay(tx, rx) => {
            drop(tx);
            if let Some(rx) = rx {
                let want = rest(&mut rings[0]);
                assert_eq!(drain_pipe(&rx, true), want, "what was left in the pipe");
            }
        }
    }
}

/// `try_recv_bytes` until there is nothing left: then the stream must end
/// with `Disconnected` when the sender is `gone`, else `Empty`.
fn drain_pipe<D: CanRecv>(c: &Connection<D>, gone: bool) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    loop {
        match c.try_recv_bytes() {
            Ok(m) => all.push(m),
            Err(TryRecvError::Disconnected) if gone => return all,
            Err(TryRecvError::Empty) if !gone => return all,
            Err(e) => panic!("draining a pipe (sender gone: {gone}): {e:?}"),
        }
    }
}
