//! [`Semaphore`] and [`BoundedSemaphore`]: counters in shared memory that
//! block at zero.
//!
//! The futex word is the count itself. `acquire` takes one with a CAS when
//! the count is positive and otherwise sleeps on the word while it is zero;
//! `release` adds one with a CAS and wakes one sleeper, with no system call
//! when nobody sleeps (see [`wait`]).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::error::SemaphoreReleaseError;
use super::wait::{self, deadline};
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object, shared_object};
use crate::{Name, ShmError};

/// How long a sleeper sleeps at most before it looks at the count again.
///
/// A `release` wakes one sleeper. If that sleeper's process is killed
/// between being woken and taking the count, the wake-up is lost with it and
/// the count stays positive while others sleep; this bound turns that into a
/// delay instead of a hang. It costs a sleeper one wake-up per period.
const RECHECK: Duration = Duration::from_millis(100);

/// Control block of both semaphores.
#[repr(C)]
pub(crate) struct SemCtrl<const KIND: u32> {
    /// The count; also the futex word sleepers wait on (while it is zero).
    count: AtomicU32,
    /// Sleepers on `count` (see [`wait`]).
    waiters: AtomicU32,
    /// The largest count a release may make (`u32::MAX`, or a bounded
    /// semaphore's initial value). Written once by the creator.
    limit: AtomicU32,
}

// SAFETY: `repr(C)`, atomics only; any bit pattern is valid. Alignment 4.
unsafe impl Control for SemCtrl<{ Kind::Semaphore as u32 }> {
    /// Also used for a `BoundedSemaphore`, which has the same layout.
    fn describe(&self, _: usize) -> Vec<(&'static str, String)> {
        let limit = self.limit.load(Ordering::Relaxed);
        vec![
            ("value", self.count.load(Ordering::Relaxed).to_string()),
            ("bound", if limit == u32::MAX { "none".to_string() } else { limit.to_string() }),
            ("waiters", self.waiters.load(Ordering::Relaxed).to_string()),
        ]
    }

    const KIND: Kind = Kind::Semaphore;
}

// SAFETY: as above.
unsafe impl Control for SemCtrl<{ Kind::BoundedSemaphore as u32 }> {
    const KIND: Kind = Kind::BoundedSemaphore;
}

impl<const K: u32> SemCtrl<K> {
    fn init(value: u32, limit: u32) -> impl Fn(*mut SemCtrl<K>, *mut ()) -> std::io::Result<()> {
        move |ctrl, _| {
            // SAFETY: `ctrl` points to the zeroed, aligned control block of a
            // segment nobody else can see yet; atomics may be written through
            // a shared reference.
            let c = unsafe { &*ctrl };
            c.count.store(value, Ordering::Relaxed);
            c.limit.store(limit, Ordering::Relaxed);
            Ok(())
        }
    }

