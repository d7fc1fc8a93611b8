//! [`Queue`], [`SimpleQueue`] and [`JoinableQueue`]: multi-producer,
//! multi-consumer queues on one shared-memory ring.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::err::{Failure, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use super::message::{Decoded, Message};
use super::peers::{self, Hold};
use super::ring::{self, Line, Ring, RingCtrl, Stop};
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object};
use crate::segment::transfer;
use crate::sync::wait;
use crate::sys::Pid;
use crate::{Name, ShmError};

/// Each process holding a queue locks the byte at `HOLDER_BASE + pid` of the
/// segment (see `peers`), so a process can ask whether *another* process
/// still holds the queue.
const HOLDER_BASE: u64 = 1 << 32;
/// Past the largest pid Linux hands out (2^22).
const HOLDER_SPAN: u64 = 1 << 23;
/// Held for a spawned child from the moment its start argument is made
/// until it holds its own byte (see `Core::serialize`).
const HANDOFF_BYTE: u64 = HOLDER_BASE + HOLDER_SPAN;

/// Capacity of a queue when the caller has no better idea: 1 MiB.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The largest ring a queue or pipe may have: 1 GiB.
pub const MAX_CAPACITY: usize = 1 << 30;

#[repr(C)]
struct Holders {
    /// The first process that held the queue (its creator).
    first: AtomicU32,
    /// Another process has held it since: from then on, an empty queue that
    /// no other process holds is an end of stream.
    others_seen: AtomicU32,
    /// Hint that a process let go; checked with the kernel before use.
    left: AtomicU32,
}

#[repr(C)]
struct Tasks {
    /// `task_done` calls so far (JoinableQueue).
    done: AtomicU64,
    /// Bumped by `task_done`; `join` sleeps on it.
    seq: AtomicU32,
    waiters: AtomicU32,
}

#[repr(C)]
pub(crate) struct QueueCtrl<F> {
    ring: RingCtrl,
    holders: Line<Holders>,
    tasks: Line<Tasks>,
    _flavor: PhantomData<F>,
}

/// Which public queue type a segment holds (recorded as its kind, so a
/// `JoinableQueue` is not opened as a `Queue` by mistake).
pub(crate) trait Flavor: Send + Sync + 'static {
    const KIND: Kind;
}

macro_rules! flavor {
    ($($f:ident => $k:ident),*) => {$(
        pub(crate) struct $f;
        impl Flavor for $f {
            const KIND: Kind = Kind::$k;
        }
    )*};
}
flavor!(PlainFlavor => Queue, SimpleFlavor => SimpleQueue, JoinableFlavor => JoinableQueue);

// SAFETY: `repr(C)` of atomics and pthread mutexes (and a zero-sized
// marker); alignment 64.
unsafe impl<F: Flavor> Control for QueueCtrl<F> {
    const KIND: Kind = F::KIND;

    fn describe(&self, count: usize) -> Vec<(&'static str, String)> {
        let mut lines = self.ring.describe(count);
        if F::KIND == Kind::JoinableQueue {
            lines.push(("tasks done", self.tasks.0.done.load(Ordering::Relaxed).to_string()));
        }
        lines
    }
}

/// Rounds a requested capacity to what a ring uses: a power of two between
/// [`ring::MIN_CAPACITY`] and [`MAX_CAPACITY`].
pub(crate) fn ring_capacity(asked: usize) -> Result<usize, ShmError> {
    if asked > MAX_CAPACITY {
        return Err(ShmError::InvalidSize {
            reason: format!("capacity {asked} is above the maximum of {MAX_CAPACITY} bytes"),
        });
    }
    Ok(asked.max(ring::MIN_CAPACITY).next_power_of_two())
}

/// Checks a ring size taken from an opened segment.
pub(crate) fn check_capacity(name: Option<&str>, cap: usize) -> Result<(), ShmError> {
    if cap.is_power_of_two() && (ring::MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
        Ok(())
    } else {
        Err(ShmError::Corrupt {
            name: name.unwrap_or("anonymous segment").to_string(),
            reason: format!(
                "ring of {cap} bytes is not a power of two between {} and {MAX_CAPACITY}",
                ring::MIN_CAPACITY
            ),
        })
    }
}

