//! Errors of the synchronisation primitives.

use std::fmt;
use std::io;

macro_rules! guard_error_common {
    ($name:ident) => {
        impl<G> $name<G> {
            /// The guard, if the lock was acquired (its previous owner died).
            pub fn into_guard(self) -> Option<G> {
                match self {
                    $name::OwnerDied(g) => Some(g),
                    _ => None,
                }
            }

            /// Whether the lock was acquired from an owner that died holding it.
            pub fn is_owner_died(&self) -> bool {
                matches!(self, $name::OwnerDied(_))
            }
        }

        impl<G> std::error::Error for $name<G> {}
    };
}

/// Why [`lock`](super::Mutex::lock) did not simply succeed.
///
/// Like [`std::sync::PoisonError`], [`OwnerDied`](LockError::OwnerDied)
/// still hands over the guard: the lock *was* acquired, from a process or
/// thread that died while holding it, so the data may be half-updated. The
/// lock itself has been repaired and works normally afterwards; only the
/// caller that recovered it is told.
pub enum LockError<G> {
    /// Acquired; the previous owner died holding the lock.
    OwnerDied(G),
    /// Not acquired: the lock is unusable (its memory is not a valid lock).
    Unusable(io::Error),
}
guard_error_common!(LockError);

/// Why [`try_lock`](super::Mutex::try_lock) did not simply succeed.
pub enum TryLockError<G> {
    /// Not acquired: another thread or process holds it.
    WouldBlock,
    /// Acquired; the previous owner died holding the lock.
    OwnerDied(G),
    /// Not acquired: the lock is unusable.
    Unusable(io::Error),
}
guard_error_common!(TryLockError);

/// Why [`lock_timeout`](super::Mutex::lock_timeout) did not simply succeed.
pub enum LockTimeoutError<G> {
    /// Not acquired within the timeout.
    Timeout,
    /// Acquired; the previous owner died holding the lock.
    OwnerDied(G),
    /// Not acquired: the lock is unusable.
    Unusable(io::Error),
}
guard_error_common!(LockTimeoutError);

/// The result of a blocking lock.
pub type LockResult<G> = Result<G, LockError<G>>;

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Unusable(e) => f.debug_tuple("Unusable").field(e).finish(),
        }
    }
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
            TryLockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            TryLockError::Unusable(e) => f.debug_tuple("Unusable").field(e).finish(),
        }
    }
}

impl<G> fmt::Debug for LockTimeoutError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockTimeoutError::Timeout => f.write_str("Timeout"),
            LockTimeoutError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockTimeoutError::Unusable(e) => f.debug_tuple("Unusable").field(e).finish(),
        }
    }
}

const OWNER_DIED: &str = "lock acquired, but its previous owner died holding it";

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(OWNER_DIED),
            LockError::Unusable(e) => write!(f, "lock unusable: {e}"),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("lock is held by someone else"),
            TryLockError::OwnerDied(_) => f.write_str(OWNER_DIED),
            TryLockError::Unusable(e) => write!(f, "lock unusable: {e}"),
        }
    }
}

impl<G> fmt::Display for LockTimeoutError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockTimeoutError::Timeout => f.write_str("timed out waiting for the lock"),
            LockTimeoutError::OwnerDied(_) => f.write_str(OWNER_DIED),
            LockTimeoutError::Unusable(e) => write!(f, "lock unusable: {e}"),
        }
    }
}

impl<G> LockError<G> {
    /// Applies `f` to the guard inside, keeping the error's meaning.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(g) => LockError::OwnerDied(f(g)),
            LockError::Unusable(e) => LockError::Unusable(e),
        }
    }
}

/// Why [`RLock::release`](super::RLock::release) failed; nothing changed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The calling thread does not hold the lock: another thread or process
    /// holds it, nobody does, or it was released more times than acquired.
    NotOwner,
    /// The lock is unusable (its memory is not a valid lock).
    Unusable(io::Error),
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::NotOwner => f.write_str("cannot release a lock the calling thread does not hold"),
            ReleaseError::Unusable(e) => write!(f, "lock unusable: {e}"),
        }
    }
}

impl std::error::Error for ReleaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReleaseError::Unusable(e) => Some(e),
            ReleaseError::NotOwner => None,
        }
    }
}

/// Why a [`Semaphore`](super::Semaphore) or
/// [`BoundedSemaphore`](super::BoundedSemaphore) release was refused: the
/// count would exceed its limit. Nothing changed.
///
/// The limit of a `BoundedSemaphore` is its initial value (Python's
/// "semaphore released too many times"); that of a `Semaphore` is
/// `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemaphoreReleaseError {
    pub(crate) limit: u32,
}

impl SemaphoreReleaseError {
    /// The limit the release would have exceeded.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

impl fmt::Display for SemaphoreReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "semaphore released too many times (its limit is {})", self.limit)
    }
}

