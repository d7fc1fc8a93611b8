//! [`AsyncResult`]: the handle returned by [`Pool::map_async`](crate::Pool::map_async),
//! [`Pool::apply_async`](crate::Pool::apply_async) and [`Pool::starmap_async`](crate::Pool::starmap_async).

use std::time::{Duration, Instant};

use super::PoolError;

/// Drives a call until a deadline (for ever if `None`): its outcome once
/// known.
pub(super) type Drive<'p, T> = Box<dyn FnMut(Option<Instant>) -> Option<Result<T, PoolError>> + 'p>;

/// A success callback.
type OnSuccess<'p, T> = Box<dyn FnOnce(&T) + 'p>;
/// An error callback.
type OnError<'p> = Box<dyn FnOnce(&PoolError) + 'p>;

/// The pending result of an asynchronous call (Python's `AsyncResult`).
///
/// # Design
///
/// The call's chunks are all queued when it is made, so the workers run them
/// while the caller does other things. The results are collected by the
/// caller's thread, in [`ready`](Self::ready), [`wait`](Self::wait) and
/// [`get`](Self::get), not by a background thread: a pool with no thread of
/// its own can still fork replacement workers (forking refuses to run in a
/// process with several threads), and worker deaths are noticed and reported
/// exactly as for [`Pool::map`](crate::Pool::map). The handle borrows the pool mutably, so one
/// asynchronous call is outstanding at a time.
///
/// The callbacks ([`on_success`](Self::on_success),
/// [`on_error`](Self::on_error)) run on the caller's thread when the outcome
/// becomes known: exactly one of them, once. If the handle is dropped before
/// that while a callback is set, the drop waits for the outcome and runs it;
/// without callbacks, dropping the handle abandons the call (its queued
/// chunks are removed; running ones finish and are ignored).
pub struct AsyncResult<'p, T> {
    drive: Drive<'p, T>,
    outcome: Option<Result<T, PoolError>>,
    taken: bool,
    on_success: Option<OnSuccess<'p, T>>,
    on_error: Option<OnError<'p>>,
}

impl<'p, T> AsyncResult<'p, T> {
    pub(super) fn new(drive: Drive<'p, T>) -> AsyncResult<'p, T> {
        AsyncResult { drive, outcome: None, taken: false, on_success: None, on_error: None }
    }

    /// Sets the callback run with the result when the call succeeds (if it
    /// already has, it runs now). Never run together with the error callback.
    pub fn on_success(mut self, f: impl FnOnce(&T) + 'p) -> Self {
        self.on_success = Some(Box::new(f));
        self.fire();
        self
    }

    /// Sets the callback run with the error when the call fails (if it
    /// already has, it runs now). Never run together with the success
    /// callback.
    pub fn on_error(mut self, f: impl FnOnce(&PoolError) + 'p) -> Self {
        self.on_error = Some(Box::new(f));
        self.fire();
        self
    }

    /// Runs the callback that matches the outcome, once.
    fn fire(&mut self) {
        match &self.outcome {
            Some(Ok(v)) => {
                if let Some(f) = self.on_success.take() {
                    self.on_error = None;
                    f(v);
                }
            }
            Some(Err(e)) => {
                if let Some(f) = self.on_error.take() {
                    self.on_success = None;
                    f(e);
                }
            }
            None => {}
        }
    }

    /// Collects results until the outcome is known or `deadline` passes.
    fn drive_until(&mut self, deadline: Option<Instant>) -> bool {
        if self.outcome.is_none() && !self.taken {
            self.outcome = (self.drive)(deadline);
            self.fire();
        }
        self.outcome.is_some() || self.taken
    }

    /// Whether the call has finished (collecting the results that arrived).
    pub fn ready(&mut self) -> bool {
        self.drive_until(Some(Instant::now()))
    }

    /// Whether the call finished successfully, or `None` while it runs
    /// (Python raises `ValueError` then).
    pub fn successful(&mut self) -> Option<bool> {
        if self.ready() { self.outcome.as_ref().map(|o| o.is_ok()) } else { None }
    }

    /// Waits until the call has finished.
    pub fn wait(&mut self) {
        self.drive_until(None);
    }

    /// Waits at most `timeout` for the call to finish; whether it has.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.drive_until(Instant::now().checked_add(timeout))
    }

    /// Waits for the call to finish and returns its result.
    ///
    /// # Errors
    ///
    /// The call's error (as [`Pool::map`](crate::Pool::map)).
    pub fn get(mut self) -> Result<T, PoolError> {
        self.drive_until(None);
        self.take()
    }

    /// Waits at most `timeout` and returns the result, which is then taken:
    /// a later `get` fails with [`PoolError::ResultTaken`].
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if the call has not finished in time (it goes
    /// on; ask again); the call's error otherwise.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T, PoolError> {
        if self.wait_timeout(timeout) { self.take() } else { Err(PoolError::Timeout) }
    }

    fn take(&mut self) -> Result<T, PoolError> {
        match self.outcome.take() {
            Some(outcome) => {
                self.taken = true;
                outcome
            }
            None => Err(PoolError::ResultTaken),
        }
    }
}

impl<T> Drop for AsyncResult<'_, T> {
    /// Waits for the outcome if a callback is still due, and runs it.
    fn drop(&mut self) {
        if self.on_success.is_some() || self.on_error.is_some() {
            self.drive_until(None);
        }
    }
}

impl<T> std::fmt::Debug for AsyncResult<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").field("finished", &(self.outcome.is_some() || self.taken)).finish_non_exhaustive()
    }
}
