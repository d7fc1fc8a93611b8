//! Linux futexes on 32-bit words in shared mappings.
//!
//! Only the shared (not `FUTEX_PRIVATE_FLAG`) operations are used: the word
//! may be mapped at different addresses in different processes, and the
//! kernel keys the wait queue by the underlying page.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How a [`wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, interrupted, or the word no longer held `expected`: look again.
    Retry,
    /// The timeout passed.
    TimedOut,
}

/// `futex(FUTEX_WAIT)` — sleeps while `*word == expected`, at most `timeout`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wake {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the whole call, and
    // `ts_ptr` is null or points to a timespec that outlives the call. The
    // relative timeout of FUTEX_WAIT is measured on CLOCK_MONOTONIC.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32) };
    if r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        Wake::TimedOut
    } else {
        // EAGAIN (value changed), EINTR and real wake-ups all mean: look again.
        Wake::Retry
    }
}

/// `futex(FUTEX_WAKE)` — wakes at most `n` sleepers on `word`; returns how many.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32);
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE only uses
    // its address as a key.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32) };
    r.max(0) as usize
}
