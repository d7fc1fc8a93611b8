//! [`Pipe`] and [`Connection`]: Python's `multiprocessing.Pipe`, as one or
//! two single-producer single-consumer rings in one shared-memory segment.
//!
//! # Layout
//!
//! One anonymous segment of kind `Pipe`: a [`PipeCtrl`] (two ring control
//! blocks, the mailbox line, the line of its `idle` words and a line of
//! per-end flags), then the ring buffers, `rings × capacity` bytes. A
//! duplex pipe has two rings, a one-way pipe one. End `e` (0 or 1) sends on ring `e` and receives on ring `1 - e`; in a one-way
//! pipe the sending end is end 0 and the receiving end end 1, both on
//! ring 0. The number of rings is also recorded in the control block, so an
//! end received as the wrong type is refused with a clear error (the local
//! layout never trusts it: it comes from the end's type and the validated
//! segment size).
//!
//! # Small messages
//!
//! A message of at most 16 bytes skips the ring when the ring is drained:
//! it goes into its direction's slot of the mailbox, one cache line that
//! both directions share, so a request and its reply move one line between
//! the two processes, as two processes spinning on one shared word do (see
//! `mail.rs` for the protocol and why; `benches/README.md` for the
//! figures). Order, boundaries, empty messages and every error stay as
//! with the ring; a message read in place ([`Connection::recv_in_place`])
//! that came this way is a copy.
//!
//! # Who holds an end
//!
//! Each end is tracked by a shared byte lock ([`peers::Hold`]) on the
//! segment: byte `1 + e` for end `e`. Every process that has a handle of an
//! end holds that byte through an open file description of its own (one per
//! end per process, shared by the clones of a handle). The kernel drops the
//! lock when the last descriptor of the description closes, which a dying
//! process does too, however it dies.
//!
//! - An end handed to a spawned child in its start argument carries its
//!   hold's descriptor along ([`transfer::export`]); the child adopts a
//!   duplicate, sharing the parent's description, so the lock never lapses
//!   during the hand-over and the parent may drop its copy right after
//!   `start()`. A forked child inherits the descriptor, like an OS pipe's.
//! - When the last handle of an end in a process is dropped, the process
//!   asks the kernel whether anyone still holds that end; if nobody does, it
//!   sets the end's `gone` flag in the control block and wakes every sleeper
//!   of the pipe, so a blocked peer notices at once.
//! - A process that dies sets no flag: a blocked peer notices at the end of
//!   its current sleep slice ([`LIVENESS_SLICE`], 100 ms), when it asks the
//!   kernel. `try_` calls and [`poll`](Connection::poll) ask the kernel at
//!   most once per slice, and only when they would otherwise report
//!   "nothing now".
//! - Nobody can take hold of an end again once every holder is gone (a
//!   handle always holds its end), so a peer found gone stays gone, and that
//!   is remembered without asking the kernel again.
//!
//! # Design decisions
//!
//! - **Untyped ends.** As in Python, a [`Connection`] is not tied to one
//!   message type: [`send`](Connection::send) and
//!   [`recv`](Connection::recv) are generic per call, so a request and its
//!   reply may differ in type. A message decoded as the wrong type is a
//!   [`Failure::Decode`] error (the message is consumed).
//! - **Direction as a type parameter.** `Connection<Duplex>` (the default)
//!   sends and receives; the ends of a one-way pipe are
//!   `Connection<RecvOnly>` and `Connection<SendOnly>`, and using one the
//!   wrong way does not compile (the methods live in `impl` blocks bounded
//!   by [`CanRecv`] and [`CanSend`], as `lock_api` does with optional
//!   abilities).
//! - **Sending borrows.** [`send`](Connection::send) takes `&T`, so the
//!   caller keeps the message and the errors carry `()`.
//! - **Closing is dropping.** [`close`](Connection::close) consumes the
//!   handle. The peer sees the end of the stream once every handle of the
//!   end, in every process, is closed or dropped (or its process died):
//!   receives return what was sent, then [`RecvError::Disconnected`]; sends
//!   fail with [`SendError::Disconnected`].
//! - **A peer that died** is noticed by a send only when the send would wait
//!   (the ring is full): checking the kernel on every send would cost two
//!   system calls per message. A peer that closed or dropped its end is
//!   noticed by every send at once.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::err::{
    Failure, RecvError, RecvIntoError, RecvIntoTimeoutError, RecvTimeoutError, SendError, SendTimeoutError,
    TryRecvError, TryRecvIntoError, TrySendError,
};
use super::mail::{MailLine, Mailbox};
use super::message::{Decoded, Message};
use super::peers::{self, Hold};
use super::queue::{
    DEFAULT_CAPACITY, ReadView, Wait, WriteSlot, blocking_recv, blocking_send, check_capacity, recv_error,
    ring_capacity, send_error, try_recv, try_send, with_scratch,
};
use super::ring::{Gone, LIVENESS_SLICE, Line, Miss, Ring, RingCtrl, Stop};
use super::select::sealed::{Sleepers, Watch};
use crate::ShmError;
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object};
use crate::segment::transfer;
use crate::sync::wait;

/// What a pipe is called in errors (pipes are always anonymous).
const ANONYMOUS: &str = "anonymous pipe";
/// See [`End::probe_due`].
const TRIES_PER_CLOCK: u32 = 64;

/// The byte of the segment that the holders of end `end` lock.
fn end_byte(end: usize) -> u64 {
    1 + end as u64
}

#[repr(C)]
struct EndFlags {
    /// Hint that the last holder of this end let go; checked with the
    /// kernel before use.
    gone: AtomicU32,
    _reserved: AtomicU32,
}

#[repr(C)]
struct Meta {
    ends: [EndFlags; 2],
    /// Rings in the segment: 1 (one-way) or 2 (duplex).
    rings: AtomicU32,
}

/// The control block of a pipe: two rings (the second unused by a one-way
/// pipe) and the per-end flags.
#[repr(C)]
pub(crate) struct PipeCtrl {
    rings: [RingCtrl; 2],
    /// Ring `i`'s mailbox is `mail.0[i]`, and its `idle` word `idle.0[i]`.
    mail: Line<MailLine>,
    idle: Line<[AtomicU64; 2]>,
    meta: Line<Meta>,
}

// SAFETY: `repr(C)` of atomics and pthread mutexes; alignment 64.
unsafe impl Control for PipeCtrl {
    const KIND: Kind = Kind::Pipe;
}

fn init(ctrl: *mut PipeCtrl, rings: usize) -> std::io::Result<()> {
    for i in 0..2 {
        // SAFETY: `ctrl` points to a zeroed control block nobody else sees
        // yet; `&raw mut` projects to the ring without creating a reference.
        RingCtrl::init(unsafe { &raw mut (*ctrl).rings[i] })?;
    }
    // SAFETY: as above; the atomic is valid (zeroed) and not yet shared.
    unsafe { &(*ctrl).meta.0.rings }.store(rings as u32, Ordering::SeqCst);
    Ok(())
}