impl std::error::Error for SemaphoreReleaseError {}

/// Why [`Condition::notify`](super::Condition::notify) or
/// [`notify_all`](super::Condition::notify_all) refused: the calling thread
/// does not hold the condition's lock. Nobody was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyError;

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot notify on a condition whose lock the calling thread does not hold")
    }
}

impl std::error::Error for NotifyError {}

/// Why a [`Condition`](super::Condition) wait did not simply succeed.
///
/// `G` is what the wait returns on success (the guard, or the guard with a
/// timeout flag), handed back in the variants where the caller still holds
/// the lock.
pub enum ConditionWaitError<G> {
    /// Woken and relocked, but a process or thread died holding the lock
    /// while this one waited: data it guards may be half-updated. The lock
    /// has been repaired.
    OwnerDied(G),
    /// The guard belongs to another condition. Nothing was done: the guard
    /// is handed back, still locking its own condition.
    ForeignGuard(G),
    /// The lock could not be taken again (its memory is not a valid lock);
    /// the caller no longer holds it.
    Unusable(io::Error),
}

impl<G> ConditionWaitError<G> {
    /// The guard (or what the wait returns), if the caller holds the lock:
    /// for [`OwnerDied`](Self::OwnerDied) and
    /// [`ForeignGuard`](Self::ForeignGuard).
    pub fn into_guard(self) -> Option<G> {
        match self {
            ConditionWaitError::OwnerDied(g) | ConditionWaitError::ForeignGuard(g) => Some(g),
            ConditionWaitError::Unusable(_) => None,
        }
    }

    /// Whether the lock was retaken from an owner that died holding it.
    pub fn is_owner_died(&self) -> bool {
        matches!(self, ConditionWaitError::OwnerDied(_))
    }

    /// Applies `f` to the value inside, keeping the error's meaning.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> ConditionWaitError<H> {
        match self {
            ConditionWaitError::OwnerDied(g) => ConditionWaitError::OwnerDied(f(g)),
            ConditionWaitError::ForeignGuard(g) => ConditionWaitError::ForeignGuard(f(g)),
            ConditionWaitError::Unusable(e) => ConditionWaitError::Unusable(e),
        }
    }
}

impl<G> fmt::Debug for ConditionWaitError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionWaitError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            ConditionWaitError::ForeignGuard(_) => f.write_str("ForeignGuard(..)"),
            ConditionWaitError::Unusable(e) => f.debug_tuple("Unusable").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for ConditionWaitError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionWaitError::OwnerDied(_) => f.write_str(OWNER_DIED),
            ConditionWaitError::ForeignGuard(_) => f.write_str("the guard passed to wait belongs to another condition"),
            ConditionWaitError::Unusable(e) => write!(f, "lock unusable: {e}"),
        }
    }
}

impl<G> std::error::Error for ConditionWaitError<G> {}

/// Why a [`Barrier`](super::Barrier) broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokenCause {
    /// [`abort`](super::Barrier::abort) was called.
    Aborted,
    /// [`reset`](super::Barrier::reset) was called while this party waited.
    Reset,
    /// A party's [`wait_timeout`](super::Barrier::wait_timeout) expired.
    TimedOut,
    /// A party died (its process ended) while waiting, or while inside a
    /// barrier call.
    PartyDied,
    /// The barrier's memory is not valid (a corrupt or hostile segment), or
    /// this party waited so long that the barrier's record of its round was
    /// overwritten.
    Unusable,
}

/// The error of [`Barrier::wait`](super::Barrier::wait): the barrier is
/// broken, or broke while this party waited. Python's
/// `threading.BrokenBarrierError`.
///
/// [`cause`](Self::cause) says why it broke; it stays broken for every
/// party until [`reset`](super::Barrier::reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenBarrierError {
    pub(crate) cause: BrokenCause,
    pub(crate) os_error: Option<i32>,
}

impl BrokenBarrierError {
    /// Why the barrier broke.
    pub fn cause(&self) -> BrokenCause {
        self.cause
    }

    /// Whether it broke because a party's timeout expired (this party's or
    /// another's).
    pub fn is_timeout(&self) -> bool {
        self.cause == BrokenCause::TimedOut
    }
}

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.cause {
            BrokenCause::Aborted => "it was aborted",
            BrokenCause::Reset => "it was reset while waiting",
            BrokenCause::TimedOut => "a party timed out",
            BrokenCause::PartyDied => "a party died",
            BrokenCause::Unusable => "its memory is not a valid barrier",
        };
        write!(f, "barrier is broken: {why}")?;
        if let Some(e) = self.os_error {
            write!(f, " ({})", io::Error::from_raw_os_error(e))?;
        }
        Ok(())
    }
}

impl std::error::Error for BrokenBarrierError {}
