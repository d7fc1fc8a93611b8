//! Robust, process-shared pthread mutexes living in shared mappings.
//!
//! These functions take raw pointers because the mutex lives in memory that
//! other processes share; the typed layer (`sync::raw`) owns the pointer and
//! upholds the contracts below.

use std::io;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Instant;

use super::conv::ret_pthread;

/// The in-memory mutex type, as the platform lays it out.
pub(crate) type RawPthreadMutex = libc::pthread_mutex_t;

unsafe extern "C" {
    // glibc ≥ 2.30 and musl ≥ 1.2.? provide it; libc does not bind it yet.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// What a lock attempt found.
#[derive(Debug)]
pub(crate) enum Locked {
    /// Acquired normally.
    Yes,
    /// Acquired, but the previous owner died holding it; the mutex was marked
    /// consistent again.
    OwnerDied,
    /// Not acquired: held by someone else (try) or the deadline passed (timed).
    Busy,
    /// Not acquired: the mutex is unusable (an owner died and nobody
    /// recovered it) or its memory is not a valid mutex.
    Unusable(io::Error),
}

/// Initialises a robust, process-shared mutex at `m` (recursive if asked).
///
/// # Safety
///
/// `m` must point to writable memory of `size_of::<RawPthreadMutex>()` bytes,
/// suitably aligned, that no thread uses as a mutex during the call.
pub(crate) unsafe fn init(m: *mut RawPthreadMutex, recursive: bool) -> io::Result<()> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is local, initialised by pthread_mutexattr_init before
    // any other use and destroyed before it goes out of scope. The caller
    // guarantees `m` is valid for initialisation.
    unsafe {
        ret_pthread(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let a = attr.as_mut_ptr();
        let kind = if recursive { libc::PTHREAD_MUTEX_RECURSIVE } else { libc::PTHREAD_MUTEX_ERRORCHECK };
        let r = ret_pthread(libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED))
            .and_then(|()| ret_pthread(libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST)))
            .and_then(|()| ret_pthread(libc::pthread_mutexattr_settype(a, kind)))
            .and_then(|()| ret_pthread(libc::pthread_mutex_init(m, a)));
        libc::pthread_mutexattr_destroy(a);
        r
    }
}

/// Offset of glibc's `__kind` word in `pthread_mutex_t` (x86_64, aarch64
/// and every other glibc target: after `__lock`, `__count`, `__owner`,
/// `__nusers`).
#[cfg(target_env = "gnu")]
const KIND_OFFSET: usize = 16;

/// Whether the mutex at `m` is of a kind [`init`] creates.
///
/// glibc picks its code path from the mutex's `__kind` word, which lives in
/// shared memory: a faulty or hostile peer that rewrote it could send a
/// locker down the priority-inheritance, priority-protection or lock-elision
/// paths, which abort or raise `SIGILL` on a mutex they did not set up
/// (found by the `open_segment` fuzz target). So every call first checks the
/// word against the values `init` produces on this very glibc, read once
/// from a private mutex. A peer that rewrites the word *during* a call can
/// still do harm: that is beyond what a shared-memory lock can defend.
#[cfg(target_env = "gnu")]
#[inline]
fn kind_is_ours(m: *mut RawPthreadMutex) -> bool {
    /// The two kinds, packed (error-checking low, recursive high); 0 until
    /// first read. Racing first calls compute the same value.
    static KINDS: AtomicU64 = AtomicU64::new(0);
    let mut kinds = KINDS.load(Ordering::Relaxed);
    if kinds == 0 {
        kinds = init_kinds();
        KINDS.store(kinds, Ordering::Relaxed);
    }
    // SAFETY: `m` points to a whole pthread_mutex_t (caller contract of the
    // functions below), which is 4-byte aligned and longer than
    // KIND_OFFSET + 4; the word may change under us, hence the atomic read.
    let kind = unsafe { (*m.cast::<u8>().add(KIND_OFFSET).cast::<AtomicI32>()).load(Ordering::Relaxed) } as u32;
    kind == kinds as u32 || kind == (kinds >> 32) as u32
}

/// Reads the kinds `init` writes from a private mutex of each kind.
#[cfg(target_env = "gnu")]
#[cold]
fn init_kinds() -> u64 {
    let [plain, recursive] = [false, true].map(|recursive| {
        let mut probe = std::mem::MaybeUninit::<RawPthreadMutex>::zeroed();
        // SAFETY: a private, zeroed, properly aligned mutex, initialised and
        // destroyed here and never shared.
        unsafe {
            let p = probe.as_mut_ptr();
            let kind = match init(p, recursive) {
                Ok(()) => p.cast::<u8>().add(KIND_OFFSET).cast::<i32>().read(),
                Err(_) => i32::MIN,
            };
            libc::pthread_mutex_destroy(p);
            kind as u32
        }
    });
    u64::from(plain) | (u64::from(recursive) << 32)
}

