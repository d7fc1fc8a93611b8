//! The ring buffer at the heart of every channel.
//!
//! One ring is a byte buffer of `cap` bytes (a power of two) in a segment,
//! preceded by a [`RingCtrl`]. Producers append records, consumers remove
//! them:
//!
//! ```text
//! record = header (8 bytes: len u32 | kind u8 | check 24 bits) + payload + padding to 8
//! ```
//!
//! # Sides and indices
//!
//! `tail` (written only inside the send side, `send_lock` below) and `head`
//! (only inside the receive side, `recv_lock`) are monotonically increasing
//! byte positions. Between one producer and one consumer the ring is
//! lock-free: each side is entered only by its own threads, so a `Pipe`'s
//! sender and receiver never contend, and several producers (or consumers)
//! of a `Queue` take turns. A side is a robust mutex, which a thread that
//! uses the side alone soon stops taking: the side is *biased* to it, and it
//! enters with plain stores (see [`super::side`]).
//!
//! A record is published by storing its header (release) after its payload
//! is complete; the consumer polls the header at `head` (acquire), so one
//! message costs the consumer one cache line from the producer, not a
//! shared index as well. For that, the slot where the *next* header will go
//! must never hold stale bytes that look like a header: before publishing a
//! record, the producer zeroes the 8 bytes after it (room for them is part
//! of every reservation), and headers carry the ring's lap number.
//!
//! # Crashes
//!
//! A producer killed mid-write never moved `tail`: its half-written record
//! is invisible and overwritten by the next producer, who learns on
//! entering the send side that a producer died inside. One killed after publishing a header but
//! before moving `tail` left a message that consumers can see: the next
//! holder of `send_lock` steps `tail` over it first
//! ([`Ring::repair_tail`]), so it is delivered once, not overwritten. A
//! consumer killed
//! mid-read never moved `head`: the next consumer reads the same record
//! again (it was never delivered). Large messages travel as several chunks
//! (`FIRST`, `MIDDLE`…, `LAST`) under one hold of `send_lock`; a stream whose
//! producer died or gave up is dropped whole by the consumer (a new `FIRST`
//! or `FULL` record, or a send side nobody live is inside with no data, ends
//! it) — so a
//! message is delivered entire or not at all, never truncated.
//!
//! # Waiting
//!
//! Consumers sleep on `readers.seq`, producers on `writers.seq`. A sleeper
//! counts itself in `waiters`, issues a `membarrier`, then looks for its
//! condition once more, then sleeps; the other side, after its store and a
//! compiler fence, bumps the word and wakes only when `waiters` is non-zero
//! — so there is no system call, no shared write and no full fence per
//! message when nobody sleeps, and no lost wake-up (see
//! [`crate::sync::wait`], "Asymmetric fences"). A side whose sleepers
//! sleep on every message asks its wakers to fence fully instead and then
//! sleeps without the `membarrier`, until one of its waits ends in
//! spinning again ("Sides that sleep on every message" there). The waker
//! takes the sleepers it woke off the count, so a sleeper that is slow to
//! wake up costs one system call, not one per message published meanwhile
//! (see [`crate::sync::wait`], "One wake per sleep"). Before sleeping, a
//! waiter spins for as long as its side's adaptive budget says ("Adaptive
//! spinning" there). Sleeps are cut into [`LIVENESS_SLICE`] pieces so a
//! sleeper notices a dead peer in bounded time.
//!
//! A producer of small records that finds the ring full first waits, while
//! the consumer drains, for an eighth of the ring to be free
//! ([`Ring::wait_for_slack`]), so that it does not read the consumer's
//! `head` line after every message.
//!
//! # Fast paths
//!
//! When a side is biased to the calling thread, a send of one record that
//! fits and a receive of one whole record run inline
//! ([`Ring::send_fast`], [`Ring::recv_fast`]); anything else (no room, no
//! message, a stream, padding, a check that fails) falls through to the
//! general path, which has done nothing yet and reports what is wrong.
//!
//! # Hostile peers
//!
//! Every header and index read from shared memory is checked before use:
//! `tail - head` within the capacity, a record within the published bytes,
//! a known kind and check bits. A violation is [`Stop::Broken`], never an
//! out-of-bounds access or a panic. Index and counter arithmetic wraps, as
//! the indices compare by wrapping difference: a peer that sets a counter
//! near `u64::MAX` gets wrong counts, not an overflow panic (found by the
//! `open_segment` fuzz target, whose builds check overflow).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::mail::{self, MAIL_MAX, Mailbox};
use super::side::{Entered, Side};
use crate::sync::wait::{self, RingSleepers};
use crate::sys::cpu;

/// The smallest ring, in bytes.
pub(crate) const MIN_CAPACITY: usize = 4096;
/// How long a sleeper sleeps before it looks whether its peers are alive.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// How long a `try_` or timed receive that has begun a streamed message
/// waits for the next part once its deadline has passed: while a producer
/// holds `send_lock` it has room (this consumer drained the ring), so a
/// stream that makes no progress for this long has a producer that is
/// stopped, or a `send_lock` word that a faulty or hostile peer wrote (it
/// names a thread that will never let go). Such a call then gives up, and
/// the message is lost whole (the next consumer skips the rest of the
/// stream). Blocking calls wait as long as the lock is held. (Found by the
/// `ring_reader` fuzz target: `try_get` hung on a forged stream start.
/// Under `cargo fuzz`, 2 ms, so that such inputs are not a second each.)
const STREAM_STALL: Duration = if cfg!(fuzzing) { Duration::from_millis(2) } else { Duration::from_secs(1) };

/// How many more times [`Ring::recv_quick`] looks: each look is a poll and
/// a pause, 20–40 ns on the machines we measured.
const QUICK_LOOKS: u32 = 16;

/// See [`Ring::wait_for_slack`].
const SLACK_PAUSES: u32 = 16;
const SLACK_IDLE: u32 = 64;
const SLACK_MAX_PAUSES: u32 = 4096;

/// How far ahead of the record it writes a producer asks for the line it
/// will write a few records later, in a state to write it
/// ([`cpu::prefetch_write`]). (For a record longer than this, the line is
/// one of its own, which the copy writes next anyway: one instruction
/// spent, nothing else.) Each line of the buffer was last read by the
/// consumer's core, so each store into it waits for it to be taken back,
/// and (most likely) a path of ~130 instructions a message leaves room for
/// only a couple of such waits at a time. Measured (fork harness, 64-byte
/// typed stream, builds alternated, medians of 18–30 runs; session 13): the
/// producer alone, filling 3000 records into a ring the consumer had
/// drained, 18.7–62.5 -> 13.0–39.7 ns a record; the stream 22.8–35.1 ->
/// 16.1–24.2 ns a message in five alternations, its ratio to the bare SPSC
/// ring run beside it 0.52–0.68x -> 0.72–1.08x. 128, 512 and 1024 bytes
/// ahead did no better; a read prefetch (`prefetcht0`) did worse; skipping
/// lines that the cached `head` does not show as free (the consumer's
/// unread records) gave up over half of the gain (20.9 against 16.1 ns,
/// 23.9 without), since that `head` lags the real one.
const WRITE_AHEAD: u64 = 256;

/// Payloads up to this many bytes are copied into the ring in 8-byte words
/// ([`copy_payload`]); longer ones by `memcpy`.
///
/// Why words: a producer's stores into the ring wait, in the store buffer,
/// for lines the consumer's core read last, and stores leave the buffer in
/// order. A message the caller has just built on its stack in 8-byte
/// stores, read back by a 16-byte load (what `copy_nonoverlapping` of 64
/// bytes compiles to), cannot be forwarded from those stores, so the load
/// waits until they leave the buffer — behind the previous record's stores
/// and the lines they wait for. Each send then waits out a whole transfer
/// instead of overlapping it with the next. 8-byte loads are forwarded
/// from stores of 8 bytes or more, the usual way messages are built.
/// Found on an AMD EPYC (session 17): sampling the producer (`perf record
/// -e cpu-clock`) put 50–70% of its time on the two 16-byte loads of the
/// message. Measured there, with the rest of this change (the inline send
/// leaves padding to the general path, so fewer values are live and fewer
/// spilled): a producer alone writing 3000 typed 64-byte records into lines
/// the consumer had just read, 39.2–41.4 -> 33.9–37.1 ns a record (eight
/// alternations; a bare ring of the same records, 13–19 ns); the bench's
/// typed pipe stream against the bare records by turns, 0.379–0.422x ->
/// 0.446–0.495x (four filtered runs of each build, alternated). Sixteen-byte stores built from
/// the same 8-byte loads (four stores instead of eight, through inline
/// assembly so that the compiler does not merge the loads) gained 0.4 ns in
/// the first measurement and were dropped.
const WORD_COPY_MAX: usize = 256;

const HEADER: u64 = 8;
const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;
const PAD: u8 = 5;

/// Pads its content to a cache line of its own, so the two sides of a ring
/// do not slow each other down.
#[repr(C, align(64))]
pub(crate) struct Line<T>(pub(crate) T);

/// Written only by producers (under `send_lock`).
#[repr(C)]
struct Producer {
    /// Where the next record goes.
    tail: AtomicU64,
    /// The last `head` a producer read: room is checked against it first,
    /// so the consumer's line is read only when the ring looks full.
    cached_head: AtomicU64,
    /// Whole messages ever published (counted before they become visible).
    published: AtomicU64,
    /// The sequence number of the last message put in the mailbox (pipes;
    /// see [`super::mail`]).
    mail_seq: AtomicU64,
}

/// Written only by consumers (under `recv_lock`).
#[repr(C)]
struct Consumer {
    /// Where the next record is read.
    head: AtomicU64,
    /// Whole messages ever delivered.
    delivered: AtomicU64,
    /// The header of the last message taken from the mailbox.
    mail_taken: AtomicU64,
}

/// Flags shared by both sides.
#[repr(C)]
pub(crate) struct Status {
    /// Set by `close()`: no more sends; receivers drain, then stop.
    pub(crate) closed: AtomicU32,
}

/// The shared state of one ring. Every field is an atomic or a lock, so any
/// bit pattern a peer writes is a valid value. Each line is written by one
/// side only, so a message moves as few cache lines between the two
/// processes as possible: in the common case just the record itself.
#[repr(C)]
pub(crate) struct RingCtrl {
    /// Producers: `send_lock` in the docs above.
    send: Side,
    /// Consumers: `recv_lock`.
    recv: Side,
    prod: Line<Producer>,
    cons: Line<Consumer>,
    /// Consumers waiting for data.
    readers: Line<RingSleepers>,
    /// Producers waiting for room.
    writers: Line<RingSleepers>,
    status: Line<Status>,
}

