//! Sleeping on a futex word with a short spin first, and waking sleepers
//! without a system call when there are none.
//!
//! Each primitive keeps a `waiters` count next to the word it sleeps on.
//! A sleeper increments it before the futex wait and decrements it after;
//! a waker calls `FUTEX_WAKE` only when the count is non-zero. Both sides
//! use `SeqCst`, so either the waker sees the sleeper's increment, or the
//! sleeper's futex wait sees the waker's change to the word and returns at
//! once: no lost wake-up. A sleeper killed while asleep leaves the count one
//! too high, which costs later wakers a harmless system call, never a hang.
//!
//! # One wake per sleep (channels)
//!
//! With the count above, every waker that finds a sleeper counted makes a
//! `FUTEX_WAKE` call, until the sleeper has run again and taken itself off
//! the count. A producer publishing a message every few dozen nanoseconds
//! while its consumer takes microseconds to wake up would make hundreds of
//! useless system calls per wake-up. So on a ring's words the *waker* takes
//! the sleepers it woke off the count ([`wake_counting_out`]: `FUTEX_WAKE`
//! says how many), and a sleeper whose wait ended in a wake-up leaves the
//! count alone; one that timed out, was interrupted, or found the word
//! changed takes itself off. The kernel reports a sleeper as woken exactly
//! when a `FUTEX_WAKE` counted it, so the count stays exact; every waker of
//! a ring's words must use this form.
//!
//! # Asymmetric fences (channels)
//!
//! The waker's half of the protocol is a `SeqCst` fence between its store
//! and its look at `waiters`. On a channel that fence is most of the cost
//! of a message: it waits until the producer's stores into the record —
//! cache lines the consumer on the other core has just read, so each needs
//! a cross-core transfer — have drained, instead of letting them drain while
//! the producer goes on (perf: 96% of `Ring::send`'s own samples, 40% of the
//! 64-byte `Pipe` throughput benchmark, sit on the instruction after the
//! fence). Channels move that cost to the side that is about to sleep
//! anyway, with `membarrier(2)`: every process registers once, when it
//! first makes a queue or pipe handle ([`join_asymmetric`]); a waker in a registered
//! process needs only a compiler fence ([`WakerFence`]); a sleeper, after
//! counting itself, calls `MEMBARRIER_CMD_GLOBAL_EXPEDITED`
//! ([`remote_fence`]), which makes every running thread of every registered
//! process pass a full barrier before it returns. Then either the waker's
//! look at `waiters` comes after its barrier and sees the count, or its
//! store came before the barrier and the sleeper's last look sees it (the
//! pairing liburcu uses). A process whose registration fails (old kernel,
//! seccomp) fences itself on every wake, so mixing is safe; if even the
//! sleeper's barrier call fails, that sleep can miss a wake-up and find the
//! message at the end of its sleep slice (channels sleep at most 100 ms at
//! a time), never later, and its side is left *arming* (below), so that
//! its wakers fence fully from then on.
//!
//! # Sides that sleep on every message (channels)
//!
//! A `membarrier` interrupts the other side's core. On a virtual machine
//! that interrupt is an exit to the hypervisor, and each exit is a chance
//! for the host to run something else: with both sides sleeping on every
//! message (request/reply with work in between), the round trips that took
//! more than 400 µs instead of ~90 µs beyond the work came 1.5–5x as often
//! as with a raw futex ping-pong interleaved with them in the same two
//! processes (34–126 against 17–66 in 2000 of each), and the mean round
//! trip was 1.05–1.37x the raw one; with the barrier left out, 20–38
//! against 17–32, and 1.00–1.07x (session 15; `benches/README.md`).
//!
//! So a side whose sleepers keep sleeping asks its wakers to fence fully
//! instead, through a word next to the waiter count that wakers read
//! anyway ([`RingSleepers::fenced`]): a sleeper that finds it *fenced*
//! needs no barrier. To set it, a sleeper writes *arming* with a new epoch,
//! calls `membarrier` once, and turns its own *arming* into *fenced* with a
//! compare-and-swap, which fails if anything was written in between. A
//! waker that reads anything but *light* fences fully; one that reads
//! *light* either read it before the arming sleeper's barrier, which then
//! made its store visible before *fenced* was written, or read it after a
//! later reset to *light*, and then, its loads being `SeqCst`, it sees the
//! count of any sleeper that read *fenced* before the reset. A side whose
//! waits end in spinning again (a stream, a reply within the spin) resets
//! the word to *light* ([`RingSleepers::spun`]), so its wakers go back to
//! the compiler fence: a full fence costs a streaming producer more than a
//! message otherwise does (36–59 against 31–46 ns a 64-byte message,
//! session 14). A sleeper counted on several rings at once (`wait` over
//! channels) does the same for each ([`fence_before_sleep_on`]): one
//! barrier arms every ring not yet *fenced*, and none is needed once all
//! are.

