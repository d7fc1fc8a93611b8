//! Cross-process synchronisation: [`Mutex`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Event`], [`Condition`] and [`Barrier`].
//!
//! Every primitive lives in a segment, is named (`create`/`open`) or
//! anonymous (`new`, handed to children in their start argument), and every
//! blocking call has `try_` and `_timeout` forms. Locks are robust pthread
//! mutexes that report a dead owner; everything else sleeps on futexes in
//! the shared mapping after a short spin, and wakes nobody (no system call)
//! when nobody waits.

mod barrier;
mod condition;
mod error;
mod event;
mod mutex;
pub(crate) mod raw;
mod rlock;
mod semaphore;
pub(crate) mod wait;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard, WaitTimeoutResult};
pub use error::{
    BrokenBarrierError, BrokenCause, ConditionWaitError, NotifyError, ReleaseError, SemaphoreReleaseError,
};
pub use error::{LockError, LockResult, LockTimeoutError, TryLockError};
pub use event::Event;
pub use mutex::{Lock, Mutex, MutexGuard};
pub(crate) use mutex::{LockCtrl, init_locked, lock_timeout_with, lock_with, single_lock, try_lock_with};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};
pub(crate) use {barrier::BarrierCtrl, condition::CondCtrl, event::EventCtrl, semaphore::SemCtrl};