impl RingCtrl {
    /// Lines for `multiproc info`: occupancy and lock holders of a ring of
    /// `capacity` bytes, from a snapshot of its indices (which a peer may
    /// have written anything into; nothing here trusts them).
    pub(crate) fn describe(&self, capacity: usize) -> Vec<(&'static str, String)> {
        let (tail, head) = (self.prod.0.tail.load(Ordering::Relaxed), self.cons.0.head.load(Ordering::Relaxed));
        let (published, delivered) =
            (self.prod.0.published.load(Ordering::Relaxed), self.cons.0.delivered.load(Ordering::Relaxed));
        let used = match tail.checked_sub(head) {
            Some(used) if used <= capacity as u64 => format!("{used} of {capacity} bytes used"),
            _ => format!("inconsistent indices (head {head}, tail {tail}, capacity {capacity})"),
        };
        vec![
            ("ring", used),
            ("messages waiting", published.wrapping_sub(delivered).to_string()),
            ("messages delivered", delivered.to_string()),
            ("closed", (self.status.0.closed.load(Ordering::Relaxed) != 0).to_string()),
            ("send side", self.send.describe()),
            ("receive side", self.recv.describe()),
            ("receivers asleep", self.readers.0.describe()),
            ("senders asleep", self.writers.0.describe()),
        ]
    }

    /// Initialises a zeroed control block.
    pub(crate) fn init(this: *mut RingCtrl) -> std::io::Result<()> {
        // SAFETY: `this` points to a zeroed, not yet shared control block;
        // `&raw mut` projects to the fields without creating references.
        let (send, recv) = unsafe { (&raw mut (*this).send, &raw mut (*this).recv) };
        Side::init(send)?;
        Side::init(recv)
    }

    /// Gives up this thread's bias on either side, if it has one (a handle
    /// is being dropped).
    pub(crate) fn release_bias(&self) {
        self.send.release_bias();
        self.recv.release_bias();
    }
}

/// Why a ring operation did not complete.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The deadline passed (or, for `try_` calls, it would have to wait).
    Timeout,
    /// The ring was closed.
    Closed,
    /// Every peer on the other side is gone.
    Disconnected,
    /// The message can never fit (in-place writes only).
    TooLarge(usize),
    /// The shared state is corrupt or a lock is unusable.
    Broken(String),
}

/// Where a reserved record goes: its position, and the padding record
/// (position, length) that must be published in front of it, if any.
#[derive(Clone, Copy)]
struct Place {
    pos: u64,
    pad: Option<(u64, u64)>,
}

/// A decoded record header.
struct Record {
    kind: u8,
    len: u64,
}

impl Record {
    fn size(len: u64) -> u64 {
        HEADER + len.next_multiple_of(8)
    }

    /// `len | kind << 32 | lap << 40`, where `lap` is the low 24 bits of
    /// how many times the ring has wrapped at the record's position: a stale
    /// header from an earlier lap never passes for a new one. A header is
    /// never zero (kinds start at 1); zero means "not written yet".
    fn encode(kind: u8, len: u64, lap: u64) -> u64 {
        len | (u64::from(kind) << 32) | ((lap & 0xff_ffff) << 40)
    }
}

/// A view of one ring: its control block, its bytes and its capacity (taken
/// from this process's validated knowledge of the segment, never from the
/// shared memory itself).
#[derive(Clone, Copy)]
pub(crate) struct Ring<'a> {
    ctrl: &'a RingCtrl,
    data: *mut u8,
    cap: u64,
    /// A pipe's mailbox for this ring's small messages (see
    /// [`super::mail`]).
    mail: Option<Mailbox<'a>>,
    /// The other direction's consumers' `mail_taken`, which a put here
    /// passes on (see "Acks" in [`super::mail`]).
    ack: Option<&'a AtomicU64>,
    /// This process's waker fence, looked up once per operation.
    fence: wait::WakerFence,
}

/// What to ask about peers: `true` when every peer on the other side is
/// gone. With `false`, only a cheap hint is consulted (after a wake-up);
/// with `true`, the kernel is asked (at the end of a sleep slice).
pub(crate) type Gone<'a> = &'a dyn Fn(bool) -> bool;

impl<'a> Ring<'a> {
    /// # Safety
    ///
    /// `data` must point to `cap` bytes of shared memory that live as long
    /// as `'a`, used only as this ring's buffer; `cap` must be a power of two
    /// of at least [`MIN_CAPACITY`].
    #[inline]
    pub(crate) unsafe fn new(ctrl: &'a RingCtrl, data: *mut u8, cap: usize) -> Ring<'a> {
        debug_assert!(cap.is_power_of_two() && cap >= MIN_CAPACITY);
        Ring { ctrl, data, cap: cap as u64, mail: None, ack: None, fence: wait::WakerFence::now() }
    }

    /// The ring with a mailbox for its small messages (pipes).
    #[inline]
    pub(crate) fn with_mail(self, mail: Mailbox<'a>) -> Ring<'a> {
        Ring { mail: Some(mail), ..self }
    }

    /// The ring, whose puts in the mailbox also acknowledge what was taken
    /// from the mailbox of the ring `other` (the two directions of a duplex
    /// pipe end).
    #[inline]
    pub(crate) fn acking(self, other: &'a RingCtrl) -> Ring<'a> {
        Ring { ack: Some(&other.cons.0.mail_taken), ..self }
    }

    /// The largest payload one record can carry; larger messages are
    /// streamed in chunks of this size.
    pub(crate) fn max_chunk(&self) -> usize {
        (self.cap / 2 - HEADER) as usize
    }

    pub(crate) fn status(&self) -> &Status {
        &self.ctrl.status.0
    }

    /// Enters the send side, repairing `tail` if a producer died inside.
    fn acquire_send(&self, deadline: Option<Instant>, try_only: bool) -> Result<Entered<'a>, Stop> {
        let (held, died) = self.ctrl.send.enter(deadline, try_only)?;
        if died {
            self.repair_tail()?;
        }
        Ok(held)
    }

    /// Enters the receive side. A consumer that died inside never moved
    /// `head`, so there is nothing to repair: the next one reads the same
    /// record.
    fn acquire_recv(&self, deadline: Option<Instant>, try_only: bool) -> Result<Entered<'a>, Stop> {
        Ok(self.ctrl.recv.enter(deadline, try_only)?.0)
    }

    /// After a producer died holding `send_lock`: a record (and the padding
    /// in front of it) whose header it published before it could move
    /// `tail` is stepped over, so that the next record is not written over
    /// a message a consumer may already be reading. Every publish zeroes the
    /// header slot at its new `tail` first, so in a ring nobody died in, the
    /// slot at `tail` is always empty and this does nothing. A consumer may
    /// have taken those records already, leaving `head` ahead of `tail`: the
    /// repair then starts from `head`.
    fn repair_tail(&self) -> Result<(), Stop> {
        let p = self.prod();
        let start = p.tail.load(Ordering::Relaxed);
        let head = self.cons().head.load(Ordering::Acquire);
        let ahead = head.wrapping_sub(start);
        let mut tail = if ahead != 0 && ahead <= self.cap {
            head
        } else {
            self.used(head, start)?;
            start
        };
        while let Some(rec) = self.peek(tail)? {
            tail = tail.wrapping_add(Record::size(rec.len));
            // A published record is within the capacity of `head`; a peer
            // that wrote headers all round the ring is not believed.
            self.used(head, tail)?;
        }
        if tail != start {
            p.tail.store(tail, Ordering::Relaxed);
        }
        Ok(())
    }

    fn prod(&self) -> &Producer {
        &self.ctrl.prod.0
    }

    fn cons(&self) -> &Consumer {
        &self.ctrl.cons.0
    }

    /// Bytes in use, checked against the capacity.
    fn used(&self, head: u64, tail: u64) -> Result<u64, Stop> {
        let used = tail.wrapping_sub(head);
        if used > self.cap || used % 8 != 0 {
            return Err(Stop::Broken(format!("corrupt ring indices: head {head}, tail {tail}, capacity {}", self.cap)));
        }
        Ok(used)
    }

    fn at(&self, pos: u64) -> *mut u8 {
        self.data.wrapping_add((pos & (self.cap - 1)) as usize)
    }

    /// The header word at `pos`.
    ///
    /// Positions are multiples of 8 (records are padded to 8), but `head`
    /// and `tail` come from shared memory, and not every path checks them
    /// with `used` before looking at the word there (`has_data` cannot, and
    /// a producer whose cached `head` says there is room does not): so the
    /// position is rounded down to a multiple of 8 here. A misaligned index
    /// is corrupt; [`peek`](Self::peek) and [`room`](Self::room) report it.
    /// (Found by the `open_segment` fuzz target: a misaligned `head` made
    /// `is_empty` dereference a misaligned `AtomicU64`.)
    fn word(&self, pos: u64) -> &AtomicU64 {
        // SAFETY: `pos & !7` is a multiple of 8 and `at` keeps it below
        // `cap` (a power of two, at least 4096, so a multiple of 8); the
        // buffer is 64-byte aligned and `cap` bytes long, so the word is in
        // bounds and aligned; it lives as long as the mapping (`'a`). Any bit
        // pattern is a valid u64.
        unsafe { &*self.at(pos & !7).cast::<AtomicU64>() }
    }

    #[inline]
    fn lap(&self, pos: u64) -> u64 {
        // `cap` is a power of two: a shift, not a division per message.
        pos >> self.cap.trailing_zeros()
    }

    /// Closes the ring and wakes everyone.
    pub(crate) fn close(&self) {
        self.status().closed.store(1, Ordering::SeqCst);
        self.wake_all();
    }

    /// Wakes every sleeper on both sides (after a close, or when peers leave).
    pub(crate) fn wake_all(&self) {
        for s in [&self.ctrl.readers.0, &self.ctrl.writers.0] {
            s.seq.fetch_add(1, Ordering::SeqCst);
            wait::wake_counting_out(&s.seq, &s.waiters, u32::MAX);
        }
    }

    /// After publishing (or freeing): wakes up to `n` sleepers of the other
    /// side, if any sleep. The fence orders our store before the look at
    /// `waiters`, pairing with the sleeper's count-then-look.
    #[inline]
    fn notify(&self, s: &RingSleepers, n: u32) {
        if s.any_to_wake(self.fence) {
            Self::wake(s, n);
        }
    }

    #[cold]
    fn wake(s: &RingSleepers, n: u32) {
        s.seq.fetch_add(1, Ordering::SeqCst);
        wait::wake_counting_out(&s.seq, &s.waiters, n);
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.status().closed.load(Ordering::SeqCst) != 0
    }

    /// Whole messages waiting (a snapshot).
    pub(crate) fn len(&self) -> usize {
        let published = self.prod().published.load(Ordering::Relaxed);
        published.saturating_sub(self.cons().delivered.load(Ordering::Relaxed)) as usize
    }

    /// Bytes free, as seen now.
    pub(crate) fn free(&self) -> usize {
        let head = self.cons().head.load(Ordering::Acquire);
        let tail = self.prod().tail.load(Ordering::Acquire);
        self.cap.saturating_sub(tail.wrapping_sub(head)) as usize
    }

    /// Whether a record is published at `head` or a message waits in the
    /// mailbox (without a lock; a hint). Also, finding nothing, tells
    /// producers the ring is drained (see [`mark_idle`](Self::mark_idle)):
    /// every receive, `poll` and `wait` that finds nothing comes through
    /// here, [`nothing_to_take`](Self::nothing_to_take) or
    /// [`recv_fast`](Self::recv_fast).
    #[inline]
    pub(crate) fn has_data(&self) -> bool {
        let head = self.cons().head.load(Ordering::Acquire);
        let data = self.word(head).load(Ordering::Acquire) != 0
            || self.mail.is_some_and(|mail| mail.pending(&self.cons().mail_taken));
        if !data {
            self.mark_idle(head);
        }
        data
    }

    /// Whether a `try_` receive can answer "empty" without taking the lock:
    /// nothing is published at `head` and the ring is open. (A consumer in
    /// the middle of a stream holds the lock and does not return until the
    /// stream ends, so an empty head means there is nothing to take.)
    #[inline]
    pub(crate) fn looks_empty(&self) -> bool {
        !self.has_data() && !self.is_closed()
    }

    /// A consumer found nothing at `head`: lets producers know the ring is
    /// drained, so small messages take the mailbox again.
    #[inline]
    fn mark_idle(&self, head: u64) {
        if let Some(mail) = self.mail {
            mail.mark_idle(head);
        }
    }

    /// The sleep words of receivers waiting for data.
    pub(crate) fn data_sleepers(&self) -> &'a RingSleepers {
        &self.ctrl.readers.0
    }

