//! [`Mutex<T>`]: a cross-process lock around plain data in shared memory.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;

use super::error::{LockError, LockResult, LockTimeoutError, TryLockError};
use super::raw::RawMutex;
use super::wait::deadline;
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object};
use crate::sys::pthread::Locked;
use crate::{Name, ShmError};

/// Control block of a [`Mutex`] (and of [`Value`](crate::Value) and
/// [`Array`](crate::Array), which share its locking).
#[repr(C)]
pub(crate) struct LockCtrl<const KIND: u32> {
    pub(crate) raw: RawMutex,
}

// SAFETY: `repr(C)` around a pthread mutex (integers in an UnsafeCell);
// alignment 8.
unsafe impl Control for LockCtrl<{ Kind::Mutex as u32 }> {
    fn describe(&self, _: usize) -> Vec<(&'static str, String)> {
        vec![("lock", self.raw.holder())]
    }

    const KIND: Kind = Kind::Mutex;
}

/// Locks `raw`, turning the outcome into a `LockResult` of `guard()`.
#[inline]
pub(crate) fn lock_with<G>(raw: &RawMutex, guard: impl FnOnce() -> G) -> LockResult<G> {
    match raw.lock() {
        Locked::Yes => Ok(guard()),
        Locked::OwnerDied => Err(LockError::OwnerDied(guard())),
        Locked::Busy => unreachable!("a blocking lock does not report busy"),
        Locked::Unusable(e) => Err(LockError::Unusable(e)),
    }
}

/// As [`lock_with`], for `try_lock`.
pub(crate) fn try_lock_with<G>(raw: &RawMutex, guard: impl FnOnce() -> G) -> Result<G, TryLockError<G>> {
    match raw.try_lock() {
        Locked::Yes => Ok(guard()),
        Locked::OwnerDied => Err(TryLockError::OwnerDied(guard())),
        Locked::Busy => Err(TryLockError::WouldBlock),
        Locked::Unusable(e) => Err(TryLockError::Unusable(e)),
    }
}

/// As [`lock_with`], with a timeout.
pub(crate) fn lock_timeout_with<G>(
    raw: &RawMutex,
    timeout: Duration,
    guard: impl FnOnce() -> G,
) -> Result<G, LockTimeoutError<G>> {
    match raw.lock_until(deadline(timeout)) {
        Locked::Yes => Ok(guard()),
        Locked::OwnerDied => Err(LockTimeoutError::OwnerDied(guard())),
        Locked::Busy => Err(LockTimeoutError::Timeout),
        Locked::Unusable(e) => Err(LockTimeoutError::Unusable(e)),
    }
}

/// Initialises a lock control block and `count` copies of `fill` (or the
/// items of `from`).
pub(crate) fn init_locked<T: Pod, const K: u32>(
    ctrl: *mut LockCtrl<K>,
    elems: *mut T,
    items: &[T],
) -> std::io::Result<()> {
    // SAFETY: `elems` points to room for `items.len()` elements in the new,
    // not yet shared segment (the count it was created with), aligned for T.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), elems, items.len()) };
    // The control block is the first field.
    RawMutex::init(ctrl.cast(), false)
}