//!
//! # Adaptive spinning (channels)
//!
//! A ring sleeper's sleep costs a wake-up and, unless its side has asked
//! for full fences (below), a `membarrier` — an interrupt to the core of
//! the other side, which is busy producing what the sleeper waits for. When messages come every few dozen microseconds (1 MiB
//! ones, say), a receiver that sleeps after its short spin pays that on
//! every message, and so does its producer (perf: about 18% of the 1 MiB
//! pipe benchmark's samples were in the sleeping, waking and interrupt
//! paths; it ran at 0.63 of a `memcpy`, and at 0.88 after this). So each side of a ring keeps a spin budget in shared
//! memory: a sleeper woken within [`MAX_SPIN_NS`] of starting to wait
//! raises it to twice that time, a spin that succeeds keeps it at least twice what
//! it took, and a spin that ends empty halves it. A side whose messages
//! come rarely soon spins no longer than before; one that streams spins
//! instead of sleeping, at the price of a busy core while it waits (at most
//! [`MAX_SPIN_NS`] at a time). The bound is above the time a 1 MiB message
//! takes, so that a receiver stuck sleeping on every one (each sleep's
//! interrupt slowing the producer, which makes the wait longer still) gets
//! out of it: with 64 µs, some benchmark runs stayed at 90 µs a message.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering, compiler_fence, fence};
use std::time::{Duration, Instant};

use crate::sys::futex::{self, Wake};

/// Spin iterations before sleeping.
const SPINS: u32 = 100;

/// `now + timeout`, or `None` (no deadline) when that overflows.
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether the deadline has passed.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Waits while `word == expected`: spins briefly, then sleeps until woken,
/// the word changes, or `deadline` passes. Returns `false` only on timeout.
/// May return `true` spuriously: callers re-check their condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, waiters: &AtomicU32, deadline: Option<Instant>) -> bool {
    wait_until(|| word.load(Ordering::Acquire) != expected, word, waiters, deadline)
}

/// Wakes up to `n` sleepers on `word`, if any are counted.
pub(crate) fn wake(word: &AtomicU32, waiters: &AtomicU32, n: u32) {
    if waiters.load(Ordering::SeqCst) != 0 {
        futex::wake(word, n);
    }
}

/// Wakes up to `n` sleepers on a ring's `word` (which the caller has just
/// changed), if any are counted, and takes the ones it woke off the count
/// (see "One wake per sleep" in the module docs).
pub(crate) fn wake_counting_out(word: &AtomicU32, waiters: &AtomicU32, n: u32) {
    if waiters.load(Ordering::SeqCst) != 0 {
        let woken = futex::wake(word, n);
        if woken > 0 {
            uncount(waiters, woken.min(u32::MAX as usize) as u32);
        }
    }
}

/// Takes `n` off a sleeper count, never below zero (the count lives in
/// shared memory, where a peer may have written anything).
pub(crate) fn uncount(waiters: &AtomicU32, n: u32) {
    let _ = waiters.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| Some(w.saturating_sub(n)));
}

/// The sleep words of one side of a channel ring, in shared memory: the
/// futex word it sleeps on, its count of sleepers, its spin budget, and
/// the fence its wakers use. Written only around sleeps (and when the
/// fence mode changes), so the other side reads it cheaply on every
/// message. Any bit pattern a peer writes is a valid value: a wrong one
/// costs a system call, a spin, a full fence, or at worst a wake-up found
/// at the end of a sleep slice.
#[derive(Default)]
#[repr(C)]
pub(crate) struct RingSleepers {
    pub(crate) seq: AtomicU32,
    pub(crate) waiters: AtomicU32,
    /// How long a sleeper spins first, in nanoseconds (see "Adaptive
    /// spinning" above).
    pub(crate) spin: AtomicU32,
    /// How this side's wakers fence: the low two bits are [`LIGHT`],
    /// [`ARMING`] or [`FENCED`], the rest an epoch that every arming
    /// advances (see "Sides that sleep on every message" above).
    pub(crate) fenced: AtomicU32,
    /// Sleeps (futex waits) begun on this side, wrapping.
    pub(crate) sleeps: AtomicU32,
    /// Sleeps that ran to the end of their slice and then found what they
    /// waited for: a wake-up that never came (none unless a barrier call
    /// failed or a peer wrote nonsense here), or a peer's death seen then.
    pub(crate) late: AtomicU32,
}