/// Nanoseconds on a coarse monotonic clock (for throttling): cheap enough
/// to read on every empty `try_recv`.
fn now_ns() -> u64 {
    crate::sys::time::coarse_monotonic_ns()
}

/// Copies `msg` into the front of `buf`: its length, or the message itself
/// when `buf` is too short for it.
///
/// Inlined, with the short buffer's copy out of line: as a call, its
/// result going back through memory, a `recv_bytes_into` of a 64-byte
/// message took ~195 instructions, and 170 inlined (callgrind, session
/// 16). The stream, bound by its producer, did not move measurably (the
/// bench's `bytes_into` row by turns, binaries alternated four times:
/// 0.80, 0.44, 0.51, 0.81x before, 0.45, 0.53, 0.75, 0.73x after).
#[inline]
fn fill(buf: &mut [u8], msg: &[u8]) -> Result<usize, Vec<u8>> {
    match buf.get_mut(..msg.len()) {
        Some(dst) => {
            dst.copy_from_slice(msg);
            Ok(msg.len())
        }
        None => Err(too_short(msg)),
    }
}

#[cold]
fn too_short(msg: &[u8]) -> Vec<u8> {
    msg.to_vec()
}

/// One process's copy of one end of a pipe, shared by the clones of a
/// handle. Dropping it lets go of the end (see the module docs).
struct End {
    obj: Object<PipeCtrl, u8>,
    /// 0 or 1.
    end: usize,
    /// 1 or 2, from the handle's type.
    rings: usize,
    /// Bytes per ring, from the validated segment size.
    cap: usize,
    /// `Some` until dropped.
    hold: Option<Hold>,
    /// The kernel said nobody holds the other end (final).
    peer_gone: AtomicBool,
    /// When the kernel was last asked about the other end ([`now_ns`]).
    last_probe: AtomicU64,
    /// `try_` receives that found nothing since the clock was last read
    /// for [`probe_due`](End::probe_due) (a hint: plain load and store).
    idle_tries: AtomicU32,
}

impl Drop for End {
    fn drop(&mut self) {
        for ring in &self.obj.ctrl().rings[..self.rings] {
            ring.release_bias();
        }
        if let Some(hold) = self.hold.take() {
            drop(hold);
            if !peers::anyone_holds(self.obj.fd(), end_byte(self.end)) {
                self.meta().ends[self.end].gone.store(1, Ordering::SeqCst);
                for i in 0..self.rings {
                    self.ring(i).wake_all();
                }
            }
        }
    }
}

impl End {
    /// Checks the segment against what a handle of `rings` rings expects.
    fn new(obj: Object<PipeCtrl, u8>, end: usize, rings: usize, hold: Hold) -> Result<End, ShmError> {
        let total = obj.len();
        if end > 1 || total % rings != 0 {
            return Err(ShmError::corrupt(ANONYMOUS, format!("end {end} of a pipe of {total} bytes")));
        }
        let cap = total / rings;
        check_capacity(obj.name(), cap)?;
        let found = obj.ctrl().meta.0.rings.load(Ordering::SeqCst);
        if found as usize != rings {
            let kind = |n: usize| if n == 1 { "a one-way pipe" } else { "a duplex pipe" };
            return Err(ShmError::Mismatch {
                name: ANONYMOUS.into(),
                expected: kind(rings).into(),
                found: if found == 1 || found == 2 { kind(found as usize).into() } else { format!("{found} rings") },
            });
        }
        // Before this process wakes anyone through the rings.
        wait::join_asymmetric();
        Ok(End {
            obj,
            end,
            rings,
            cap,
            hold: Some(hold),
            peer_gone: AtomicBool::new(false),
            last_probe: AtomicU64::new(now_ns()),
            idle_tries: AtomicU32::new(0),
        })
    }

    fn meta(&self) -> &Meta {
        &self.obj.ctrl().meta.0
    }

