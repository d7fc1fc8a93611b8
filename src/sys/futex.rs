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
    /// Woken by a `FUTEX_WAKE` (and counted in what that call returned).
    Woken,
    /// Interrupted, or the word no longer held `expected`: look again.
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
    if r == 0 {
        Wake::Woken
    } else if io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        Wake::TimedOut
    } else {
        // EAGAIN (value changed) and EINTR mean: look again.
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

/// The most words one [`wait_any`] can watch (`FUTEX_WAITV_MAX`).
pub(crate) const WAIT_ANY_MAX: usize = 128;

/// How a [`wait_any`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeAny {
    /// Woken by a `FUTEX_WAKE` on the word at this index of the list.
    Woken(usize),
    /// Interrupted, or some word no longer held its expected value: look
    /// again.
    Retry,
    /// The deadline passed.
    TimedOut,
    /// The kernel has no `futex_waitv` (older than 5.16, or a seccomp
    /// filter refuses it), or refused the list: poll instead.
    Unsupported,
}

/// `futex_waitv` — sleeps while every `word` holds its `expected` value,
/// until one of them is woken (by [`wake`] on it) or `deadline` passes
/// (`None`: no deadline). At most [`WAIT_ANY_MAX`] words; an empty or
/// longer list is [`WakeAny::Unsupported`].
///
/// # References
///
/// [`futex_waitv(2)`](https://docs.kernel.org/userspace-api/futex2.html),
/// Linux 5.16.
pub(crate) fn wait_any(words: &[(&AtomicU32, u32)], deadline: Option<std::time::Instant>) -> WakeAny {
    if words.is_empty() || words.len() > WAIT_ANY_MAX {
        return WakeAny::Unsupported;
    }
    let list: Vec<libc::futex_waitv> = words
        .iter()
        .map(|&(word, expected)| {
            // SAFETY: `futex_waitv` is plain integers (with a private
            // reserved field that must be zero); all-zero is a valid value.
            let mut w: libc::futex_waitv = unsafe { std::mem::zeroed() };
            w.val = u64::from(expected);
            w.uaddr = word.as_ptr() as u64;
            // A 32-bit word, shared between processes (no FUTEX2_PRIVATE).
            w.flags = libc::FUTEX2_SIZE_U32 as u32;
            w
        })
        .collect();
    let ts = deadline.map(super::pthread::monotonic_timespec);
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `list` holds `list.len()` (1..=128) initialised entries, each
    // naming a live, aligned 32-bit atomic borrowed for the whole call; the
    // flags argument must be 0; `ts_ptr` is null or points to an absolute
    // CLOCK_MONOTONIC timespec that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            list.as_ptr(),
            list.len() as libc::c_uint,
            0 as libc::c_uint,
            ts_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if r >= 0 {
        return WakeAny::Woken(r as usize);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => WakeAny::TimedOut,
        // EAGAIN: a word no longer held its value; EINTR: a signal.
        Some(libc::EAGAIN | libc::EINTR) => WakeAny::Retry,
        // ENOSYS, EPERM (seccomp), EINVAL, EFAULT...: never sleep blind.
        _ => WakeAny::Unsupported,
    }
}

/// `linux/membarrier.h` commands (not in `libc` for every target).
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

/// `membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)`: from now on, the
/// [`membarrier_global`] calls of any process reach this one's threads.
/// `false` when the kernel (or a seccomp filter) refuses.
pub(crate) fn membarrier_register() -> bool {
    // SAFETY: a command with no pointer arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0u32, 0u32) == 0 }
}

/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`: on return, every running
/// thread of every registered process has passed a full memory barrier.
/// `false` when the kernel refused.
///
/// # References
///
/// [`membarrier(2)`](https://man7.org/linux/man-pages/man2/membarrier.2.html),
/// Linux 4.16.
pub(crate) fn membarrier_global() -> bool {
    // SAFETY: a command with no pointer arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0u32, 0u32) == 0 }
}
