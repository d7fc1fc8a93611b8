//! [`Value<T>`]: one `Pod` value in shared memory behind a lock.
#![allow(unsafe_code)]

use std::time::Duration;

use bytemuck::Pod;

use crate::segment::header::Kind;
use crate::segment::object::{Control, Object};
use crate::sync::{
    LockCtrl, LockResult, LockTimeoutError, MutexGuard, TryLockError, init_locked, lock_timeout_with, lock_with,
    single_lock, try_lock_with,
};
use crate::{Name, ShmError};

// SAFETY: `repr(C)` around a pthread mutex (integers in an UnsafeCell).
unsafe impl Control for LockCtrl<{ Kind::Value as u32 }> {
    const KIND: Kind = Kind::Value;
}

single_lock!(
    /// One value of type `T` shared between processes, behind a lock —
    /// Python's `multiprocessing.Value`.
    ///
    /// [`lock`](Self::lock) returns a guard that derefs to `T`; [`get`](Self::get)
    /// and [`set`](Self::set) lock for one read or write. Read-modify-write
    /// sequences (`+= 1`) must hold the guard across both steps, exactly as in
    /// Python (`with v.get_lock(): v.value += 1`).
    ///
    /// `T` is any [`bytemuck::Pod`] type: integers, floats, arrays of them, or
    /// `#[derive(Pod)]` structs. A `Value<u32>` opened as a `Value<u64>` (or a
    /// `Value<f32>`) is refused with [`ShmError::Mismatch`].
    ///
    /// # Owner death
    ///
    /// As for [`Mutex`](crate::Mutex): when a process dies holding the lock, the
    /// next locker gets [`LockError::OwnerDied`](crate::LockError::OwnerDied) with the guard (or the value, for
    /// `get`), and the lock works normally afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Value;
    ///
    /// let counter = Value::new(0i64)?;
    /// *counter.lock().unwrap() += 5;
    /// counter.set(counter.get().unwrap() * 2).unwrap();
    /// assert_eq!(counter.get().unwrap(), 10);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    Value,
    Value
);

impl<T: Pod> Value<T> {
    /// Reads the value under the lock.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`](crate::LockError::OwnerDied) carries the value read after recovering the
    /// lock; [`LockError::Unusable`](crate::LockError::Unusable) as for `lock`.
    pub fn get(&self) -> LockResult<T> {
        self.lock().map(|g| *g).map_err(|e| e.map(|g| *g))
    }

    /// Writes the value under the lock.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`](crate::LockError::OwnerDied) when the previous owner died (the value was
    /// written anyway); [`LockError::Unusable`](crate::LockError::Unusable) when it was not.
    pub fn set(&self, value: T) -> LockResult<()> {
        let write = |mut g: MutexGuard<'_, T>| *g = value;
        self.lock().map(write).map_err(|e| e.map(write))
    }

    /// Reads the value without the lock (Python's `RawValue`).
    ///
    /// # Safety
    ///
    /// No other thread or process may write the value during the read (hold
    /// the lock, or know by your own protocol that nobody writes).
    pub unsafe fn get_unlocked(&self) -> T {
        // SAFETY: in bounds and aligned (validated segment); the caller
        // excludes concurrent writers; any bit pattern is a valid `T: Pod`.
        unsafe { self.obj.elems().read() }
    }

    /// Writes the value without the lock.
    ///
    /// # Safety
    ///
    /// No other thread or process may read or write the value during the
    /// write.
    pub unsafe fn set_unlocked(&self, value: T) {
        // SAFETY: in bounds and aligned; the caller excludes concurrent access.
        unsafe { self.obj.elems().write(value) }
    }
}