    #[inline]
    fn ring(&self, i: usize) -> Ring<'_> {
        debug_assert!(i < self.rings);
        // `i < rings <= 2`, so this changes nothing but drops the bounds
        // checks from every message's path.
        let i = i & 1;
        let (ctrl, data) = (self.obj.ctrl(), self.obj.elems().wrapping_add(i * self.cap));
        // SAFETY: the elements are `rings * cap` bytes (checked by `new`),
        // ring `i < rings` uses exactly the `i`-th `cap` of them, and `cap`
        // is a power of two of at least MIN_CAPACITY (`check_capacity`).
        unsafe { Ring::new(&ctrl.rings[i], data, self.cap) }.with_mail(Mailbox::new(&ctrl.mail.0, i, &ctrl.idle.0[i]))
    }

    #[inline]
    fn peer(&self) -> usize {
        1 - self.end
    }

    /// The ring this end sends on (only for ends that can send).
    #[inline]
    fn send_ring(&self) -> Ring<'_> {
        let ring = self.ring(self.end);
        if self.rings == 1 {
            return ring;
        }
        ring.acking(&self.obj.ctrl().rings[self.peer() & 1])
    }

    /// The ring this end receives on (only for ends that can receive).
    #[inline]
    fn recv_ring(&self) -> Ring<'_> {
        // (Not `% self.rings`: a division on every message.)
        self.ring(if self.rings == 1 { 0 } else { self.peer() })
    }

    /// Whether every holder of the other end is gone. Without `probe`, the
    /// kernel is asked only when the peer's `gone` flag is set.
    #[inline]
    fn peer_gone(&self, probe: bool) -> bool {
        if self.peer_gone.load(Ordering::SeqCst) {
            return true;
        }
        if !probe && self.meta().ends[self.peer() & 1].gone.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.probe_peer()
    }

    #[cold]
    fn probe_peer(&self) -> bool {
        let flag = &self.meta().ends[self.peer()].gone;
        self.last_probe.store(now_ns(), Ordering::Relaxed);
        let gone = !peers::anyone_holds(self.obj.fd(), end_byte(self.peer()));
        flag.store(u32::from(gone), Ordering::SeqCst);
        if gone {
            self.peer_gone.store(true, Ordering::SeqCst);
        }
        gone
    }

    /// Whether a liveness slice has passed since the kernel was last asked.
    ///
    /// A receiver polling with `try_` calls would read the clock on every
    /// empty one, which costs as much as the rest of the call: it is read
    /// on one empty call in [`TRIES_PER_CLOCK`].
    fn probe_due(&self) -> bool {
        let tries = self.idle_tries.load(Ordering::Relaxed).wrapping_add(1);
        self.idle_tries.store(tries, Ordering::Relaxed);
        tries % TRIES_PER_CLOCK == 0
            && now_ns().saturating_sub(self.last_probe.load(Ordering::Relaxed)) >= LIVENESS_SLICE.as_nanos() as u64
    }

    /// Runs a send operation on the send ring, with the peer checks around it.
    fn sending<'s, R>(
        &'s self,
        how: Wait,
        op: impl FnOnce(Ring<'s>, Option<Instant>, bool, Gone<'_>) -> Result<R, Stop>,
    ) -> Result<R, Stop> {
        if self.peer_gone(false) {
            return Err(Stop::Disconnected);
        }
        let (deadline, try_only) = how.parts();
        let gone = |probe: bool| self.peer_gone(probe);
        match op(self.send_ring(), deadline, try_only, &gone) {
            Err(Stop::Timeout) if self.peer_gone(self.probe_due()) => Err(Stop::Disconnected),
            other => other,
        }
    }

    /// Runs a receive operation on the receive ring, with the peer checks
    /// around it: once the peer is gone and the ring drained, the stream ends.
    #[inline]
    fn receiving<'s, R>(
        &'s self,
        how: Wait,
        op: impl FnOnce(Ring<'s>, Option<Instant>, bool, Gone<'_>) -> Result<R, Stop>,
    ) -> Result<R, Stop> {
        let ring = self.recv_ring();
        let (deadline, try_only) = how.parts();
        if try_only && ring.looks_empty() {
            return Err(self.nothing_now(&ring));
        }
        // The flag before the data: everything the peer sent before it let
        // go is visible once its leaving is.
        if self.peer_gone(false) && !ring.has_data() {
            return Err(Stop::Disconnected);
        }
        let gone = |probe: bool| self.peer_gone(probe);
        match op(ring, deadline, try_only, &gone) {
            Err(Stop::Timeout) if self.peer_gone(self.probe_due()) && !ring.has_data() => Err(Stop::Disconnected),
            other => other,
        }
    }

    /// What a `try_` receive that found `ring` empty returns. It is what a
    /// receiver polling with `try_` calls mostly finds, and how soon it sees
    /// a message depends on how fast it looks.
    #[inline]
    fn nothing_now(&self, ring: &Ring<'_>) -> Stop {
        let gone = self.peer_gone(self.probe_due()) && !ring.has_data();
        if gone { Stop::Disconnected } else { Stop::Timeout }
    }

    #[inline(always)]
    fn send_msg<T: Message>(&self, msg: &T, how: Wait) -> Result<(), SendTimeoutError<()>> {
        // The request/reply case first, in as few steps as it takes: a round
        // trip over a pipe costs what these lines and their twins in
        // `recv_msg` cost, twice, on top of the cache line itself; and a
        // stream of small messages is as fast as its sender's path is short.
        // The rest is out of line, so that this part needs few registers;
        // this part is always inlined, down to `Ring::send_fast` (see there
        // why).
        if let Some(bytes) = msg.as_bytes() {
            if self.send_now(bytes) {
                return Ok(());
            }
        }
        self.send_msg_slow(msg, how)
    }

    /// The common case of every send, shared by the typed and the byte
    /// forms: the peer is there and the message goes into the ring (or the
    /// mailbox) now, without waiting. `false` when not: nothing was done.
    #[inline(always)]
    fn send_now(&self, bytes: &[u8]) -> bool {
        !self.peer_gone(false) && self.send_ring().send_fast(bytes)
    }

    /// The common case of every receive, shared by the typed and the byte
    /// forms: a whole message is there (or arrives within the quick looks
    /// of a receive that would wait), and `read` gets its bytes in place.
    #[inline]
    fn recv_now<R>(&self, how: Wait, read: &mut impl FnMut(&[u8]) -> R, fixed: Option<usize>) -> Result<R, Miss> {
        self.recv_ring().recv_quick(read, fixed, !matches!(how, Wait::Now))
    }

    /// A `try_` receive's answer when [`recv_now`](Self::recv_now) found the
    /// ring empty and open: `None` for any other case, which the general
    /// path answers.
    #[inline]
    fn empty_now(&self, how: Wait, miss: Miss) -> Option<RecvTimeoutError> {
        (matches!(how, Wait::Now) && miss == Miss::Empty).then(|| recv_error(self.nothing_now(&self.recv_ring())))
    }

    #[inline(never)]
    fn send_msg_slow<T: Message>(&self, msg: &T, how: Wait) -> Result<(), SendTimeoutError<()>> {
        let outcome = match msg.as_bytes() {
            Some(bytes) => Ok(self.sending(how, |ring, d, t, gone| ring.send(bytes, d, t, gone))),
            None => with_scratch(|buf| {
                msg.encode(buf).map(|()| self.sending(how, |ring, d, t, gone| ring.send(buf, d, t, gone)))
            }),
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(stop)) => Err(send_error(stop, ())),
            Err(e) => Err(SendTimeoutError::Failed((), Failure::Encode(e))),
        }
    }

    #[inline(always)]
    fn send_bytes(&self, bytes: &[u8], how: Wait) -> Result<(), SendTimeoutError<()>> {
        if self.send_now(bytes) {
            return Ok(());
        }
        self.send_bytes_slow(bytes, how)
    }

    #[inline(never)]
    fn send_bytes_slow(&self, bytes: &[u8], how: Wait) -> Result<(), SendTimeoutError<()>> {
        self.sending(how, |ring, d, t, gone| ring.send(bytes, d, t, gone)).map_err(|s| send_error(s, ()))
    }

    /// `narrow`: the caller's error type (see [`Decoded`]).
    #[inline]
    fn recv_msg<T: Message, E>(&self, how: Wait, narrow: impl Fn(RecvTimeoutError) -> E + Copy) -> Result<T, E> {
        // See `send_msg`. A message that is there is delivered whether or
        // not the peer is still there.
        //
        // The take first, the emptiness check of a `try_` receive only when
        // it finds nothing: checking first makes an empty poll cheaper
        // (13.6 -> 10.4 ns) but a ping-pong of `try_recv` loops slower
        // (145-151 -> 171-180 ns a round trip, alternated builds): the
        // poller's reads of the mailbox line come more often and take it
        // from the writer between its stores. When the take found the ring
        // empty and open, that answers a `try_` receive (`empty_now`)
        // without the general path's second look, which read the line
        // again and cost as much as the take: a ping-pong of `try_recv`
        // loops between two processes went from 161 to 114 ns a round trip
        // (medians, fast state, builds alternated; 2.17x -> 1.61x the
        // raw cache-line floor measured beside them, session 10).
        let mut out = Decoded::new(narrow);
        match self.recv_now(how, &mut |bytes| out.read(bytes), T::SIZE) {
            Ok(written) => out.finish(written),
            Err(miss) => match self.empty_now(how, miss) {
                Some(e) => Err(narrow(e)),
                None => self.recv_msg_slow(how).map_err(narrow),
            },
        }
    }

    #[inline(never)]
    fn recv_msg_slow<T: Message>(&self, how: Wait) -> Result<T, RecvTimeoutError> {
        let ring = self.recv_ring();
        if matches!(how, Wait::Now) && ring.looks_empty() {
            return Err(recv_error(self.nothing_now(&ring)));
        }
        // Only a message streamed in parts is assembled here: most are
        // decoded in place, so this allocates nothing for them.
        let mut out = Decoded::new(std::convert::identity);
        let mut parts = Vec::new();
        match self.receiving(how, |ring, d, t, gone| ring.recv_with(&mut parts, d, t, gone, |bytes| out.read(bytes))) {
            Ok(written) => out.finish(written),
            Err(stop) => Err(recv_error(stop)),
        }
    }

    #[inline]
    fn recv_bytes(&self, how: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        match self.recv_now(how, &mut <[u8]>::to_vec, None) {
            Ok(msg) => Ok(msg),
            Err(miss) => self.empty_now(how, miss).map_or_else(|| self.recv_bytes_slow(how), Err),
        }
    }

    #[inline(never)]
    fn recv_bytes_slow(&self, how: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut out = Vec::new();
        self.receiving(how, |ring, d, t, gone| ring.recv(&mut out, d, t, gone)).map_err(recv_error)?;
        Ok(out)
    }

    /// Receives one message into `buf`: its length, or the whole message
    /// when it is longer than `buf` (consumed all the same).
    #[inline]
    fn recv_into(&self, buf: &mut [u8], how: Wait) -> Result<Result<usize, Vec<u8>>, RecvTimeoutError> {
        match self.recv_now(how, &mut |msg| fill(buf, msg), None) {
            Ok(filled) => Ok(filled),
            Err(miss) => self.empty_now(how, miss).map_or_else(|| self.recv_into_slow(buf, how), Err),
        }
    }

    #[inline(never)]
    fn recv_into_slow(&self, buf: &mut [u8], how: Wait) -> Result<Result<usize, Vec<u8>>, RecvTimeoutError> {
        let mut parts = Vec::new();
        self.receiving(how, |ring, d, t, gone| ring.recv_with(&mut parts, d, t, gone, |msg| fill(buf, msg)))
            .map_err(recv_error)
    }

    #[inline]
    fn reserve(&self, len: usize, how: Wait) -> Result<WriteSlot<'_>, SendTimeoutError<()>> {
        if !self.peer_gone(false) {
            if let Some(slot) = self.send_ring().reserve_fast(len) {
                return Ok(WriteSlot::from_slot(slot));
            }
        }
        self.reserve_slow(len, how)
    }

    #[inline(never)]
    fn reserve_slow(&self, len: usize, how: Wait) -> Result<WriteSlot<'_>, SendTimeoutError<()>> {
        match self.sending(how, |ring, d, t, gone| ring.reserve(len, d, t, gone)) {
            Ok(slot) => Ok(WriteSlot::from_slot(slot)),
            Err(Stop::TooLarge(max)) => Err(SendTimeoutError::Failed((), Failure::TooLarge { len, max })),
            Err(stop) => Err(send_error(stop, ())),
        }
    }

    #[inline]
    fn recv_in_place(&self, how: Wait) -> Result<ReadView<'_>, RecvTimeoutError> {
        match self.recv_ring().view_fast() {
            Some(view) => Ok(ReadView::in_place(view)),
            None => self.recv_in_place_slow(how),
        }
    }

    #[inline(never)]
    fn recv_in_place_slow(&self, how: Wait) -> Result<ReadView<'_>, RecvTimeoutError> {
        let mut owned = Vec::new();
        let view = self.receiving(how, |ring, d, t, gone| {
            Ok(match ring.recv_view(&mut owned, d, t, gone)? {
                Some(view) => ReadView::in_place(view),
                None => ReadView::owned(std::mem::take(&mut owned)),
            })
        });
        view.map_err(recv_error)
    }

    /// Whether a receive would return at once: a message is there, or the
    /// stream has ended.
    fn ready(&self, probe: bool) -> bool {
        let ring = self.recv_ring();
        ring.has_data() || ring.is_closed() || self.peer_gone(probe || self.probe_due())
    }

    fn poll(&self, deadline: Option<Instant>) -> bool {
        let sleepers = self.recv_ring().data_sleepers();
        let mut probe = false;
        loop {
            if self.ready(probe) {
                return true;
            }
            if wait::expired(deadline) {
                return false;
            }
            let slice = wait::deadline(LIVENESS_SLICE).map(|s| deadline.map_or(s, |d| d.min(s)));
            // Counted as a sleeper before the last look, so a message sent
            // after it wakes us at once.
            probe = !wait::wait_until_ring(|| self.ready(false), sleepers, slice);
        }
    }
}

