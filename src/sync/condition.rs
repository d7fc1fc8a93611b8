//! [`Condition`]: a cross-process condition variable with its own lock.
//!
//! The lock is a robust [`RawMutex`]; the waiting is a futex sequence
//! counter beside it. `wait` reads the counter while holding the lock,
//! unlocks, sleeps while the counter is unchanged, and relocks. `notify`
//! (which requires the lock) bumps the counter and wakes up to `n`
//! sleepers, with no system call when nobody sleeps. A notify between the
//! waiter's unlock and its sleep changes the counter, so the sleep returns
//! at once: no lost wake-ups.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{ConditionWaitError, LockResult, LockTimeoutError, NotifyError, TryLockError};
use super::mutex::{lock_timeout_with, lock_with, try_lock_with};
use super::raw::RawMutex;
use super::wait::{self, deadline, expired};
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object, shared_object};
use crate::sys::pthread::Locked;
use crate::sys::{Pid, process::gettid};
use crate::{Name, ShmError};

/// Control block of a [`Condition`].
#[repr(C)]
pub(crate) struct CondCtrl {
    /// The condition's lock (error-checking, robust).
    lock: RawMutex,
    /// The futex word waiters sleep on; `notify` adds one.
    seq: AtomicU32,
    /// Sleepers on `seq`.
    waiters: AtomicU32,
    /// Process id of the thread holding `lock` through a guard; 0 when none.
    owner_pid: AtomicU32,
    /// Thread id of that thread; 0 when none.
    owner_tid: AtomicU32,
    /// Identifies this condition among all others (set by the creator), so
    /// a guard from another handle of the same condition is recognised.
    id: AtomicU64,
}

// SAFETY: `repr(C)`: a pthread mutex (integers in an UnsafeCell) then
// atomics; any bit pattern is valid. Alignment 8.
unsafe impl Control for CondCtrl {
    fn describe(&self, _: usize) -> Vec<(&'static str, String)> {
        vec![("lock", self.lock.holder()), ("waiters", self.waiters.load(Ordering::Relaxed).to_string())]
    }

    const KIND: Kind = Kind::Condition;
}

fn new_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (u64::from(Pid::this().as_u32()) << 40 ^ nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
}

fn init(ctrl: *mut CondCtrl, _: *mut ()) -> std::io::Result<()> {
    // SAFETY: `ctrl` points to the zeroed, aligned control block of a segment
    // nobody else can see yet; atomics may be written through `&`.
    unsafe { &*ctrl }.id.store(new_id(), Ordering::Relaxed);
    // The raw mutex is the first field.
    RawMutex::init(ctrl.cast(), false)
}

/// The calling thread, as recorded in `owner_pid`/`owner_tid`.
fn me() -> (u32, u32) {
    (Pid::this().as_u32(), gettid())
}

/// Whether a wait ended by timing out: the second half of what
/// [`Condition::wait_timeout`] returns, as [`std::sync::WaitTimeoutResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the timeout passed before the wait was woken.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A cross-process condition variable that owns its lock: Python's
/// `multiprocessing.Condition()` (which creates its own lock).
///
/// [`lock`](Self::lock) takes the lock and returns a [`ConditionGuard`];
/// [`wait`](Self::wait) gives the lock up, sleeps until notified, and takes
/// it again; [`notify`](Self::notify) and [`notify_all`](Self::notify_all)
/// wake waiters. A wait may also end spuriously (in particular, a notify
/// may wake more waiters than asked for), so wait in a loop on a predicate:
/// [`wait_while`](Self::wait_while) and [`wait_for`](Self::wait_for) do
/// that. The condition holds no data: the predicate reads state kept
/// elsewhere in shared memory ([`Value`](crate::Value), atomics, ...),
/// which the lock protects by convention.
///
/// Using it without holding its lock is an error, as in Python: `notify`
/// by a thread that does not hold the lock returns [`NotifyError`], and
/// `wait` with a guard of another condition returns
/// [`ConditionWaitError::ForeignGuard`]. Locking it twice from one thread
/// fails with [`LockError::Unusable`](super::LockError::Unusable)
/// (`EDEADLK`) instead of deadlocking.
///
/// # Dead processes
///
/// A process killed while waiting changes nothing for the others. A
/// process killed while holding the lock (outside a wait) leaves it to the
/// next locker, which gets
/// [`LockError::OwnerDied`](super::LockError::OwnerDied) from `lock` (or
/// [`ConditionWaitError::OwnerDied`] when the next one is a waiter
/// relocking); the lock is repaired then and the condition keeps working.
/// A notify that wakes a process which is killed before it returns from its
/// wait is spent on it, as if it had returned and done nothing.
///
/// # Examples
///
/// ```
/// use multiproc::Condition;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let cond = Condition::new()?;
/// // In real use, state in shared memory (a `Value`, say) guarded by `cond`.
/// let ready = AtomicBool::new(false);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let _g = cond.lock().unwrap();
///         ready.store(true, Ordering::Relaxed);
///         cond.notify_all().unwrap();
///     });
///     let g = cond.lock().unwrap();
///     let g = cond.wait_while(g, || !ready.load(Ordering::Relaxed)).unwrap();
///     drop(g);
/// });
/// assert!(cond.notify(1).is_err()); // not holding the lock
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub struct Condition {
    obj: Object<CondCtrl>,
}

