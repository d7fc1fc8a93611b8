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