/// Wakers may use a compiler fence: sleepers call `membarrier`.
const LIGHT: u32 = 0;
/// A sleeper is turning the word to [`FENCED`]; wakers fence fully.
const ARMING: u32 = 1;
/// Wakers fence fully: sleepers need no barrier.
const FENCED: u32 = 2;
const MODE: u32 = 3;
const EPOCH: u32 = 4;

impl RingSleepers {
    /// The waker's half, after the store that a sleeper waits for: whether
    /// any sleeper is counted (the caller then wakes).
    #[inline]
    pub(crate) fn any_to_wake(&self, waker: WakerFence) -> bool {
        if self.fenced.load(Ordering::SeqCst) & MODE == LIGHT {
            waker.fence();
        } else {
            fence(Ordering::SeqCst);
        }
        self.waiters.load(Ordering::SeqCst) != 0
    }

    /// Whether this side's wakers fence fully, so that a sleeper needs no
    /// barrier.
    fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst) & MODE == FENCED
    }

    /// Makes the word *arming* in a new epoch, if it is still `word`.
    fn arm(&self, word: u32) -> Option<u32> {
        let arming = (word & !MODE).wrapping_add(EPOCH) | ARMING;
        self.fenced.compare_exchange(word, arming, Ordering::SeqCst, Ordering::SeqCst).ok().map(|_| arming)
    }

    /// After the barrier: *fenced*, if nothing was written since `arming`.
    fn armed(&self, arming: u32) {
        let _ = self.fenced.compare_exchange(arming, (arming & !MODE) | FENCED, Ordering::SeqCst, Ordering::Relaxed);
    }

    /// For `multiproc info`: sleepers now, sleeps so far, the ones found
    /// late, and how this side's wakers fence, with the epoch (how many
    /// times sleepers have asked for full fences, wrapping).
    pub(crate) fn describe(&self) -> String {
        let fenced = self.fenced.load(Ordering::Relaxed);
        let mode = if fenced & MODE == LIGHT { "lightly" } else { "fully" };
        format!(
            "{} now; {} sleeps, {} found late; wakers fence {mode} (epoch {})",
            self.waiters.load(Ordering::Relaxed),
            self.sleeps.load(Ordering::Relaxed),
            self.late.load(Ordering::Relaxed),
            fenced / EPOCH
        )
    }

    /// A wait on this side ended without a sleep: if its wakers fence
    /// fully, they go back to the compiler fence.
    #[inline]
    pub(crate) fn spun(&self) {
        let word = self.fenced.load(Ordering::Relaxed);
        if word & MODE != LIGHT {
            self.lighten(word);
        }
    }

    #[cold]
    fn lighten(&self, word: u32) {
        // Only a *fenced* word: an *arming* one belongs to a sleeper
        // between its store and its barrier.
        if word & MODE == FENCED {
            let _ = self.fenced.compare_exchange(word, word & !MODE, Ordering::SeqCst, Ordering::Relaxed);
        }
    }
}

/// 0: not tried yet; 1: this process is registered; 2: it could not be.
static REGISTERED: AtomicU8 = AtomicU8::new(0);
/// Set once a sleeper's barrier call failed: it is not tried again.
static BARRIER_FAILED: AtomicU8 = AtomicU8::new(0);

/// Registers this process for asymmetric fences, once; called when a queue
/// or pipe handle is made, before any wake through its ring. Returns whether it is registered.
#[inline]
pub(crate) fn join_asymmetric() -> bool {
    match REGISTERED.load(Ordering::Acquire) {
        1 => true,
        2 => false,
        _ => register(),
    }
}