thread_local! {
    /// Encoding buffer for serde messages, reused across calls.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One process's view of a queue; shared by the clones of a handle.
struct Shared<F: Flavor> {
    obj: Object<QueueCtrl<F>, u8>,
    /// This process's hold (`None` if the kernel refused one: the queue
    /// still works, others may then see an end of stream early).
    hold: Mutex<Option<(u32, Hold)>>,
}

impl<F: Flavor> Drop for Shared<F> {
    fn drop(&mut self) {
        self.obj.ctrl().ring.release_bias();
        let hold = self.hold.get_mut().map(Option::take).unwrap_or_else(|p| p.into_inner().take());
        if hold.is_some() {
            drop(hold);
            // Receivers blocked elsewhere look again at once: this may have
            // been the last other holder. (A dead holder is noticed by their
            // periodic check instead.)
            self.obj.ctrl().holders.0.left.store(1, Ordering::SeqCst);
            self.ring().wake_all();
        }
    }
}

impl<F: Flavor> Shared<F> {
    fn new(obj: Object<QueueCtrl<F>, u8>) -> Result<Shared<F>, ShmError> {
        check_capacity(obj.name(), obj.len())?;
        // Before this process wakes anyone through the ring.
        wait::join_asymmetric();
        let shared = Shared { obj, hold: Mutex::new(None) };
        shared.register(&mut shared.hold.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(shared)
    }

    fn ring(&self) -> Ring<'_> {
        // SAFETY: the elements are `len()` bytes (validated as a power of
        // two of at least MIN_CAPACITY by `new`) used only as this ring.
        unsafe { Ring::new(&self.obj.ctrl().ring, self.obj.elems(), self.obj.len()) }
    }

    /// Takes this process's hold on its own byte and records it.
    fn register(&self, hold: &mut Option<(u32, Hold)>) {
        let pid = Pid::this().as_u32();
        *hold = Hold::take(self.obj.fd(), HOLDER_BASE + u64::from(pid)).ok().map(|h| (pid, h));
        let h = &self.obj.ctrl().holders.0;
        if let Err(first) = h.first.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst) {
            if first != pid {
                h.others_seen.store(1, Ordering::SeqCst);
            }
        }
    }

    /// Whether no other process holds the queue any more (after one did):
    /// then nothing can arrive in an empty queue, since this process is
    /// busy receiving. With `probe`, the kernel is asked (at the end of a
    /// sleep slice); without, only when a holder left since the last look.
    fn others_gone(&self, probe: bool) -> bool {
        let h = &self.obj.ctrl().holders.0;
        if h.others_seen.load(Ordering::SeqCst) == 0 {
            return false;
        }
        if !probe && h.left.swap(0, Ordering::SeqCst) == 0 {
            return false;
        }
        let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        let pid = Pid::this().as_u32();
        if hold.as_ref().is_some_and(|(owner, _)| *owner != pid) {
            // A forked child: the hold it inherited is its parent's, which
            // would make the parent look alive for as long as this child is.
            self.register(&mut hold);
        }
        let me = u64::from(pid);
        // Every byte but ours, up to and including HANDOFF_BYTE.
        !peers::anyone_holds_any(
            self.obj.fd(),
            &[(HOLDER_BASE, me), (HOLDER_BASE + me + 1, HOLDER_SPAN.saturating_sub(me))],
        )
    }
}

/// The queue machinery shared by the three public queue types.
pub(crate) struct Core<T, F: Flavor> {
    shared: Arc<Shared<F>>,
    _types: PhantomData<fn(T) -> T>,
}

impl<T, F: Flavor> Clone for Core<T, F> {
    fn clone(&self) -> Self {
        Core { shared: Arc::clone(&self.shared), _types: PhantomData }
    }
}

fn failure(stop: Stop) -> Failure {
    match stop {
        Stop::TooLarge(max) => Failure::TooLarge { len: 0, max },
        Stop::Broken(m) => Failure::Corrupt(m),
        other => Failure::Corrupt(format!("unexpected {other:?}")),
    }
}

#[inline]
pub(crate) fn send_error<T>(stop: Stop, msg: T) -> SendTimeoutError<T> {
    match stop {
        Stop::Timeout => SendTimeoutError::Timeout(msg),
        Stop::Closed => SendTimeoutError::Closed(msg),
        Stop::Disconnected => SendTimeoutError::Disconnected(msg),
        other => SendTimeoutError::Failed(msg, failure(other)),
    }
}

#[inline]
pub(crate) fn recv_error(stop: Stop) -> RecvTimeoutError {
    match stop {
        Stop::Timeout => RecvTimeoutError::Timeout,
        Stop::Closed => RecvTimeoutError::Closed,
        Stop::Disconnected => RecvTimeoutError::Disconnected,
        other => RecvTimeoutError::Failed(failure(other)),
    }
}

/// Narrows the error of a deadline call to that of a blocking call.
#[inline]
pub(crate) fn blocking_send<T>(e: SendTimeoutError<T>) -> SendError<T> {
    match e {
        SendTimeoutError::Closed(t) => SendError::Closed(t),
        SendTimeoutError::Disconnected(t) => SendError::Disconnected(t),
        SendTimeoutError::Failed(t, f) => SendError::Failed(t, f),
        SendTimeoutError::Timeout(t) => SendError::Failed(t, Failure::Corrupt("timed out without a deadline".into())),
    }
}

/// Narrows the error of a deadline call to that of a `try_` call.
#[inline]
pub(crate) fn try_send<T>(e: SendTimeoutError<T>) -> TrySendError<T> {
    match e {
        SendTimeoutError::Timeout(t) => TrySendError::Full(t),
        SendTimeoutError::Closed(t) => TrySendError::Closed(t),
        SendTimeoutError::Disconnected(t) => TrySendError::Disconnected(t),
        SendTimeoutError::Failed(t, f) => TrySendError::Failed(t, f),
    }
}

#[inline]
pub(crate) fn blocking_recv(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Closed => RecvError::Closed,
        RecvTimeoutError::Disconnected => RecvError::Disconnected,
        RecvTimeoutError::Failed(f) => RecvError::Failed(f),
        RecvTimeoutError::Timeout => RecvError::Failed(Failure::Corrupt("timed out without a deadline".into())),
    }
}