    // ----- producing -----

    /// Bytes a record of `size` bytes takes at `tail` (with the padding at
    /// the end of the buffer if it does not fit there), plus the zeroed slot
    /// after it.
    fn need(&self, tail: u64, size: u64) -> u64 {
        let to_end = self.cap - (tail & (self.cap - 1));
        if size <= to_end { size + HEADER } else { to_end + size + HEADER }
    }

    /// Whether `need` bytes are free at `tail` by the last `head` a producer
    /// read (the consumers' line is not touched).
    #[inline]
    fn fits_cached(&self, tail: u64, need: u64) -> bool {
        let used = tail.wrapping_sub(self.prod().cached_head.load(Ordering::Relaxed));
        used <= self.cap && self.cap - used >= need
    }

    /// Reads `head` (and caches it): how many bytes are free at `tail`.
    fn free_now(&self, tail: u64) -> Result<u64, Stop> {
        let head = self.cons().head.load(Ordering::Acquire);
        self.prod().cached_head.store(head, Ordering::Relaxed);
        Ok(self.cap - self.used(head, tail)?)
    }

    /// Whether `need` bytes are free at `tail`, re-reading `head` only when
    /// the cached value says no.
    fn fits(&self, tail: u64, need: u64) -> Result<bool, Stop> {
        Ok(self.fits_cached(tail, need) || self.free_now(tail)? >= need)
    }

    /// Waits until there is room for `need` bytes at `tail` and, for small
    /// records (at most 1/64 of the ring), a batch more: an eighth of the
    /// ring, while the consumers are draining it. Returns whether `need`
    /// fits now.
    ///
    /// Why a batch: a producer that outruns its consumer keeps the ring
    /// nearly full, and taking each record's worth of room as soon as it is
    /// freed would have it read `head` for every message, pulling the
    /// consumer's line across on each of its stores (perf: the 64-byte pipe
    /// ran at a third of its rate). With a batch, the producer's cached
    /// `head` serves the next few hundred small messages. While waiting,
    /// each read of `head` makes the consumer's next store to it wait for
    /// its line (perf: the typed 64-byte pipe ran at half speed reading it
    /// every 16 pauses), so the producer pauses between reads about as long
    /// as the consumer's rate so far says the rest of the batch takes
    /// ([`SLACK_PAUSES`] to [`SLACK_MAX_PAUSES`] pauses, so a deadline may
    /// be overrun by that much: tens of microseconds). The wait gives up —
    /// to wait the usual way, or to send into the room there is — when
    /// `head` stops moving for [`SLACK_IDLE`] reads, or at the deadline. A
    /// blocking send may so wait while its own message would fit; it never
    /// waits for a consumer that has stopped.
    fn wait_for_slack(&self, tail: u64, need: u64, deadline: Option<Instant>) -> Result<bool, Stop> {
        if need > self.cap / 64 {
            // Large records: few reads of `head` per byte anyway, and
            // waiting for more than the record would stop the two sides
            // from overlapping (a stream of half-ring chunks would wait
            // for an empty ring each time).
            return self.fits(tail, need);
        }
        let want = need + self.cap / 8;
        let (mut last, mut idle, mut pauses, mut since) = (None, 0, SLACK_PAUSES, 0u64);
        loop {
            let free = self.free_now(tail)?;
            if free >= want || wait::expired(deadline) {
                break;
            }
            if last == Some(free) {
                idle += 1;
                if idle >= SLACK_IDLE {
                    break;
                }
                pauses = SLACK_PAUSES;
            } else {
                // Each read makes the consumer's next store of `head` wait
                // for its line: pause about as long as the rate so far says
                // the rest of the batch takes.
                if let Some(before) = last.filter(|&b| b < free) {
                    let estimate = (want - free) * since / (free - before);
                    pauses = estimate.clamp(u64::from(SLACK_PAUSES), u64::from(SLACK_MAX_PAUSES)) as u32;
                }
                (last, idle, since) = (Some(free), 0, 0);
            }
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            since += u64::from(pauses);
        }
        Ok(self.fits_cached(tail, need))
    }

    /// Waits (holding `send_lock`) until a record of `len` payload bytes fits
    /// contiguously; returns where to write it. Nothing becomes visible to
    /// consumers until [`publish`](Self::publish).
    fn room(&self, len: u64, deadline: Option<Instant>, try_only: bool, readers_gone: Gone<'_>) -> Result<Place, Stop> {
        let size = Record::size(len);
        let tail = self.prod().tail.load(Ordering::Relaxed);
        if tail % 8 != 0 {
            return Err(misaligned(tail));
        }
        let need = self.need(tail, size);
        loop {
            if self.is_closed() {
                return Err(Stop::Closed);
            }
            if self.fits_cached(tail, need) {
                break;
            }
            if try_only {
                if self.fits(tail, need)? {
                    break;
                }
                return Err(Stop::Timeout);
            }
            if self.wait_for_slack(tail, need, deadline)? {
                // A wait that ended in spinning (see "Sides that sleep on
                // every message" in `sync::wait`): without this, a producer
                // that slept once would leave every later receive fencing
                // fully while the stream went on.
                self.ctrl.writers.0.spun();
                continue;
            }
            let slice = wait::deadline(LIVENESS_SLICE).map(|s| deadline.map_or(s, |d| d.min(s)));
            let w = &self.ctrl.writers.0;
            let ready = || self.is_closed() || self.fits(tail, need).unwrap_or(true);
            let woken = wait::wait_until_ring(ready, w, slice);
            if !woken && wait::expired(deadline) {
                return Err(Stop::Timeout);
            }
            if readers_gone(!woken) {
                return Err(Stop::Disconnected);
            }
        }
        Ok(self.place(tail, size))
    }

    /// Where a record of `size` bytes goes when it is written at `tail`.
    fn place(&self, tail: u64, size: u64) -> Place {
        let to_end = self.cap - (tail & (self.cap - 1));
        if size <= to_end {
            return Place { pos: tail, pad: None };
        }
        // The record goes at the start of the next lap, behind a padding
        // record to the end of the buffer.
        Place { pos: tail.wrapping_add(to_end), pad: Some((tail, to_end)) }
    }

