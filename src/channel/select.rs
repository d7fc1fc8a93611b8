//! [`wait`]: sleeps until any of several channels can be received from —
//! Python's `multiprocessing.connection.wait`.
//!
//! # How
//!
//! Every ring bumps its `data_seq` futex word when a message is published
//! and when a peer leaves (see `ring.rs`). `wait` takes a snapshot of the
//! words of all the channels, checks each channel, and if none is ready,
//! sleeps on all the words at once with Linux's `futex_waitv` (5.16 or
//! later), counted as a waiter on each so that producers wake it. A wake-up
//! on any word, or a word that changed since the snapshot, sends it round
//! again. As in a blocked `recv`, the sleep is cut into
//! [`LIVENESS_SLICE`] pieces, after each of which the kernel is asked
//! whether peers died (a death bumps no word).
//!
//! Where `futex_waitv` is missing (older kernels, seccomp filters) or the
//! list is longer than the 128 words it takes, `wait` checks the channels
//! every millisecond instead.
//!
//! A producer wakes one sleeper per message: when several threads or
//! processes wait on the same channel, the others notice at the end of
//! their slice, within about 100 ms.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::message::Message;
use super::queue::{JoinableQueue, Queue, SimpleQueue};
use super::ring::LIVENESS_SLICE;
use crate::sync::wait::{self as futex_wait, RingSleepers};
use crate::sys::futex::{self, WAIT_ANY_MAX, WakeAny};

/// How often the fallback without `futex_waitv` looks.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

pub(crate) mod sealed {
    use crate::sync::wait::RingSleepers;

    /// The sleep words of a channel's receivers: the futex word bumped when
    /// a message arrives (or a peer leaves), the count of its sleepers, and
    /// how its wakers fence. (A wrapper, as the trait is public in name.)
    pub struct Sleepers<'a>(pub(crate) &'a RingSleepers);

    /// What [`wait`](super::wait) needs of a channel.
    pub trait Watch {
        /// Its receivers' sleep words.
        fn sleepers(&self) -> Sleepers<'_>;

        /// Whether a receive would return at once: a message is waiting, or
        /// the channel is closed or at the end of its stream. With `probe`,
        /// the kernel is asked whether peers are alive.
        fn ready(&self, probe: bool) -> bool;
    }
}

/// Something [`wait`] can watch: the ends of a [`Pipe`](super::Pipe) that
/// can receive ([`Connection`](super::Connection)`<Duplex>` and
/// `Connection<RecvOnly>`), and [`Queue`], [`SimpleQueue`] and
/// [`JoinableQueue`]. Sealed.
///
/// An end that can only send is not waitable:
///
/// ```compile_fail
/// let (_rx, tx) = multiproc::channel::Pipe::one_way().unwrap();
/// multiproc::channel::wait(&[&tx], None);
/// ```
pub trait Waitable: sealed::Watch {}

impl<W: sealed::Watch + ?Sized> Waitable for W {}

macro_rules! watch_queue {
    ($($q:ident),*) => {$(
        impl<T: Message> sealed::Watch for $q<T> {
            fn sleepers(&self) -> sealed::Sleepers<'_> {
                sealed::Sleepers(self.core().ring().data_sleepers())
            }

            fn ready(&self, probe: bool) -> bool {
                let ring = self.core().ring();
                ring.has_data() || ring.is_closed() || self.core().writers_gone(probe)
            }
        }
    )*};
}
watch_queue!(Queue, SimpleQueue, JoinableQueue);

/// Counts the caller as a sleeper on every object until dropped, except on
/// the one whose waker woke it: that waker already took it off the count
/// (see `sync::wait`, "One wake per sleep").
struct Counted<'a, 'b> {
    objects: &'a [&'b dyn Waitable],
    woken_by: Option<usize>,
}

impl<'a, 'b> Counted<'a, 'b> {
    fn new(objects: &'a [&'b dyn Waitable]) -> Self {
        for o in objects {
            o.sleepers().0.waiters.fetch_add(1, Ordering::SeqCst);
        }
        Counted { objects, woken_by: None }
    }
}

impl Drop for Counted<'_, '_> {
    fn drop(&mut self) {
        for (i, o) in self.objects.iter().enumerate() {
            if self.woken_by != Some(i) {
                futex_wait::uncount(&o.sleepers().0.waiters, 1);
            }
        }
    }
}