#[inline]
pub(crate) fn try_recv(e: RecvTimeoutError) -> TryRecvError {
    match e {
        RecvTimeoutError::Timeout => TryRecvError::Empty,
        RecvTimeoutError::Closed => TryRecvError::Closed,
        RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        RecvTimeoutError::Failed(f) => TryRecvError::Failed(f),
    }
}

/// When a call gives up: never, now (`try_`), or at a deadline.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Forever,
    Now,
    Until(Option<Instant>),
}

impl Wait {
    pub(crate) fn timeout(d: Duration) -> Wait {
        Wait::Until(wait::deadline(d))
    }

    pub(crate) fn parts(self) -> (Option<Instant>, bool) {
        match self {
            Wait::Forever => (None, false),
            Wait::Now => (None, true),
            Wait::Until(d) => (d, false),
        }
    }
}

impl<T: Message, F: Flavor> Core<T, F> {
    fn wrap(obj: Result<Object<QueueCtrl<F>, u8>, ShmError>) -> Result<Self, ShmError> {
        Ok(Core { shared: Arc::new(Shared::new(obj?)?), _types: PhantomData })
    }

    fn init(ctrl: *mut QueueCtrl<F>, _: *mut u8) -> std::io::Result<()> {
        RingCtrl::init(ctrl.cast())
    }

    pub(crate) fn create(name: Name, capacity: usize) -> Result<Self, ShmError> {
        Self::wrap(Object::create(Some(name), ring_capacity(capacity)?, Self::init))
    }

    pub(crate) fn open(name: Name) -> Result<Self, ShmError> {
        Self::wrap(Object::open(name, None))
    }

    pub(crate) fn open_or_create(name: Name, capacity: usize) -> Result<Self, ShmError> {
        Self::wrap(Object::open_or_create(name, ring_capacity(capacity)?, Self::init))
    }

    pub(crate) fn new(capacity: usize) -> Result<Self, ShmError> {
        Self::wrap(Object::create(None, ring_capacity(capacity)?, Self::init))
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.shared.obj.name()
    }

    pub(crate) fn unlink(&self) -> Result<(), ShmError> {
        self.shared.obj.unlink()
    }

