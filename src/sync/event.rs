//! [`Event`]: a flag in shared memory that processes can wait for.
//!
//! One futex word holds the flag in bit 0 and, in the bits above, a count of
//! the times it was set. Waiters sleep while the word is unchanged; `set`
//! flips the flag, bumps the count and wakes everyone. A waiter returns
//! `true` if the flag is set *or was set while it waited*, so a `set`
//! followed at once by `clear` still releases every waiter, as in Python.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::wait::{self, deadline};
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object, shared_object};
use crate::{Name, ShmError};

/// Bit 0 of the word: the flag.
const SET: u32 = 1;

/// Control block of an [`Event`].
#[repr(C)]
pub(crate) struct EventCtrl {
    /// `(times set << 1) | flag`; the futex word.
    word: AtomicU32,
    /// Sleepers on `word`.
    waiters: AtomicU32,
}

// SAFETY: `repr(C)`, atomics only; any bit pattern is valid. Alignment 4.
unsafe impl Control for EventCtrl {
    fn describe(&self, _: usize) -> Vec<(&'static str, String)> {
        let word = self.word.load(Ordering::Relaxed);
        vec![
            ("set", (word & 1 == 1).to_string()),
            ("times set", (word >> 1).to_string()),
            ("waiters", self.waiters.load(Ordering::Relaxed).to_string()),
        ]
    }

    const KIND: Kind = Kind::Event;
}

fn init(_: *mut EventCtrl, _: *mut ()) -> std::io::Result<()> {
    // Zeroed: clear, never set.
    Ok(())
}

/// A cross-process event flag: Python's `multiprocessing.Event`.
///
/// [`set`](Self::set) sets the flag and wakes every waiter;
/// [`clear`](Self::clear) resets it; [`wait`](Self::wait) blocks until it
/// is set. A wait also ends if the flag is set and cleared again while it
/// sleeps: every process waiting when `set` was called is released.
///
/// # Dead processes
///
/// An event has no owner: a process killed while waiting, setting or
/// clearing leaves it fully working (the flag is one atomic word).
///
/// # Examples
///
/// ```
/// use multiproc::Event;
/// use std::time::Duration;
///
/// let ev = Event::new()?;
/// assert!(!ev.wait_timeout(Duration::from_millis(10)));
/// std::thread::scope(|s| {
///     s.spawn(|| ev.set());
///     ev.wait();
/// });
/// assert!(ev.is_set());
/// ev.clear();
/// assert!(!ev.is_set());
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub struct Event {
    obj: Object<EventCtrl>,
}

shared_object!(Event);

impl Event {
    /// Creates a named event, clear.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`] and OS errors.
    pub fn create(name: impl Into<Name>) -> Result<Event, ShmError> {
        Ok(Event { obj: Object::create(Some(name.into()), 1, init)? })
    }

    /// Opens a named event.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
    /// another kind of object; [`ShmError::Corrupt`].
    pub fn open(name: impl Into<Name>) -> Result<Event, ShmError> {
        Ok(Event { obj: Object::open(name.into(), Some(1))? })
    }

    /// Opens the named event, or creates it clear.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: impl Into<Name>) -> Result<Event, ShmError> {
        Ok(Event { obj: Object::open_or_create(name.into(), 1, init)? })
    }

    /// Creates an anonymous event, clear, to share with children.
    ///
    /// # Errors
    ///
    /// OS errors (out of memory, too many open files).
    pub fn new() -> Result<Event, ShmError> {
        Ok(Event { obj: Object::create(None, 1, init)? })
    }

    /// Sets the flag and wakes every waiter. Does nothing if it is set.
    pub fn set(&self) {
        let c = self.obj.ctrl();
        let flipped = c
            .word
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w & SET == 0).then(|| (w | SET).wrapping_add(2)));
        if flipped.is_ok() {
            wait::wake(&c.word, &c.waiters, u32::MAX);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.obj.ctrl().word.fetch_and(!SET, Ordering::SeqCst);
    }

    /// Whether the flag is set now.
    pub fn is_set(&self) -> bool {
        self.obj.ctrl().word.load(Ordering::SeqCst) & SET != 0
    }

    /// Blocks until the flag is set (returns at once if it is).
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Blocks until the flag is set or `timeout` passes; `true` if it was
    /// set (now, or at some moment during the wait), `false` on timeout.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let c = self.obj.ctrl();
        let mut seen = c.word.load(Ordering::SeqCst);
        loop {
            if seen & SET != 0 {
                return true;
            }
            let in_time = wait::wait(&c.word, seen, &c.waiters, deadline);
            let now = c.word.load(Ordering::SeqCst);
            // Set now, or set (and perhaps cleared again) since `seen`.
            if now & SET != 0 || now >> 1 != seen >> 1 {
                return true;
            }
            if !in_time {
                return false;
            }
            seen = now;
        }
    }
}