    /// Publishes a record of `kind` and `len` bytes at `place` (payload
    /// already written) and wakes a receiver if one sleeps.
    #[inline(always)]
    fn publish(&self, place: Place, kind: u8, len: u64) {
        let Place { pos, pad } = place;
        let next = pos.wrapping_add(Record::size(len));
        // `room` reserved this slot: the next header goes there.
        self.word(next).store(0, Ordering::Relaxed);
        let p = self.prod();
        if matches!(kind, FULL | LAST) {
            // Before the message is visible, so a receiver never sees it
            // uncounted (JoinableQueue::task_done relies on that). Only the
            // send_lock holder writes it: a plain load and store, not a
            // locked add, which would stall on the header line's miss.
            p.published.store(p.published.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        self.word(pos).store(Record::encode(kind, len, self.lap(pos)), Ordering::Release);
        if let Some((at, to_end)) = pad {
            // After the record: a consumer that follows the padding finds it.
            self.word(at).store(Record::encode(PAD, to_end - HEADER, self.lap(at)), Ordering::Release);
        }
        p.tail.store(next, Ordering::Relaxed);
        // A part of a stream is for the consumer holding `recv_lock` in the
        // middle of it; waking just one sleeper could wake another consumer,
        // which then blocks on `recv_lock`, leaving the first asleep for a
        // whole liveness slice. So parts wake everyone.
        self.notify(&self.ctrl.readers.0, if kind == FULL { 1 } else { u32::MAX });
    }

    /// Always inlined, as [`send_fast`](Self::send_fast) is (see there
    /// why): left to the compiler, it was a call in the bench's producer
    /// loop (one function sending typed and byte messages), the ring spilled
    /// to the stack for it and the copy a call to `memcpy`. Measured (the
    /// bench's 64-byte typed stream against the SPSC ring by turns,
    /// filtered runs of the two builds alternated, session 16): 0.539,
    /// 0.430, 0.430, 0.464, 0.637, 0.278x before; 0.537, 0.552, 0.587,
    /// 0.479, 0.775, 0.682x after.
    #[inline(always)]
    fn write_record(&self, place: Place, kind: u8, payload: &[u8]) {
        cpu::prefetch_write(self.at(place.pos.wrapping_add(WRITE_AHEAD)));
        // SAFETY: `room` (or, inline, `fits_fast`) reserved the record's
        // bytes at `place.pos`, contiguous and inside the buffer; the
        // payload follows the header.
        unsafe { copy_payload(self.at(place.pos).add(HEADER as usize), payload) };
        self.publish(place, kind, payload.len() as u64);
    }

    /// Whether every chunk of a streamed message of `len` bytes fits now,
    /// padding records included, so that a `try_` send never starts a stream
    /// it would have to wait half-way through. The caller holds `send_lock`:
    /// `tail` stays put and the free room can only grow.
    fn stream_fits(&self, len: u64) -> Result<bool, Stop> {
        let head = self.cons().head.load(Ordering::Acquire);
        let start = self.prod().tail.load(Ordering::Relaxed);
        let free = self.cap - self.used(head, start)?;
        let max = self.max_chunk() as u64;
        let (mut tail, mut left) = (start, len);
        while left > 0 {
            let chunk = left.min(max);
            let size = Record::size(chunk);
            if tail.wrapping_sub(start) + self.need(tail, size) > free {
                return Ok(false);
            }
            let to_end = self.cap - (tail & (self.cap - 1));
            tail = tail.wrapping_add(if size <= to_end { size } else { to_end + size });
            left -= chunk;
        }
        Ok(true)
    }

    /// Puts `msg` in the mailbox if it is small, the ring is known to be
    /// empty and the slot is free (see [`super::mail`]); the caller is inside
    /// the send side and has checked that the ring is open.
    #[inline(always)]
    fn mail_put(&self, tail: u64, msg: &[u8]) -> bool {
        let Some(mail) = self.mail else { return false };
        if msg.len() > MAIL_MAX || !mail.usable(tail, &self.cons().mail_taken) {
            return false;
        }
        let p = self.prod();
        // Counted before it is visible, as in `publish`.
        p.published.store(p.published.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        let seq = mail::next_seq(p.mail_seq.load(Ordering::Relaxed));
        p.mail_seq.store(seq, Ordering::Relaxed);
        mail.put(seq, msg, self.ack);
        self.notify(&self.ctrl.readers.0, 1);
        true
    }

    /// Sends `msg` whole: one record, or a stream of chunks under one hold of
    /// `send_lock`. A stream cut short by a deadline is dropped by receivers.
    pub(crate) fn send(
        &self,
        msg: &[u8],
        deadline: Option<Instant>,
        try_only: bool,
        readers_gone: Gone<'_>,
    ) -> Result<(), Stop> {
        // Encoded (serde) messages reach here without having tried it; for
        // raw ones, whose callers tried it inline, this repeats one failed
        // check on a path that is about to wait or take the mutex.
        if self.send_fast(msg) {
            return Ok(());
        }
        let _held = self.acquire_send(deadline, try_only)?;
        if !self.is_closed() && self.mail_put(self.prod().tail.load(Ordering::Relaxed), msg) {
            return Ok(());
        }
        let max = self.max_chunk();
        if msg.len() <= max {
            let place = self.room(msg.len() as u64, deadline, try_only, readers_gone)?;
            self.write_record(place, FULL, msg);
            return Ok(());
        }
        if try_only && !self.stream_fits(msg.len() as u64)? {
            // As in `room`, closed is reported before full.
            return Err(if self.is_closed() { Stop::Closed } else { Stop::Timeout });
        }
        let chunks = msg.chunks(max);
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.enumerate() {
            let kind = match i {
                0 => FIRST,
                i if i == last => LAST,
                _ => MIDDLE,
            };
            let place = self.room(chunk.len() as u64, deadline, false, readers_gone)?;
            self.write_record(place, kind, chunk);
        }
        Ok(())
    }

    /// The common case of [`send`](Self::send) in one piece, kept small so
    /// that it inlines: the side is biased to this thread, the ring open,
    /// and the message one record that fits now. `false` when any of that
    /// is not so (or a check fails): nothing was done, and the caller takes
    /// the general path, which reports what is wrong.
    ///
    /// Always inlined: where the caller's message has a length known when
    /// compiling (a typed send of a `Plain<T>`), the copy into the ring is
    /// then a few vector moves and the mailbox's size check folds away;
    /// out of line, the copy was a call to `memmove` and the function
    /// saved and restored six registers per message on a side that is
    /// bound by its stores. Measured (the 64-byte typed pipe stream, fork,
    /// 18 runs of each build in alternation, session 12): 31.0 -> 24.2 ns a
    /// message, medians; the bench's paired ratio to the SPSC ring went
    /// from 0.55, 0.61, 0.42x to 0.64, 0.66, 0.93x (alternated runs).
    #[inline(always)]
    pub(crate) fn send_fast(&self, msg: &[u8]) -> bool {
        let Some((_inside, tail)) = self.enter_fast(msg.len()) else { return false };
        if self.mail_put(tail, msg) {
            return true;
        }
        if !self.fits_fast(tail, msg.len()) {
            return false;
        }
        self.write_record(Place { pos: tail, pad: None }, FULL, msg);
        true
    }

    /// The common case of [`reserve`](Self::reserve), inline as
    /// [`send_fast`](Self::send_fast) is: `None` when that is not the case
    /// (nothing was done). Without it, a 64-byte message written in place
    /// took longer than one sent by copy, which defeats the point of writing
    /// in place. Measured (fork harness, one-way pipe, the consumer
    /// receiving typed, session 17): 93.7–116.2 ns a message against
    /// `send`'s 36.6–48.7 in one state; builds alternated three times in the
    /// slow cross-core state, medians of three runs, 282.9–292.2 -> 211.2–212.3
    /// ns, with `send` at 204.6–205.2.
    #[inline(always)]
    pub(crate) fn reserve_fast(self, len: usize) -> Option<Slot<'a>> {
        let (held, tail) = self.enter_fast(len)?;
        if !self.fits_fast(tail, len) {
            return None;
        }
        cpu::prefetch_write(self.at(tail.wrapping_add(WRITE_AHEAD)));
        Some(Slot { ring: self, place: Place { pos: tail, pad: None }, len, _held: held })
    }

    /// The first half of the inline send and reserve: a record of `len`
    /// bytes fits in one, the send side is biased to this thread (it is
    /// now inside) and the ring is open. The position to write at.
    #[inline(always)]
    fn enter_fast(&self, len: usize) -> Option<(Entered<'a>, u64)> {
        if len > self.max_chunk() {
            return None;
        }
        let ctrl: &'a RingCtrl = self.ctrl;
        let inside = ctrl.send.enter_biased_quick(self.fence)?;
        let tail = self.prod().tail.load(Ordering::Relaxed);
        if tail % 8 != 0 || self.is_closed() {
            return None;
        }
        Some((inside, tail))
    }

    /// Whether a record of `len` bytes fits at `tail` with no padding in
    /// front of it (once a lap, the general path pads), by the cached
    /// `head`: reading the consumers' line is for the general path, which
    /// batches it. With no padding to carry, fewer values are live and
    /// fewer spill to the stack: each store waits its turn in the store
    /// buffer behind the ring's (see `WORD_COPY_MAX`).
    #[inline(always)]
    fn fits_fast(&self, tail: u64, len: usize) -> bool {
        let size = Record::size(len as u64);
        size <= self.cap - (tail & (self.cap - 1)) && self.fits_cached(tail, size + HEADER)
    }

    /// Reserves room for an in-place write of exactly `len` bytes; the slot
    /// holds `send_lock` until it is committed or dropped.
    pub(crate) fn reserve(
        self,
        len: usize,
        deadline: Option<Instant>,
        try_only: bool,
        readers_gone: Gone<'_>,
    ) -> Result<Slot<'a>, Stop> {
        if len > self.max_chunk() {
            return Err(Stop::TooLarge(self.max_chunk()));
        }
        let held = self.acquire_send(deadline, try_only)?;
        let place = self.room(len as u64, deadline, try_only, readers_gone)?;
        Ok(Slot { ring: self, place, len, _held: held })
    }

    // ----- consuming -----

    /// The record published at `head`, if any, checked before use.
    #[inline]
    fn peek(&self, head: u64) -> Result<Option<Record>, Stop> {
        if head % 8 != 0 {
            return Err(misaligned(head));
        }
        let word = self.word(head).load(Ordering::Acquire);
        if word == 0 {
            return Ok(None);
        }
        let (len, kind, lap) = (word & 0xffff_ffff, (word >> 32) as u8, word >> 40);
        let to_end = self.cap - (head & (self.cap - 1));
        let size = Record::size(len);
        let valid = lap == self.lap(head) & 0xff_ffff
            && matches!(kind, FULL | FIRST | MIDDLE | LAST | PAD)
            && size <= to_end
            && (kind != PAD || size == to_end);
        if !valid {
            return Err(corrupt_header(word, head));
        }
        Ok(Some(Record { kind, len }))
    }

    /// Consumes published records into `out` until one whole message is
    /// there (`Ok(true)`) or the ring runs dry (`Ok(false)`); `streaming`
    /// says whether `out` holds the first part of a streamed message.
    fn drain_one(&self, out: &mut Vec<u8>, streaming: &mut bool) -> Result<bool, Stop> {
        loop {
            let head = self.cons().head.load(Ordering::Relaxed);
            let rec = self.peek(head)?;
            // A message in the mailbox is older than any record in the ring,
            // and ends a stream whose producer died (as a new FULL would).
            if self.mail_take(|msg| refill(out, msg))?.is_some() {
                *streaming = false;
                return Ok(true);
            }
            let Some(rec) = rec else {
                return Ok(false);
            };
            let mut done = false;
            match rec.kind {
                PAD => {}
                FULL | FIRST => {
                    // A new message ends any stream its producer abandoned.
                    out.clear();
                    *streaming = rec.kind == FIRST;
                    done = rec.kind == FULL;
                    self.copy_out(head, rec.len, out);
                }
                _ if *streaming => {
                    self.copy_out(head, rec.len, out);
                    done = rec.kind == LAST;
                    *streaming = !done;
                }
                // The tail of a stream whose first part a dead consumer took.
                _ => {}
            }
            self.advance(head, &rec, done);
            if done {
                return Ok(true);
            }
        }
    }

    fn copy_out(&self, head: u64, len: u64, out: &mut Vec<u8>) {
        // SAFETY: `peek` checked that the record lies within the buffer, and
        // its header (acquire) says its bytes are complete.
        let src = unsafe { std::slice::from_raw_parts(self.at(head).add(HEADER as usize), len as usize) };
        out.extend_from_slice(src);
    }

    /// Takes the message in the mailbox, if any. The caller is inside the
    /// receive side and has read the ring's header at `head` first (see
    /// [`super::mail`], "Order").
    #[inline]
    fn mail_take<R>(&self, read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Stop> {
        self.mail_take_quick(read).map_err(mail::corrupt)
    }

    /// [`mail_take`](Self::mail_take) for the inline common case of a
    /// receive: a corrupt header comes back as it is (see [`Mailbox::take`]).
    #[inline(always)]
    fn mail_take_quick<R>(&self, read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, u64> {
        match self.mail {
            Some(mail) => mail.take(&self.cons().mail_taken, read, || self.count_delivered()),
            None => Ok(None),
        }
    }

    #[inline]
    fn count_delivered(&self) {
        // Only the recv_lock holder writes it.
        let c = self.cons();
        c.delivered.store(c.delivered.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    #[inline(always)]
    fn advance(&self, head: u64, rec: &Record, delivered: bool) {
        let c = self.cons();
        if delivered {
            self.count_delivered();
        }
        c.head.store(head.wrapping_add(Record::size(rec.len)), Ordering::Release);
        self.notify(&self.ctrl.writers.0, 1);
    }

    /// Sleeps until data arrives, the ring closes, the deadline passes, or a
    /// slice ends and the writers are gone.
    fn wait_data(&self, deadline: Option<Instant>, writers_gone: Gone<'_>) -> Result<(), Stop> {
        let slice = wait::deadline(LIVENESS_SLICE).map(|s| deadline.map_or(s, |d| d.min(s)));
        let r = &self.ctrl.readers.0;
        let woken = wait::wait_until_ring(|| self.has_data() || self.is_closed(), r, slice);
        if !woken && wait::expired(deadline) {
            return Err(Stop::Timeout);
        }
        if writers_gone(!woken) && !self.has_data() {
            return Err(Stop::Disconnected);
        }
        Ok(())
    }

    /// Whether the producer of an unfinished stream is gone (dead, or gave
    /// up at a deadline): it stays inside the send side from the first part
    /// to the last, so nobody live is inside, and nothing more was
    /// published. Only looks: whoever enters the send side next repairs
    /// what a dead producer left.
    /// With `probe`, a biased producer's life is checked with `/proc` (at the
    /// end of a sleep slice).
    fn stream_abandoned(&self, probe: bool) -> bool {
        !self.ctrl.send.in_use(probe) && !self.has_data()
    }

    /// Receives one whole message into `out` (cleared first).
    ///
    /// A deadline bounds the wait for a message to *begin*: once part of a
    /// streamed message has been taken, the call waits for the rest as long
    /// as its producer is alive and making progress, since giving up would
    /// lose it; a `try_` or timed call gives up [`STREAM_STALL`] without
    /// progress after its deadline.
    pub(crate) fn recv(
        &self,
        out: &mut Vec<u8>,
        deadline: Option<Instant>,
        try_only: bool,
        writers_gone: Gone<'_>,
    ) -> Result<(), Stop> {
        out.clear();
        if try_only && self.looks_empty() {
            return Err(Stop::Timeout);
        }
        if self.recv_fast(&mut |msg: &[u8]| out.extend_from_slice(msg), None).is_ok() {
            return Ok(());
        }
        let bounded = try_only || deadline.is_some();
        loop {
            let held = self.acquire_recv(deadline, try_only)?;
            let mut streaming = false;
            // The stream's length so far, and when it last grew.
            let mut progress = (0, Instant::now());
            // Whether the last wait below ended without data (a slice ran out).
            let mut slept = false;
            loop {
                if self.drain_one(out, &mut streaming)? {
                    return Ok(());
                }
                if !streaming {
                    self.nothing_to_take(held, deadline, try_only, writers_gone)?;
                    break;
                }
                // Mid-stream: keep recv_lock so nobody else takes the rest.
                if self.stream_abandoned(slept) {
                    out.clear();
                    streaming = false;
                    continue;
                }
                if out.len() != progress.0 {
                    progress = (out.len(), Instant::now());
                }
                let mut slice = wait::deadline(LIVENESS_SLICE);
                if bounded {
                    let stalled = progress.1.checked_add(STREAM_STALL);
                    if (try_only || wait::expired(deadline)) && wait::expired(stalled) {
                        // The parts taken so far are dropped with `out`.
                        out.clear();
                        return Err(Stop::Timeout);
                    }
                    // (Not `Option::min`, for which `None` is the least.)
                    slice = match (slice, stalled) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                let r = &self.ctrl.readers.0;
                slept = !wait::wait_until_ring(|| self.has_data(), r, slice);
            }
        }
    }

    /// Receives one message and hands its bytes to `read` — in place when
    /// it is one record, else assembled in `parts` — returning what `read`
    /// returns.
    #[inline]
    pub(crate) fn recv_with<R>(
        self,
        parts: &mut Vec<u8>,
        deadline: Option<Instant>,
        try_only: bool,
        writers_gone: Gone<'_>,
        mut read: impl FnMut(&[u8]) -> R,
    ) -> Result<R, Stop> {
        // First, as a receiver polling with `try_` calls mostly finds nothing.
        if try_only && self.looks_empty() {
            return Err(Stop::Timeout);
        }
        if let Ok(r) = self.recv_fast(&mut read, None) {
            return Ok(r);
        }
        Ok(match self.recv_any(parts, deadline, try_only, writers_gone)? {
            Got::View(view) => read(view.bytes()),
            Got::Small(bytes, len) => read(&bytes[..len]),
            Got::Assembled => read(parts),
        })
    }

    /// The common case of a receive in one piece, kept small so that it
    /// inlines: the side is biased to this thread and a whole message waits
    /// at `head`. When not, nothing was done, and the [`Miss`] says why.
    ///
    /// The header is checked in one comparison against the only one this
    /// path takes, a whole message of this lap, plus its length against
    /// the end of the buffer; anything else (padding, a part of a stream, a
    /// corrupt word) goes to the general path, which
    /// [`peek`](Self::peek)s it and reports what is wrong. Nothing at all
    /// (a zero word at `head`, no mail) in an open ring is [`Miss::Empty`],
    /// and producers are told here, as [`has_data`](Self::has_data) would:
    /// a receiver polling with `try_` calls mostly finds that, and needs
    /// no second look (see `End::recv_msg` in `pipe` for what it saves).
    ///
    /// `fixed`: the length every message the caller can decode has
    /// ([`Message::SIZE`](super::Message::SIZE)), if there is one. Then the
    /// whole header word is compared with the one such a record has, and
    /// the record's size is a constant: no length is decoded from shared
    /// memory, and the length checks of the copy that follows fold away.
    /// A record of another length goes to the general path, which delivers
    /// it (the caller's `read` then says what is wrong with it).
    #[inline(always)]
    pub(crate) fn recv_fast<R>(&self, read: &mut impl FnMut(&[u8]) -> R, fixed: Option<usize>) -> Result<R, Miss> {
        let Some(_inside) = self.ctrl.recv.enter_biased_quick(self.fence) else { return Err(Miss::Unsure) };
        let head = self.cons().head.load(Ordering::Relaxed);
        if head % 8 != 0 {
            return Err(Miss::Unsure);
        }
        // The ring's header before the mailbox (see "Order" in `mail`).
        let word = self.word(head).load(Ordering::Acquire);
        match self.mail_take_quick(|msg| read(msg)) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(_) => return Err(Miss::Unsure),
        }
        if word == 0 {
            if self.is_closed() {
                return Err(Miss::Unsure);
            }
            self.mark_idle(head);
            return Err(Miss::Empty);
        }
        let len = match fixed {
            // (A longer one is no help: no header holds it.)
            Some(len) if len <= u32::MAX as usize => {
                if word != Record::encode(FULL, len as u64, self.lap(head)) {
                    return Err(Miss::Unsure);
                }
                len as u64
            }
            _ => {
                if word >> 32 != Record::encode(FULL, 0, self.lap(head)) >> 32 {
                    return Err(Miss::Unsure);
                }
                word & 0xffff_ffff
            }
        };
        if Record::size(len) > self.cap - (head & (self.cap - 1)) {
            return Err(Miss::Unsure);
        }
        // SAFETY: as in `View::bytes`: the record lies within the buffer
        // (its size was checked against the end of it just above) and is
        // published (acquire); we are inside the receive side, so it is
        // not released under us, and producers never write published bytes.
        let r = read(unsafe { std::slice::from_raw_parts(self.at(head).add(HEADER as usize), len as usize) });
        self.advance(head, &Record { kind: FULL, len }, true);
        Ok(r)
    }

    /// [`recv_fast`](Self::recv_fast), and for a receive that would wait
    /// (`blocking`), a few more looks over a fraction of a microsecond
    /// while the receivers' spin budget says spinning pays. The general
    /// path that a blocking receive takes next costs about as long as a
    /// reply takes to come back (it reads the clock twice to set up its
    /// wait), so a ping-pong's reply arrived during it and was seen only at
    /// its first poll. Measured (two processes, a duplex pipe, 8-byte
    /// messages, builds with and without these looks run in alternation):
    /// blocking round trips 0.22–0.24 µs without, 0.09–0.12 µs with them in
    /// the fast cross-core state; 0.40–0.51 µs and 0.36–0.46 µs in the slow
    /// one.
    ///
    /// Always inlined into the receive that calls it (one per message type
    /// and form): out of line, it took the ring through the stack and the
    /// consumer ran ~12 more instructions a message (callgrind, 64-byte
    /// typed stream: 143 -> 131 a receive, spins included). Measured as for
    /// [`write_record`](Self::write_record), with it: 0.644, 0.587, 0.632,
    /// 0.761, 0.510, 0.753x (median 0.64), against 0.233–0.775x (median
    /// 0.55, nine runs) for that change alone in the same alternation.
    #[inline(always)]
    pub(crate) fn recv_quick<R>(
        &self,
        read: &mut impl FnMut(&[u8]) -> R,
        fixed: Option<usize>,
        blocking: bool,
    ) -> Result<R, Miss> {
        // One loop, so that `recv_fast` and `read` are inlined once.
        let mut left = None;
        loop {
            let miss = match self.recv_fast(read, fixed) {
                Ok(r) => {
                    if left.is_some() {
                        // A wait that ended in spinning (see "Sides that
                        // sleep on every message" in `sync::wait`).
                        self.data_sleepers().spun();
                    }
                    return Ok(r);
                }
                Err(miss) => miss,
            };
            let looks = left.get_or_insert_with(|| {
                if blocking && self.data_sleepers().spin.load(Ordering::Relaxed) != 0 { QUICK_LOOKS } else { 0 }
            });
            if *looks == 0 {
                return Err(miss);
            }
            *looks -= 1;
            std::hint::spin_loop();
        }
    }

    /// The common case of [`recv_view`](Self::recv_view), inline as
    /// [`recv_fast`](Self::recv_fast) is: the receive side is biased to
    /// this thread, the mailbox is empty and a whole message of this lap
    /// waits at `head`. `None` for anything else (nothing was done): the
    /// general path answers, waits or reports. Measured (fork harness, a
    /// one-way pipe, 64-byte messages written in place with `reserve` and
    /// read with `recv_in_place`, builds alternated three times, session
    /// 17): 69.7–69.8 -> 59.3–59.9 ns a message (medians of three runs).
    #[inline(always)]
    pub(crate) fn view_fast(self) -> Option<View<'a>> {
        let ctrl: &'a RingCtrl = self.ctrl;
        let held = ctrl.recv.enter_biased_quick(self.fence)?;
        let head = self.cons().head.load(Ordering::Relaxed);
        if head % 8 != 0 {
            return None;
        }
        // The ring's header before the mailbox (see "Order" in `mail`): a
        // message there is older than the record, and is the general
        // path's to deliver first.
        let word = self.word(head).load(Ordering::Acquire);
        if self.mail.is_some_and(|mail| mail.pending(&self.cons().mail_taken)) {
            return None;
        }
        if word >> 32 != Record::encode(FULL, 0, self.lap(head)) >> 32 {
            return None;
        }
        let len = word & 0xffff_ffff;
        if Record::size(len) > self.cap - (head & (self.cap - 1)) {
            return None;
        }
        Some(View { ring: self, head, len: len as usize, _held: held })
    }

    /// Receives one message in place when it is a single record: the view
    /// holds `recv_lock` and releases the record when dropped. A streamed
    /// message is assembled into `scratch` instead.
    pub(crate) fn recv_view(
        self,
        scratch: &mut Vec<u8>,
        deadline: Option<Instant>,
        try_only: bool,
        writers_gone: Gone<'_>,
    ) -> Result<Option<View<'a>>, Stop> {
        Ok(match self.recv_any(scratch, deadline, try_only, writers_gone)? {
            Got::View(view) => Some(view),
            Got::Small(bytes, len) => {
                refill(scratch, &bytes[..len]);
                None
            }
            Got::Assembled => None,
        })
    }

    /// Receives one message in whichever form it comes (see [`Got`]).
    fn recv_any(
        self,
        scratch: &mut Vec<u8>,
        deadline: Option<Instant>,
        try_only: bool,
        writers_gone: Gone<'_>,
    ) -> Result<Got<'a>, Stop> {
        if try_only && self.looks_empty() {
            return Err(Stop::Timeout);
        }
        loop {
            let held = self.acquire_recv(deadline, try_only)?;
            // Skip padding and orphaned stream tails to the next message.
            loop {
                let head = self.cons().head.load(Ordering::Relaxed);
                let rec = self.peek(head)?;
                if let Some((bytes, len)) = self.mail_take(small)? {
                    return Ok(Got::Small(bytes, len));
                }
                let Some(rec) = rec else { break };
                match rec.kind {
                    FULL => return Ok(Got::View(View { ring: self, head, len: rec.len as usize, _held: held })),
                    FIRST => {
                        drop(held);
                        self.recv(scratch, deadline, try_only, writers_gone)?;
                        return Ok(Got::Assembled);
                    }
                    _ => self.advance(head, &rec, false),
                }
            }
            self.nothing_to_take(held, deadline, try_only, writers_gone)?;
        }
    }

    /// A receiver found no message: ends the call (closed, or `try_`), or
    /// lets go of `recv_lock` and waits for data before the caller looks
    /// again.
    fn nothing_to_take(
        &self,
        held: Entered<'_>,
        deadline: Option<Instant>,
        try_only: bool,
        writers_gone: Gone<'_>,
    ) -> Result<(), Stop> {
        if self.is_closed() {
            return Err(Stop::Closed);
        }
        self.mark_idle(self.cons().head.load(Ordering::Relaxed));
        drop(held);
        if try_only {
            return Err(Stop::Timeout);
        }
        self.wait_data(deadline, writers_gone)
    }
}

/// Why [`Ring::recv_fast`] delivered nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Miss {
    /// Nothing to take, in an open ring, as this thread looked from inside
    /// the receive side; producers know (the ring is marked idle).
    Empty,
    /// Anything else, or not known: the general path looks again and says
    /// what.
    Unsure,
}

/// A message as [`Ring::recv_any`] found it.
enum Got<'a> {
    /// A record, read in place.
    View(View<'a>),
    /// A message from the mailbox, copied (at most [`MAIL_MAX`] bytes; a
    /// `Vec` would cost an allocation per message).
    Small([u8; MAIL_MAX], usize),
    /// A streamed message, assembled in the caller's scratch buffer.
    Assembled,
}

/// Copies `src` into a record's payload at `dst`: in 8-byte loads and
/// stores up to [`WORD_COPY_MAX`] bytes (see there why), the last
/// `len % 8` bytes as they are.
///
/// # Safety
///
/// `dst` must be 8-byte aligned and have room for `src.len()` bytes rounded
/// up to 8, in the ring's buffer, which no one else writes meanwhile.
#[inline(always)]
unsafe fn copy_payload(dst: *mut u8, src: &[u8]) {
    if src.len() > WORD_COPY_MAX {
        // SAFETY: as the caller promised.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        return;
    }
    let words = src.chunks_exact(8);
    let rest = words.remainder();
    let whole = src.len() - rest.len();
    for (i, w) in words.enumerate() {
        let w = u64::from_ne_bytes(w.try_into().unwrap_or_default());
        // SAFETY: `dst` is 8-byte aligned and the word is inside the
        // record's room; an atomic store, so that the compiler keeps the
        // copy in words (see `WORD_COPY_MAX`).
        unsafe { &*dst.add(8 * i).cast::<AtomicU64>() }.store(w, Ordering::Relaxed);
    }
    // SAFETY: the last `rest.len()` (< 8) bytes of the room.
    unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), dst.add(whole), rest.len()) };
}