    pub(crate) fn ring(&self) -> Ring<'_> {
        self.shared.ring()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.shared.obj.len()
    }

    /// As `Connection`'s `send` and `recv` (see there): the common case
    /// (a biased side, a message that fits or waits now) inline, the rest
    /// out of line; the sends always inline, so that a message whose length
    /// is known when compiling is copied with a few moves (see
    /// `Ring::send_fast`). Measured, 64-byte `Plain`: one thread, put 19 ->
    /// 7.5 ns and get 25 -> 15 ns (8.5 ns decoding through `Decoded`); a
    /// one-to-one stream between two processes, alternated builds, 179-363
    /// -> 94-102 ns a message in the slow cross-core state
    /// (benches/README.md, session 8).
    #[inline(always)]
    pub(crate) fn put(&self, value: T, how: Wait) -> Result<(), SendTimeoutError<T>> {
        if let Some(bytes) = value.as_bytes()
            && self.ring().send_fast(bytes)
        {
            return Ok(());
        }
        self.put_slow(value, how)
    }

    #[inline(never)]
    fn put_slow(&self, value: T, how: Wait) -> Result<(), SendTimeoutError<T>> {
        let (deadline, try_only) = how.parts();
        let ring = self.ring();
        let no_readers = |_: bool| false;
        let outcome = match value.as_bytes() {
            Some(bytes) => Ok(ring.send(bytes, deadline, try_only, &no_readers)),
            None => with_scratch(|buf| value.encode(buf).map(|()| ring.send(buf, deadline, try_only, &no_readers))),
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(stop)) => Err(send_error(stop, value)),
            Err(e) => Err(SendTimeoutError::Failed(value, Failure::Encode(e))),
        }
    }

    /// See [`put`](Self::put). A `try_` get keeps its order (is the ring
    /// empty? then take) and goes the general way.
    ///
    /// `narrow`: the caller's error type (see [`Decoded`]). A waiting get
    /// looks a few more times before the general path, as a pipe's receive
    /// does ([`Ring::recv_quick`]): an 8-byte `Plain` ping-pong of blocking
    /// gets between two processes went from 199.5 to 107.7-114.6 ns a round
    /// trip in the fast cross-core state, 550-610 to 377-403 ns in the slow
    /// one (fork harness, builds alternated, session 14); spinning on
    /// `try_get` takes 133 ns and 440-470 ns.
    #[inline]
    pub(crate) fn get<E>(&self, how: Wait, narrow: impl Fn(RecvTimeoutError) -> E + Copy) -> Result<T, E> {
        if !matches!(how, Wait::Now) {
            let mut out = Decoded::new(narrow);
            if let Ok(written) = self.ring().recv_quick(&mut |bytes: &[u8]| out.read(bytes), T::SIZE, true) {
                return out.finish(written);
            }
        }
        self.get_slow(how).map_err(narrow)
    }

    #[inline(never)]
    fn get_slow(&self, how: Wait) -> Result<T, RecvTimeoutError> {
        let (deadline, try_only) = how.parts();
        let gone = |probe: bool| self.shared.others_gone(probe);
        // Only a message streamed in parts is assembled here: most are
        // decoded in place, so this allocates nothing for them.
        let mut parts = Vec::new();
        let mut out = Decoded::new(std::convert::identity);
        match self.ring().recv_with(&mut parts, deadline, try_only, &gone, |bytes| out.read(bytes)) {
            Ok(written) => out.finish(written),
            Err(stop) => Err(recv_error(stop)),
        }
    }

    /// See [`put`](Self::put). Measured, 64-byte messages: one thread, put
    /// 18-20 -> 10.4 ns, get (a `Vec` each) 41-45 -> 22 ns; one-to-one
    /// stream between two processes, alternated builds, slow state:
    /// 134-141 -> 69-78 ns a message.
    #[inline(always)]
    pub(crate) fn put_bytes(&self, bytes: &[u8], how: Wait) -> Result<(), SendTimeoutError<()>> {
        if self.ring().send_fast(bytes) {
            return Ok(());
        }
        self.put_bytes_slow(bytes, how)
    }

    #[inline(never)]
    fn put_bytes_slow(&self, bytes: &[u8], how: Wait) -> Result<(), SendTimeoutError<()>> {
        let (deadline, try_only) = how.parts();
        self.ring().send(bytes, deadline, try_only, &|_: bool| false).map_err(|s| send_error(s, ()))
    }

    /// See [`get`](Self::get).
    #[inline]
    pub(crate) fn get_bytes(&self, how: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        if !matches!(how, Wait::Now)
            && let Ok(msg) = self.ring().recv_quick(&mut <[u8]>::to_vec, None, true)
        {
            return Ok(msg);
        }
        self.get_bytes_slow(how)
    }

    #[inline(never)]
    fn get_bytes_slow(&self, how: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        let (deadline, try_only) = how.parts();
        let mut out = Vec::new();
        let gone = |probe: bool| self.shared.others_gone(probe);
        self.ring().recv(&mut out, deadline, try_only, &gone).map_err(recv_error)?;
        Ok(out)
    }

    #[inline]
    pub(crate) fn reserve(&self, len: usize, how: Wait) -> Result<WriteSlot<'_>, SendTimeoutError<()>> {
        match self.ring().reserve_fast(len) {
            Some(slot) => Ok(WriteSlot { slot }),
            None => self.reserve_slow(len, how),
        }
    }

    #[inline(never)]
    fn reserve_slow(&self, len: usize, how: Wait) -> Result<WriteSlot<'_>, SendTimeoutError<()>> {
        let (deadline, try_only) = how.parts();
        match self.ring().reserve(len, deadline, try_only, &|_: bool| false) {
            Ok(slot) => Ok(WriteSlot { slot }),
            Err(Stop::TooLarge(max)) => Err(SendTimeoutError::Failed((), Failure::TooLarge { len, max })),
            Err(stop) => Err(send_error(stop, ())),
        }
    }

    #[inline]
    pub(crate) fn get_in_place(&self, how: Wait) -> Result<ReadView<'_>, RecvTimeoutError> {
        match self.ring().view_fast() {
            Some(view) => Ok(ReadView::in_place(view)),
            None => self.get_in_place_slow(how),
        }
    }

    #[inline(never)]
    fn get_in_place_slow(&self, how: Wait) -> Result<ReadView<'_>, RecvTimeoutError> {
        let (deadline, try_only) = how.parts();
        let gone = |probe: bool| self.shared.others_gone(probe);
        let mut owned = Vec::new();
        match self.ring().recv_view(&mut owned, deadline, try_only, &gone) {
            Ok(Some(view)) => Ok(ReadView { inner: ViewInner::Ring(view) }),
            Ok(None) => Ok(ReadView { inner: ViewInner::Owned(owned) }),
            Err(stop) => Err(recv_error(stop)),
        }
    }

    pub(crate) fn close(&self) {
        self.ring().close();
    }

    /// Whether every other holder is gone (for `wait`); see
    /// `Shared::others_gone`.
    pub(crate) fn writers_gone(&self, probe: bool) -> bool {
        self.shared.others_gone(probe)
    }

    /// Marks one message as processed (JoinableQueue).
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let ctrl = self.shared.obj.ctrl();
        let published = ctrl.ring_status_published();
        let t = &ctrl.tasks.0;
        t.done
            // `then_some` computes its argument even when `d` (shared
            // memory) is `u64::MAX`: wrapping, not `+`, which panicked there
            // (found by the `open_segment` fuzz target).
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| (d < published).then_some(d.wrapping_add(1)))
            .map_err(|_| TaskDoneError)?;
        t.seq.fetch_add(1, Ordering::SeqCst);
        wait::wake(&t.seq, &t.waiters, u32::MAX);
        Ok(())
    }

    /// Waits until every message put so far has been marked done.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let ctrl = self.shared.obj.ctrl();
        let t = &ctrl.tasks.0;
        loop {
            let seq = t.seq.load(Ordering::SeqCst);
            if t.done.load(Ordering::SeqCst) >= ctrl.ring_status_published() {
                return true;
            }
            if !wait::wait(&t.seq, seq, &t.waiters, deadline) {
                return false;
            }
        }
    }

    /// Serialises the queue for a child's start argument: the segment, and
    /// (when a spawn is serialising) a hold on [`HANDOFF_BYTE`] made for the
    /// child, which it keeps until it holds its own byte. So the child holds
    /// the queue from `start()` on, with no gap in which a receiver could
    /// see no other holder and report a false end of stream.
    pub(crate) fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Seg<'a, F: Flavor>(&'a Object<QueueCtrl<F>, u8>);
        impl<F: Flavor> serde::Serialize for Seg<'_, F> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
        let slot =
            Hold::take(self.shared.obj.fd(), HANDOFF_BYTE).ok().and_then(|h| transfer::export_owned(h.into_fd()));
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&Seg(&self.shared.obj))?;
        t.serialize_element(&slot)?;
        t.end()
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seg<F: Flavor>(Object<QueueCtrl<F>, u8>);
        impl<'de, F: Flavor> serde::Deserialize<'de> for Seg<F> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Object::deserialize(d).map(Seg)
            }
        }
        let (Seg(obj), slot): (Seg<F>, Option<u32>) = serde::Deserialize::deserialize(d)?;
        // Our own hold is taken in `wrap`; the hand-over one can go after.
        let parents = slot.and_then(|s| transfer::import(s).ok());
        let core = Self::wrap(Ok(obj)).map_err(serde::de::Error::custom);
        drop(parents);
        core
    }
}