shared_object!(Condition);

impl Condition {
    /// Creates a named condition, unlocked.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`] and OS errors.
    pub fn create(name: impl Into<Name>) -> Result<Condition, ShmError> {
        Ok(Condition { obj: Object::create(Some(name.into()), 1, init)? })
    }

    /// Opens a named condition.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
    /// another kind of object; [`ShmError::Corrupt`].
    pub fn open(name: impl Into<Name>) -> Result<Condition, ShmError> {
        Ok(Condition { obj: Object::open(name.into(), Some(1))? })
    }

    /// Opens the named condition, or creates it.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: impl Into<Name>) -> Result<Condition, ShmError> {
        Ok(Condition { obj: Object::open_or_create(name.into(), 1, init)? })
    }

    /// Creates an anonymous condition, to share with children.
    ///
    /// # Errors
    ///
    /// OS errors (out of memory, too many open files).
    pub fn new() -> Result<Condition, ShmError> {
        Ok(Condition { obj: Object::create(None, 1, init)? })
    }

    fn ctrl(&self) -> &CondCtrl {
        self.obj.ctrl()
    }

    fn guard(&self) -> ConditionGuard<'_> {
        ConditionGuard::new(self)
    }

    /// Blocks until the condition's lock is acquired.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`](super::LockError::OwnerDied) (with the
    /// guard) when the previous owner died holding it;
    /// [`LockError::Unusable`](super::LockError::Unusable) when the calling
    /// thread holds it already (`EDEADLK`) or its memory is not a valid
    /// lock.
    pub fn lock(&self) -> LockResult<ConditionGuard<'_>> {
        lock_with(&self.ctrl().lock, || self.guard())
    }

    /// Acquires the lock if it is free, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] when another thread holds it; otherwise
    /// as [`lock`](Self::lock) (`Unusable` with `EDEADLK` when the calling
    /// thread holds it).
    pub fn try_lock(&self) -> Result<ConditionGuard<'_>, TryLockError<ConditionGuard<'_>>> {
        try_lock_with(&self.ctrl().lock, || self.guard())
    }

    /// Blocks until the lock is acquired or `timeout` passes.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`]; otherwise as [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ConditionGuard<'_>, LockTimeoutError<ConditionGuard<'_>>> {
        lock_timeout_with(&self.ctrl().lock, timeout, || self.guard())
    }

    /// Gives up the lock, sleeps until notified, and takes the lock again.
    ///
    /// May return without a notify (spuriously): check the awaited state
    /// and wait again, or use [`wait_while`](Self::wait_while).
    ///
    /// # Errors
    ///
    /// [`ConditionWaitError::OwnerDied`] (with the guard: the lock is held)
    /// when some process died holding the lock while this one slept;
    /// [`ConditionWaitError::ForeignGuard`] (nothing done) when `guard`
    /// belongs to another condition; [`ConditionWaitError::Unusable`] (the
    /// lock is not held) when the lock could not be taken again.
    pub fn wait<'a>(
        &self,
        guard: ConditionGuard<'a>,
    ) -> Result<ConditionGuard<'a>, ConditionWaitError<ConditionGuard<'a>>> {
        self.wait_until(guard, None).map(|(g, _)| g).map_err(|e| e.map(|(g, _)| g))
    }

    /// As [`wait`](Self::wait), but gives up waiting when `timeout` passes.
    /// The lock is taken again in either case (which may take longer).
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    #[allow(clippy::type_complexity)]
    pub fn wait_timeout<'a>(
        &self,
        guard: ConditionGuard<'a>,
        timeout: Duration,
    ) -> Result<(ConditionGuard<'a>, WaitTimeoutResult), ConditionWaitError<(ConditionGuard<'a>, WaitTimeoutResult)>>
    {
        self.wait_until(guard, deadline(timeout))
    }

    /// Waits (as [`wait`](Self::wait)) as long as `condition` returns
    /// `true`, as [`std::sync::Condvar::wait_while`]. `condition` runs with
    /// the lock held, first before any wait.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait); on `OwnerDied` it returns at once, without
    /// calling `condition` again, so the caller can inspect the state first.
    pub fn wait_while<'a>(
        &self,
        mut guard: ConditionGuard<'a>,
        mut condition: impl FnMut() -> bool,
    ) -> Result<ConditionGuard<'a>, ConditionWaitError<ConditionGuard<'a>>> {
        while condition() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Waits until `predicate` returns `true` or `timeout` passes, and
    /// returns the guard with the predicate's last value: Python's
    /// `Condition.wait_for`. `predicate` runs with the lock held, first
    /// before any wait and once more after the last one.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait); `OwnerDied` carries the guard and the
    /// predicate's value just after the lock was retaken.
    #[allow(clippy::type_complexity)]
    pub fn wait_for<'a>(
        &self,
        mut guard: ConditionGuard<'a>,
        mut predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<(ConditionGuard<'a>, bool), ConditionWaitError<(ConditionGuard<'a>, bool)>> {
        let until = deadline(timeout);
        let mut result = predicate();
        while !result && !expired(until) {
            guard = match self.wait_until(guard, until) {
                Ok((g, _)) => g,
                Err(ConditionWaitError::OwnerDied((g, _))) => {
                    return Err(ConditionWaitError::OwnerDied((g, predicate())));
                }
                Err(e) => return Err(e.map(|(g, _)| (g, false))),
            };
            result = predicate();
        }
        Ok((guard, result))
    }

    #[allow(clippy::type_complexity)]
    fn wait_until<'a>(
        &self,
        guard: ConditionGuard<'a>,
        deadline: Option<Instant>,
    ) -> Result<(ConditionGuard<'a>, WaitTimeoutResult), ConditionWaitError<(ConditionGuard<'a>, WaitTimeoutResult)>>
    {
        let cond = guard.cond;
        if !std::ptr::eq(cond, self) && cond.ctrl().id.load(Ordering::Relaxed) != self.ctrl().id.load(Ordering::Relaxed)
        {
            return Err(ConditionWaitError::ForeignGuard((guard, WaitTimeoutResult(false))));
        }
        // From here on `cond` is this condition (perhaps another mapping of
        // it): the lock and counter are the same memory.
        let c = cond.ctrl();
        let seen = c.seq.load(Ordering::SeqCst);
        // Unlock without running the guard's drop twice.
        std::mem::forget(guard);
        c.owner_pid.store(0, Ordering::Relaxed);
        c.owner_tid.store(0, Ordering::Relaxed);
        // Cannot fail: this thread holds the lock (the guard proved it).
        let _ = c.lock.unlock();
        let in_time = wait::wait(&c.seq, seen, &c.waiters, deadline);
        let timed_out = WaitTimeoutResult(!in_time);
        match c.lock.lock() {
            Locked::Yes => Ok((cond.guard(), timed_out)),
            Locked::OwnerDied => Err(ConditionWaitError::OwnerDied((cond.guard(), timed_out))),
            // A blocking lock reports neither; a corrupt one might.
            Locked::Busy => Err(ConditionWaitError::Unusable(std::io::Error::from_raw_os_error(libc::EBUSY))),
            Locked::Unusable(e) => Err(ConditionWaitError::Unusable(e)),
        }
    }

    fn check_owner(&self) -> Result<&CondCtrl, NotifyError> {
        let c = self.ctrl();
        let (pid, tid) = me();
        if c.owner_pid.load(Ordering::Relaxed) == pid && c.owner_tid.load(Ordering::Relaxed) == tid {
            Ok(c)
        } else {
            Err(NotifyError)
        }
    }

    /// Wakes up to `n` waiters (perhaps more: waiters that have not fallen
    /// asleep yet all see the notify). The caller must hold the lock; the
    /// woken waiters return from `wait` once it is released.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] when the calling thread does not hold the lock
    /// (through a guard of this condition); nobody is woken.
    pub fn notify(&self, n: usize) -> Result<(), NotifyError> {
        let c = self.check_owner()?;
        c.seq.fetch_add(1, Ordering::SeqCst);
        wait::wake(&c.seq, &c.waiters, u32::try_from(n).unwrap_or(u32::MAX));
        Ok(())
    }

    /// Wakes every waiter. The caller must hold the lock.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    pub fn notify_all(&self) -> Result<(), NotifyError> {
        self.notify(usize::MAX)
    }
}