mod sealed {
    pub trait Sealed {
        /// Rings in the segment.
        const RINGS: usize;
        /// The end a handle of this direction must be (`None`: either).
        const END: Option<usize>;
        /// For `Debug`.
        const NAME: &'static str;
    }
}

/// Which way a [`Connection`] works: [`Duplex`], [`RecvOnly`] or
/// [`SendOnly`]. Sealed: no other directions exist.
pub trait Direction: sealed::Sealed + Send + Sync + 'static {}

/// A direction that can receive: [`Duplex`] and [`RecvOnly`].
pub trait CanRecv: Direction {}

/// A direction that can send: [`Duplex`] and [`SendOnly`].
pub trait CanSend: Direction {}

/// Both ways: each end of [`Pipe::new`].
#[derive(Debug)]
pub enum Duplex {}

/// Receive only: the first end of [`Pipe::one_way`].
#[derive(Debug)]
pub enum RecvOnly {}

/// Send only: the second end of [`Pipe::one_way`].
#[derive(Debug)]
pub enum SendOnly {}

macro_rules! direction {
    ($d:ident, $rings:expr, $end:expr, $($can:ident),*) => {
        impl sealed::Sealed for $d {
            const RINGS: usize = $rings;
            const END: Option<usize> = $end;
            const NAME: &'static str = stringify!($d);
        }
        impl Direction for $d {}
        $(impl $can for $d {})*
    };
}
direction!(Duplex, 2, None, CanRecv, CanSend);
direction!(RecvOnly, 1, Some(1), CanRecv);
direction!(SendOnly, 1, Some(0), CanSend);