impl<F: Flavor> QueueCtrl<F> {
    fn ring_status_published(&self) -> u64 {
        // SAFETY: never; see `Ring::status` — this reads the same atomic.
        ring::published(&self.ring)
    }
}

/// Runs `f` with this thread's encoding buffer (a fresh one if the buffer
/// is in use further up the stack).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            f(&mut buf)
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// `task_done` was called more times than there were messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than there were items put")
    }
}

impl std::error::Error for TaskDoneError {}

/// Room for one message, written in place in the queue's shared memory (no
/// copy). Fill it through `DerefMut<Target = [u8]>`, then
/// [`commit`](Self::commit); dropped uncommitted, nothing is sent.
///
/// It holds the queue's send lock: other producers wait until it is
/// committed or dropped, so fill it promptly.
#[must_use = "a slot sends nothing until it is committed"]
pub struct WriteSlot<'a> {
    slot: ring::Slot<'a>,
}

impl<'a> WriteSlot<'a> {
    /// Wraps a reserved ring slot (also used by `Connection`).
    #[inline]
    pub(crate) fn from_slot(slot: ring::Slot<'a>) -> Self {
        WriteSlot { slot }
    }

    /// Sends the message.
    #[inline]
    pub fn commit(self) {
        self.slot.commit();
    }
}

impl Deref for WriteSlot<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.slot.bytes_ref()
    }
}

impl DerefMut for WriteSlot<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        self.slot.bytes()
    }
}

impl fmt::Debug for WriteSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteSlot").field("len", &self.len()).finish()
    }
}

enum ViewInner<'a> {
    Ring(ring::View<'a>),
    Owned(Vec<u8>),
}

/// One received message, read in place in shared memory when it fits one
/// record (no copy), assembled in local memory when it was streamed. The
/// message is removed from the queue when the view is dropped.
///
/// An in-place view holds the queue's receive lock: other consumers wait
/// until it is dropped.
pub struct ReadView<'a> {
    inner: ViewInner<'a>,
}

impl<'a> ReadView<'a> {
    /// A message read in place (also used by `Connection`).
    #[inline]
    pub(crate) fn in_place(view: ring::View<'a>) -> Self {
        ReadView { inner: ViewInner::Ring(view) }
    }

    /// A streamed message, assembled in local memory.
    pub(crate) fn owned(bytes: Vec<u8>) -> Self {
        ReadView { inner: ViewInner::Owned(bytes) }
    }

    /// Whether the bytes are read in place (not copied).
    #[inline]
    pub fn is_in_place(&self) -> bool {
        matches!(self.inner, ViewInner::Ring(_))
    }
}

impl Deref for ReadView<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.inner {
            ViewInner::Ring(v) => v.bytes(),
            ViewInner::Owned(v) => v,
        }
    }
}

impl fmt::Debug for ReadView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadView").field("len", &self.len()).field("in_place", &self.is_in_place()).finish()
    }
}

/// Iterator over messages: from `iter()` it blocks for each message and
/// ends when the queue is closed and drained, or every writer is gone; from
/// `try_iter()` it yields the messages waiting now.
pub struct Iter<'a, T> {
    next: Box<dyn FnMut() -> Option<T> + 'a>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        (self.next)()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}

