//! [`AsyncResult`]: the handle returned by [`Pool::map_async`](crate::Pool::map_async),
//! [`Pool::apply_async`](crate::Pool::apply_async) and [`Pool::starmap_async`](crate::Pool::starmap_async).

use std::time::{Duration, Instant};

use super::calls::Call;
use super::{Pool, PoolError};

/// Decodes a complete call into its result.
pub(super) type Finish<'p, T> = Box<dyn FnOnce(Call) -> Result<T, PoolError> + 'p>;

/// A success callback.
type OnSuccess<'p, T> = Box<dyn FnOnce(&T) + 'p>;
/// An error callback.
type OnError<'p> = Box<dyn FnOnce(&PoolError) + 'p>;

/// The pending result of an asynchronous call (Python's `AsyncResult`).
///
/// # Design
///
/// The call's chunks are queued when it is made, so the workers run them
/// while the caller does other things. Several calls may be outstanding at
/// once: a handle borrows the pool shared, and asking any handle
/// ([`ready`](Self::ready), [`wait`](Self::wait), [`get`](Self::get))
/// collects the results that arrived for every outstanding call, filing
/// each under its call (by call number), so that Python's idiom works:
///
/// ```
/// multiproc::test_support!();
/// use multiproc::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// let results: Vec<_> = (1..=5).map(|x| pool.apply_async(square, x)).collect();
/// let squares = results.into_iter().map(|r| r.get()).collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(squares, vec![1, 4, 9, 16, 25]);
/// # Ok::<(), multiproc::PoolError>(())
/// ```
///
/// Results are collected by the caller's thread, not by a background
/// thread: a pool with no thread of its own can still fork replacement
/// workers (forking refuses to run in a process with several threads), and
/// worker deaths are noticed and reported exactly as for
/// [`Pool::map`](crate::Pool::map). Methods that take the pool mutably
/// ([`map`](crate::Pool::map), [`close`](crate::Pool::close), ...) wait,
/// by the borrow rules, until the handles are gone.
///
/// The callbacks ([`on_success`](Self::on_success),
/// [`on_error`](Self::on_error)) run on the caller's thread, exactly one of
/// them, once: when this handle is asked and finds the outcome, or at once
/// if it is already known when the callback is set. If the handle is
/// dropped before that while a callback is set, the drop waits for the
/// outcome and runs it; without callbacks, dropping the handle abandons the
/// call (its queued chunks are removed; running ones finish and are
/// ignored).
pub struct AsyncResult<'p, T> {
    pool: Option<&'p Pool>,
    job: u64,
    finish: Option<Finish<'p, T>>,
    outcome: Option<Result<T, PoolError>>,
    taken: bool,
    on_success: Option<OnSuccess<'p, T>>,
    on_error: Option<OnError<'p>>,
}

impl<'p, T> AsyncResult<'p, T> {
    /// The handle of call `job`, registered with `pool`.
    pub(super) fn new(pool: &'p Pool, job: u64, finish: Finish<'p, T>) -> AsyncResult<'p, T> {
        AsyncResult {
            pool: Some(pool),
            job,
            finish: Some(finish),
            outcome: None,
            taken: false,
            on_success: None,
            on_error: None,
        }
    }

    /// A handle whose outcome is known already.
    pub(super) fn done(outcome: Result<T, PoolError>) -> AsyncResult<'p, T> {
        AsyncResult {
            pool: None,
            job: 0,
            finish: None,
            outcome: Some(outcome),
            taken: false,
            on_success: None,
            on_error: None,
        }
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
            if let Some(pool) = self.pool
                && pool.pump(self.job, deadline)
            {
                let outcome = match (pool.take_call(self.job), self.finish.take()) {
                    (Some(call), Some(finish)) => finish(call),
                    _ => Err(PoolError::Channel("the call was lost from the pool's registry".into())),
                };
                self.outcome = Some(outcome);
            }
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
    /// Waits for the outcome if a callback is still due, and runs it;
    /// otherwise abandons a call still running.
    fn drop(&mut self) {
        if self.on_success.is_some() || self.on_error.is_some() {
            self.drive_until(None);
        } else if self.outcome.is_none()
            && !self.taken
            && let Some(pool) = self.pool
        {
            pool.abandon(self.job);
        }
    }
}

impl<T> std::fmt::Debug for AsyncResult<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").field("finished", &(self.outcome.is_some() || self.taken)).finish_non_exhaustive()
    }
}