/// Python's `multiprocessing.Pipe`: makes the two ends of a new pipe.
///
/// A pipe lives in an anonymous shared-memory segment, so its ends reach
/// other processes only inside a child's start argument (see
/// [`Process`](crate::Process)), or by `fork`. Each direction is a ring of
/// [`DEFAULT_CAPACITY`] bytes unless asked otherwise; messages of any size
/// pass (larger ones are streamed through the ring in parts).
///
/// # Performance
///
/// Measured against peers in the same run (`cargo bench --bench channel`;
/// method and figures in `benches/README.md`): an 8-byte round trip takes
/// 1–2x what two processes spinning on one shared word take (a
/// `UnixStream` takes tens of microseconds); 1 MiB messages written and
/// read in place ([`Connection::reserve`], [`Connection::recv_in_place`])
/// move at 0.8x a single-core `memcpy`. A stream of small messages depends
/// on the host: 64-byte messages ran at 0.64–0.80x a bare lock-free ring
/// of fixed slots on one development machine and 0.21–0.40x on another,
/// where every store into a line the other core has read waits for it.
/// There, a bare ring that makes only the shared-memory accesses this
/// protocol needs per message (publishing the message, and entering the
/// sending side, which is what lets a process die mid-send without
/// breaking the pipe), with no checks at all, reaches 0.38–0.49x.
///
/// # Examples
///
/// ```
/// use multiproc::channel::Pipe;
///
/// let (a, b) = Pipe::new()?;
/// a.send(&"ping".to_string()).unwrap();
/// assert_eq!(b.recv::<String>().unwrap(), "ping");
/// b.send(&42u32).unwrap();
/// assert_eq!(a.recv::<u32>().unwrap(), 42);
/// # Ok::<(), multiproc::ShmError>(())
/// ```
#[derive(Debug)]
pub struct Pipe {
    _private: (),
}

impl Pipe {
    /// A duplex pipe: two [`Connection`]s, each sending to the other, with
    /// rings of [`DEFAULT_CAPACITY`] bytes (1 MiB) per direction.
    ///
    /// # Errors
    ///
    /// OS errors creating the segment or locking its ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send_bytes(b"hello").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"hello");
    /// assert_eq!(a.capacity(), multiproc::channel::DEFAULT_CAPACITY);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[allow(clippy::new_ret_no_self)] // Python's `Pipe()` makes a pair of connections
    pub fn new() -> Result<(Connection, Connection), ShmError> {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A duplex pipe whose rings hold `capacity` bytes per direction
    /// (rounded up to a power of two of at least 4 KiB).
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidSize`] above [`MAX_CAPACITY`](super::MAX_CAPACITY);
    /// OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, _b) = Pipe::with_capacity(5000)?;
    /// assert_eq!(a.capacity(), 8192);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn with_capacity(capacity: usize) -> Result<(Connection, Connection), ShmError> {
        let [a, b] = create(2, capacity)?;
        Ok((Connection::from_end(a), Connection::from_end(b)))
    }

    /// A one-way pipe — Python's `Pipe(duplex=False)`: a receiving end and a
    /// sending end, in that order, with a ring of [`DEFAULT_CAPACITY`] bytes.
    ///
    /// # Errors
    ///
    /// OS errors creating the segment or locking its ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (rx, tx) = Pipe::one_way()?;
    /// tx.send(&vec![1u8, 2, 3]).unwrap();
    /// assert_eq!(rx.recv::<Vec<u8>>().unwrap(), [1, 2, 3]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    ///
    /// Neither end can be used the other way:
    ///
    /// ```compile_fail
    /// let (rx, _tx) = multiproc::channel::Pipe::one_way().unwrap();
    /// rx.send(&1u8); // a receiving end has no `send`
    /// ```
    ///
    /// ```compile_fail
    /// let (_rx, tx) = multiproc::channel::Pipe::one_way().unwrap();
    /// let _ = tx.recv::<u8>(); // a sending end has no `recv`
    /// ```
    pub fn one_way() -> Result<(Connection<RecvOnly>, Connection<SendOnly>), ShmError> {
        Self::one_way_with_capacity(DEFAULT_CAPACITY)
    }

    /// A one-way pipe whose ring holds `capacity` bytes (rounded up to a
    /// power of two of at least 4 KiB).
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidSize`] above [`MAX_CAPACITY`](super::MAX_CAPACITY);
    /// OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (rx, tx) = Pipe::one_way_with_capacity(4096)?;
    /// assert_eq!((rx.capacity(), tx.capacity()), (4096, 4096));
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn one_way_with_capacity(capacity: usize) -> Result<(Connection<RecvOnly>, Connection<SendOnly>), ShmError> {
        let [tx, rx] = create(1, capacity)?;
        Ok((Connection::from_end(rx), Connection::from_end(tx)))
    }
}

/// Creates a pipe of `rings` rings and both its ends (end 0, end 1).
fn create(rings: usize, capacity: usize) -> Result<[End; 2], ShmError> {
    let cap = ring_capacity(capacity)?;
    let obj = Object::<PipeCtrl, u8>::create(None, rings * cap, |ctrl, _| init(ctrl, rings))?;
    let hold =
        |end: usize| Hold::take(obj.fd(), end_byte(end)).map_err(|e| ShmError::io(ANONYMOUS, "lock a pipe end", e));
    let (a, b) = (hold(0)?, hold(1)?);
    Ok([End::new(obj.clone(), 0, rings, a)?, End::new(obj, 1, rings, b)?])
}

/// One end of a [`Pipe`] — Python's `multiprocessing.connection.Connection`.
///
/// `D` says which way it works: [`Duplex`] (the default) sends and
/// receives; [`RecvOnly`] and [`SendOnly`] are the ends of a one-way pipe,
/// and have only the receiving or only the sending methods.
///
/// # Messages
///
/// An end is not tied to a message type: each [`send`](Self::send) takes
/// any [`Message`] (every serde type, encoded with postcard, or a
/// [`Plain`](super::Plain) value sent as its raw bytes) and each
/// [`recv`](Self::recv) names the type it expects. Raw bytes go through
/// [`send_bytes`](Self::send_bytes) and [`recv_bytes`](Self::recv_bytes)
/// (or [`recv_bytes_into`](Self::recv_bytes_into) a buffer of yours), and
/// in place, without a copy, through [`reserve`](Self::reserve) and
/// [`recv_in_place`](Self::recv_in_place). Boundaries are kept, empty
/// messages count, and a message larger than the ring is streamed through
/// it in parts (so any size passes, never truncated).
///
/// # Copies and end of stream
///
/// Cloning a handle makes another handle to this process's copy of the end
/// (both may be used from different threads; sends and receives are each
/// serialised by a lock). Handing an end to a child process in its start
/// argument gives the child a copy of its own. When every copy of an end,
/// in every process, has been dropped or [closed](Self::close) — or the
/// processes holding them died — the other end's receives return the
/// messages already sent and then [`RecvError::Disconnected`], and its sends
/// fail with [`SendError::Disconnected`]. A blocked call notices a peer that
/// closed its end at once, and one that died within about 100 ms. Hand an
/// end to a child by moving it into the start argument (or drop your copy
/// afterwards), or the child's peer never sees the end of the stream: your
/// copy still holds the end.
///
/// A send notices a peer that *died* only when it would have to wait for
/// room; until the ring is full, messages to a dead peer are accepted (and
/// lost), as an OS pipe's buffer would.
///
/// A child that another thread of the closing process is starting at that
/// very moment holds copies of the process's descriptors until it execs,
/// the end's hold among them: a close in that window is seen by the peer
/// only at its next liveness check, not at once: a blocked call within
/// about 100 ms, a `try_` receive on one call in 64 that finds the pipe
/// empty, a send (as for a dead peer) when it would have to wait for room.
///
/// # Examples
///
/// A child process echoes what it receives:
///
/// ```
/// multiproc::test_support!(); // in a program: `multiproc::init();` first thing in `main`
/// use multiproc::Process;
/// use multiproc::channel::{Connection, Pipe, RecvError};
///
/// fn echo(conn: Connection) {
///     while let Ok(text) = conn.recv::<String>() {
///         conn.send(&text.to_uppercase()).unwrap();
///     }
/// }
///
/// let (here, there) = Pipe::new()?;
/// let mut child = Process::new(echo, there);
/// child.start()?;
/// here.send(&"hello world".to_string()).unwrap();
/// assert_eq!(here.recv::<String>().unwrap(), "HELLO WORLD");
/// here.close(); // the child's recv ends, so it returns
/// assert_eq!(child.join()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connection<D: Direction = Duplex> {
    end: Arc<End>,
    _dir: PhantomData<fn() -> D>,
}

impl<D: Direction> Connection<D> {
    fn from_end(end: End) -> Self {
        Connection { end: Arc::new(end), _dir: PhantomData }
    }