/// Defines a public queue type over [`Core`] with the whole queue API, so
/// that the three queue types share one implementation.
macro_rules! queue_type {
    ($(#[$doc:meta])* $name:ident, $flavor:ident) => {
        $(#[$doc])*
        pub struct $name<T> {
            core: Core<T, $flavor>,
        }

        impl<T: Message> $name<T> {
            /// Creates a named queue with a ring of `capacity` bytes (rounded
            /// up to a power of two of at least 4 KiB).
            ///
            /// # Errors
            ///
            /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`],
            /// [`ShmError::InvalidSize`] above [`MAX_CAPACITY`], OS errors.
            pub fn create(name: impl Into<Name>, capacity: usize) -> Result<Self, ShmError> {
                Ok($name { core: Core::create(name.into(), capacity)? })
            }

            /// Opens a named queue; its capacity is the one it was created with.
            ///
            /// # Errors
            ///
            /// [`ShmError::NotFound`], [`ShmError::Mismatch`] when the name
            /// holds another kind of object, [`ShmError::Corrupt`].
            pub fn open(name: impl Into<Name>) -> Result<Self, ShmError> {
                Ok($name { core: Core::open(name.into())? })
            }

            /// Opens the named queue, or creates it with `capacity` bytes.
            ///
            /// # Errors
            ///
            /// As `create` and `open`; an existing queue of another capacity
            /// is a [`ShmError::Mismatch`].
            pub fn open_or_create(name: impl Into<Name>, capacity: usize) -> Result<Self, ShmError> {
                Ok($name { core: Core::open_or_create(name.into(), capacity)? })
            }

            /// Creates an anonymous queue with a ring of `capacity` bytes, to
            /// hand to child processes in their start argument.
            ///
            /// # Errors
            ///
            /// [`ShmError::InvalidSize`] above [`MAX_CAPACITY`], OS errors.
            pub fn new(capacity: usize) -> Result<Self, ShmError> {
                Ok($name { core: Core::new(capacity)? })
            }

            /// The machinery, for `wait` (`select.rs`).
            pub(crate) fn core(&self) -> &Core<T, $flavor> {
                &self.core
            }

            /// The name, or `None` for an anonymous queue.
            pub fn name(&self) -> Option<&str> {
                self.core.name()
            }

            /// Removes the name; open handles keep working.
            ///
            /// # Errors
            ///
            /// [`ShmError::NotFound`] if the name is gone or the queue anonymous.
            pub fn unlink(&self) -> Result<(), ShmError> {
                self.core.unlink()
            }

            /// Size of the ring in bytes. A message takes 8 bytes of header
            /// plus its encoded length rounded up to 8; one record holds at
            /// most half the ring, and larger messages are streamed through
            /// it in parts (so any size can be sent, never truncated).
            pub fn capacity(&self) -> usize {
                self.core.capacity()
            }

            /// Puts a message, waiting for room.
            ///
            /// # Errors
            ///
            /// [`SendError::Closed`] after [`close`](Self::close);
            /// [`SendError::Failed`] when the message cannot be encoded or
            /// the queue is corrupt. The message is handed back.
            #[inline]
            pub fn put(&self, value: T) -> Result<(), SendError<T>> {
                self.core.put(value, Wait::Forever).map_err(blocking_send)
            }

            /// Puts a message if there is room now.
            ///
            /// # Errors
            ///
            /// [`TrySendError::Full`], otherwise as [`put`](Self::put).
            #[inline]
            pub fn try_put(&self, value: T) -> Result<(), TrySendError<T>> {
                self.core.put(value, Wait::Now).map_err(try_send)
            }

            /// Puts a message, waiting at most `timeout` for room.
            ///
            /// # Errors
            ///
            /// [`SendTimeoutError::Timeout`], otherwise as [`put`](Self::put).
            pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
                self.core.put(value, Wait::timeout(timeout))
            }

            /// Takes a message, waiting for one.
            ///
            /// # Errors
            ///
            /// [`RecvError::Closed`] when the queue was closed and is empty;
            /// [`RecvError::Disconnected`] when it is empty and no other
            /// process holds it any more, though one did (every process it
            /// was shared with dropped it or died — a death is noticed
            /// within about 100 ms), so nothing can ever arrive;
            /// [`RecvError::Failed`] when a message cannot be decoded as `T`
            /// (it is consumed) or the queue is corrupt.
            #[inline]
            pub fn get(&self) -> Result<T, RecvError> {
                self.core.get(Wait::Forever, blocking_recv)
            }

            /// Takes a message if one is there now.
            ///
            /// # Errors
            ///
            /// [`TryRecvError::Empty`], otherwise as [`get`](Self::get).
            #[inline]
            pub fn try_get(&self) -> Result<T, TryRecvError> {
                self.core.get(Wait::Now, try_recv)
            }

            /// Takes a message, waiting at most `timeout` for one to begin.
            ///
            /// Once a message larger than one record has begun, the rest is
            /// awaited past `timeout` while its producer makes progress; a
            /// producer that holds the queue's send lock without sending
            /// anything for a second (stopped, or a corrupt lock word) makes
            /// the call give up with a timeout, and that message is lost
            /// whole. `try_get` does the same.
            ///
            /// # Errors
            ///
            /// [`RecvTimeoutError::Timeout`], otherwise as [`get`](Self::get).
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
                self.core.get(Wait::timeout(timeout), std::convert::identity)
            }

            /// Puts raw bytes as one message (any length; empty too).
            ///
            /// # Errors
            ///
            /// As [`put`](Self::put).
            #[inline]
            pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), SendError<()>> {
                self.core.put_bytes(bytes, Wait::Forever).map_err(blocking_send)
            }

            /// Puts raw bytes as one message if there is room now.
            ///
            /// # Errors
            ///
            /// [`TrySendError::Full`], otherwise as [`put`](Self::put).
            #[inline]
            pub fn try_put_bytes(&self, bytes: &[u8]) -> Result<(), TrySendError<()>> {
                self.core.put_bytes(bytes, Wait::Now).map_err(try_send)
            }

            /// Puts raw bytes as one message, waiting at most `timeout` for
            /// room.
            ///
            /// # Errors
            ///
            /// [`SendTimeoutError::Timeout`], otherwise as [`put`](Self::put).
            pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), SendTimeoutError<()>> {
                self.core.put_bytes(bytes, Wait::timeout(timeout))
            }

            /// Takes one message as raw bytes.
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get).
            #[inline]
            pub fn get_bytes(&self) -> Result<Vec<u8>, RecvError> {
                self.core.get_bytes(Wait::Forever).map_err(blocking_recv)
            }

            /// Takes one message as raw bytes if one is there now.
            ///
            /// # Errors
            ///
            /// [`TryRecvError::Empty`], otherwise as [`get`](Self::get).
            #[inline]
            pub fn try_get_bytes(&self) -> Result<Vec<u8>, TryRecvError> {
                self.core.get_bytes(Wait::Now).map_err(try_recv)
            }

            /// Takes one message as raw bytes, waiting at most `timeout` for
            /// one to begin (see [`get_timeout`](Self::get_timeout) for a
            /// message streamed in parts).
            ///
            /// # Errors
            ///
            /// [`RecvTimeoutError::Timeout`], otherwise as [`get`](Self::get).
            pub fn get_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
                self.core.get_bytes(Wait::timeout(timeout))
            }

            /// Reserves room for a message of exactly `len` bytes, to be
            /// written in place (zero-copy) and then committed. `len` may be
            /// at most half the capacity. The slot holds the sending side
            /// while the caller writes: other producers wait until it is
            /// committed or dropped. Small messages are as cheap this way as
            /// by copy (see `Connection::reserve`).
            ///
            /// # Errors
            ///
            /// [`SendError::Failed`] with [`Failure::TooLarge`] above half
            /// the capacity; otherwise as [`put`](Self::put).
            pub fn reserve(&self, len: usize) -> Result<WriteSlot<'_>, SendError<()>> {
                self.core.reserve(len, Wait::Forever).map_err(blocking_send)
            }

            /// Reserves room for an in-place message of exactly `len` bytes
            /// if there is room now (see [`reserve`](Self::reserve)).
            ///
            /// # Errors
            ///
            /// [`TrySendError::Full`] when there is no room now;
            /// [`TrySendError::Failed`] with [`Failure::TooLarge`] above
            /// half the capacity; otherwise as [`put`](Self::put).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use multiproc::", stringify!($name), ";")]
            /// use multiproc::channel::{Failure, TrySendError};
            ///
            #[doc = concat!("let q: ", stringify!($name), "<Vec<u8>> = ", stringify!($name), "::new(4096)?;")]
            /// let mut slot = q.try_reserve(2000).unwrap();
            /// slot.fill(7);
            /// slot.commit();
            /// q.try_reserve(2000).unwrap().commit(); // two such records fill the ring
            /// assert!(q.try_reserve(2000).unwrap_err().is_full());
            /// assert!(matches!(
            ///     q.try_reserve(4096),
            ///     Err(TrySendError::Failed((), Failure::TooLarge { len: 4096, .. }))
            /// ));
            /// assert_eq!(&*q.try_get_in_place().unwrap(), &[7; 2000][..]);
            /// assert_eq!(q.try_get_in_place().unwrap().len(), 2000);
            /// assert!(q.try_get_in_place().unwrap_err().is_empty());
            /// # Ok::<(), multiproc::ShmError>(())
            /// ```
            pub fn try_reserve(&self, len: usize) -> Result<WriteSlot<'_>, TrySendError<()>> {
                self.core.reserve(len, Wait::Now).map_err(try_send)
            }

            /// Reserves room for an in-place message of exactly `len` bytes,
            /// waiting at most `timeout` for room (see
            /// [`reserve`](Self::reserve)).
            ///
            /// # Errors
            ///
            /// [`SendTimeoutError::Timeout`] when no room came in time;
            /// [`SendTimeoutError::Failed`] with [`Failure::TooLarge`] above
            /// half the capacity (at once, without waiting); otherwise as
            /// [`put`](Self::put).
            pub fn reserve_timeout(&self, len: usize, timeout: Duration) -> Result<WriteSlot<'_>, SendTimeoutError<()>> {
                self.core.reserve(len, Wait::timeout(timeout))
            }

            /// Takes one message and reads it in place (zero-copy when it
            /// fits one record); it leaves the queue when the view drops.
            ///
            /// # Errors
            ///
            /// As [`get`](Self::get).
            pub fn get_in_place(&self) -> Result<ReadView<'_>, RecvError> {
                self.core.get_in_place(Wait::Forever).map_err(blocking_recv)
            }

            /// Takes one message in place if one is there now (see
            /// [`get_in_place`](Self::get_in_place)).
            ///
            /// # Errors
            ///
            /// [`TryRecvError::Empty`], otherwise as [`get`](Self::get).
            pub fn try_get_in_place(&self) -> Result<ReadView<'_>, TryRecvError> {
                self.core.get_in_place(Wait::Now).map_err(try_recv)
            }

            /// Takes one message in place, waiting at most `timeout` for one
            /// to begin (see [`get_in_place`](Self::get_in_place) and, for a
            /// message streamed in parts, [`get_timeout`](Self::get_timeout)).
            ///
            /// # Errors
            ///
            /// [`RecvTimeoutError::Timeout`], otherwise as [`get`](Self::get).
            pub fn get_in_place_timeout(&self, timeout: Duration) -> Result<ReadView<'_>, RecvTimeoutError> {
                self.core.get_in_place(Wait::timeout(timeout))
            }

            /// Messages waiting (a snapshot).
            pub fn len(&self) -> usize {
                self.core.ring().len()
            }

            /// Whether no message is waiting (a snapshot).
            pub fn is_empty(&self) -> bool {
                !self.core.ring().has_data()
            }

            /// Whether not even an empty message fits now (a snapshot).
            pub fn is_full(&self) -> bool {
                self.core.ring().free() < 8
            }

            /// Closes the queue for everyone: later puts fail with
            /// [`SendError::Closed`]; gets return the messages already in
            /// the queue, then [`RecvError::Closed`]. Blocked callers wake.
            pub fn close(&self) {
                self.core.close()
            }

            /// Whether the queue was closed.
            pub fn is_closed(&self) -> bool {
                self.core.ring().is_closed()
            }

            /// A blocking iterator over messages; it ends when the queue is
            /// closed and drained or every writer is gone.
            pub fn iter(&self) -> Iter<'_, T> {
                Iter { next: Box::new(move || self.core.get(Wait::Forever, std::convert::identity).ok()) }
            }

            /// An iterator over the messages waiting now.
            pub fn try_iter(&self) -> Iter<'_, T> {
                Iter { next: Box::new(move || self.core.get(Wait::Now, std::convert::identity).ok()) }
            }
        }

        /// Another handle to the same queue.
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name { core: self.core.clone() }
            }
        }

        /// A named queue travels as its name; an anonymous one as an
        /// inherited descriptor, which works only inside a child's start
        /// argument.
        impl<T: Message> serde::Serialize for $name<T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.core.serialize(s)
            }
        }

        impl<'de, T: Message> serde::Deserialize<'de> for $name<T> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name { core: Core::deserialize(d)? })
            }
        }

        impl<T: Message> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("name", &self.name())
                    .field("capacity", &self.capacity())
                    .field("len", &self.len())
                    .finish()
            }
        }
    };
}