/// Defines a public type holding one `T` behind a robust lock — [`Mutex`]
/// and [`Value`](crate::Value) — with its constructors, lock methods and
/// raw pointer, so both share one implementation. The type's doc comment
/// comes before the invocation; `$kind` is its [`Kind`].
macro_rules! single_lock {
    ($(#[$doc:meta])* $name:ident, $kind:ident) => {
        $(#[$doc])*
        pub struct $name<T: Pod> {
            obj: Object<LockCtrl<{ Kind::$kind as u32 }>, T>,
        }

        $crate::segment::object::shared_object!($name<T: Pod>);

        impl<T: Pod> $name<T> {
            /// Creates a named object holding `value`.
            ///
            /// # Errors
            ///
            /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`] and OS errors.
            pub fn create(name: impl Into<Name>, value: T) -> Result<$name<T>, ShmError> {
                Ok($name { obj: Object::create(Some(name.into()), 1, |c, e| init_locked(c, e, &[value]))? })
            }

            /// Opens a named object holding a `T`.
            ///
            /// # Errors
            ///
            /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
            /// something else (another kind, or another element type);
            /// [`ShmError::Corrupt`] for a file that is not a valid segment.
            pub fn open(name: impl Into<Name>) -> Result<$name<T>, ShmError> {
                Ok($name { obj: Object::open(name.into(), Some(1))? })
            }

            /// Opens the named object, or creates it holding `value`.
            ///
            /// # Errors
            ///
            /// As [`create`](Self::create) and [`open`](Self::open).
            pub fn open_or_create(name: impl Into<Name>, value: T) -> Result<$name<T>, ShmError> {
                Ok($name { obj: Object::open_or_create(name.into(), 1, |c, e| init_locked(c, e, &[value]))? })
            }

            /// Creates an anonymous object holding `value`, to share with
            /// child processes.
            ///
            /// # Errors
            ///
            /// OS errors (out of memory, too many open files).
            pub fn new(value: T) -> Result<$name<T>, ShmError> {
                Ok($name { obj: Object::create(None, 1, |c, e| init_locked(c, e, &[value]))? })
            }

            fn guard(&self) -> MutexGuard<'_, T> {
                MutexGuard::new(&self.obj.ctrl().raw, self.obj.elems())
            }

            /// Blocks until the lock is acquired; the guard derefs to `T`.
            ///
            /// # Errors
            ///
            /// [`LockError::OwnerDied`](crate::LockError::OwnerDied) (with the
            /// guard) when the previous owner died holding it;
            /// [`LockError::Unusable`](crate::LockError::Unusable) when the
            /// lock's memory is not a valid lock (a hostile or corrupt segment).
            #[inline]
            pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
                lock_with(&self.obj.ctrl().raw, || self.guard())
            }

            /// Acquires the lock if it is free, without blocking.
            ///
            /// # Errors
            ///
            /// [`TryLockError::WouldBlock`] when it is held; otherwise as
            /// [`lock`](Self::lock).
            pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
                try_lock_with(&self.obj.ctrl().raw, || self.guard())
            }

            /// Blocks until the lock is acquired or `timeout` passes.
            ///
            /// # Errors
            ///
            /// [`LockTimeoutError::Timeout`]; otherwise as [`lock`](Self::lock).
            pub fn lock_timeout(
                &self,
                timeout: Duration,
            ) -> Result<MutexGuard<'_, T>, LockTimeoutError<MutexGuard<'_, T>>> {
                lock_timeout_with(&self.obj.ctrl().raw, timeout, || self.guard())
            }

            /// A pointer to the data, for lock-free access by the caller's own
            /// protocol. Reading or writing through it while another process
            /// may write is a data race: hold the lock, or use atomics.
            pub fn as_ptr(&self) -> *mut T {
                self.obj.elems()
            }
        }
    };
}
pub(crate) use single_lock;

single_lock!(
    /// A cross-process mutual-exclusion lock protecting a `T` in shared memory.
    ///
    /// `lock()` blocks until the lock is free and returns a guard that gives
    /// access to the data and unlocks when dropped, like [`std::sync::Mutex`].
    /// `T` must be [`Pod`]: plain bytes, with no pointers, since the data is read
    /// by other processes at other addresses. Use [`Lock`] (`Mutex<()>`) for a
    /// lock without data, as Python's `multiprocessing.Lock`.
    ///
    /// A mutex is **named** ([`create`](Self::create) / [`open`](Self::open)),
    /// or **anonymous** ([`new`](Self::new)) and handed to child processes in
    /// their start argument.
    ///
    /// # Owner death
    ///
    /// The lock is a robust, process-shared pthread mutex. When a process dies
    /// holding it (killed by `SIGKILL`, say), the next `lock()` acquires it and
    /// returns [`LockError::OwnerDied`] with the guard: the caller decides
    /// whether the data is usable. The lock is repaired at that moment and works
    /// normally from then on; only that one caller is told. It never deadlocks
    /// on a dead owner, and the death is never hidden.
    ///
    /// A panic in the holding thread unwinds and drops the guard, which unlocks
    /// normally: unlike `std`, there is no poisoning.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Mutex;
    ///
    /// let m = Mutex::new(0u64)?;
    /// *m.lock().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 1);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    ///
    /// Recovering from a dead owner:
    ///
    /// ```
    /// use multiproc::{LockError, Mutex};
    ///
    /// let m = Mutex::new(7u32)?;
    /// let guard = match m.lock() {
    ///     Ok(g) => g,
    ///     Err(LockError::OwnerDied(g)) => g, // check or repair the data here
    ///     Err(e) => panic!("{e}"),
    /// };
    /// assert_eq!(*guard, 7);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    Mutex,
    Mutex
);

/// A cross-process lock with no data: Python's `multiprocessing.Lock`.
pub type Lock = Mutex<()>;

/// Access to locked data; unlocks when dropped.
///
/// Derefs to `T` for a [`Mutex`] or [`Value`](crate::Value) and to `[T]` for
/// an [`Array`](crate::Array). It must be dropped by the thread that locked
/// (pthread mutexes are owned by threads), so it is not `Send`.
#[must_use = "if unused the lock is released at once"]
#[clippy::has_significant_drop]
pub struct MutexGuard<'a, T: ?Sized> {
    raw: &'a RawMutex,
    data: *mut T,
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: sharing a guard between threads only hands out `&T`, which is fine
// when `T: Sync`; the unlock still happens on the owning thread (the guard
// is not `Send`).
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The caller holds `raw`, which protects `data` (valid for `'a`).
    pub(crate) fn new(raw: &'a RawMutex, data: *mut T) -> MutexGuard<'a, T> {
        MutexGuard { raw, data, _not_send: PhantomData }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other thread or process
        // following the protocol touches the data; `data` points into a
        // mapping that outlives `'a`, aligned, and every bit pattern is a
        // valid `T` (`Pod`) even if a hostile peer wrote it.
        unsafe { &*self.data }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.data }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Cannot fail: this thread owns the lock.
        let _ = self.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
