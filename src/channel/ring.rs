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
//! # Locks and indices
//!
//! `tail` (written only under `send_lock`) and `head` (written only under
//! `recv_lock`) are monotonically increasing byte positions. Between one
//! producer and one consumer the ring is lock-free: each side takes only its
//! own lock, so a `Pipe`'s single sender and receiver never contend, and
//! several producers (or consumers) of a `Queue` take turns. A record is
//! published by storing `tail` after its bytes are complete (release); a
//! consumer reads `tail` (acquire) and never looks past it.
//!
//! # Crashes
//!
//! A producer killed mid-write never moved `tail`: its half-written record
//! is invisible and overwritten by the next producer, who finds `send_lock`
//! with [`Locked::OwnerDied`] and simply carries on. A consumer killed
//! mid-read never moved `head`: the next consumer reads the same record
//! again (it was never delivered). Large messages travel as several chunks
//! (`FIRST`, `MIDDLE`…, `LAST`) under one hold of `send_lock`; a stream whose
//! producer died or gave up is dropped whole by the consumer (a new `FIRST`
//! or `FULL` record, or a free `send_lock` with no data, ends it) — so a
//! message is delivered entire or not at all, never truncated.
//!
//! # Waiting
//!
//! Consumers sleep on `data_seq`, producers on `space_seq`, each bumped
//! after the index moves, with waiter counts so that nobody makes a system
//! call when nobody sleeps (see [`crate::sync::wait`]). Sleeps are cut into
//! [`LIVENESS_SLICE`] pieces so a sleeper notices a dead peer in bounded time.
//!
//! # Hostile peers
//!
//! Every header and index read from shared memory is checked before use:
//! `tail - head` within the capacity, a record within the published bytes,
//! a known kind and check bits. A violation is [`Stop::Broken`], never an
//! out-of-bounds access or a panic.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sync::raw::RawMutex;
use crate::sync::wait;
use crate::sys::pthread::Locked;

/// The smallest ring, in bytes.
pub(crate) const MIN_CAPACITY: usize = 4096;
/// How long a sleeper sleeps before it looks whether its peers are alive.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(100);

const HEADER: u64 = 8;
const CHECK: u64 = 0x6d_7072; // "mpr"
const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;
const PAD: u8 = 5;

/// Pads its content to a cache line of its own, so the two sides of a ring
/// do not slow each other down.
#[repr(C, align(64))]
pub(crate) struct Line<T>(pub(crate) T);

#[repr(C)]
struct Producer {
    tail: AtomicU64,
    data_seq: AtomicU32,
    data_waiters: AtomicU32,
}

#[repr(C)]
struct Consumer {
    head: AtomicU64,
    space_seq: AtomicU32,
    space_waiters: AtomicU32,
}

/// Flags shared by both sides.
#[repr(C)]
pub(crate) struct Status {
    /// Set by `close()`: no more sends; receivers drain, then stop.
    pub(crate) closed: AtomicU32,
    /// Whole messages in the ring (approximate under a hostile peer).
    pub(crate) count: AtomicU32,
    /// Whole messages ever published (counted before they become visible).
    pub(crate) published: AtomicU64,
}

/// The shared state of one ring. Every field is an atomic or a lock, so any
/// bit pattern a peer writes is a valid value.
#[repr(C)]
pub(crate) struct RingCtrl {
    send_lock: Line<RawMutex>,
    recv_lock: Line<RawMutex>,
    prod: Line<Producer>,
    cons: Line<Consumer>,
    status: Line<Status>,
}

impl RingCtrl {
    /// Initialises a zeroed control block.
    pub(crate) fn init(this: *mut RingCtrl) -> std::io::Result<()> {
        // SAFETY: `this` points to a zeroed, not yet shared control block;
        // `&raw mut` projects to the fields without creating references.
        let (send, recv) = unsafe { (&raw mut (*this).send_lock, &raw mut (*this).recv_lock) };
        RawMutex::init(send.cast(), false)?;
        RawMutex::init(recv.cast(), false)
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

/// Holds one of the ring's locks; unlocks on drop.
struct Held<'a>(&'a RawMutex);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn acquire(lock: &RawMutex, deadline: Option<Instant>, try_only: bool) -> Result<Held<'_>, Stop> {
    let got = if try_only { lock.try_lock() } else { lock.lock_until(deadline) };
    match got {
        // A dead holder left nothing half-published (see the module docs).
        Locked::Yes | Locked::OwnerDied => Ok(Held(lock)),
        Locked::Busy => Err(Stop::Timeout),
        Locked::Unusable(e) => Err(Stop::Broken(format!("channel lock unusable: {e}"))),
    }
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

