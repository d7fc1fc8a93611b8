//! [`Array<T>`]: a fixed-length array of `Pod` values in shared memory
//! behind one lock.
#![allow(unsafe_code)]

use std::time::Duration;

use bytemuck::Pod;

use crate::segment::header::Kind;
use crate::segment::object::{Control, Object, shared_object};
use crate::sync::{
    LockCtrl, LockResult, LockTimeoutError, MutexGuard, TryLockError, init_locked, lock_timeout_with, lock_with,
    try_lock_with,
};
use crate::{Name, ShmError};

type Ctrl = LockCtrl<{ Kind::Array as u32 }>;

// SAFETY: `repr(C)` around a pthread mutex (integers in an UnsafeCell).
unsafe impl Control for Ctrl {
    const KIND: Kind = Kind::Array;
}

/// A fixed-length array of `T` shared between processes, behind one lock —
/// Python's `multiprocessing.Array`.
///
/// [`lock`](Self::lock) returns a guard that derefs to `[T]`, for slices and
/// iteration under the lock; [`get`](Self::get) and [`set`](Self::set) lock
/// for one element. The length is fixed at creation; [`open`](Self::open)
/// takes it from the segment.
///
/// # Panics
///
/// `get` and `set` panic when the index is out of bounds, as slice indexing
/// does. Nothing another process writes can cause a panic: the length is
/// validated once at open and kept in this process.
///
/// # Examples
///
/// ```
/// use multiproc::Array;
///
/// let arr = Array::new(&[1.0f64, 2.0, 3.0])?;
/// arr.set(1, 20.0).unwrap();
/// let sum: f64 = arr.lock().unwrap().iter().sum();
/// assert_eq!(sum, 24.0);
/// assert_eq!(Array::filled(0u8, 4)?.len(), 4);
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub struct Array<T: Pod> {
    obj: Object<Ctrl, T>,
}

shared_object!(Array<T: Pod>);

fn fill<T: Pod>(value: T, len: usize) -> Vec<T> {
    vec![value; len]
}

impl<T: Pod> Array<T> {
    /// Creates a named array holding a copy of `items`.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`],
    /// [`ShmError::InvalidSize`] when it does not fit in memory, OS errors.
    pub fn create(name: impl Into<Name>, items: &[T]) -> Result<Array<T>, ShmError> {
        Ok(Array { obj: Object::create(Some(name.into()), items.len(), |c, e| init_locked(c, e, items))? })
    }

    /// Creates a named array of `len` copies of `value`.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub fn create_filled(name: impl Into<Name>, value: T, len: usize) -> Result<Array<T>, ShmError> {
        Array::create(name, &fill(value, len))
    }

    /// Opens a named array of `T`, whatever its length.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
    /// another kind of object or an array of another type;
    /// [`ShmError::Corrupt`] for a file that is not a valid segment.
    pub fn open(name: impl Into<Name>) -> Result<Array<T>, ShmError> {
        Ok(Array { obj: Object::open(name.into(), None)? })
    }

    /// Opens the named array, or creates it from `items`. An existing array
    /// of another length is a [`ShmError::Mismatch`].
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: impl Into<Name>, items: &[T]) -> Result<Array<T>, ShmError> {
        Ok(Array { obj: Object::open_or_create(name.into(), items.len(), |c, e| init_locked(c, e, items))? })
    }

    /// Creates an anonymous array holding a copy of `items`.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidSize`] when it does not fit in memory, OS errors.
    pub fn new(items: &[T]) -> Result<Array<T>, ShmError> {
        Ok(Array { obj: Object::create(None, items.len(), |c, e| init_locked(c, e, items))? })
    }

    /// Creates an anonymous array of `len` copies of `value`.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn filled(value: T, len: usize) -> Result<Array<T>, ShmError> {
        Array::new(&fill(value, len))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.obj.len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn guard(&self) -> MutexGuard<'_, [T]> {
        MutexGuard::new(&self.obj.ctrl().raw, std::ptr::slice_from_raw_parts_mut(self.obj.elems(), self.len()))
    }

    /// Locks the array; the guard derefs to `[T]`.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`](crate::Mutex::lock).
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, [T]>> {
        lock_with(&self.obj.ctrl().raw, || self.guard())
    }

    /// Locks the array if the lock is free.
    ///
    /// # Errors
    ///
    /// As [`Mutex::try_lock`](crate::Mutex::try_lock).
    pub fn try_lock(&self) -> Result<MutexGuard<'_, [T]>, TryLockError<MutexGuard<'_, [T]>>> {
        try_lock_with(&self.obj.ctrl().raw, || self.guard())
    }

    /// Locks the array, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock_timeout`](crate::Mutex::lock_timeout).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<MutexGuard<'_, [T]>, LockTimeoutError<MutexGuard<'_, [T]>>> {
        lock_timeout_with(&self.obj.ctrl().raw, timeout, || self.guard())
    }

    fn check(&self, index: usize) {
        assert!(index < self.len(), "index {index} out of bounds for an Array of length {}", self.len());
    }

    /// Reads element `index` under the lock.
    ///
    /// # Errors
    ///
    /// As [`Value::get`](crate::Value::get).
    pub fn get(&self, index: usize) -> LockResult<T> {
        self.check(index);
        self.lock().map(|g| g[index]).map_err(|e| e.map(|g| g[index]))
    }

    /// Writes element `index` under the lock.
    ///
    /// # Errors
    ///
    /// As [`Value::set`](crate::Value::set).
    pub fn set(&self, index: usize, value: T) -> LockResult<()> {
        self.check(index);
        let write = |mut g: MutexGuard<'_, [T]>| g[index] = value;
        self.lock().map(write).map_err(|e| e.map(write))
    }

    /// Copies the whole array out under the lock.
    ///
    /// # Errors
    ///
    /// As [`Value::get`](crate::Value::get).
    pub fn to_vec(&self) -> LockResult<Vec<T>> {
        self.lock().map(|g| g.to_vec()).map_err(|e| e.map(|g| g.to_vec()))
    }

    /// The elements without the lock (Python's `RawArray`).
    ///
    /// # Safety
    ///
    /// While the slice lives, no other thread or process may write the array.
    pub unsafe fn as_slice_unlocked(&self) -> &[T] {
        // SAFETY: `len` validated elements, aligned, in a mapping that lives
        // as long as `self`; the caller excludes writers; any bit pattern is
        // a valid `T: Pod`.
        unsafe { std::slice::from_raw_parts(self.obj.elems(), self.len()) }
    }

    /// The elements, mutably, without the lock.
    ///
    /// # Safety
    ///
    /// While the slice lives, no other thread or process may read or write
    /// the array, and no other slice of it may exist in this process.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice_unlocked(&self) -> &mut [T] {
        // SAFETY: as in `as_slice_unlocked`; the caller guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.obj.elems(), self.len()) }
    }
}