    fn try_acquire(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c != 0 {
            match self.count.compare_exchange_weak(c, c - 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_acquire() {
                return true;
            }
            let now = Instant::now();
            let nap = now.checked_add(RECHECK);
            let until = match (deadline, nap) {
                (Some(d), _) if d <= now => return false,
                (Some(d), Some(n)) => Some(d.min(n)),
                (d, n) => d.or(n),
            };
            wait::wait(&self.count, 0, &self.waiters, until);
        }
    }

    fn release(&self, limit: u32) -> Result<(), SemaphoreReleaseError> {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            if c >= limit {
                return Err(SemaphoreReleaseError { limit });
            }
            match self.count.compare_exchange_weak(c, c + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        wait::wake(&self.count, &self.waiters, 1);
        Ok(())
    }

    fn value(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Defines a semaphore type over [`SemCtrl`] — [`Semaphore`] and
/// [`BoundedSemaphore`] differ only in the limit a release may not pass
/// (`$limit`, computed from the initial value) and their kind.
macro_rules! semaphore_type {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $limit:expr, $what:literal) => {
        $(#[$doc])*
        pub struct $name {
            obj: Object<SemCtrl<{ Kind::$kind as u32 }>>,
        }

        shared_object!($name);

        impl $name {
            #[doc = concat!("Creates a named ", $what, " with count `value`.")]
            ///
            /// # Errors
            ///
            /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`] and OS errors.
            pub fn create(name: impl Into<Name>, value: u32) -> Result<$name, ShmError> {
                Ok($name { obj: Object::create(Some(name.into()), 1, SemCtrl::init(value, $limit(value)))? })
            }

            #[doc = concat!("Opens a named ", $what, ".")]
            ///
            /// # Errors
            ///
            /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
            /// another kind of object (the other kind of semaphore too);
            /// [`ShmError::Corrupt`].
            pub fn open(name: impl Into<Name>) -> Result<$name, ShmError> {
                Ok($name { obj: Object::open(name.into(), Some(1))? })
            }

            #[doc = concat!("Opens the named ", $what, ", or creates it with count `value`")]
            /// (which is ignored when it already exists).
            ///
            /// # Errors
            ///
            /// As [`create`](Self::create) and [`open`](Self::open).
            pub fn open_or_create(name: impl Into<Name>, value: u32) -> Result<$name, ShmError> {
                Ok($name { obj: Object::open_or_create(name.into(), 1, SemCtrl::init(value, $limit(value)))? })
            }

            #[doc = concat!("Creates an anonymous ", $what, " with count `value`, to share with")]
            /// children.
            ///
            /// # Errors
            ///
            /// OS errors (out of memory, too many open files).
            pub fn new(value: u32) -> Result<$name, ShmError> {
                Ok($name { obj: Object::create(None, 1, SemCtrl::init(value, $limit(value)))? })
            }

            /// Blocks until the count is positive, then takes one.
            pub fn acquire(&self) {
                self.obj.ctrl().acquire_until(None);
            }

            /// Takes one if the count is positive, without blocking; whether it did.
            pub fn try_acquire(&self) -> bool {
                self.obj.ctrl().try_acquire()
            }

            /// Blocks until the count is positive, then takes one, or gives up when
            /// `timeout` passes; whether it took one.
            pub fn acquire_timeout(&self, timeout: Duration) -> bool {
                self.obj.ctrl().acquire_until(deadline(timeout))
            }

            /// Adds one to the count and wakes one blocked acquirer, if any.
            ///
            /// # Errors
            ///
            /// [`SemaphoreReleaseError`] when the count is already at the
            /// [`limit`](Self::limit); nothing changes.
            pub fn release(&self) -> Result<(), SemaphoreReleaseError> {
                let ctrl = self.obj.ctrl();
                ctrl.release(ctrl.limit.load(Ordering::Relaxed))
            }

            /// The count now; it may have changed by the time the caller looks.
            pub fn value(&self) -> u32 {
                self.obj.ctrl().value()
            }

            /// The highest count a release may reach.
            pub fn limit(&self) -> u32 {
                self.obj.ctrl().limit.load(Ordering::Relaxed)
            }
        }
    };
}

semaphore_type!(
    /// A cross-process counting semaphore: Python's
    /// `multiprocessing.Semaphore`.
    ///
    /// [`acquire`](Self::acquire) takes one from the count, blocking while it
    /// is zero; [`release`](Self::release) adds one and wakes one blocked
    /// acquirer. The count is a `u32`.
    ///
    /// # Dead processes
    ///
    /// A process killed while blocked in `acquire` changes nothing: it had not
    /// taken from the count, and the others keep working. A process killed
    /// after taking from the count and before releasing keeps its unit for
    /// good, as with any semaphore: the count does not know who took what. A
    /// wake-up lost with a process killed just as it was woken delays the next
    /// acquirer by at most 100 ms (sleepers look again that often), never hangs
    /// it.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(2)?;
    /// sem.acquire();
    /// assert!(sem.try_acquire());
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    /// sem.release().unwrap();
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    Semaphore,
    Semaphore,
    |_| u32::MAX,
    "semaphore"
);

semaphore_type!(
    /// A cross-process semaphore that refuses to be released above its initial
    /// value: Python's `multiprocessing.BoundedSemaphore`.
    ///
    /// As [`Semaphore`], except that a [`release`](Self::release) that would
    /// make the count exceed the initial value fails (Python raises
    /// `ValueError`) and changes nothing; this catches a release without a
    /// matching acquire.
    ///
    /// # Dead processes
    ///
    /// As for [`Semaphore`]. A process that dies holding a unit keeps it, so
    /// the count stays one lower from then on.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiproc::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1)?;
    /// sem.acquire();
    /// sem.release().unwrap();
    /// let err = sem.release().unwrap_err(); // one release too many
    /// assert_eq!(err.limit(), 1);
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), multiproc::ShmError>(())
    /// ```
    BoundedSemaphore,
    BoundedSemaphore,
    |value| value,
    "bounded semaphore"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A wake-up lost with a process killed just after being woken looks,
    /// to the other sleepers, like a count raised without a wake: they must
    /// notice it anyway.
    #[test]
    fn sleeper_notices_a_count_raised_without_a_wake() {
        let sem = Semaphore::new(0).unwrap();
        let other = sem.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            assert!(other.acquire_timeout(Duration::from_secs(20)));
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        sem.obj.ctrl().count.fetch_add(1, Ordering::SeqCst);
        let took = t.join().unwrap();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(sem.value(), 0);
    }
}