    fn encode(kind: u8, len: u64) -> u64 {
        len | (u64::from(kind) << 32) | (CHECK << 40)
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
    pub(crate) unsafe fn new(ctrl: &'a RingCtrl, data: *mut u8, cap: usize) -> Ring<'a> {
        debug_assert!(cap.is_power_of_two() && cap >= MIN_CAPACITY);
        Ring { ctrl, data, cap: cap as u64 }
    }

    /// The largest payload one record can carry; larger messages are
    /// streamed in chunks of this size.
    pub(crate) fn max_chunk(&self) -> usize {
        (self.cap / 2 - HEADER) as usize
    }

    pub(crate) fn status(&self) -> &Status {
        &self.ctrl.status.0
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

    /// Closes the ring and wakes everyone.
    pub(crate) fn close(&self) {
        self.status().closed.store(1, Ordering::SeqCst);
        self.wake_all();
    }

    /// Wakes every sleeper on both sides (after a close, or when peers leave).
    pub(crate) fn wake_all(&self) {
        self.prod().data_seq.fetch_add(1, Ordering::SeqCst);
        wait::wake(&self.prod().data_seq, &self.prod().data_waiters, u32::MAX);
        self.cons().space_seq.fetch_add(1, Ordering::SeqCst);
        wait::wake(&self.cons().space_seq, &self.cons().space_waiters, u32::MAX);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.status().closed.load(Ordering::SeqCst) != 0
    }

    /// Whole messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.status().count.load(Ordering::Relaxed) as usize
    }

    /// Bytes free, as seen now.
    pub(crate) fn free(&self) -> usize {
        let head = self.cons().head.load(Ordering::Acquire);
        let tail = self.prod().tail.load(Ordering::Acquire);
        self.cap.saturating_sub(tail.wrapping_sub(head)) as usize
    }

    /// Whether a record could be read now (without a lock; a hint).
    pub(crate) fn has_data(&self) -> bool {
        self.prod().tail.load(Ordering::Acquire) != self.cons().head.load(Ordering::Acquire)
    }

    /// The futex word receivers sleep on, and its waiter count (for `wait`
    /// over several channels).
    pub(crate) fn data_word(&self) -> (&'a AtomicU32, &'a AtomicU32) {
        let p: &'a Producer = &self.ctrl.prod.0;
        (&p.data_seq, &p.data_waiters)
    }

    // ----- producing -----

    /// Sleeps until `space_seq` moves from `seq`, the deadline passes, or a
    /// slice ends and the readers are gone.
    fn wait_space(&self, seq: u32, deadline: Option<Instant>, readers_gone: Gone<'_>) -> Result<(), Stop> {
        let slice = wait::deadline(LIVENESS_SLICE).map(|s| deadline.map_or(s, |d| d.min(s)));
        let c = self.cons();
        let woken = wait::wait(&c.space_seq, seq, &c.space_waiters, slice);
        if !woken && wait::expired(deadline) {
            return Err(Stop::Timeout);
        }
        if readers_gone(!woken) {
            return Err(Stop::Disconnected);
        }
        Ok(())
    }

    /// Waits (holding `send_lock`) until a record of `len` payload bytes fits
    /// contiguously; returns the position to write it at, after writing a
    /// padding record if the end of the buffer was too short.
    fn room(&self, len: u64, deadline: Option<Instant>, try_only: bool, readers_gone: Gone<'_>) -> Result<u64, Stop> {
        let size = Record::size(len);
        loop {
            if self.is_closed() {
                return Err(Stop::Closed);
            }
            let seq = self.cons().space_seq.load(Ordering::SeqCst);
            let head = self.cons().head.load(Ordering::Acquire);
            let tail = self.prod().tail.load(Ordering::Relaxed);
            let used = self.used(head, tail)?;
            let to_end = self.cap - (tail & (self.cap - 1));
            let need = if size <= to_end { size } else { to_end + size };
            if self.cap - used >= need {
                if size > to_end {
                    // SAFETY: `tail` is 8-aligned, `to_end >= 8` bytes are
                    // free at it, and only the send_lock holder writes there.
                    unsafe { self.at(tail).cast::<u64>().write(Record::encode(PAD, to_end - HEADER)) };
                    return Ok(tail + to_end);
                }
                return Ok(tail);
            }
            if try_only {
                return Err(Stop::Timeout);
            }
            self.wait_space(seq, deadline, readers_gone)?;
        }
    }

    /// Publishes a record of `kind` and `len` bytes at `pos` (payload already
    /// written) and wakes a receiver.
    fn publish(&self, pos: u64, kind: u8, len: u64) {
        // SAFETY: `room` reserved `Record::size(len)` bytes at `pos`.
        unsafe { self.at(pos).cast::<u64>().write(Record::encode(kind, len)) };
        let p = self.prod();
        if matches!(kind, FULL | LAST) {
            // Before the message is visible, so a receiver never sees it
            // uncounted (JoinableQueue::task_done relies on that).
            self.status().published.fetch_add(1, Ordering::SeqCst);
            self.status().count.fetch_add(1, Ordering::Relaxed);
        }
        p.tail.store(pos + Record::size(len), Ordering::Release);
        p.data_seq.fetch_add(1, Ordering::SeqCst);
        // A part of a stream is for the consumer holding `recv_lock` in the
        // middle of it; waking just one sleeper could wake another consumer,
        // which then blocks on `recv_lock`, leaving the first asleep for a
        // whole liveness slice. So parts wake everyone.
        let n = if kind == FULL { 1 } else { u32::MAX };
        wait::wake(&p.data_seq, &p.data_waiters, n);
    }

    fn write_record(&self, pos: u64, kind: u8, payload: &[u8]) {
        // SAFETY: `room` reserved the record's bytes at `pos`, contiguous and
        // inside the buffer; the payload follows the 8-byte header.
        unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), self.at(pos).add(HEADER as usize), payload.len()) };
        self.publish(pos, kind, payload.len() as u64);
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
            let to_end = self.cap - (tail & (self.cap - 1));
            tail += if size <= to_end { size } else { to_end + size };
            if tail - start > free {
                return Ok(false);
            }
            left -= chunk;
        }
        Ok(true)
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
        let _held = acquire(&self.ctrl.send_lock.0, deadline, try_only)?;
        let max = self.max_chunk();
        if msg.len() <= max {
            let pos = self.room(msg.len() as u64, deadline, try_only, readers_gone)?;
            self.write_record(pos, FULL, msg);
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
            let pos = self.room(chunk.len() as u64, deadline, false, readers_gone)?;
            self.write_record(pos, kind, chunk);
        }
        Ok(())
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
        let held = acquire(&self.ctrl.send_lock.0, deadline, try_only)?;
        let pos = self.room(len as u64, deadline, try_only, readers_gone)?;
        Ok(Slot { ring: self, pos, len, _held: held })
    }

    // ----- consuming -----

    /// Reads the header at `head`, checked against what is published.
    fn record_at(&self, head: u64, tail: u64) -> Result<Record, Stop> {
        // SAFETY: `head` is 8-aligned (checked by `used`) and `tail - head >=
        // 8`, so 8 published bytes are there; any bit pattern is a valid u64.
        let word = unsafe { self.at(head).cast::<u64>().read() };
        let (len, kind, check) = (word & 0xffff_ffff, (word >> 32) as u8, word >> 40);
        let to_end = self.cap - (head & (self.cap - 1));
        let size = Record::size(len);
        let valid = check == CHECK
            && matches!(kind, FULL | FIRST | MIDDLE | LAST | PAD)
            && size <= to_end
            && size <= tail - head
            && (kind != PAD || size == to_end);
        if !valid {
            return Err(Stop::Broken(format!("corrupt record header {word:#018x} at position {head}")));
        }
        Ok(Record { kind, len })
    }

    /// Consumes published records into `out` until one whole message is
    /// there (`Ok(true)`) or the ring runs dry (`Ok(false)`); `streaming`
    /// says whether `out` holds the first part of a streamed message.
    fn drain_one(&self, out: &mut Vec<u8>, streaming: &mut bool) -> Result<bool, Stop> {
        let c = self.cons();
        loop {
            let head = c.head.load(Ordering::Relaxed);
            let tail = self.prod().tail.load(Ordering::Acquire);
            if self.used(head, tail)? == 0 {
                return Ok(false);
            }
            let rec = self.record_at(head, tail)?;
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
        // SAFETY: `record_at` checked that the record lies within the
        // published bytes and the buffer.
        let src = unsafe { std::slice::from_raw_parts(self.at(head).add(HEADER as usize), len as usize) };
        out.extend_from_slice(src);
    }

    fn advance(&self, head: u64, rec: &Record, delivered: bool) {
        let c = self.cons();
        c.head.store(head + Record::size(rec.len), Ordering::Release);
        if delivered {
            // Saturating: a hostile count must not wrap into a huge length.
            let _ = self.status().count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        c.space_seq.fetch_add(1, Ordering::SeqCst);
        wait::wake(&c.space_seq, &c.space_waiters, 1);
    }

    /// Sleeps until `data_seq` moves from `seq`; at the end of a slice, asks
    /// whether the writers are gone.
    fn wait_data(&self, seq: u32, deadline: Option<Instant>, writers_gone: Gone<'_>) -> Result<(), Stop> {
        let slice = wait::deadline(LIVENESS_SLICE).map(|s| deadline.map_or(s, |d| d.min(s)));
        let p = self.prod();
        let woken = wait::wait(&p.data_seq, seq, &p.data_waiters, slice);
        if !woken && wait::expired(deadline) {
            return Err(Stop::Timeout);
        }
        if writers_gone(!woken) && !self.has_data() {
            return Err(Stop::Disconnected);
        }
        Ok(())
    }

    /// Whether the producer of an unfinished stream is gone (dead, or gave
    /// up at a deadline): `send_lock` is free and nothing more was published.
    fn stream_abandoned(&self) -> Result<bool, Stop> {
        match acquire(&self.ctrl.send_lock.0, None, true) {
            Ok(_held) => Ok(!self.has_data()),
            Err(Stop::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Receives one whole message into `out` (cleared first).
    ///
    /// A deadline bounds the wait for a message to *begin*: once part of a
    /// streamed message has been taken, the call waits for the rest as long
    /// as its producer is alive, since giving up would lose it.
    pub(crate) fn recv(
        &self,
        out: &mut Vec<u8>,
        deadline: Option<Instant>,
        try_only: bool,
        writers_gone: Gone<'_>,
    ) -> Result<(), Stop> {
        out.clear();
        loop {
            let held = acquire(&self.ctrl.recv_lock.0, deadline, try_only)?;
            let mut streaming = false;
            loop {
                let seq = self.prod().data_seq.load(Ordering::SeqCst);
                if self.drain_one(out, &mut streaming)? {
                    return Ok(());
                }
                if !streaming {
                    if self.is_closed() {
                        return Err(Stop::Closed);
                    }
                    drop(held);
                    if try_only {
                        return Err(Stop::Timeout);
                    }
                    self.wait_data(seq, deadline, writers_gone)?;
                    break;
                }
                // Mid-stream: keep recv_lock so nobody else takes the rest.
                if self.stream_abandoned()? {
                    out.clear();
                    streaming = false;
                    continue;
                }
                let slice = wait::deadline(LIVENESS_SLICE);
                let p = self.prod();
                wait::wait(&p.data_seq, seq, &p.data_waiters, slice);
            }
        }
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
        loop {
            let held = acquire(&self.ctrl.recv_lock.0, deadline, try_only)?;
            let seq = self.prod().data_seq.load(Ordering::SeqCst);
            // Skip padding and orphaned stream tails to the next message.
            loop {
                let head = self.cons().head.load(Ordering::Relaxed);
                let tail = self.prod().tail.load(Ordering::Acquire);
                if self.used(head, tail)? == 0 {
                    break;
                }
                let rec = self.record_at(head, tail)?;
                match rec.kind {
                    FULL => return Ok(Some(View { ring: self, head, len: rec.len as usize, _held: held })),
                    FIRST => {
                        drop(held);
                        self.recv(scratch, deadline, try_only, writers_gone)?;
                        return Ok(None);
                    }
                    _ => self.advance(head, &rec, false),
                }
            }
            if self.is_closed() {
                return Err(Stop::Closed);
            }
            drop(held);
            if try_only {
                return Err(Stop::Timeout);
            }
            self.wait_data(seq, deadline, writers_gone)?;
        }
    }
}

/// Messages ever published on the ring behind `ctrl`.
pub(crate) fn published(ctrl: &RingCtrl) -> u64 {
    ctrl.status.0.published.load(Ordering::SeqCst)
}

/// Room for one in-place message; holds `send_lock`.
pub(crate) struct Slot<'a> {
    ring: Ring<'a>,
    pos: u64,
    len: usize,
    _held: Held<'a>,
}

impl Slot<'_> {
    /// The bytes to fill.
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `room` reserved `len` payload bytes after the header at
        // `pos`, contiguous and unpublished; we hold send_lock, so nobody else
        // writes them, and consumers never read past `tail`.
        unsafe { std::slice::from_raw_parts_mut(self.ring.at(self.pos).add(HEADER as usize), self.len) }
    }

    /// The bytes, shared.
    pub(crate) fn bytes_ref(&self) -> &[u8] {
        // SAFETY: as in `bytes`.
        unsafe { std::slice::from_raw_parts(self.ring.at(self.pos).add(HEADER as usize), self.len) }
    }

    /// Publishes the message.
    pub(crate) fn commit(self) {
        self.ring.publish(self.pos, FULL, self.len as u64);
    }
}

/// One received message, read in place; holds `recv_lock` until dropped.
pub(crate) struct View<'a> {
    ring: Ring<'a>,
    head: u64,
    len: usize,
    _held: Held<'a>,
}

impl View<'_> {
    /// The message.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `record_at` checked the record lies within the published
        // bytes; we hold recv_lock, so it is not released under us, and
        // producers never write published bytes.
        unsafe { std::slice::from_raw_parts(self.ring.at(self.head).add(HEADER as usize), self.len) }
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        self.ring.advance(self.head, &Record { kind: FULL, len: self.len as u64 }, true);
    }
}
