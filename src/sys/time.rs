//! Clocks.

/// `clock_gettime(CLOCK_MONOTONIC_COARSE)` in nanoseconds: a few
/// nanoseconds to read (a vDSO load, no time-stamp counter), with the
/// resolution of the scheduler tick — enough to throttle periodic checks.
pub(crate) fn coarse_monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; the clock always exists on
    // Linux (since 2.6.32).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}