/// Other C libraries: no check (musl dispatches on its type field too, but
/// only among the kinds the robust code handles).
#[cfg(not(target_env = "gnu"))]
fn kind_is_ours(_: *mut RawPthreadMutex) -> bool {
    true
}

fn foreign_kind() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the mutex in shared memory is not of a kind this crate creates")
}

fn classify(m: *mut RawPthreadMutex, r: libc::c_int) -> Locked {
    match r {
        0 => Locked::Yes,
        libc::EOWNERDEAD => {
            // SAFETY: we now own `m` (EOWNERDEAD hands over the lock), which
            // the caller of lock/try_lock/lock_until guaranteed is valid.
            match ret_pthread(unsafe { libc::pthread_mutex_consistent(m) }) {
                Ok(()) => Locked::OwnerDied,
                Err(e) => Locked::Unusable(e),
            }
        }
        libc::EBUSY | libc::ETIMEDOUT => Locked::Busy,
        e => Locked::Unusable(io::Error::from_raw_os_error(e)),
    }
}

/// `pthread_mutex_trylock`, recovering from a dead owner.
///
/// # Safety
///
/// `m` must point to a mutex initialised by [`init`] in a live mapping.
#[inline]
pub(crate) unsafe fn try_lock(m: *mut RawPthreadMutex) -> Locked {
    if !kind_is_ours(m) {
        return Locked::Unusable(foreign_kind());
    }
    // SAFETY: the caller guarantees `m` is an initialised mutex.
    let r = unsafe { libc::pthread_mutex_trylock(m) };
    if r == 0 { Locked::Yes } else { classify(m, r) }
}

/// `pthread_mutex_clocklock(CLOCK_MONOTONIC)` until `deadline`.
///
/// # Safety
///
/// As for [`try_lock`].
pub(crate) unsafe fn lock_until(m: *mut RawPthreadMutex, deadline: Instant) -> Locked {
    if !kind_is_ours(m) {
        return Locked::Unusable(foreign_kind());
    }
    let ts = monotonic_timespec(deadline);
    // SAFETY: the caller guarantees `m` is an initialised mutex; `ts` lives
    // across the call.
    let r = unsafe { pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &ts) };
    classify(m, r)
}

/// `pthread_mutex_unlock`. Fails with `EPERM` when the calling thread does
/// not own the mutex.
///
/// # Safety
///
/// As for [`try_lock`].
#[inline]
pub(crate) unsafe fn unlock(m: *mut RawPthreadMutex) -> io::Result<()> {
    // No kind check here: it was checked when the lock was taken, and a
    // peer that rewrites the word while we hold the lock could as well do it
    // between a check and the call.
    // SAFETY: the caller guarantees `m` is an initialised mutex.
    ret_pthread(unsafe { libc::pthread_mutex_unlock(m) })
}

/// Who holds the mutex at `m`, as its lock word says: the owner's thread id
/// and whether the kernel marked the owner dead (`FUTEX_OWNER_DIED`).
/// `None` when it is free. A robust mutex's lock word (glibc's `__lock`, at
/// offset 0 on every target) holds the owner's TID and these flag bits; the
/// kernel relies on that layout to recover it. The answer may be stale when
/// it arrives.
///
/// # Safety
///
/// `m` must point to a whole `pthread_mutex_t` in a live mapping.
#[inline]
pub(crate) unsafe fn owner(m: *mut RawPthreadMutex) -> Option<(u32, bool)> {
    // SAFETY: the caller guarantees `m` is a whole mutex, which is 4-byte
    // aligned; other processes change the word, hence the atomic load.
    let word = unsafe { (*m.cast::<AtomicI32>()).load(Ordering::Relaxed) } as u32;
    // The kernel's robust-futex ABI (linux/futex.h).
    const OWNER_DIED: u32 = 0x4000_0000;
    const TID_MASK: u32 = 0x3fff_ffff;
    let (tid, died) = (word & TID_MASK, word & OWNER_DIED != 0);
    (tid != 0 || died).then_some((tid, died))
}

/// Converts an [`Instant`] into an absolute CLOCK_MONOTONIC timespec.
///
/// `Instant` is CLOCK_MONOTONIC on Linux, but opaque; we measure the distance
/// from now and add it to a fresh reading of the clock.
pub(crate) fn monotonic_timespec(deadline: Instant) -> libc::timespec {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let mut sec = now.tv_sec.saturating_add(left.as_secs().min(i32::MAX as u64) as libc::time_t);
    let mut nsec = now.tv_nsec + left.subsec_nanos() as libc::c_long;
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    libc::timespec { tv_sec: sec, tv_nsec: nsec }
}