/// The lock of a [`Condition`], held; unlocks when dropped. Pass it to
/// [`Condition::wait`] to wait.
///
/// It must be dropped by the thread that locked (pthread mutexes are owned
/// by threads), so it is not `Send`.
#[must_use = "if unused the lock is released at once"]
#[clippy::has_significant_drop]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> ConditionGuard<'a> {
    /// The calling thread has just locked `cond`: records it as the owner.
    fn new(cond: &'a Condition) -> ConditionGuard<'a> {
        let c = cond.ctrl();
        let (pid, tid) = me();
        c.owner_pid.store(pid, Ordering::Relaxed);
        c.owner_tid.store(tid, Ordering::Relaxed);
        ConditionGuard { cond, _not_send: PhantomData }
    }
}

// SAFETY: a shared `&ConditionGuard` gives access to nothing but the
// `&Condition` (which is `Sync`); the unlock happens on the owning thread,
// since the guard is not `Send`.
unsafe impl Sync for ConditionGuard<'_> {}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let c = self.cond.ctrl();
        c.owner_pid.store(0, Ordering::Relaxed);
        c.owner_tid.store(0, Ordering::Relaxed);
        // Cannot fail: this thread owns the lock.
        let _ = c.lock.unlock();
    }
}

impl std::fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionGuard").field("condition", self.cond).finish()
    }
}