/// A copy of a mailbox message (at most [`MAIL_MAX`] bytes).
fn small(msg: &[u8]) -> ([u8; MAIL_MAX], usize) {
    let mut bytes = [0; MAIL_MAX];
    bytes[..msg.len()].copy_from_slice(msg);
    (bytes, msg.len())
}

/// `out` becomes a copy of `msg`.
fn refill(out: &mut Vec<u8>, msg: &[u8]) {
    out.clear();
    out.extend_from_slice(msg);
}

// The errors of the checks on every message, kept out of line.

#[cold]
fn misaligned(pos: u64) -> Stop {
    Stop::Broken(format!("corrupt ring index {pos}: not a multiple of 8"))
}

#[cold]
fn corrupt_header(word: u64, pos: u64) -> Stop {
    Stop::Broken(format!("corrupt record header {word:#018x} at position {pos}"))
}

/// Messages ever published on the ring behind `ctrl`.
pub(crate) fn published(ctrl: &RingCtrl) -> u64 {
    ctrl.prod.0.published.load(Ordering::SeqCst)
}

/// Room for one in-place message; holds `send_lock`.
pub(crate) struct Slot<'a> {
    ring: Ring<'a>,
    place: Place,
    len: usize,
    _held: Entered<'a>,
}

impl Slot<'_> {
    /// The bytes to fill.
    #[inline]
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `room` (or, inline, `fits_fast`) reserved `len` payload
        // bytes after the header at `pos`, contiguous and unpublished; we
        // hold send_lock, so nobody else writes them, and consumers read
        // them only after the header is published.
        unsafe { std::slice::from_raw_parts_mut(self.ring.at(self.place.pos).add(HEADER as usize), self.len) }
    }

    /// The bytes, shared.
    #[inline]
    pub(crate) fn bytes_ref(&self) -> &[u8] {
        // SAFETY: as in `bytes`.
        unsafe { std::slice::from_raw_parts(self.ring.at(self.place.pos).add(HEADER as usize), self.len) }
    }

    /// Publishes the message.
    #[inline]
    pub(crate) fn commit(self) {
        self.ring.publish(self.place, FULL, self.len as u64);
    }
}

