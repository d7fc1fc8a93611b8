//! [`RLock`]: a cross-process re-entrant lock.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::time::Duration;

use super::error::{LockResult, LockTimeoutError, ReleaseError, TryLockError};
use super::mutex::{LockCtrl, lock_timeout_with, lock_with, try_lock_with};
use super::raw::RawMutex;
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object, shared_object};
use crate::{Name, ShmError};

type RLockCtrl = LockCtrl<{ Kind::RLock as u32 }>;

// SAFETY: `repr(C)` around a pthread mutex (integers in an UnsafeCell);
// alignment 8.
unsafe impl Control for RLockCtrl {
    const KIND: Kind = Kind::RLock;
}

fn init(ctrl: *mut RLockCtrl, _: *mut ()) -> std::io::Result<()> {
    // The raw mutex is the control block's first (only) field.
    RawMutex::init(ctrl.cast(), true)
}

/// A cross-process re-entrant lock: Python's `multiprocessing.RLock`.
///
/// The thread that holds it may acquire it again; it is released when every
/// [`acquire`](Self::acquire) has been matched by a
/// [`release`](Self::release) (or every [`RLockGuard`] dropped). A release
/// by a thread that does not hold it, or one release more than there were
/// acquires, is an error ([`ReleaseError::NotOwner`]) and changes nothing.
/// Ownership belongs to a *thread*, as with Python's `RLock`.
///
/// It is a robust, process-shared, recursive pthread mutex; the recursion
/// depth is bounded by `u32::MAX` (one more acquire fails with
/// [`LockError::Unusable`](super::LockError::Unusable) and `EAGAIN`).
///
/// # Owner death
///
/// As for [`Mutex`](super::Mutex): when the owning process dies holding the
/// lock (at any depth), the next acquirer gets it, at depth one, with
/// [`LockError::OwnerDied`](super::LockError::OwnerDied); the lock is
/// repaired at that moment and works normally afterwards. It never
/// deadlocks on a dead owner.
///
/// # Examples
///
/// ```
/// use multiproc::RLock;
///
/// let lock = RLock::new()?;
/// lock.acquire().unwrap();
/// lock.acquire().unwrap(); // re-entrant
/// lock.release().unwrap();
/// lock.release().unwrap();
/// assert!(lock.release().is_err()); // one too many
///
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap();
/// drop(inner);
/// drop(outer);
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub struct RLock {
    obj: Object<RLockCtrl>,
}

shared_object!(RLock);

impl RLock {
    /// Creates a named re-entrant lock, unlocked.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`] and OS errors.
    pub fn create(name: impl Into<Name>) -> Result<RLock, ShmError> {
        Ok(RLock { obj: Object::create(Some(name.into()), 1, init)? })
    }

    /// Opens a named re-entrant lock.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
    /// another kind of object; [`ShmError::Corrupt`].
    pub fn open(name: impl Into<Name>) -> Result<RLock, ShmError> {
        Ok(RLock { obj: Object::open(name.into(), Some(1))? })
    }

    /// Opens the named re-entrant lock, or creates it.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: impl Into<Name>) -> Result<RLock, ShmError> {
        Ok(RLock { obj: Object::open_or_create(name.into(), 1, init)? })
    }

    /// Creates an anonymous re-entrant lock, to share with children.
    ///
    /// # Errors
    ///
    /// OS errors (out of memory, too many open files).
    pub fn new() -> Result<RLock, ShmError> {
        Ok(RLock { obj: Object::create(None, 1, init)? })
    }

    fn raw(&self) -> &RawMutex {
        &self.obj.ctrl().raw
    }

    /// Blocks until the calling thread holds the lock (at once if it holds
    /// it already), and adds one to its depth.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`](super::LockError::OwnerDied) (acquired)
    /// when the previous owner died holding it;
    /// [`LockError::Unusable`](super::LockError::Unusable) (not acquired)
    /// when the lock's memory is not a valid lock, or the depth would pass
    /// `u32::MAX`.
    pub fn acquire(&self) -> LockResult<()> {
        lock_with(self.raw(), || ())
    }

    /// Acquires the lock if it is free or already held by the calling
    /// thread, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] when another thread holds it; otherwise
    /// as [`acquire`](Self::acquire).
    pub fn try_acquire(&self) -> Result<(), TryLockError<()>> {
        try_lock_with(self.raw(), || ())
    }

    /// Blocks until the lock is acquired or `timeout` passes.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`]; otherwise as [`acquire`](Self::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), LockTimeoutError<()>> {
        lock_timeout_with(self.raw(), timeout, || ())
    }

    /// Takes one off the calling thread's depth; the lock is free when the
    /// depth reaches zero.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotOwner`] when the calling thread does not hold the
    /// lock (another thread or process does, or nobody does: a release more
    /// than there were acquires); nothing changes.
    /// [`ReleaseError::Unusable`] when its memory is not a valid lock.
    pub fn release(&self) -> Result<(), ReleaseError> {
        // Before glibc sees a lock this thread may never have taken (whose
        // kind word was then never checked): see `held_by_this_thread`.
        if !self.raw().held_by_this_thread() {
            return Err(ReleaseError::NotOwner);
        }
        self.raw().unlock().map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => ReleaseError::NotOwner,
            _ => ReleaseError::Unusable(e),
        })
    }

    /// As [`acquire`](Self::acquire), returning a guard that releases once
    /// when dropped.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire); `OwnerDied` carries the guard.
    pub fn lock(&self) -> LockResult<RLockGuard<'_>> {
        lock_with(self.raw(), || RLockGuard::new(self))
    }

    /// As [`try_acquire`](Self::try_acquire), returning a guard.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire); `OwnerDied` carries the guard.
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        try_lock_with(self.raw(), || RLockGuard::new(self))
    }

    /// As [`acquire_timeout`](Self::acquire_timeout), returning a guard.
    ///
    /// # Errors
    ///
    /// As [`acquire_timeout`](Self::acquire_timeout); `OwnerDied` carries the
    /// guard.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>, LockTimeoutError<RLockGuard<'_>>> {
        lock_timeout_with(self.raw(), timeout, || RLockGuard::new(self))
    }
}

/// One level of an [`RLock`] held by the calling thread; released when
/// dropped.
///
/// It must be dropped by the thread that acquired it (pthread mutexes are
/// owned by threads), so it is not `Send`.
#[must_use = "if unused the lock is released at once"]
#[clippy::has_significant_drop]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> RLockGuard<'a> {
    fn new(lock: &'a RLock) -> RLockGuard<'a> {
        RLockGuard { lock, _not_send: PhantomData }
    }
}

// SAFETY: a shared `&RLockGuard` gives access to nothing but the `&RLock`
// (which is `Sync`); the release happens on the owning thread, since the
// guard is not `Send`.
unsafe impl Sync for RLockGuard<'_> {}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // Fails only if the caller released this level by hand already.
        let _ = self.lock.release();
    }
}

impl std::fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RLockGuard").field("lock", self.lock).finish()
    }
}