/// Waits until at least one of `objects` is ready and returns the indices
/// of the ready ones, in order — Python's
/// `multiprocessing.connection.wait(object_list, timeout)`.
///
/// An object is ready when a receive on it would return at once: a message
/// is waiting, or the stream has ended (a [`Connection`](super::Connection)
/// whose peer is gone, a queue that is closed or whose every writer is
/// gone). `timeout` bounds the wait (`None`: no limit); when it passes with
/// nothing ready, the list is empty. A `timeout` of zero just looks.
///
/// Readiness is a snapshot: another receiver on the same channel may take
/// the message first, so a `try_` receive after `wait` is the robust
/// pattern when channels are shared.
///
/// The call sleeps on all the channels at once with Linux's `futex_waitv`
/// (5.16 or later) and wakes as soon as a message arrives or a peer closes
/// its end; a peer that *dies* is noticed within about 100 ms. Without
/// `futex_waitv` (older kernels, seccomp filters), or for more than 128
/// objects, it looks every millisecond instead. A message wakes one
/// sleeper: when several threads or processes wait on the same channel,
/// the others notice within about 100 ms.
///
/// A call that finds something ready at its first look costs a look at
/// each object and nothing more; one that sleeps costs what a receive that
/// sleeps costs (the producers of channels whose receivers keep sleeping
/// make their wake-ups visible with a full fence, so that the sleeper
/// needs no barrier; see `sync::wait` in the sources).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use multiproc::Queue;
/// use multiproc::channel::{Pipe, wait};
///
/// let (a, b) = Pipe::new()?;
/// let (c, d) = Pipe::new()?;
/// let q: Queue<u32> = Queue::new(4096)?;
/// assert!(wait(&[&b, &d, &q], Some(Duration::from_millis(10))).is_empty());
///
/// let writer = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     c.send(&5u8).unwrap();
///     c // keep the end alive, or `d` would be at the end of its stream too
/// });
/// assert_eq!(wait(&[&b, &d, &q], Some(Duration::from_secs(10))), [1]);
/// assert_eq!(d.try_recv::<u8>(), Ok(5));
///
/// drop(a); // `b` is at the end of its stream: ready
/// assert_eq!(wait(&[&b, &d, &q], None), [0]);
/// # drop(writer.join());
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    let deadline = timeout.and_then(futex_wait::deadline);
    let mut polling = objects.len() > WAIT_ANY_MAX;
    let mut probe = false;
    let mut next_probe = Instant::now() + LIVENESS_SLICE;
    // A first look, before counting and fencing, which only a sleep needs.
    // A wait that ends here slept not at all, so the wakers of what it
    // found go back to their light fence, as after a receive that found
    // its message by spinning ("Sides that sleep on every message" in
    // `sync::wait`): a consumer that streams with `wait` and `try_recv`
    // would otherwise leave its producer fencing fully on every message.
    let ready = ready_now(objects, probe);
    if !ready.is_empty() {
        ready.iter().for_each(|&i| objects[i].sleepers().0.spun());
        return ready;
    }
    if futex_wait::expired(deadline) {
        // A zero timeout only looks: it will not sleep, so it neither
        // counts itself nor arms the rings.
        return ready;
    }
    loop {
        // Counted as a sleeper before reading the words and looking, so a
        // producer that publishes after the look sees the count and wakes us
        // (producers skip the wake-up when nobody is counted).
        let mut counted = Counted::new(objects);
        // Ring wakers fence asymmetrically (see `sync::wait`).
        let sleepers: Vec<&RingSleepers> = objects.iter().map(|o| o.sleepers().0).collect();
        futex_wait::fence_before_sleep_on(&sleepers);
        let words: Vec<(&AtomicU32, u32)> = sleepers.iter().map(|s| (&s.seq, s.seq.load(Ordering::SeqCst))).collect();
        let ready = ready_now(objects, probe);
        if !ready.is_empty() || futex_wait::expired(deadline) {
            return ready;
        }
        let slice_end = Instant::now() + LIVENESS_SLICE;
        let slice_end = deadline.map_or(slice_end, |d| d.min(slice_end));
        if objects.is_empty() {
            std::thread::sleep(slice_end.saturating_duration_since(Instant::now()));
            continue;
        }
        if polling {
            std::thread::sleep(POLL_INTERVAL.min(slice_end.saturating_duration_since(Instant::now())));
            probe = Instant::now() >= next_probe;
            if probe {
                next_probe = Instant::now() + LIVENESS_SLICE;
            }
            continue;
        }
        let woke = futex::wait_any(&words, Some(slice_end));
        if !matches!(woke, WakeAny::Unsupported) {
            // One sleep on each ring, as `multiproc info` counts them.
            sleepers.iter().for_each(|s| _ = s.sleeps.fetch_add(1, Ordering::Relaxed));
        }
        match woke {
            WakeAny::Woken(i) => {
                counted.woken_by = Some(i);
                probe = false;
            }
            WakeAny::Retry => probe = false,
            WakeAny::TimedOut => probe = true,
            WakeAny::Unsupported => polling = true,
        }
    }
}

/// The indices of the objects that are ready now.
fn ready_now(objects: &[&dyn Waitable], probe: bool) -> Vec<usize> {
    (0..objects.len()).filter(|&i| objects[i].ready(probe)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wakers_fence(q: &Queue<u32>) -> String {
        q.core().ring().data_sleepers().describe()
    }

    #[test]
    fn a_wait_that_finds_a_message_at_once_lets_its_wakers_fence_lightly() {
        let q: Queue<u32> = Queue::new(4096).unwrap();
        assert!(wait(&[&q], Some(Duration::ZERO)).is_empty());
        let line = wakers_fence(&q);
        assert!(line.contains("0 sleeps") && line.contains("(epoch 0)"), "a zero timeout only looks: {line}");
        assert!(wait(&[&q], Some(Duration::from_millis(5))).is_empty());
        let line = wakers_fence(&q);
        assert!(line.contains("1 sleeps") && line.contains("fence fully"), "the sleep armed the ring: {line}");
        q.put(7).unwrap();
        assert_eq!(wait(&[&q], Some(Duration::from_secs(10))), [0]);
        if futex_wait::remote_fence() {
            // (Without the barrier the ring stays *arming*: its wakers
            // fence fully from then on, which is correct, only slower.)
            let line = wakers_fence(&q);
            assert!(line.contains("1 sleeps") && line.contains("fence lightly"), "{line}");
        }
        assert_eq!(q.try_get(), Ok(7));
    }
}