/// One received message, read in place; holds `recv_lock` until dropped.
pub(crate) struct View<'a> {
    ring: Ring<'a>,
    head: u64,
    len: usize,
    _held: Entered<'a>,
}

impl View<'_> {
    /// The message.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `peek` (or, inline, `view_fast`) checked the record lies
        // within the buffer and is published; we hold recv_lock, so it is
        // not released under us, and producers never write published bytes.
        unsafe { std::slice::from_raw_parts(self.ring.at(self.head).add(HEADER as usize), self.len) }
    }
}

impl Drop for View<'_> {
    #[inline]
    fn drop(&mut self) {
        self.ring.advance(self.head, &Record { kind: FULL, len: self.len as u64 }, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in private, zeroed, 128-byte aligned memory.
    struct Owned {
        mem: *mut u8,
        layout: std::alloc::Layout,
    }

    const CAP: usize = MIN_CAPACITY;

    impl Owned {
        fn new() -> Owned {
            let size = std::mem::size_of::<RingCtrl>().next_multiple_of(128) + CAP;
            let layout = std::alloc::Layout::from_size_align(size, 128).unwrap();
            // SAFETY: a non-zero size.
            let mem = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!mem.is_null());
            RingCtrl::init(mem.cast()).unwrap();
            Owned { mem, layout }
        }

        fn ring(&self) -> Ring<'_> {
            let data = self.mem.wrapping_add(std::mem::size_of::<RingCtrl>().next_multiple_of(128));
            // SAFETY: the block holds an initialised RingCtrl followed by CAP
            // bytes that only this ring uses; both live as long as `self`.
            unsafe { Ring::new(&*self.mem.cast::<RingCtrl>(), data, CAP) }
        }
    }

    // SAFETY: the block is shared only through `Ring`, whose control block is
    // atomics and locks and whose bytes are handed out under those locks,
    // as between processes.
    unsafe impl Sync for Owned {}

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.mem, self.layout) };
        }
    }

    fn never_gone(_: bool) -> bool {
        false
    }

    /// A producer that dies after its header became visible but before it
    /// moved `tail`: the message is delivered once, and the next send does
    /// not overwrite it.
    #[test]
    fn a_record_published_by_a_producer_that_died_before_moving_tail_is_kept() {
        let owned = Owned::new();
        let ring = owned.ring();
        ring.send(b"first", None, false, &never_gone).unwrap();
        // The dying producer: holds send_lock, publishes everything but the
        // tail, and its thread ends without unlocking (a robust mutex then
        // reports the owner dead to the next locker, as for a dead process).
        std::thread::scope(|s| {
            s.spawn(|| {
                die_after_publishing(&owned.ring(), b"second");
            });
        });
        ring.send(b"third", None, false, &never_gone).unwrap();
        let mut out = Vec::new();
        for want in [&b"first"[..], b"second", b"third"] {
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(out, want);
        }
        assert!(matches!(ring.recv(&mut out, None, true, &never_gone), Err(Stop::Timeout)));
    }

    /// A producer that enters the send side, publishes `msg` but never moves
    /// `tail`, and "dies": the calling thread must end right after, still
    /// inside the side (a robust mutex, or a bias lock, whose thread ended
    /// reports its owner dead, as for a killed process).
    fn die_after_publishing(ring: &Ring<'_>, msg: &[u8]) {
        let (inside, _) = ring.ctrl.send.enter(None, false).unwrap();
        let place = ring.room(msg.len() as u64, None, false, &never_gone).unwrap();
        let tail = ring.prod().tail.load(Ordering::Relaxed);
        // SAFETY: `room` reserved these bytes, and we are inside the side.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), ring.at(place.pos).add(8), msg.len()) };
        ring.publish(place, FULL, msg.len() as u64);
        ring.prod().tail.store(tail, Ordering::Relaxed); // "died" before this store
        std::mem::forget(inside);
    }

    /// The same death, but a consumer takes the message before the next
    /// producer comes: `head` is then ahead of `tail`, and the repair must
    /// not take that for corruption.
    #[test]
    fn a_record_taken_before_the_repair_is_not_corruption() {
        let owned = Owned::new();
        let ring = owned.ring();
        std::thread::scope(|s| {
            s.spawn(|| die_after_publishing(&owned.ring(), b"orphan"));
        });
        let mut out = Vec::new();
        ring.recv(&mut out, None, true, &never_gone).unwrap();
        assert_eq!(out, b"orphan");
        ring.send(b"next", None, false, &never_gone).unwrap();
        ring.recv(&mut out, None, true, &never_gone).unwrap();
        assert_eq!(out, b"next");
        assert!(matches!(ring.recv(&mut out, None, true, &never_gone), Err(Stop::Timeout)));
    }

    /// Sends and receives `n` messages from the calling thread, enough for
    /// the send and receive sides to be biased to it.
    fn earn_bias(ring: &Ring<'_>) {
        let mut out = Vec::new();
        for i in 0..=super::super::side::BIAS_AFTER {
            ring.send(&i.to_le_bytes(), None, false, &never_gone).unwrap();
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(out, i.to_le_bytes());
        }
    }

    fn this_tid() -> u32 {
        crate::sys::process::current_tid()
    }

    /// A biased producer that dies inside the side (after publishing, before
    /// moving `tail`): the next producer revokes the bias, learns that its
    /// owner died, and repairs the tail; nothing is lost or overwritten.
    #[test]
    fn a_biased_producer_that_dies_inside_is_repaired_after() {
        let owned = Owned::new();
        let ring = owned.ring();
        std::thread::scope(|s| {
            s.spawn(|| {
                let ring = owned.ring();
                earn_bias(&ring);
                assert_eq!(ring.ctrl.send.biased_to(), this_tid(), "the send side is biased to this thread");
                die_after_publishing(&ring, b"last words");
            });
        });
        ring.send(b"after", Some(Instant::now() + Duration::from_secs(20)), false, &never_gone).unwrap();
        assert_eq!(ring.ctrl.send.biased_to(), 0, "the dead owner's bias is gone");
        let mut out = Vec::new();
        for want in [&b"last words"[..], b"after"] {
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(out, want);
        }
        assert!(matches!(ring.recv(&mut out, None, true, &never_gone), Err(Stop::Timeout)));
    }

    /// A thread holding a view cannot receive again on the same ring: an
    /// error, whether the side goes through its mutex or is biased to it.
    #[test]
    fn a_thread_inside_a_side_cannot_enter_it_again() {
        let owned = Owned::new();
        let ring = owned.ring();
        for biased in [false, true] {
            if biased {
                earn_bias(&ring);
                assert_eq!(ring.ctrl.recv.biased_to(), this_tid());
            }
            ring.send(b"one", None, false, &never_gone).unwrap();
            let mut scratch = Vec::new();
            let view = ring.recv_view(&mut scratch, None, false, &never_gone).unwrap().unwrap();
            let mut out = Vec::new();
            let again = ring.recv(&mut out, None, false, &never_gone);
            assert!(matches!(&again, Err(Stop::Broken(m)) if m.contains("already inside")), "{again:?}");
            assert_eq!(view.bytes(), b"one");
            drop(view);
            assert!(matches!(ring.recv(&mut out, None, true, &never_gone), Err(Stop::Timeout)), "delivered once");
        }
    }

    /// A live owner inside the side (holding a slot) keeps others out until
    /// it leaves; a revoker then takes the bias, and the old owner, when it
    /// comes back, goes through the mutex with everyone else.
    #[test]
    fn a_live_owner_is_revoked_only_outside_an_operation() {
        let owned = Owned::new();
        let (to_main, from_owner) = std::sync::mpsc::channel();
        let (to_owner, from_main) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let owned = &owned;
            s.spawn(move || {
                let ring = owned.ring();
                earn_bias(&ring);
                let mut slot = ring.reserve(4, None, false, &never_gone).unwrap();
                slot.bytes().copy_from_slice(b"slot");
                to_main.send(this_tid()).unwrap();
                from_main.recv().unwrap();
                slot.commit();
                to_main.send(0).unwrap();
                from_main.recv().unwrap();
                // Revoked meanwhile: this send goes through the mutex.
                ring.send(b"old owner", None, false, &never_gone).unwrap();
                assert_eq!(ring.ctrl.send.biased_to(), 0);
            });
            let owner = from_owner.recv().unwrap();
            let ring = owned.ring();
            assert_eq!(ring.ctrl.send.biased_to(), owner);
            // Inside an operation: a try_ send gives up, a timed one times out.
            assert!(matches!(ring.send(b"x", None, true, &never_gone), Err(Stop::Timeout)));
            let soon = Some(Instant::now() + Duration::from_millis(50));
            assert!(matches!(ring.send(b"x", soon, false, &never_gone), Err(Stop::Timeout)));
            to_owner.send(()).unwrap();
            from_owner.recv().unwrap();
            ring.send(b"revoker", None, false, &never_gone).unwrap();
            assert_eq!(ring.ctrl.send.biased_to(), 0, "revoked");
            to_owner.send(()).unwrap();
        });
        let ring = owned.ring();
        let mut out = Vec::new();
        for want in [&b"slot"[..], b"revoker", b"old owner"] {
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(out, want);
        }
    }

    /// The same death after a padding record and the record behind it.
    #[test]
    fn a_padded_record_of_a_producer_that_died_before_moving_tail_is_kept() {
        let owned = Owned::new();
        let ring = owned.ring();
        let mut out = Vec::new();
        // Move near the end of the buffer, so the next record wraps.
        let filler = vec![7u8; CAP / 2 - 64];
        for _ in 0..2 {
            ring.send(&filler, None, false, &never_gone).unwrap();
            ring.recv(&mut out, None, true, &never_gone).unwrap();
        }
        let big = vec![9u8; CAP / 2 - 8];
        std::thread::scope(|s| {
            s.spawn(|| {
                let ring = owned.ring();
                let (inside, _) = ring.ctrl.send.enter(None, false).unwrap();
                let place = ring.room(big.len() as u64, None, false, &never_gone).unwrap();
                assert!(place.pad.is_some(), "the test needs a wrapping record");
                let tail = ring.prod().tail.load(Ordering::Relaxed);
                // SAFETY: as above.
                unsafe { std::ptr::copy_nonoverlapping(big.as_ptr(), ring.at(place.pos).add(8), big.len()) };
                ring.publish(place, FULL, big.len() as u64);
                ring.prod().tail.store(tail, Ordering::Relaxed);
                std::mem::forget(inside);
            });
        });
        ring.send(b"after", None, false, &never_gone).unwrap();
        ring.recv(&mut out, None, true, &never_gone).unwrap();
        assert_eq!(out, big);
        ring.recv(&mut out, None, true, &never_gone).unwrap();
        assert_eq!(out, b"after");
    }

    /// The waker takes the sleeper it woke off the count at once, so the
    /// messages sent while the sleeper is waking up make no more system
    /// calls ("One wake per sleep" in `sync::wait`).
    #[test]
    fn a_woken_receiver_is_off_the_count_before_it_runs() {
        let owned = Owned::new();
        let ring = owned.ring();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                let mut out = Vec::new();
                owned.ring().recv(&mut out, None, false, &never_gone).unwrap();
                assert_eq!(out, b"wake up");
            });
            let tid = rx.recv().unwrap();
            // Wait until the receiver is counted and asleep in the kernel.
            let stat = format!("/proc/self/task/{tid}/stat");
            let start = Instant::now();
            loop {
                let state = std::fs::read_to_string(&stat).unwrap_or_default();
                let asleep = state.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('S'));
                if asleep && ring.ctrl.readers.0.waiters.load(Ordering::SeqCst) == 1 {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(20), "the receiver never went to sleep");
                std::thread::sleep(Duration::from_millis(1));
            }
            ring.send(b"wake up", None, false, &never_gone).unwrap();
            assert_eq!(ring.ctrl.readers.0.waiters.load(Ordering::SeqCst), 0, "the sender counted it out");
        });
    }

    #[test]
    fn a_producer_that_finds_room_without_sleeping_lets_receivers_fence_lightly() {
        let owned = Owned::new();
        let ring = owned.ring();
        let msg = [7u8; 24];
        let mut sent = 0;
        while ring.send(&msg, None, true, &never_gone).is_ok() {
            sent += 1;
        }
        // As a producer that slept on the full ring would have left it.
        let writers = &ring.ctrl.writers.0;
        wait::fence_before_sleep_on(&[writers]);
        assert!(writers.describe().contains("fence fully"), "{}", writers.describe());
        let mut out = Vec::new();
        for _ in 0..sent {
            ring.recv(&mut out, None, false, &never_gone).unwrap();
        }
        // Its cached `head` says full: the send waits for room, and finds it.
        ring.send(&msg, None, false, &never_gone).unwrap();
        if wait::remote_fence() {
            // (Without the barrier the side stays *arming*, which only a
            // sleeper turns into anything else.)
            assert!(writers.describe().contains("fence lightly"), "{}", writers.describe());
        }
    }

    /// A mailbox line and `idle` word, for ring 0.
    #[derive(Default)]
    struct Mails {
        line: crate::channel::mail::MailLine,
        idle: AtomicU64,
    }

    impl Mails {
        fn mailbox(&self) -> Mailbox<'_> {
            Mailbox::new(&self.line, 0, &self.idle)
        }
    }

    /// Sends `msg` on `ring`; whether it went through the mailbox (the
    /// ring's `tail` did not move).
    fn send_says_mail(ring: &Ring<'_>, msg: &[u8]) -> bool {
        let tail = ring.prod().tail.load(Ordering::Relaxed);
        ring.send(msg, None, false, &never_gone).unwrap();
        ring.prod().tail.load(Ordering::Relaxed) == tail
    }

    /// Small messages take the mailbox only while the ring is drained, and
    /// whatever way each went, they arrive in the order sent.
    #[test]
    fn a_burst_through_ring_and_mailbox_keeps_its_order() {
        let (owned, mails) = (Owned::new(), Mails::default());
        let ring = owned.ring().with_mail(mails.mailbox());
        let sizes = [8, 0, 16, 17, 3, 100, 16, 1, 2000, 0];
        let msgs: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| vec![i as u8 + 1; n]).collect();
        let ways: Vec<bool> = msgs.iter().map(|m| send_says_mail(&ring, m)).collect();
        assert!(ways[0], "the first small message takes the empty ring's mailbox");
        assert!(ways[1..].iter().all(|&mail| !mail), "the rest wait in the ring behind it: {ways:?}");
        let mut out = Vec::new();
        for (i, want) in msgs.iter().enumerate() {
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(&out, want, "message {i}");
        }
        assert!(matches!(ring.recv(&mut out, None, true, &never_gone), Err(Stop::Timeout)));
        // That empty look told producers the ring is drained.
        assert!(send_says_mail(&ring, b"small again"));
        assert!(!send_says_mail(&ring, &[7; 17]), "17 bytes never fit");
        for want in [&b"small again"[..], &[7; 17]] {
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(out, want);
        }
    }

    /// A view of a message that came through the mailbox is a copy: the
    /// message is consumed when the view is made.
    #[test]
    fn a_message_from_the_mailbox_is_viewed_as_a_copy() {
        let (owned, mails) = (Owned::new(), Mails::default());
        let ring = owned.ring().with_mail(mails.mailbox());
        assert!(send_says_mail(&ring, b"tiny"));
        let mut scratch = Vec::new();
        assert!(ring.recv_view(&mut scratch, None, true, &never_gone).unwrap().is_none(), "not in place");
        assert_eq!(scratch, b"tiny");
        assert!(matches!(ring.recv_view(&mut scratch, None, true, &never_gone), Err(Stop::Timeout)));
    }

    /// With a fixed length, the inline receive takes only a whole record of
    /// exactly that length; any other is left for the general path.
    #[test]
    fn a_fixed_length_inline_receive_leaves_other_records() {
        let owned = Owned::new();
        let ring = owned.ring();
        earn_bias(&ring);
        let mut read = <[u8]>::to_vec;
        ring.send(&[1; 64], None, true, &never_gone).unwrap();
        assert_eq!(ring.recv_fast(&mut read, Some(64)), Ok(vec![1; 64]));
        for other in [vec![2; 72], vec![3; 56], Vec::new()] {
            ring.send(&other, None, true, &never_gone).unwrap();
            assert_eq!(ring.recv_fast(&mut read, Some(64)), Err(Miss::Unsure), "{} bytes", other.len());
            assert_eq!(ring.recv_fast(&mut read, None), Ok(other), "still there");
        }
        // A fixed length no header can hold is no help: ignored.
        ring.send(&[5; 8], None, true, &never_gone).unwrap();
        assert_eq!(ring.recv_fast(&mut read, Some(1 << 32)), Ok(vec![5; 8]));
        // Headers of that length that are not a whole record of this lap
        // lying within the buffer: a stream's first part (the general path
        // assembles it), and forged ones (it reports them).
        let head = ring.cons().head.load(Ordering::Relaxed);
        let lap = ring.lap(head);
        for (pos, word, corrupt) in [
            (head, Record::encode(FIRST, 64, lap), false),
            (head, Record::encode(FULL, 64, lap + 1), true),
            (CAP as u64 - 8, Record::encode(FULL, 64, 0), true),
        ] {
            ring.cons().head.store(pos, Ordering::Relaxed);
            ring.word(pos).store(word, Ordering::Release);
            assert_eq!(ring.recv_fast(&mut read, Some(64)), Err(Miss::Unsure), "{word:#x} at {pos}");
            assert_eq!(ring.cons().head.load(Ordering::Relaxed), pos, "nothing taken");
            assert_eq!(matches!(ring.peek(pos), Err(Stop::Broken(_))), corrupt, "{word:#x} at {pos}");
            ring.word(pos).store(0, Ordering::Relaxed);
        }
    }

    /// Every length up to past [`WORD_COPY_MAX`] arrives byte for byte,
    /// from sources at every alignment, through the inline send (the
    /// side biased) and the general path, and across the buffer's end,
    /// where the inline send leaves the padding to the general path.
    #[test]
    fn payloads_of_every_length_and_alignment_arrive_whole() {
        let owned = Owned::new();
        let ring = owned.ring();
        let mut out = Vec::new();
        let src: Vec<u8> = (0..WORD_COPY_MAX + 40).map(|i| (i * 7 + 3) as u8).collect();
        let mut sent = 0u64;
        for round in 0..2 {
            if round == 1 {
                earn_bias(&ring);
            }
            for len in 0..=WORD_COPY_MAX + 17 {
                let msg = &src[len % 8..len % 8 + len];
                ring.send(msg, None, true, &never_gone).unwrap();
                ring.recv(&mut out, None, true, &never_gone).unwrap();
                assert_eq!(out, msg, "{len} bytes, round {round}");
                sent += Record::size(len as u64);
            }
        }
        assert!(sent > 2 * CAP as u64, "the buffer's end was crossed");
    }

    /// The inline reserve gives a slot only where the inline send would
    /// write: the side biased to this thread, room by the cached `head`,
    /// no padding needed, an open ring, a record that fits at all; for
    /// anything else it does nothing and the general path answers.
    #[test]
    fn the_inline_reserve_takes_only_the_common_case() {
        let owned = Owned::new();
        let ring = owned.ring();
        let mut out = Vec::new();
        assert!(ring.reserve_fast(8).is_none(), "not biased yet");
        earn_bias(&ring);
        let mut slot = ring.reserve_fast(8).expect("biased, room");
        slot.bytes().copy_from_slice(b"in place");
        slot.commit();
        ring.recv(&mut out, None, true, &never_gone).unwrap();
        assert_eq!(out, b"in place");
        // Dropped uncommitted: nothing sent, and the side is free again.
        drop(ring.reserve_fast(8).expect("room"));
        assert!(matches!(ring.recv(&mut out, None, true, &never_gone), Err(Stop::Timeout)));
        let held = ring.reserve_fast(8).expect("room");
        assert!(ring.reserve_fast(8).is_none(), "this thread is inside already");
        drop(held);
        assert!(ring.reserve_fast(ring.max_chunk() + 1).is_none(), "too large for one record");
        // Write until the inline reserve says no: the next record would
        // need padding in front of it, or the cached `head` shows no room.
        let mut n = 0;
        while ring.reserve_fast(1000).map(Slot::commit).is_some() {
            n += 1;
        }
        let tail = ring.prod().tail.load(Ordering::Relaxed);
        let size = Record::size(1000);
        assert!(size > CAP as u64 - tail % CAP as u64 || !ring.fits_cached(tail, size + HEADER));
        for _ in 0..n {
            ring.recv(&mut out, None, true, &never_gone).unwrap();
            assert_eq!(out.len(), 1000);
        }
        // The ring is empty now; the general path pads or reads `head`.
        ring.reserve(1000, None, true, &never_gone).expect("room").commit();
        ring.recv(&mut out, None, true, &never_gone).unwrap();
        assert_eq!(out.len(), 1000);
        ring.close();
        assert!(ring.reserve_fast(8).is_none(), "closed");
        assert!(matches!(ring.reserve(8, None, true, &never_gone), Err(Stop::Closed)));
    }

    /// The inline receive answers "empty" itself only as the thread the
    /// side is biased to, for an open ring with nothing at `head` and no
    /// mail, and then tells producers the ring is drained; anything else
    /// (a corrupt mail header, a closed ring) is for the general path.
    #[test]
    fn only_an_open_drained_ring_is_empty_to_the_inline_receive() {
        let (owned, mails) = (Owned::new(), Mails::default());
        let ring = owned.ring().with_mail(mails.mailbox());
        let mut read = <[u8]>::to_vec;
        assert_eq!(ring.recv_fast(&mut read, None), Err(Miss::Unsure), "not biased yet");
        earn_bias(&ring);
        assert_eq!(ring.recv_fast(&mut read, None), Err(Miss::Empty));
        assert!(send_says_mail(&ring, b"mail"));
        assert_eq!(ring.recv_fast(&mut read, None), Ok(b"mail".to_vec()));
        assert!(!send_says_mail(&ring, &[7; 100]), "too big for the mailbox");
        assert_eq!(ring.recv_fast(&mut read, None), Ok(vec![7; 100]));
        let head = ring.cons().head.load(Ordering::Relaxed);
        assert_ne!(mails.idle.load(Ordering::Relaxed), head);
        assert_eq!(ring.recv_fast(&mut read, None), Err(Miss::Empty));
        assert_eq!(mails.idle.load(Ordering::Relaxed), head, "producers know the ring is drained");
        assert!(send_says_mail(&ring, b"again"), "so small messages take the mailbox again");
        mails.mailbox().forge_header(0x0bad_0bad);
        assert_eq!(ring.recv_fast(&mut read, None), Err(Miss::Unsure), "a corrupt mail header");
        mails.mailbox().forge_header(0);
        assert_eq!(ring.recv_fast(&mut read, None), Err(Miss::Empty));
        ring.close();
        assert_eq!(ring.recv_fast(&mut read, None), Err(Miss::Unsure), "closed: the general path says so");
    }

    /// The inline in-place receive gives a view only of a whole record of
    /// this lap at `head` with the side biased and the mailbox empty; a
    /// message in the mailbox (older than any record), an empty ring and a
    /// header that is not such a record are the general path's.
    #[test]
    fn the_inline_view_takes_only_a_whole_record_with_no_mail_waiting() {
        let (owned, mails) = (Owned::new(), Mails::default());
        let ring = owned.ring().with_mail(mails.mailbox());
        let mut scratch = Vec::new();
        assert!(!send_says_mail(&ring, &[3; 40]));
        assert!(ring.view_fast().is_none(), "not biased yet");
        assert_eq!(ring.recv_view(&mut scratch, None, true, &never_gone).unwrap().unwrap().bytes(), &[3; 40]);
        earn_bias(&ring);
        assert!(ring.view_fast().is_none(), "empty");
        // (A receive that finds the ring empty tells producers so, and small
        // messages take the mailbox again.)
        assert_eq!(ring.recv_fast(&mut <[u8]>::to_vec, None), Err(Miss::Empty));
        assert!(send_says_mail(&ring, b"mail"));
        assert!(!send_says_mail(&ring, &[4; 40]), "the ring is not drained: a record");
        assert!(ring.view_fast().is_none(), "the mail first");
        assert!(ring.recv_view(&mut scratch, None, true, &never_gone).unwrap().is_none());
        assert_eq!(scratch, b"mail");
        let view = ring.view_fast().expect("a whole record");
        assert_eq!(view.bytes(), &[4; 40]);
        assert!(ring.view_fast().is_none(), "this thread is inside already");
        drop(view);
        assert!(ring.view_fast().is_none(), "released: empty again");
        // A header that is not a whole record of this lap: left alone.
        assert!(!send_says_mail(&ring, &[5; 40]));
        let head = ring.cons().head.load(Ordering::Relaxed);
        let good = ring.word(head).load(Ordering::Relaxed);
        ring.word(head).store(Record::encode(FULL, 40, ring.lap(head) + 1), Ordering::Relaxed);
        assert!(ring.view_fast().is_none(), "a stale lap");
        assert!(matches!(ring.recv_view(&mut scratch, None, true, &never_gone), Err(Stop::Broken(_))));
        ring.word(head).store(good, Ordering::Relaxed);
        assert_eq!(ring.view_fast().expect("the record").bytes(), &[5; 40]);
    }

    /// A mailbox header that a peer overwrote is reported by every form of
    /// receive; the ring's own messages behind it are not lost.
    #[test]
    fn a_corrupt_mailbox_is_reported_not_delivered() {
        let (owned, mails) = (Owned::new(), Mails::default());
        let ring = owned.ring().with_mail(mails.mailbox());
        assert!(send_says_mail(&ring, b"ok"));
        mails.mailbox().forge_header(0x0bad_0bad);
        let mut out = Vec::new();
        assert!(ring.has_data(), "receivers look");
        let got = ring.recv(&mut out, None, true, &never_gone);
        assert!(matches!(&got, Err(Stop::Broken(why)) if why.contains("mailbox")), "{got:?}");
        let got = ring.recv_view(&mut out, None, true, &never_gone).map(|v| v.is_some());
        assert!(matches!(&got, Err(Stop::Broken(why)) if why.contains("mailbox")), "{got:?}");
    }
}