queue_type!(
    /// A multi-producer, multi-consumer queue of `T` in shared memory —
    /// Python's `multiprocessing.Queue`.
    ///
    /// `T` is any [`Message`]: every serde type (encoded with postcard), or
    /// a [`Plain`](super::Plain) wrapper around a [`bytemuck::Pod`] type,
    /// sent as its raw bytes. Raw-byte messages ([`put_bytes`](Self::put_bytes))
    /// and in-place messages ([`reserve`](Self::reserve),
    /// [`get_in_place`](Self::get_in_place)) work on any queue.
    ///
    /// The queue is a ring of bytes (its [`capacity`](Self::capacity)).
    /// Each producer's messages arrive in the order it put them.
    ///
    /// # Crashes
    ///
    /// A producer killed while putting loses only the message it was
    /// putting; a consumer killed while getting loses nothing (the message
    /// goes to the next consumer), unless it was in the middle of a message
    /// larger than one record, which is then lost whole. Nothing is ever
    /// duplicated or truncated, and the queue keeps working.
    ///
    /// # End of stream
    ///
    /// Every process with a handle holds the queue (a byte lock the kernel
    /// drops when the process exits or dies). A get on an empty queue that
    /// no *other* process holds any more — after another one did — reports
    /// [`RecvError::Disconnected`] instead of hanging: nothing can arrive.
    /// A queue used only by the threads of one process never reports it. A
    /// child started with the fork method shares its parent's hold until it
    /// first waits on the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Queue;
    ///
    /// let q = Queue::new(64 * 1024)?;
    /// q.put("hello".to_string()).unwrap();
    /// q.put("world".to_string()).unwrap();
    /// assert_eq!(q.len(), 2);
    /// assert_eq!(q.get().unwrap(), "hello");
    /// q.close();
    /// assert_eq!(q.iter().collect::<Vec<_>>(), ["world"]);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    Queue,
    PlainFlavor
);

