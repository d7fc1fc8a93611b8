//! The raw cross-process mutex: a robust, process-shared pthread mutex that
//! lives inside a segment. Typed locks ([`Mutex`](super::Mutex),
//! [`Value`](crate::Value), [`Array`](crate::Array), [`RLock`](super::RLock),
//! [`Condition`](super::Condition)) put one in their control block and wrap
//! it in a guard, as `lock_api` separates a raw lock from the typed data.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::io;
use std::time::Instant;

use crate::sys::pthread::{self, Locked, RawPthreadMutex};

/// A robust, process-shared mutex in shared memory.
///
/// Robust: when the owning thread dies (its process is killed), the next
/// locker acquires it with [`Locked::OwnerDied`], and it is marked consistent
/// at once, so it keeps working. Error-checking: unlocking by a thread that
/// does not hold it fails with `EPERM` instead of corrupting it, which makes
/// [`RawMutex::unlock`] safe.
#[repr(C)]
pub(crate) struct RawMutex {
    m: UnsafeCell<RawPthreadMutex>,
}

// SAFETY: a pthread mutex is designed to be used from many threads (and,
// being process-shared, many processes) at once; all access goes through
// pthread calls.
unsafe impl Sync for RawMutex {}

/// The longest a lock waiter sleeps before it looks at the lock again.
const SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// How many `try_lock`s `lock` makes before it sleeps in the kernel. A lock
/// held for a few instructions is usually free again within this window,
/// and a sleep/wake pair costs microseconds.
const SPIN_TRIES: u32 = 40;

impl RawMutex {
    /// Initialises a mutex in zeroed, not yet shared memory.
    pub(crate) fn init(this: *mut RawMutex, recursive: bool) -> io::Result<()> {
        // SAFETY: `this` points to a zeroed control block in a segment that
        // no other process can see yet (the caller is `Object::create`'s
        // initialiser); `RawMutex` is `repr(C)` around the pthread type.
        unsafe { pthread::init(this.cast::<RawPthreadMutex>(), recursive) }
    }

    fn ptr(&self) -> *mut RawPthreadMutex {
        self.m.get()
    }

    /// A line for `multiproc info`: who holds the lock, if anyone.
    pub(crate) fn holder(&self) -> String {
        match self.owner() {
            None => "free".to_string(),
            Some((_, true)) => "free; its last owner died holding it (recovered on next lock)".to_string(),
            Some((tid, false)) => {
                let alive = std::path::Path::new("/proc").join(tid.to_string()).exists();
                format!(
                    "held by thread {tid}{}",
                    if alive { "" } else { " (not running: dead, or in another pid namespace)" }
                )
            }
        }
    }

    /// Blocks until acquired.
    #[inline]
    pub(crate) fn lock(&self) -> Locked {
        // SAFETY: `self` lives in a segment whose creator initialised it
        // with `init` before publishing it (the same holds for every call
        // below).
        match unsafe { pthread::try_lock(self.ptr()) } {
            Locked::Busy => self.lock_slow(),
            other => other,
        }
    }

    #[cold]
    fn lock_slow(&self) -> Locked {
        self.lock_until(None)
    }

    /// Acquires it if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> Locked {
        // SAFETY: as in `lock`.
        unsafe { pthread::try_lock(self.ptr()) }
    }

    /// Acquires it if it is free or freed within a short spin: a holder
    /// that is only copying a record lets go within that window, so a `try_`
    /// operation does not fail just because another process was mid-step.
    pub(crate) fn try_lock_briefly(&self) -> Locked {
        for _ in 0..SPIN_TRIES {
            match self.try_lock() {
                Locked::Busy => std::hint::spin_loop(),
                other => return other,
            }
        }
        self.try_lock()
    }

    /// Blocks until acquired or `deadline` passes (`None`: no deadline).
    ///
    /// Spins with `try_lock` first, then sleeps in the kernel at most
    /// [`SLICE`] at a time. The slices matter: a robust mutex can lose a
    /// wake-up for good when the unlocker wakes a waiter that is killed
    /// before it takes the lock while another thread takes it first — the
    /// "there are sleepers" bit dies with the woken waiter, and the kernel's
    /// clean-up of the dead waiter wakes nobody unless the lock is free at
    /// that instant. The other sleepers would sleep forever on a free lock; a
    /// timed sleep looks at the lock word again and takes it. (Found by the
    /// channel crash tests, which SIGKILL producers waiting for the lock.)
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> Locked {
        for _ in 0..SPIN_TRIES {
            match self.try_lock() {
                Locked::Busy => std::hint::spin_loop(),
                other => return other,
            }
        }
        loop {
            let slice = Instant::now() + SLICE;
            let until = deadline.map_or(slice, |d| d.min(slice));
            // SAFETY: as in `lock`.
            match unsafe { pthread::lock_until(self.ptr(), until) } {
                Locked::Busy if deadline.is_none_or(|d| Instant::now() < d) => {}
                other => return other,
            }
        }
    }

    /// Whether the lock word names the calling thread as the owner (and not
    /// as a dead one).
    ///
    /// For callers that may unlock a lock they never took (`RLock::release`):
    /// glibc's kind word is checked only when a lock is taken, and unlocking
    /// a mutex whose kind a peer rewrote sends glibc down its lock-elision
    /// path, which crashes (found by the `open_segment` fuzz target). A word
    /// naming this thread was written by this thread's own lock, or by a peer
    /// that could as well rewrite the kind while it holds the lock, which is
    /// beyond what a shared-memory lock can defend (see `sys/pthread.rs`).
    pub(crate) fn held_by_this_thread(&self) -> bool {
        matches!(self.owner(), Some((tid, false)) if tid == crate::sys::process::current_tid())
    }

    /// Who holds it, as its lock word says now: the owner's thread id, and
    /// whether the kernel marked that owner dead. `None` when free. A
    /// snapshot that a peer may change at once; it decides nothing alone.
    #[inline]
    pub(crate) fn owner(&self) -> Option<(u32, bool)> {
        // SAFETY: as in `lock`: `self` is a whole mutex in a live mapping.
        unsafe { pthread::owner(self.ptr()) }
    }

    /// Releases it. Fails with `EPERM` when the calling thread is not the
    /// owner (for a recursive mutex: owner with a count of zero).
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        // SAFETY: as in `lock`; an error-checking or recursive robust mutex
        // verifies ownership itself.
        unsafe { pthread::unlock(self.ptr()) }
    }
}
