//! [`PoolError`]: why a [`Pool`](crate::Pool) call failed.

use std::fmt;

use crate::ProcessError;

/// Why a [`Pool`](crate::Pool) operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool needs at least one worker.
    ZeroWorkers,
    /// A chunksize must be at least 1.
    ZeroChunksize,
    /// The task for the item at `index` (of the call's input) panicked;
    /// `message` is the panic message.
    Task {
        /// Position of the failed item in the call's input.
        index: usize,
        /// The panic message (or why the task could not run).
        message: String,
    },
    /// The worker running the chunk that starts at item `index` died (killed
    /// by a signal, out of memory, `exit`) before finishing it. The worker
    /// has been replaced.
    WorkerDied {
        /// Position in the call's input of the first item of the lost chunk.
        index: usize,
        /// The worker's exit code (`-signum` for a signal), if known.
        exitcode: Option<i32>,
    },
    /// The pool has been closed or terminated: it takes no new work.
    Closed,
    /// [`join`](crate::Pool::join) was called before
    /// [`close`](crate::Pool::close) or [`terminate`](crate::Pool::terminate).
    NotClosed,
    /// The target is not a function of this executable (for example it lives
    /// in a shared library), so a worker cannot find it.
    TargetNotInExecutable,
    /// An argument could not be serialised.
    Encode(String),
    /// A result could not be deserialised.
    Decode(String),
    /// Starting or stopping a worker process failed.
    Process(ProcessError),
    /// Creating or using the pool's queues failed.
    Channel(String),
    /// The caller's input failed: an iterator of `Result`s yielded this
    /// error (its text; the results before it were yielded first), or an
    /// iterator yielded fewer items than its exact `size_hint` announced.
    Input(String),
    /// [`AsyncResult::get_timeout`](crate::pool::AsyncResult::get_timeout):
    /// the call has not finished in time.
    Timeout,
    /// The result of an [`AsyncResult`](crate::pool::AsyncResult) was
    /// already taken by an earlier `get_timeout`.
    ResultTaken,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::ZeroWorkers => f.write_str("a pool needs at least one worker"),
            PoolError::ZeroChunksize => f.write_str("chunksize must be at least 1"),
            PoolError::Task { index, message } => write!(f, "task {index} failed: {message}"),
            PoolError::WorkerDied { index, exitcode: Some(code) } => {
                write!(f, "the worker running the chunk starting at task {index} died (exit code {code})")
            }
            PoolError::WorkerDied { index, exitcode: None } => {
                write!(f, "the worker running the chunk starting at task {index} died")
            }
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::NotClosed => f.write_str("join() needs close() or terminate() first"),
            PoolError::TargetNotInExecutable => {
                f.write_str("the target function is not in this executable, so workers cannot find it")
            }
            PoolError::Encode(m) => write!(f, "cannot encode the arguments: {m}"),
            PoolError::Decode(m) => write!(f, "cannot decode the results: {m}"),
            PoolError::Process(e) => write!(f, "worker process: {e}"),
            PoolError::Channel(m) => write!(f, "pool queue: {m}"),
            PoolError::Input(m) => write!(f, "the input failed: {m}"),
            PoolError::Timeout => f.write_str("the call has not finished in time"),
            PoolError::ResultTaken => f.write_str("the result was already taken"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Process(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProcessError> for PoolError {
    fn from(e: ProcessError) -> Self {
        PoolError::Process(e)
    }
}