    /// Bytes in the ring of each direction. A message takes 8 bytes of
    /// header plus its encoded length rounded up to 8; one record holds at
    /// most half the ring, and larger messages are streamed in parts.
    pub fn capacity(&self) -> usize {
        self.end.cap
    }

    /// Closes this handle — Python's `close()`, which in Rust is a drop.
    ///
    /// The other end sees the end of the stream once every copy of this
    /// end is closed or dropped (see [Copies and end of
    /// stream](Self#copies-and-end-of-stream)); messages sent before stay
    /// readable.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Pipe, RecvError, SendError};
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send(&1u8).unwrap();
    /// a.close();
    /// assert_eq!(b.recv::<u8>(), Ok(1));
    /// assert_eq!(b.recv::<u8>(), Err(RecvError::Disconnected));
    /// assert!(b.send(&2u8).unwrap_err().is_disconnected());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn close(self) {
        drop(self);
    }
}

// The blocking and `try_` forms of `send`, `recv` and their byte twins are
// `#[inline]`: their common case is a few dozen instructions (the rest is
// out of line), and a call around it cost a sender eight more stores a
// message (register saves, the result), which is what a sender's speed
// depends on while its receiver polls the line it writes. Measured,
// 64-byte stream, alternated builds: faster in each of five pairs in the
// slow cross-core state (141-143 -> 122-123 ns a message, for one), 31 ->
// 29-30 ns in the fast one; one thread: receive 15 -> 12 ns (figures in
// benches/README.md, session 8).
impl<D: CanSend> Connection<D> {
    /// Sends a message, waiting for room.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] when every copy of the other end is
    /// gone; [`SendError::Failed`] when the message cannot be encoded or
    /// the pipe is corrupt.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Pipe, Plain};
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send(&(1u8, "one".to_string())).unwrap();
    /// a.send(&Plain([1.5f64; 4])).unwrap(); // raw bytes, no encoding
    /// assert_eq!(b.recv::<(u8, String)>().unwrap(), (1, "one".to_string()));
    /// assert_eq!(b.recv::<Plain<[f64; 4]>>().unwrap().0, [1.5; 4]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn send<T: Message>(&self, msg: &T) -> Result<(), SendError<()>> {
        self.end.send_msg(msg, Wait::Forever).map_err(blocking_send)
    }

    /// Sends a message if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`], otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, _b) = Pipe::with_capacity(4096)?;
    /// let kib = vec![0u8; 1000];
    /// while a.try_send_bytes(&kib).is_ok() {}
    /// assert!(a.try_send_bytes(&kib).unwrap_err().is_full());
    /// assert!(a.try_send(&kib).unwrap_err().is_full());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn try_send<T: Message>(&self, msg: &T) -> Result<(), TrySendError<()>> {
        self.end.send_msg(msg, Wait::Now).map_err(try_send)
    }

    /// Sends a message, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`], otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, _b) = Pipe::with_capacity(4096)?;
    /// let kib = vec![0u8; 1000];
    /// while a.try_send(&kib).is_ok() {}
    /// assert!(a.send_timeout(&kib, Duration::from_millis(10)).unwrap_err().is_timeout());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn send_timeout<T: Message>(&self, msg: &T, timeout: Duration) -> Result<(), SendTimeoutError<()>> {
        self.end.send_msg(msg, Wait::timeout(timeout))
    }

    /// Sends raw bytes as one message (any length; empty too).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send_bytes(b"").unwrap();
    /// a.send_bytes(b"ab").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"");
    /// assert_eq!(b.recv_bytes().unwrap(), b"ab");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError<()>> {
        self.end.send_bytes(bytes, Wait::Forever).map_err(blocking_send)
    }

    /// Sends raw bytes if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`], otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.try_send_bytes(b"x").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"x");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn try_send_bytes(&self, bytes: &[u8]) -> Result<(), TrySendError<()>> {
        self.end.send_bytes(bytes, Wait::Now).map_err(try_send)
    }

    /// Sends raw bytes, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`], otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send_bytes_timeout(b"x", Duration::from_secs(1)).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"x");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn send_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), SendTimeoutError<()>> {
        self.end.send_bytes(bytes, Wait::timeout(timeout))
    }

    /// Reserves room for a message of exactly `len` bytes, written in place
    /// in shared memory (no copy), then sent by
    /// [`commit`](WriteSlot::commit). `len` may be at most half the
    /// [`capacity`](Self::capacity). Other senders on this end wait until
    /// the slot is committed or dropped.
    ///
    /// The slot holds the sending side while the caller writes. Its common
    /// case (the side used by this thread alone, room without wrapping
    /// around) is inline, as [`send`](Self::send)'s is, and so is that of
    /// [`recv_in_place`](Self::recv_in_place): a stream of 64-byte
    /// messages written and read in place runs at 0.8–1.0x the rate of one
    /// sent and received by copy, and 1 MiB messages at 0.8–1.0x the speed
    /// of one `memcpy` of them (`benches/README.md`, session 17).
    ///
    /// # Errors
    ///
    /// [`SendError::Failed`] with [`Failure::TooLarge`] above half the
    /// capacity; otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// let mut slot = a.reserve(4).unwrap();
    /// slot.copy_from_slice(b"abcd");
    /// slot.commit();
    /// assert_eq!(&*b.recv_in_place().unwrap(), b"abcd");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn reserve(&self, len: usize) -> Result<WriteSlot<'_>, SendError<()>> {
        self.end.reserve(len, Wait::Forever).map_err(blocking_send)
    }

    /// Reserves room for an in-place message of exactly `len` bytes if
    /// there is room now (see [`reserve`](Self::reserve)).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when there is no room now;
    /// [`TrySendError::Failed`] with [`Failure::TooLarge`] above half the
    /// capacity; otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Failure, Pipe, TrySendError};
    ///
    /// let (a, b) = Pipe::with_capacity(4096)?;
    /// let mut slot = a.try_reserve(2000).unwrap();
    /// slot.fill(1);
    /// slot.commit();
    /// a.try_reserve(2000).unwrap().commit(); // two such records fill the ring
    /// assert!(a.try_reserve(2000).unwrap_err().is_full());
    /// assert!(matches!(a.try_reserve(4096), Err(TrySendError::Failed((), Failure::TooLarge { .. }))));
    /// assert_eq!(&*b.try_recv_in_place().unwrap(), &[1; 2000][..]);
    /// assert_eq!(b.try_recv_in_place().unwrap().len(), 2000);
    /// assert!(b.try_recv_in_place().unwrap_err().is_empty());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn try_reserve(&self, len: usize) -> Result<WriteSlot<'_>, TrySendError<()>> {
        self.end.reserve(len, Wait::Now).map_err(try_send)
    }

    /// Reserves room for an in-place message of exactly `len` bytes,
    /// waiting at most `timeout` for room (see [`reserve`](Self::reserve)).
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] when no room came in time;
    /// [`SendTimeoutError::Failed`] with [`Failure::TooLarge`] above half
    /// the capacity (at once, without waiting); otherwise as
    /// [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, _b) = Pipe::with_capacity(4096)?;
    /// a.reserve(2000).unwrap().commit();
    /// a.reserve(2000).unwrap().commit(); // two such records fill the ring
    /// assert!(a.reserve_timeout(2000, Duration::from_millis(10)).unwrap_err().is_timeout());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn reserve_timeout(&self, len: usize, timeout: Duration) -> Result<WriteSlot<'_>, SendTimeoutError<()>> {
        self.end.reserve(len, Wait::timeout(timeout))
    }
}

