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

use std::sync::atomic::{AtomicU32, Ordering};
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
    for _ in 0..SPINS {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return ready(),
        },
    };
    waiters.fetch_add(1, Ordering::SeqCst);
    let seq = word.load(Ordering::SeqCst);
    let woke = ready() || futex::wait(word, seq, timeout) == Wake::Retry;
    waiters.fetch_sub(1, Ordering::SeqCst);
    woke || ready()
}