queue_type!(
    /// Python's `multiprocessing.SimpleQueue`: the same queue as [`Queue`],
    /// recorded as a separate kind so the two are not opened for each other.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::SimpleQueue;
    ///
    /// let q: SimpleQueue<u32> = SimpleQueue::new(4096)?;
    /// q.put(1).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// assert!(q.is_empty());
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    SimpleQueue,
    SimpleFlavor
);

queue_type!(
    /// A [`Queue`] that counts unfinished work — Python's
    /// `multiprocessing.JoinableQueue`: consumers call
    /// [`task_done`](Self::task_done) for each message they finished, and
    /// [`join`](Self::join) waits until every message put has been done.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::JoinableQueue;
    ///
    /// let q = JoinableQueue::new(4096)?;
    /// q.put(5u8).unwrap();
    /// assert!(!q.join_timeout(std::time::Duration::from_millis(10)));
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// q.join();
    /// assert!(q.task_done().is_err(), "more task_done calls than items");
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    JoinableQueue,
    JoinableFlavor
);

impl<T: Message> JoinableQueue<T> {
    /// Marks one message taken from the queue as finished.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] when called more times than messages were put;
    /// nothing changes then.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.core.task_done()
    }

    /// Waits until every message put so far has been marked done.
    ///
    /// A producer killed in the instant between counting a message and
    /// publishing it leaves one task that can never be done: use
    /// [`join_timeout`](Self::join_timeout) where that matters.
    pub fn join(&self) {
        self.core.join(None);
    }

    /// As [`join`](Self::join), waiting at most `timeout`; `true` when all
    /// work is done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.core.join(wait::deadline(timeout))
    }
}