impl<D: CanRecv> Connection<D> {
    /// Receives one message of type `T`, waiting for it.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] at the end of the stream: every copy of
    /// the other end is gone (closed, dropped, or its process died) and
    /// every message it sent has been received. [`RecvError::Failed`] when
    /// the message is not a `T` (it is consumed) or the pipe is corrupt.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Failure, Pipe, RecvError};
    ///
    /// let (a, b) = Pipe::new()?;
    /// let sender = std::thread::spawn(move || a.send(&7u64).unwrap());
    /// assert_eq!(b.recv::<u64>(), Ok(7));
    /// sender.join().unwrap(); // `a` is dropped with the thread
    /// assert_eq!(b.recv::<u64>(), Err(RecvError::Disconnected));
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn recv<T: Message>(&self) -> Result<T, RecvError> {
        self.end.recv_msg(Wait::Forever, blocking_recv)
    }

    /// Receives one message if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Pipe, TryRecvError};
    ///
    /// let (a, b) = Pipe::new()?;
    /// assert_eq!(b.try_recv::<u8>(), Err(TryRecvError::Empty));
    /// a.send(&3u8).unwrap();
    /// assert_eq!(b.try_recv::<u8>(), Ok(3));
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn try_recv<T: Message>(&self) -> Result<T, TryRecvError> {
        self.end.recv_msg(Wait::Now, try_recv)
    }

