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
//! ([`sleeper_fence`]), which makes every running thread of every registered
//! process pass a full barrier before it returns. Then either the waker's
//! look at `waiters` comes after its barrier and sees the count, or its
//! store came before the barrier and the sleeper's last look sees it (the
//! pairing liburcu uses). A process whose registration fails (old kernel,
//! seccomp) fences itself on every wake, so mixing is safe; if even the
//! sleeper's barrier call fails, a wake-up can be missed, and the sleeper
//! finds the message at the end of its sleep slice (channels sleep at most
//! 100 ms at a time), never later.

//!
//! # Adaptive spinning (channels)
//!
//! A ring sleeper's sleep costs a `membarrier` — an interrupt to the core
//! of the other side, which is busy producing what the sleeper waits for —
//! and a wake-up. When messages come every few dozen microseconds (1 MiB
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

/// A ring sleeper's barrier, after counting itself and before its last look.
pub(crate) fn sleeper_fence() {
    remote_fence();
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
/// [`WakerFence`] and [`wake_counting_out`]; `spin` is the side's
/// adaptive spin budget (see "Adaptive spinning" in the module docs).
pub(crate) fn wait_until_ring(
    ready: impl Fn() -> bool,
    word: &AtomicU32,
    waiters: &AtomicU32,
    spin: &AtomicU32,
    deadline: Option<Instant>,
) -> bool {
    sleep_until(ready, word, waiters, deadline, Some(spin))
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
    spin: Option<&AtomicU32>,
) -> bool {
    let ring = spin.is_some();
    for _ in 0..SPINS {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    // The wait's length, which the spin budget learns from, counts from here.
    let began = Instant::now();
    if let Some(spin) = spin
        && spin_adaptively(&ready, spin, began, deadline)
    {
        return true;
    }
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return ready(),
        },
    };
    waiters.fetch_add(1, Ordering::SeqCst);
    if ring {
        sleeper_fence();
    }
    let seq = word.load(Ordering::SeqCst);
    if ready() {
        uncount(waiters, 1);
        return true;
    }
    let woke = match futex::wait(word, seq, timeout) {
        // A ring's waker took us off the count when it woke us.
        Wake::Woken if ring => true,
        Wake::Woken | Wake::Retry => {
            uncount(waiters, 1);
            true
        }
        Wake::TimedOut => {
            uncount(waiters, 1);
            false
        }
    };
    if let Some(spin) = spin {
        // Woken soon after starting to wait: spinning that long next time
        // saves the sleep (and, on a ring, the barrier's interrupts to the
        // other side's core). Long or timed-out waits leave it alone.
        let took = began.elapsed().as_nanos();
        if woke && took < u128::from(MAX_SPIN_NS) {
            let old = spin.load(Ordering::Relaxed);
            adjust_spin(spin, old, old.max(took as u32 * 2));
        }
    }
    woke || ready()
}