#[cold]
fn register() -> bool {
    let ok = futex::membarrier_register();
    if ok {
        extern "C" fn register_child() {
            futex::membarrier_register();
        }
        // A forked child keeps this process's handles and the `REGISTERED`
        // flag, so it must be registered too; the kernel keeps the
        // registration in the address space it copies, but registering
        // again costs one system call per fork and depends on no such
        // detail.
        crate::sys::process::in_forked_child(register_child);
    }
    REGISTERED.store(if ok { 1 } else { 2 }, Ordering::Release);
    ok
}

/// A ring waker's fence between its store and its look at `waiters`: a
/// compiler fence in a registered process, a full fence otherwise. Which
/// one is looked up once for an operation that fences more than once (a
/// channel send enters its side and then wakes: two fences, one look at
/// the registration).
#[derive(Clone, Copy)]
pub(crate) struct WakerFence {
    light: bool,
}

impl WakerFence {
    #[inline]
    pub(crate) fn now() -> WakerFence {
        WakerFence { light: REGISTERED.load(Ordering::Relaxed) == 1 }
    }

    #[inline]
    pub(crate) fn fence(self) {
        if self.light {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }
}

/// The sleeper's half of the protocol for a sleeper counted on `rings`
/// (one ring, or several for `wait` over channels), after counting itself
/// and before its last look: a full fence when every ring's wakers fence
/// fully; otherwise those rings are armed and one barrier covers them all.
///
/// `wait` sleeps on every call that finds nothing, as a receiver that
/// sleeps on every message does, so it arms its rings as such a receiver
/// does: before, it called `membarrier` before every sleep. Measured (one
/// pair of processes, a duplex pipe, each side working 200 µs and then
/// waiting with `wait` before its `recv`, raw futex round trips
/// interleaved, 1000 of each a run; builds alternated seven times, session
/// 16): the median of ours over the raw one's 1.085–1.158 (median 1.127)
/// before, 1.076–1.101 (1.078) after; a plain `recv` in the same harness,
/// 1.05–1.09.
pub(crate) fn fence_before_sleep_on(rings: &[&RingSleepers]) {
    if rings.iter().all(|s| s.is_fenced()) {
        fence(Ordering::SeqCst);
        return;
    }
    let arming: Vec<Option<u32>> = rings
        .iter()
        .map(|s| {
            let word = s.fenced.load(Ordering::SeqCst);
            if word & MODE == FENCED { None } else { s.arm(word) }
        })
        .collect();
    // The barrier covers this sleep whether or not a word became ours
    // (another sleeper may have changed it first). If the barrier call
    // fails, *arming* words stay: their wakers fence fully, which covers
    // this sleep and the next ones instead.
    if remote_fence() {
        for (s, arming) in rings.iter().zip(arming) {
            if let Some(arming) = arming {
                s.armed(arming);
            }
        }
    }
}

/// The slow half of an asymmetric fence: makes every running thread of every
/// registered process pass a full barrier. Returns whether it could (after
/// one failure it is not tried again).
pub(crate) fn remote_fence() -> bool {
    if BARRIER_FAILED.load(Ordering::Relaxed) != 0 {
        return false;
    }
    let ok = futex::membarrier_global();
    if !ok {
        BARRIER_FAILED.store(1, Ordering::Relaxed);
    }
    ok
}

/// Waits until `ready()` holds: spins briefly, then sleeps on `word` until
/// woken or `deadline` passes. Returns `false` only on timeout with
/// `ready()` still false; may return `true` spuriously.
///
/// For sides that wake sleepers only when `waiters` is non-zero (after a
/// `SeqCst` fence following their store): this sleeper counts itself
/// first, then reads `word`, then looks at `ready()` once more, so either
/// the waker sees the count, or this look sees the waker's store.
pub(crate) fn wait_until(
    ready: impl Fn() -> bool,
    word: &AtomicU32,
    waiters: &AtomicU32,
    deadline: Option<Instant>,
) -> bool {
    sleep_until(ready, word, waiters, deadline, None)
}

/// [`wait_until`] for the sleepers of a channel ring, whose wakers use
/// [`RingSleepers::any_to_wake`] and [`wake_counting_out`] (see "Adaptive
/// spinning" and "Sides that sleep on every message" in the module docs).
pub(crate) fn wait_until_ring(ready: impl Fn() -> bool, sleepers: &RingSleepers, deadline: Option<Instant>) -> bool {
    sleep_until(ready, &sleepers.seq, &sleepers.waiters, deadline, Some(sleepers))
}

/// The longest a ring sleeper spins before it sleeps, in nanoseconds.
const MAX_SPIN_NS: u32 = 128_000;

/// How many looks a spinner makes between two looks at the clock.
const LOOKS_PER_CLOCK: u32 = 32;

/// A spin budget that a wait over before the first look at the clock
/// ([`LOOKS_PER_CLOCK`] looks, each a poll and a pause: at most a few
/// microseconds) cannot raise, as it took less than half of it.
const QUICK_BUDGET: u32 = 16_000;

/// Spins while `ready()` is false for at most `spin`'s budget (cut short
/// by `deadline`); returns whether it became true. Moves the budget
/// towards twice what this wait took when the data came in time, halves
/// it when it did not.
fn spin_adaptively(ready: &impl Fn() -> bool, spin: &AtomicU32, start: Instant, deadline: Option<Instant>) -> bool {
    let budget = spin.load(Ordering::Relaxed).min(MAX_SPIN_NS);
    if budget == 0 {
        return false;
    }
    let end = start + Duration::from_nanos(u64::from(budget));
    let end = deadline.map_or(end, |d| d.min(end));
    let mut looks = 0u32;
    loop {
        if ready() {
            // Before the first look at the clock, the wait
            // took well under a microsecond and cannot raise a budget of
            // more than a few: the clock is not read on the way out of the
            // wait a ping-pong's every message ends with.
            if looks >= LOOKS_PER_CLOCK || budget < QUICK_BUDGET {
                let took = start.elapsed().as_nanos().min(u128::from(MAX_SPIN_NS)) as u32;
                adjust_spin(spin, budget, budget.max(took.saturating_mul(2)));
            }
            return true;
        }
        std::hint::spin_loop();
        looks = looks.wrapping_add(1);
        if looks % LOOKS_PER_CLOCK == 0 {
            if Instant::now() >= end {
                adjust_spin(spin, budget, budget / 2);
                return false;
            }
            // About once a microsecond: a process that is runnable on this
            // core (more processes than cores: a pool's parent and its
            // workers) gets it, rather than waiting out the spin.
            std::thread::yield_now();
        }
    }
}

/// Stores a new spin budget, only when it changed (the word shares a line
/// with the waiter count that wakers read on every message).
fn adjust_spin(spin: &AtomicU32, old: u32, new: u32) {
    let new = new.min(MAX_SPIN_NS);
    if new != old {
        spin.store(new, Ordering::Relaxed);
    }
}

fn sleep_until(
    ready: impl Fn() -> bool,
    word: &AtomicU32,
    waiters: &AtomicU32,
    deadline: Option<Instant>,
    ring: Option<&RingSleepers>,
) -> bool {
    let spun = || {
        if let Some(r) = ring {
            r.spun();
        }
        true
    };
    for _ in 0..SPINS {
        if ready() {
            return spun();
        }
        std::hint::spin_loop();
    }
    // The wait's length, which the spin budget learns from, counts from here.
    let began = Instant::now();
    if let Some(r) = ring
        && spin_adaptively(&ready, &r.spin, began, deadline)
    {
        return spun();
    }
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return ready(),
        },
    };
    waiters.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = ring {
        fence_before_sleep_on(&[r]);
    }
    let seq = word.load(Ordering::SeqCst);
    if ready() {
        uncount(waiters, 1);
        return true;
    }
    if let Some(r) = ring {
        r.sleeps.fetch_add(1, Ordering::Relaxed);
    }
    let woke = match futex::wait(word, seq, timeout) {
        // A ring's waker took us off the count when it woke us.
        Wake::Woken if ring.is_some() => true,
        Wake::Woken | Wake::Retry => {
            uncount(waiters, 1);
            true
        }
        Wake::TimedOut => {
            uncount(waiters, 1);
            false
        }
    };
    let Some(r) = ring else { return woke || ready() };
    if !woke {
        // Slept to the end of the slice: what it waited for came without a
        // wake-up, or did not come.
        let late = ready();
        if late {
            r.late.fetch_add(1, Ordering::Relaxed);
        }
        return late;
    }
    // Woken soon after starting to wait: spinning that long next time
    // saves the sleep (and the barrier's interrupts to the other side's
    // core, while its wakers fence lightly). Long waits leave it alone.
    let took = began.elapsed().as_nanos();
    if took < u128::from(MAX_SPIN_NS) {
        let old = r.spin.load(Ordering::Relaxed);
        adjust_spin(&r.spin, old, old.max(took as u32 * 2));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(s: &RingSleepers) -> u32 {
        s.fenced.load(Ordering::SeqCst)
    }

    #[test]
    fn a_sleeper_arms_its_side_once_and_a_wait_that_spins_disarms_it() {
        let s = RingSleepers::default();
        if !remote_fence() {
            // No barrier here: the word stays *arming*, and wakers fence fully.
            fence_before_sleep_on(&[&s]);
            assert_eq!(word(&s), EPOCH | ARMING);
            return;
        }
        fence_before_sleep_on(&[&s]);
        assert_eq!(word(&s), EPOCH | FENCED, "armed, in a new epoch");
        fence_before_sleep_on(&[&s]);
        assert_eq!(word(&s), EPOCH | FENCED, "the next sleeper needs no barrier and changes nothing");
        s.spun();
        assert_eq!(word(&s), EPOCH | LIGHT);
        s.spun();
        assert_eq!(word(&s), EPOCH | LIGHT);
        fence_before_sleep_on(&[&s]);
        assert_eq!(word(&s), (2 * EPOCH) | FENCED, "armed again, in the next epoch");
    }

    #[test]
    fn a_sleeper_on_several_rings_arms_the_ones_not_fenced() {
        let (a, b) = (RingSleepers::default(), RingSleepers::default());
        if !remote_fence() {
            fence_before_sleep_on(&[&a, &b]);
            assert_eq!((word(&a), word(&b)), (EPOCH | ARMING, EPOCH | ARMING));
            return;
        }
        fence_before_sleep_on(&[&b]);
        b.spun();
        fence_before_sleep_on(&[&b]);
        assert_eq!(word(&b), (2 * EPOCH) | FENCED);
        fence_before_sleep_on(&[&a, &b]);
        assert_eq!(word(&a), EPOCH | FENCED, "armed with the barrier");
        assert_eq!(word(&b), (2 * EPOCH) | FENCED, "already fenced: left as it was");
        fence_before_sleep_on(&[&a, &b]);
        assert_eq!((word(&a), word(&b)), (EPOCH | FENCED, (2 * EPOCH) | FENCED), "both fenced: no barrier");
    }

    #[test]
    fn an_arming_sleeper_keeps_its_word_and_loses_a_changed_one() {
        let s = RingSleepers::default();
        let first = s.arm(word(&s)).unwrap();
        s.spun();
        assert_eq!(word(&s), first, "a spinning waiter leaves an arming word alone");
        assert_eq!(s.arm(LIGHT), None, "the word is no longer what the second sleeper read");
        let second = s.arm(first).unwrap();
        s.armed(first);
        assert_eq!(word(&s), second, "the first sleeper's barrier came before the second's arming");
        s.armed(second);
        assert_eq!(word(&s), (2 * EPOCH) | FENCED);
    }

    #[test]
    fn wakers_see_the_count_in_either_mode() {
        let s = RingSleepers::default();
        for fenced in [LIGHT, ARMING, FENCED, EPOCH | FENCED, u32::MAX] {
            s.fenced.store(fenced, Ordering::SeqCst);
            s.waiters.store(0, Ordering::SeqCst);
            assert!(!s.any_to_wake(WakerFence::now()));
            s.waiters.store(1, Ordering::SeqCst);
            assert!(s.any_to_wake(WakerFence::now()));
        }
    }

    #[test]
    fn a_sleep_that_ends_its_slice_and_then_finds_its_data_is_counted_late() {
        let s = RingSleepers::default();
        let end = Instant::now() + Duration::from_millis(20);
        assert!(wait_until_ring(|| Instant::now() >= end, &s, Some(end)));
        assert_eq!(s.late.load(Ordering::SeqCst), 1);
        assert_eq!(s.sleeps.load(Ordering::SeqCst), 1);
        assert_eq!(s.waiters.load(Ordering::SeqCst), 0, "took itself off the count");
        let never = Instant::now() + Duration::from_millis(5);
        assert!(!wait_until_ring(|| false, &s, Some(never)));
        assert_eq!(s.late.load(Ordering::SeqCst), 1, "a timeout with nothing there is not late");
    }
}