    /// Receives one message, waiting at most `timeout` for it to begin (a
    /// message streamed in parts is then received whole).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (_a, b) = Pipe::new()?;
    /// assert!(b.recv_timeout::<u8>(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn recv_timeout<T: Message>(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.end.recv_msg(Wait::timeout(timeout), std::convert::identity)
    }

    /// Receives one message as raw bytes.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send(&1u8).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), [1]); // postcard's encoding of 1u8
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.end.recv_bytes(Wait::Forever).map_err(blocking_recv)
    }

    /// Receives one message as raw bytes if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// assert!(b.try_recv_bytes().unwrap_err().is_empty());
    /// a.send_bytes(b"x").unwrap();
    /// assert_eq!(b.try_recv_bytes().unwrap(), b"x");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, TryRecvError> {
        self.end.recv_bytes(Wait::Now).map_err(try_recv)
    }

    /// Receives one message as raw bytes, waiting at most `timeout` for it
    /// to begin.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send_bytes(b"x").unwrap();
    /// assert_eq!(b.recv_bytes_timeout(Duration::from_secs(1)).unwrap(), b"x");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.end.recv_bytes(Wait::timeout(timeout))
    }

    /// Receives one message into `buf` and returns its length — Python's
    /// `recv_bytes_into`. A message that fits one record is copied once,
    /// straight from shared memory.
    ///
    /// # Errors
    ///
    /// [`RecvIntoError::BufferTooShort`] when the message is longer than
    /// `buf`: the message is consumed anyway and handed over whole in the
    /// error (`buf` is left as it was). Otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Pipe, RecvIntoError};
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send_bytes(b"hello").unwrap();
    /// a.send_bytes(b"hi").unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.recv_bytes_into(&mut buf), Err(RecvIntoError::BufferTooShort(b"hello".to_vec())));
    /// assert_eq!(b.recv_bytes_into(&mut buf), Ok(2));
    /// assert_eq!(&buf[..2], b"hi");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, RecvIntoError> {
        match self.end.recv_into(buf, Wait::Forever) {
            Ok(got) => got.map_err(RecvIntoError::BufferTooShort),
            Err(e) => Err(blocking_recv(e).into()),
        }
    }

    /// Receives one message into `buf` if one is there now (see
    /// [`recv_bytes_into`](Self::recv_bytes_into)).
    ///
    /// # Errors
    ///
    /// [`TryRecvIntoError::Empty`] when nothing is there (`buf` is left as
    /// it was); [`TryRecvIntoError::BufferTooShort`] when the message is
    /// longer than `buf` (it is consumed and handed over whole). Otherwise
    /// as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::{Pipe, TryRecvIntoError};
    ///
    /// let (a, b) = Pipe::new()?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.try_recv_bytes_into(&mut buf), Err(TryRecvIntoError::Empty));
    /// a.send_bytes(b"hi").unwrap();
    /// assert_eq!(b.try_recv_bytes_into(&mut buf), Ok(2));
    /// assert_eq!(&buf[..2], b"hi");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    #[inline]
    pub fn try_recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, TryRecvIntoError> {
        match self.end.recv_into(buf, Wait::Now) {
            Ok(got) => got.map_err(TryRecvIntoError::BufferTooShort),
            Err(e) => Err(try_recv(e).into()),
        }
    }

    /// Receives one message into `buf`, waiting at most `timeout` for it to
    /// begin (see [`recv_bytes_into`](Self::recv_bytes_into); a message
    /// streamed in parts is then received whole).
    ///
    /// # Errors
    ///
    /// [`RecvIntoTimeoutError::Timeout`] when nothing arrived in time
    /// (`buf` is left as it was); [`RecvIntoTimeoutError::BufferTooShort`]
    /// when the message is longer than `buf` (it is consumed and handed
    /// over whole). Otherwise as [`recv`](Self::recv).
    pub fn recv_bytes_into_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvIntoTimeoutError> {
        match self.end.recv_into(buf, Wait::timeout(timeout)) {
            Ok(got) => got.map_err(RecvIntoTimeoutError::BufferTooShort),
            Err(e) => Err(e.into()),
        }
    }

    /// Receives one message and reads it in place, without a copy when it
    /// fits one record (a streamed message is assembled in local memory,
    /// and one of at most 16 bytes that came through the mailbox, see
    /// "Small messages" in the module docs, is copied).
    /// It leaves the pipe when the view is dropped; other receivers on this
    /// end wait until then.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// a.send_bytes(b"small").unwrap(); // through the mailbox
    /// a.send_bytes(&[7; 100]).unwrap();
    /// let view = b.recv_in_place().unwrap();
    /// assert!(!view.is_in_place());
    /// assert_eq!(&*view, b"small");
    /// drop(view);
    /// let view = b.recv_in_place().unwrap();
    /// assert!(view.is_in_place());
    /// assert_eq!(&*view, &[7; 100][..]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn recv_in_place(&self) -> Result<ReadView<'_>, RecvError> {
        self.end.recv_in_place(Wait::Forever).map_err(blocking_recv)
    }

    /// Receives one message in place if one is there now (see
    /// [`recv_in_place`](Self::recv_in_place)).
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], otherwise as [`recv`](Self::recv).
    pub fn try_recv_in_place(&self) -> Result<ReadView<'_>, TryRecvError> {
        self.end.recv_in_place(Wait::Now).map_err(try_recv)
    }

    /// Receives one message in place, waiting at most `timeout` for it to
    /// begin (see [`recv_in_place`](Self::recv_in_place); a message streamed
    /// in parts is then received whole).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// assert!(b.recv_in_place_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// a.send_bytes(b"abc").unwrap();
    /// assert_eq!(&*b.recv_in_place_timeout(Duration::from_secs(1)).unwrap(), b"abc");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn recv_in_place_timeout(&self, timeout: Duration) -> Result<ReadView<'_>, RecvTimeoutError> {
        self.end.recv_in_place(Wait::timeout(timeout))
    }

    /// Whether a receive would return at once — a message is waiting, or
    /// the stream has ended — waiting at most `timeout` for that to happen
    /// (`Duration::ZERO`: just look; `Duration::MAX`: no limit). Python's
    /// `poll(timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::channel::Pipe;
    ///
    /// let (a, b) = Pipe::new()?;
    /// assert!(!b.poll(Duration::from_millis(10)));
    /// a.send(&1u8).unwrap();
    /// assert!(b.poll(Duration::ZERO));
    /// b.recv::<u8>().unwrap();
    /// drop(a);
    /// assert!(b.poll(Duration::ZERO), "at the end of the stream a recv returns at once");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    pub fn poll(&self, timeout: Duration) -> bool {
        self.end.poll(wait::deadline(timeout))
    }
}

impl<D: CanRecv> Watch for Connection<D> {
    fn sleepers(&self) -> Sleepers<'_> {
        Sleepers(self.end.recv_ring().data_sleepers())
    }

    fn ready(&self, probe: bool) -> bool {
        self.end.ready(probe)
    }
}

/// Another handle to this process's copy of the same end.
impl<D: Direction> Clone for Connection<D> {
    fn clone(&self) -> Self {
        Connection { end: Arc::clone(&self.end), _dir: PhantomData }
    }
}

impl<D: Direction> fmt::Debug for Connection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("direction", &<D as sealed::Sealed>::NAME)
            .field("end", &self.end.end)
            .field("capacity", &self.end.cap)
            .finish()
    }
}

/// Serialises the segment for a child's start argument.
struct SegmentOut<'a>(&'a Object<PipeCtrl, u8>);

impl Serialize for SegmentOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The segment, reopened in a child.
struct SegmentIn(Object<PipeCtrl, u8>);

impl<'de> Deserialize<'de> for SegmentIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Object::deserialize(d).map(SegmentIn)
    }
}

/// An end travels only inside a child's start argument: as the segment's
/// inherited descriptor, the end's number, and the inherited descriptor of
/// this process's hold on the end, which the child shares (so the end is
/// held throughout the hand-over).
impl<D: Direction> Serialize for Connection<D> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let hold = self.end.hold.as_ref().ok_or_else(|| S::Error::custom("pipe end already released"))?;
        let slot = transfer::export(hold.fd()).ok_or_else(|| {
            S::Error::custom("a pipe end can only be sent to a child process as part of its start argument")
        })?;
        (SegmentOut(&self.end.obj), self.end.end as u8, slot).serialize(s)
    }
}

impl<'de, D: Direction> Deserialize<'de> for Connection<D> {
    fn deserialize<De: serde::Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        use serde::de::Error;
        let (SegmentIn(obj), end, slot) = <(SegmentIn, u8, u32)>::deserialize(d)?;
        let fd = transfer::import(slot).map_err(De::Error::custom)?;
        if !peers::same_file(fd.as_fd(), obj.fd()) {
            return Err(De::Error::custom("inherited pipe hold does not belong to its pipe"));
        }
        let end = usize::from(end);
        if <D as sealed::Sealed>::END.is_some_and(|e| e != end) {
            return Err(De::Error::custom(format!(
                "end {end} of a one-way pipe received as a {} end",
                <D as sealed::Sealed>::NAME
            )));
        }
        let end = End::new(obj, end, <D as sealed::Sealed>::RINGS, Hold::adopt(fd)).map_err(De::Error::custom)?;
        Ok(Connection::from_end(end))
    }
}
