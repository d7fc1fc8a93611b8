//! [`Pool`]: Python's `multiprocessing.Pool`, a fixed set of worker processes
//! that run plain `fn(A) -> R` over many inputs.
//!
//! Tasks travel to the workers through one [`Queue`] and results come back
//! through another. A task names its function by code offset (see the
//! `worker` module), so workers need [`init`](crate::init) first thing in
//! `main` (or [`test_support!`](crate::test_support) in a test binary), as
//! any spawned [`Process`] does.
//!
//! Failures are errors, not hangs: a panic in a task is that task's
//! [`PoolError::Task`], with the panic message; a worker that dies mid-task
//! (`SIGKILL`, out of memory) is replaced and the chunk it held is reported as
//! [`PoolError::WorkerDied`]. Either way the pool stays usable.
//!
//! Calls: [`Pool::map`], [`Pool::starmap`], [`Pool::apply`] wait for their
//! results; [`Pool::imap`] and [`Pool::imap_unordered`] yield them lazily
//! through an [`Imap`] over an input of any length; [`Pool::map_async`],
//! [`Pool::apply_async`] and [`Pool::starmap_async`] queue the work and
//! return an [`AsyncResult`]. The pool has no thread of its own: results are
//! collected by the caller's thread while it waits (so that replacement
//! workers can still be forked). The asynchronous calls borrow the pool
//! shared, so several may be outstanding at once (asking one handle files
//! the results that arrive for the others, see [`AsyncResult`]); the other
//! calls borrow it mutably, one at a time.
//!
//! # Decisions
//!
//! - **Arguments and results are serde types, `'static`.** A chunk of a
//!   primitive number type (`u64`, `f64`, ...) travels as raw bytes, written
//!   in place into the task queue and copied straight from the reply into
//!   the result `Vec`; other types travel as one postcard sequence per chunk
//!   (see the `wire` module). The choice is made with [`std::any::TypeId`],
//!   which needs `'static` (every `DeserializeOwned` type in practice is);
//!   stable Rust has no specialisation to choose it at compile time from a
//!   `bytemuck::Pod` bound.
//! - **One error slot per chunk.** A chunk's reply holds either all its
//!   results or its first panicked task (index and message): a panic is
//!   that task's [`PoolError::Task`], and every other task of the chunk
//!   still runs.
//! - **An exactly sized input is not collected.** [`Pool::map`] over an
//!   iterator whose `size_hint` is exact (a range, a `Vec`) and whose items
//!   travel raw reads each chunk from the iterator into the queue as room
//!   allows; Python's default chunksize needs the length, so other inputs
//!   are collected first. A raw chunk larger than half the task queue (4 MiB)
//!   is split: the chunksize is lowered to fit.
//! - **Asynchronous calls share the pool.** `map_async`, `apply_async` and
//!   `starmap_async` take `&self`; the pool keeps a registry of outstanding
//!   calls keyed by call number (the `calls` module), and whichever handle
//!   is asked feeds every call's waiting chunks, files every reply under its
//!   call, and replaces dead workers, failing the chunk each one held in
//!   whichever call it belongs to. A handle's callbacks run when that handle
//!   is asked or dropped (callbacks may borrow the caller's locals, so the
//!   pool cannot keep them). The workers, the announced chunks and the
//!   registry sit in `RefCell`s: a `Pool` is still `Send`, not `Sync`.
//! - **[`Pool::starmap`] takes a [`StarFn`]**: a function pointer of one to
//!   six arguments, called with tuples. A function item must be cast to the
//!   pointer type (`power as fn(u64, u32) -> u64`), because Rust only
//!   coerces a function item where the pointer type is written in the
//!   signature.

mod async_result;
mod calls;
mod error;
mod imap;
mod star;
mod wire;
mod worker;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use async_result::AsyncResult;
pub use error::PoolError;
pub use imap::{Imap, UntilErr};
pub use star::StarFn;

use crate::channel::{RecvTimeoutError, TrySendError};
use crate::process::code_offset;
use crate::{Process, Queue, StartMethod};
use wire::{Frames, ReplyFrame, RunHeader};
use worker::WorkerArgs;

/// Bytes of each of the pool's two queues.
const QUEUE_CAPACITY: usize = 8 << 20;
/// How long the caller waits for a result before looking at the workers.
const SLICE: Duration = Duration::from_millis(20);
/// How often, at most, the caller checks that the workers are alive.
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How long after a worker died holding no announced chunk the caller waits
/// before declaring lost the chunks that nobody holds (the worker may have
/// taken one and died before announcing it).
const ORPHAN_GRACE: Duration = Duration::from_millis(500);
/// How long `terminate` waits for each killed worker.
const KILL_WAIT: Duration = Duration::from_secs(1);
/// How long `join` waits for each stopping worker before killing it.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// One worker process and its unique id (a replacement gets a new id).
struct Worker {
    process: Process,
    id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    Finished,
}

/// Makes an unstarted worker process for these queues, id and task limit.
type Starter = Arc<dyn Fn(Frames, Frames, u64, Option<usize>) -> Process + Send + Sync>;

/// The starter of workers without an initializer.
fn plain_starter() -> Starter {
    Arc::new(|tasks, replies, worker, maxtasks| {
        let arg: WorkerArgs<()> = WorkerArgs { tasks, replies, worker, maxtasks, init: None };
        Process::new(worker::worker_main::<()>, arg)
    })
}

/// Builds a [`Pool`] with options: see [`Pool::builder`].
#[derive(Clone)]
pub struct PoolBuilder {
    processes: usize,
    method: StartMethod,
    starter: Starter,
    init_error: bool,
    maxtasks: Option<usize>,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("start_method", &self.method)
            .field("maxtasksperchild", &self.maxtasks)
            .finish_non_exhaustive()
    }
}

impl PoolBuilder {
    /// How the workers are started: [`StartMethod::Spawn`] (the default) or
    /// [`StartMethod::Fork`].
    pub fn start_method(mut self, method: StartMethod) -> PoolBuilder {
        self.method = method;
        self
    }

    /// Runs `f(arg)` once in each worker, replacements included, before it
    /// takes any task (Python's `initializer` and `initargs`). The argument
    /// travels as a worker's start argument, so anonymous shared objects
    /// ([`Value`](crate::Value), [`Queue`], ...) may be part of it.
    ///
    /// A worker whose initializer panics exits with code 1 and is replaced
    /// (as in Python, a pool whose initializer always fails keeps replacing
    /// its workers).
    ///
    /// # Examples
    ///
    /// ```
    /// multiproc::test_support!();
    /// use multiproc::{Pool, Value};
    ///
    /// fn count_me(started: Value<u32>) {
    ///     *started.lock().unwrap() += 1;
    /// }
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let started = Value::new(0u32).unwrap();
    /// let mut pool = Pool::builder(2).initializer(count_me, started.clone()).build()?;
    /// assert_eq!(pool.map(square, [1, 2, 3])?, vec![1, 4, 9]);
    /// pool.close();
    /// pool.join()?;
    /// assert_eq!(started.get().unwrap(), 2);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn initializer<A>(mut self, f: fn(A), arg: A) -> PoolBuilder
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        match code_offset(f as *const ()) {
            None => self.init_error = true,
            Some(target) => {
                self.init_error = false;
                self.starter = Arc::new(move |tasks, replies, worker, maxtasks| {
                    let init = Some((target, worker::init_tag_of::<A>().to_string(), arg.clone()));
                    Process::new(worker::worker_main::<A>, WorkerArgs { tasks, replies, worker, maxtasks, init })
                });
            }
        }
        self
    }

    /// Each worker exits after `n` chunks of tasks and is replaced by a new
    /// one (Python's `maxtasksperchild`, where a task is a chunk), to free
    /// what a long-lived worker would accumulate. Results are unaffected.
    pub fn maxtasksperchild(mut self, n: usize) -> PoolBuilder {
        self.maxtasks = Some(n);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`PoolError::ZeroWorkers`]; [`PoolError::ZeroChunksize`] when
    /// `maxtasksperchild` is 0; [`PoolError::TargetNotInExecutable`] for an
    /// initializer outside the executable; [`PoolError::Channel`] when the
    /// queues cannot be created; [`PoolError::Process`] when a worker cannot
    /// start.
    pub fn build(self) -> Result<Pool, PoolError> {
        if self.processes == 0 {
            return Err(PoolError::ZeroWorkers);
        }
        if self.maxtasks == Some(0) {
            return Err(PoolError::ZeroChunksize);
        }
        if self.init_error {
            return Err(PoolError::TargetNotInExecutable);
        }
        let tasks = Queue::new(QUEUE_CAPACITY).map_err(|e| PoolError::Channel(e.to_string()))?;
        let replies = Queue::new(QUEUE_CAPACITY).map_err(|e| PoolError::Channel(e.to_string()))?;
        let mut pool = Pool {
            workers: RefCell::new(Vec::with_capacity(self.processes)),
            tasks,
            replies,
            method: self.method,
            starter: self.starter,
            maxtasks: self.maxtasks,
            next_id: Cell::new(0),
            next_job: Cell::new(0),
            held: RefCell::new(HashMap::new()),
            calls: RefCell::new(calls::Calls::default()),
            state: State::Open,
        };
        for _ in 0..self.processes {
            let w = pool.start_worker()?;
            pool.workers.get_mut().push(w);
        }
        Ok(pool)
    }
}

/// A pool of worker processes: Python's `multiprocessing.Pool`.
///
/// Work is given as a plain `fn(A) -> R` (no closures: a worker is another
/// process, which finds the function by its place in the executable) whose
/// argument and result are serde types. [`map`](Pool::map) splits its input
/// into chunks, the workers run them, and the results come back in input
/// order.
///
/// Dropping a pool [`terminate`](Pool::terminate)s it; call
/// [`close`](Pool::close) then [`join`](Pool::join) to stop the workers
/// gracefully.
///
/// # Examples
///
/// ```
/// multiproc::test_support!(); // in a program: `multiproc::init();` first thing in `main`
/// use multiproc::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let mut pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=5)?, vec![1, 4, 9, 16, 25]);
/// assert_eq!(pool.apply(square, 12)?, 144);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), multiproc::PoolError>(())
/// ```
pub struct Pool {
    /// The workers; in a `RefCell` (as the other mutable parts) because an
    /// [`AsyncResult`] collects results, and replaces dead workers, through
    /// a shared borrow of the pool.
    workers: RefCell<Vec<Worker>>,
    tasks: Frames,
    replies: Frames,
    method: StartMethod,
    starter: Starter,
    maxtasks: Option<usize>,
    next_id: Cell<u64>,
    next_job: Cell<u64>,
    /// The chunk each worker (by id) announced and has not finished.
    held: RefCell<HashMap<u64, (u64, u32)>>,
    /// The outstanding asynchronous calls (see [`calls`]).
    calls: RefCell<calls::Calls>,
    state: State,
}

/// A worker died holding no announced chunk: when it was noticed, its exit
/// code, and the number of the call's next chunk then (those before it may
/// have been lost with the worker).
type Orphan = (Instant, Option<i32>, u32);

/// The state of one chunk of a call.
enum Slot<R> {
    /// Sent (or about to be), not settled.
    Pending,
    /// Its outcome, not yet handed to the caller.
    Settled(Result<Vec<R>, PoolError>),
    /// Its outcome was handed to the caller.
    Taken,
}

/// The progress of one call: each chunk's outcome once settled.
///
/// Chunks are numbered from 0 in input order; the slots held are those of
/// chunks `base..base + done.len()` (an [`imap`](Pool::imap) drops the slots
/// it has handed out from the front, so its memory stays bounded).
struct Collect<R> {
    job: u64,
    /// The number of the first chunk still held.
    base: u32,
    /// Index in the input of each held chunk's first item, and its length.
    starts: VecDeque<(usize, usize)>,
    done: VecDeque<Slot<R>>,
    /// The number of held chunks still pending.
    left: usize,
    /// Settled chunks not yet taken, in the order they settled.
    completed: VecDeque<u32>,
    /// Where the results of a whole [`Pool::map`] of a raw type go, each
    /// chunk copied straight to its place (its slot then holds an empty
    /// `Vec`); `None` to keep each chunk's results in its slot.
    direct: Option<Vec<R>>,
}

impl<R: DeserializeOwned + 'static> Collect<R> {
    fn new(job: u64) -> Collect<R> {
        Collect {
            job,
            base: 0,
            starts: VecDeque::new(),
            done: VecDeque::new(),
            left: 0,
            completed: VecDeque::new(),
            direct: None,
        }
    }

    /// Adds a pending chunk of `len` items whose first item is at `start`;
    /// returns its number.
    fn push(&mut self, start: usize, len: usize) -> Result<u32, PoolError> {
        let chunk = u32::try_from(self.base as usize + self.done.len())
            .map_err(|_| PoolError::Encode("more than 2^32 chunks".into()))?;
        self.starts.push_back((start, len));
        self.done.push_back(Slot::Pending);
        self.left += 1;
        Ok(chunk)
    }

    /// The first input index and the length of a held chunk.
    fn span(&self, chunk: u32) -> Option<(usize, usize)> {
        self.starts.get(chunk.checked_sub(self.base)? as usize).copied()
    }

    /// The first input index of a held chunk.
    fn start(&self, chunk: u32) -> Option<usize> {
        self.span(chunk).map(|(start, _)| start)
    }

    fn is_pending(&self, chunk: u32) -> bool {
        chunk.checked_sub(self.base).and_then(|i| self.done.get(i as usize)).is_some_and(|s| matches!(s, Slot::Pending))
    }

    fn settle(&mut self, chunk: u32, outcome: Result<Vec<R>, PoolError>) {
        let Some(i) = chunk.checked_sub(self.base) else { return };
        let Some(slot) = self.done.get_mut(i as usize) else { return };
        if matches!(slot, Slot::Pending) {
            *slot = Slot::Settled(outcome);
            self.left -= 1;
            self.completed.push_back(chunk);
        }
    }

    /// Takes a settled chunk's outcome (`None` if pending or taken).
    fn take(&mut self, chunk: u32) -> Option<Result<Vec<R>, PoolError>> {
        let i = chunk.checked_sub(self.base)? as usize;
        let slot = self.done.get_mut(i)?;
        if !matches!(slot, Slot::Settled(_)) {
            return None;
        }
        let Slot::Settled(outcome) = std::mem::replace(slot, Slot::Taken) else { return None };
        self.completed.retain(|&c| c != chunk);
        while matches!(self.done.front(), Some(Slot::Taken)) {
            self.done.pop_front();
            self.starts.pop_front();
            self.base += 1;
        }
        Some(outcome)
    }

    /// Decodes a finished chunk's reply body (see [`wire::Done`]), straight
    /// out of the queue.
    fn finish(&mut self, chunk: u32, body: &[u8]) {
        let Some((start, len)) = self.span(chunk) else { return };
        if !self.is_pending(chunk) {
            return;
        }
        let outcome = match wire::Done::parse(body) {
            wire::Done::Ok(bytes) if self.direct.is_some() => {
                let direct = self.direct.as_mut().map(|out| wire::decode_raw_at(bytes, out, start, len));
                match direct {
                    Some(Err(e)) => Err(PoolError::Decode(e)),
                    _ => Ok(Vec::new()),
                }
            }
            wire::Done::Ok(bytes) => {
                let mut values = Vec::with_capacity(len);
                match wire::decode_items(bytes, &mut values) {
                    Err(e) => Err(PoolError::Decode(e)),
                    Ok(()) if values.len() != len => {
                        Err(PoolError::Decode(format!("a worker returned {} results for {len} tasks", values.len())))
                    }
                    Ok(()) => Ok(values),
                }
            }
            wire::Done::TaskFailed { index, message } => {
                Err(PoolError::Task { index: start + (index as usize).min(len.saturating_sub(1)), message })
            }
            wire::Done::Error(message) => Err(PoolError::Task { index: start, message }),
        };
        self.settle(chunk, outcome);
    }

    /// The `n` results in input order once every chunk is settled, or the
    /// first error in input order.
    fn into_results(self, n: usize) -> Result<Vec<R>, PoolError> {
        let mut out = Vec::new();
        for slot in self.done {
            if let Slot::Settled(outcome) = slot {
                let values = outcome?;
                if self.direct.is_some() {
                    // The results are in place already.
                } else if out.is_empty() {
                    out = values;
                    out.reserve(n - out.len());
                } else {
                    out.extend(values);
                }
            }
        }
        Ok(self.direct.unwrap_or(out))
    }

    /// Decodes a complete asynchronous call of `n` items into its results.
    fn from_call(call: calls::Call, n: usize) -> Result<Vec<R>, PoolError> {
        if let Some(e) = call.failed {
            return Err(e);
        }
        let mut c = Collect::new(0);
        for &(start, len) in &call.spans {
            c.push(start, len)?;
        }
        c.direct = wire::raw_zeroed::<R>(n);
        for (chunk, settled) in (0u32..).zip(call.settled) {
            match settled {
                Some(Ok(body)) => c.finish(chunk, &body),
                Some(Err(e)) => c.settle(chunk, Err(e)),
                None => c.settle(chunk, Err(PoolError::Channel("a chunk of the call was never settled".into()))),
            }
        }
        c.into_results(n)
    }

    /// The number of the next chunk to be added.
    fn end(&self) -> u32 {
        self.base + self.done.len() as u32
    }

    /// The held chunks still pending.
    fn pending_chunks(&self) -> Vec<u32> {
        (0..self.done.len()).filter(|&i| matches!(self.done[i], Slot::Pending)).map(|i| self.base + i as u32).collect()
    }
}

impl Pool {
    /// A pool of `processes` workers, started with [`StartMethod::Spawn`].
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`]: [`PoolError::ZeroWorkers`] when
    /// `processes` is 0.
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder(processes).build()
    }

    /// A pool with one worker per available core
    /// ([`std::thread::available_parallelism`], 1 if unknown), as Python's
    /// `Pool()`.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    pub fn with_available_cores() -> Result<Pool, PoolError> {
        Pool::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// A builder for a pool of `processes` workers, to choose options before
    /// starting them.
    ///
    /// # Examples
    ///
    /// ```
    /// multiproc::test_support!();
    /// use multiproc::{Pool, StartMethod};
    ///
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// let mut pool = Pool::builder(2).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.map(double, [1, 2, 3])?, vec![2, 4, 6]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    pub fn builder(processes: usize) -> PoolBuilder {
        PoolBuilder {
            processes,
            method: StartMethod::Spawn,
            starter: plain_starter(),
            init_error: false,
            maxtasks: None,
        }
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.workers.borrow().len()
    }

    /// The process ids of the current workers (a replaced worker has a new
    /// one).
    pub fn pids(&self) -> Vec<u32> {
        self.workers.borrow().iter().filter_map(|w| w.process.pid()).collect()
    }

    /// Applies `f` to every item, in the workers, and returns the results in
    /// input order (Python's `map`). The input is split into chunks of
    /// ceil(n / (4 × workers)) items, as Python does. An empty input gives an
    /// empty result at once.
    ///
    /// Every chunk is waited for, even after one failed, so the pool is idle
    /// when this returns; the error is the first failure in input order.
    ///
    /// Primitive numbers (`u64`, `f64`, ...) travel as raw bytes, and an
    /// input of them whose length the iterator knows exactly (a range, a
    /// `Vec`) is read straight into the task queue without being collected
    /// first (see the module's decisions).
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] when `f` panicked on an item;
    /// [`PoolError::WorkerDied`] when a worker died while running a chunk;
    /// [`PoolError::Closed`] after [`close`](Self::close) or
    /// [`terminate`](Self::terminate); [`PoolError::Encode`] or
    /// [`PoolError::Decode`] for arguments or results serde refuses;
    /// [`PoolError::Input`] when an iterator yields fewer items than its
    /// exact `size_hint` announced; [`PoolError::TargetNotInExecutable`];
    /// [`PoolError::Process`] when a dead worker cannot be replaced;
    /// [`PoolError::Channel`].
    pub fn map<A, R>(&mut self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.run(f, items.into_iter(), None)
    }

    /// As [`map`](Self::map) with chunks of `chunksize` items.
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map); [`PoolError::ZeroChunksize`].
    pub fn map_chunksize<A, R>(
        &mut self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if chunksize == 0 {
            return Err(PoolError::ZeroChunksize);
        }
        self.run(f, items.into_iter(), Some(chunksize))
    }

    /// Runs `f(arg)` in a worker and returns its result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    pub fn apply<A, R>(&mut self, f: fn(A) -> R, arg: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let mut out = self.run(f, std::iter::once(arg), Some(1))?;
        out.pop().ok_or_else(|| PoolError::Decode("a worker returned no result".into()))
    }

    /// Applies `f` to every tuple of arguments, in the workers, and returns
    /// the results in input order (Python's `starmap`): `f(a, b)` for each
    /// `(a, b)`. `f` is a function pointer of one to six arguments (see
    /// [`StarFn`]: a function item is given as `name as fn(A, B) -> R`).
    /// Chunks as [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// multiproc::test_support!();
    /// use multiproc::Pool;
    ///
    /// fn power(base: u64, exp: u32) -> u64 {
    ///     base.pow(exp)
    /// }
    /// fn negate(x: i64) -> i64 {
    ///     -x
    /// }
    ///
    /// let mut pool = Pool::new(2)?;
    /// let powers = pool.starmap(power as fn(u64, u32) -> u64, [(2, 10), (3, 5), (4, 3)])?;
    /// assert_eq!(powers, vec![1024, 243, 64]);
    /// assert_eq!(pool.starmap(negate as fn(i64) -> i64, [(1,), (2,)])?, vec![-1, -2]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    pub fn starmap<F, Args, R>(&mut self, f: F, items: impl IntoIterator<Item = Args>) -> Result<Vec<R>, PoolError>
    where
        F: StarFn<Args, R>,
        Args: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<Args> = items.into_iter().collect();
        let chunksize = self.default_chunksize(items.len());
        let code = Self::code_of(star::runner_of::<F, Args, R>(), star::addr_of(f))?;
        self.submit_encoded(code, star::tag_of::<F>(), &items, chunksize)
    }

    /// Applies `f` to every item, in the workers, and yields the results
    /// lazily in input order (Python's `imap`, chunksize 1).
    ///
    /// The input may be of any length, even endless: it is read a chunk at
    /// a time as results are consumed, with a bounded number of chunks in
    /// flight (see [`Imap`]). A failed task yields its error in its place and
    /// the iteration goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// multiproc::test_support!();
    /// use multiproc::Pool;
    ///
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let mut pool = Pool::new(2)?;
    /// let first: Vec<u64> = pool.imap_chunksize(square, 0.., 3).take(5).collect::<Result<_, _>>()?;
    /// assert_eq!(first, vec![0, 1, 4, 9, 16]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Yields the errors of [`map`](Self::map), each in place of the results
    /// of the chunk that failed; [`PoolError::Closed`] after
    /// [`close`](Self::close) as the only item.
    pub fn imap<A, R, I>(&mut self, f: fn(A) -> R, items: I) -> Imap<'_, I::IntoIter, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_chunksize(f, items, 1)
    }

    /// As [`imap`](Self::imap), reading and sending the input in chunks of
    /// `chunksize` items (fewer round trips for small tasks).
    ///
    /// # Errors
    ///
    /// As [`imap`](Self::imap); [`PoolError::ZeroChunksize`] as the only
    /// item.
    pub fn imap_chunksize<A, R, I>(&mut self, f: fn(A) -> R, items: I, chunksize: usize) -> Imap<'_, I::IntoIter, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = Self::code_of(worker::runner_of::<A, R>(), f as *const ());
        Imap::new(self, items.into_iter(), code, worker::tag_of::<A, R>(), chunksize, true)
    }

    /// As [`imap_chunksize`](Self::imap_chunksize) over an input that can
    /// fail: the items are `Result`s, and the first `Err` ends the input.
    /// The results of the items before it are yielded first, then
    /// [`PoolError::Input`] with the error's text, as the last item.
    ///
    /// # Examples
    ///
    /// ```
    /// multiproc::test_support!();
    /// use multiproc::{Pool, PoolError};
    ///
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let mut pool = Pool::new(2)?;
    /// let input = ["1", "2", "x", "4"].into_iter().map(str::parse::<u64>);
    /// let got: Vec<_> = pool.try_imap(square, input, 2).collect();
    /// assert!(matches!(got[..], [Ok(1), Ok(4), Err(PoolError::Input(_))]));
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`imap_chunksize`](Self::imap_chunksize); [`PoolError::Input`].
    pub fn try_imap<A, R, E, I>(
        &mut self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Imap<'_, UntilErr<I::IntoIter>, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        E: std::fmt::Display,
        I: IntoIterator<Item = Result<A, E>>,
    {
        let slot = imap::InputError::default();
        let input = UntilErr::new(items.into_iter(), slot.clone());
        let code = Self::code_of(worker::runner_of::<A, R>(), f as *const ());
        Imap::new(self, input, code, worker::tag_of::<A, R>(), chunksize, true).with_input_error(slot)
    }

    /// As [`imap`](Self::imap), yielding results in the order they complete
    /// (Python's `imap_unordered`). Within a chunk, results keep their input
    /// order.
    ///
    /// # Errors
    ///
    /// As [`imap`](Self::imap).
    pub fn imap_unordered<A, R, I>(&mut self, f: fn(A) -> R, items: I) -> Imap<'_, I::IntoIter, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_unordered_chunksize(f, items, 1)
    }

    /// As [`imap_unordered`](Self::imap_unordered) with chunks of
    /// `chunksize` items.
    ///
    /// # Errors
    ///
    /// As [`imap_chunksize`](Self::imap_chunksize).
    pub fn imap_unordered_chunksize<A, R, I>(
        &mut self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Imap<'_, I::IntoIter, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        let code = Self::code_of(worker::runner_of::<A, R>(), f as *const ());
        Imap::new(self, items.into_iter(), code, worker::tag_of::<A, R>(), chunksize, false)
    }

    /// Starts [`map`](Self::map) and returns at once with a handle to its
    /// result (Python's `map_async`). Every chunk is queued now and the
    /// workers run them while the caller goes on; see [`AsyncResult`] for
    /// how results are collected and callbacks run.
    ///
    /// # Examples
    ///
    /// ```
    /// multiproc::test_support!();
    /// use std::time::Duration;
    /// use multiproc::Pool;
    ///
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let mut pool = Pool::new(2)?;
    /// let result = pool.map_async(square, 1..=5).on_success(|v| println!("done: {v:?}"));
    /// assert_eq!(result.get()?, vec![1, 4, 9, 16, 25]);
    /// let mut one = pool.apply_async(square, 12);
    /// assert_eq!(one.get_timeout(Duration::from_secs(10))?, 144);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The handle's `get` returns the errors of [`map`](Self::map), except
    /// that it stops at the first failure in input order.
    pub fn map_async<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> AsyncResult<'_, Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = self.default_chunksize(items.len());
        self.map_async_chunksize(f, items, chunksize)
    }

    /// As [`map_async`](Self::map_async) with chunks of `chunksize` items.
    ///
    /// # Errors
    ///
    /// As [`map_async`](Self::map_async); [`PoolError::ZeroChunksize`].
    pub fn map_async_chunksize<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> AsyncResult<'_, Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let code = Self::code_of(worker::runner_of::<A, R>(), f as *const ());
        self.start_async(code, worker::tag_of::<A, R>(), items, chunksize, Ok)
    }

    /// Starts [`apply`](Self::apply) and returns at once with a handle to
    /// its result (Python's `apply_async`).
    ///
    /// # Errors
    ///
    /// The handle's `get` returns the errors of [`apply`](Self::apply).
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> AsyncResult<'_, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let code = Self::code_of(worker::runner_of::<A, R>(), f as *const ());
        self.start_async(code, worker::tag_of::<A, R>(), vec![arg], 1, |mut v: Vec<R>| {
            v.pop().ok_or_else(|| PoolError::Decode("a worker returned no result".into()))
        })
    }

    /// Starts [`starmap`](Self::starmap) and returns at once with a handle
    /// to its results (Python's `starmap_async`).
    ///
    /// # Errors
    ///
    /// As [`map_async`](Self::map_async).
    pub fn starmap_async<F, Args, R>(&self, f: F, items: impl IntoIterator<Item = Args>) -> AsyncResult<'_, Vec<R>>
    where
        F: StarFn<Args, R>,
        Args: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<Args> = items.into_iter().collect();
        let chunksize = self.default_chunksize(items.len());
        let code = Self::code_of(star::runner_of::<F, Args, R>(), star::addr_of(f));
        self.start_async(code, star::tag_of::<F>(), items, chunksize, Ok)
    }

    /// Registers an asynchronous call of the runner and target `code` over
    /// `items` and returns its handle, whose result is `convert` of the
    /// results in order.
    fn start_async<X, R, T>(
        &self,
        code: Result<(isize, isize), PoolError>,
        tag: &'static str,
        items: Vec<X>,
        chunksize: usize,
        convert: fn(Vec<R>) -> Result<T, PoolError>,
    ) -> AsyncResult<'_, T>
    where
        X: Serialize + 'static,
        R: DeserializeOwned + 'static,
        T: 'static,
    {
        let code = match code {
            _ if chunksize == 0 => return AsyncResult::done(Err(PoolError::ZeroChunksize)),
            _ if self.state != State::Open => return AsyncResult::done(Err(PoolError::Closed)),
            Err(e) => return AsyncResult::done(Err(e)),
            Ok(code) => code,
        };
        if items.is_empty() {
            return AsyncResult::done(convert(Vec::new()));
        }
        let job = self.new_job();
        let (spans, frames) = match self.frames(job, code, tag, &items, chunksize) {
            Ok(x) => x,
            Err(e) => return AsyncResult::done(Err(e)),
        };
        self.register(job, spans, frames);
        let n = items.len();
        AsyncResult::new(self, job, Box::new(move |call| Collect::<R>::from_call(call, n).and_then(convert)))
    }

    /// Encodes the chunks of `items` as `Run` frames of call `job`: their
    /// spans and frames, in order. An argument that cannot be encoded fails
    /// the whole call before anything is sent.
    #[allow(clippy::type_complexity, reason = "spans and frames, as their names say")]
    #[allow(clippy::ptr_arg, reason = "a `Vec` can be downcast to find the raw fast path")]
    fn frames<X: Serialize + 'static>(
        &self,
        job: u64,
        (runner, target): (isize, isize),
        tag: &'static str,
        items: &Vec<X>,
        chunksize: usize,
    ) -> Result<(Vec<(usize, usize)>, Vec<Vec<u8>>), PoolError> {
        let raw = wire::raw_bytes(items);
        let size = std::mem::size_of::<X>();
        // A frame larger than this could never be put in the task queue.
        let max = self.tasks.capacity() - (64 << 10);
        let mut spans = Vec::new();
        let mut frames = Vec::new();
        for (i, part) in items.chunks(chunksize).enumerate() {
            let chunk = u32::try_from(i).map_err(|_| PoolError::Encode("more than 2^32 chunks".into()))?;
            spans.push((i * chunksize, part.len()));
            let mut frame = Vec::new();
            RunHeader { job, chunk, runner, target, tag }.append(&mut frame);
            match raw {
                Some(raw) => frame.extend_from_slice(&raw[i * chunksize * size..][..std::mem::size_of_val(part)]),
                None => wire::encode_slice(part, &mut frame).map_err(PoolError::Encode)?,
            }
            if frame.len() > max {
                return Err(PoolError::Encode(format!(
                    "a chunk of {} bytes does not fit in the task queue ({} bytes): use a smaller chunksize",
                    frame.len(),
                    self.tasks.capacity()
                )));
            }
            frames.push(frame);
        }
        Ok((spans, frames))
    }

    /// The offsets of a runner and a target.
    fn code_of(runner: *const (), target: *const ()) -> Result<(isize, isize), PoolError> {
        let runner = code_offset(runner).ok_or(PoolError::TargetNotInExecutable)?;
        let target = code_offset(target).ok_or(PoolError::TargetNotInExecutable)?;
        Ok((runner, target))
    }

    /// Stops taking work (Python's `close`): later calls fail with
    /// [`PoolError::Closed`]. The workers exit at [`join`](Self::join).
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closed;
        }
    }

    /// Waits for the workers to exit, after [`close`](Self::close) (or
    /// [`terminate`](Self::terminate)). A worker that does not exit within
    /// 10 s is killed.
    ///
    /// # Errors
    ///
    /// [`PoolError::NotClosed`] when the pool is still open;
    /// [`PoolError::Process`] when waiting fails.
    pub fn join(&mut self) -> Result<(), PoolError> {
        match self.state {
            State::Open => return Err(PoolError::NotClosed),
            State::Finished => return Ok(()),
            State::Closed => {}
        }
        let deadline = Instant::now() + STOP_WAIT;
        let mut stops = self.workers.get_mut().len();
        while stops > 0 {
            match self.tasks.try_put_bytes(&[wire::TASK_STOP]) {
                Ok(()) => stops -= 1,
                Err(TrySendError::Full(())) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => break,
            }
        }
        let mut first_error = None;
        for w in self.workers.get_mut().iter_mut() {
            let stopped = match w.process.join_timeout(STOP_WAIT) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => w.process.kill().and_then(|()| w.process.join_timeout(KILL_WAIT).map(drop)),
                Err(e) => Err(e),
            };
            if let Err(e) = stopped {
                first_error.get_or_insert(e);
            }
        }
        self.state = State::Finished;
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Kills the workers at once (Python's `terminate`), abandoning any
    /// queued work, and waits for them (at most about 1 s each). Later calls
    /// fail with [`PoolError::Closed`]. Dropping a pool does this.
    pub fn terminate(&mut self) {
        if self.state == State::Finished {
            return;
        }
        self.state = State::Finished;
        for w in self.workers.get_mut().iter_mut() {
            let _ = w.process.kill();
        }
        for w in self.workers.get_mut().iter_mut() {
            let _ = w.process.join_timeout(KILL_WAIT);
        }
        self.tasks.close();
        self.replies.close();
    }

    fn start_worker(&self) -> Result<Worker, PoolError> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut process = (self.starter)(self.tasks.clone(), self.replies.clone(), id, self.maxtasks)
            .name(format!("PoolWorker-{id}"))
            .start_method(self.method)
            .die_with_parent(true);
        process.start()?;
        Ok(Worker { process, id })
    }

    /// Python's default chunksize for `n` items: ceil(n / (4 × workers)).
    fn default_chunksize(&self, n: usize) -> usize {
        n.div_ceil(4 * self.processes()).max(1)
    }

    /// Runs `f` on chunks of `items` (of `chunksize` items, or Python's
    /// default) and returns the results in order.
    ///
    /// An input of a type that travels raw (see [`wire`]) and whose length
    /// the iterator knows exactly is not collected first: each chunk is read
    /// from the iterator straight into the task queue as room allows.
    fn run<A, R>(
        &mut self,
        f: fn(A) -> R,
        items: impl Iterator<Item = A>,
        chunksize: Option<usize>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if chunksize == Some(0) {
            return Err(PoolError::ZeroChunksize);
        }
        let code = Self::code_of(worker::runner_of::<A, R>(), f as *const ())?;
        let tag = worker::tag_of::<A, R>();
        match items.size_hint() {
            (n, Some(max)) if n == max && wire::is_raw::<A>() => {
                let chunksize = chunksize.unwrap_or_else(|| self.default_chunksize(n));
                self.submit_raw_stream(code, tag, items, n, chunksize)
            }
            _ => {
                let items: Vec<A> = items.collect();
                let chunksize = chunksize.unwrap_or_else(|| self.default_chunksize(items.len()));
                self.submit_encoded(code, tag, &items, chunksize)
            }
        }
    }

    /// A new call's number.
    fn new_job(&self) -> u64 {
        let job = self.next_job.get();
        self.next_job.set(job + 1);
        job
    }

    /// Starts a call: its job number, or why it cannot start.
    fn begin(&mut self) -> Result<u64, PoolError> {
        if self.state != State::Open {
            return Err(PoolError::Closed);
        }
        Ok(self.new_job())
    }

    /// Sends `n` raw items read from `items`, a chunk at a time, each written
    /// in place into the task queue, and collects the results.
    fn submit_raw_stream<A: 'static, R: DeserializeOwned + 'static>(
        &mut self,
        (runner, target): (isize, isize),
        tag: &'static str,
        mut items: impl Iterator<Item = A>,
        n: usize,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        let job = self.begin()?;
        if n == 0 {
            return Ok(Vec::new());
        }
        // A chunk is written in place, so its frame must fit in half the
        // queue: a larger chunksize is lowered to that.
        // (Less a margin for the ring's own record header.)
        let room = self.tasks.capacity() / 2 - 64 - RunHeader { job, chunk: 0, runner, target, tag }.len();
        let chunksize = chunksize.min(room / std::mem::size_of::<A>().max(1)).max(1);
        let mut c = Collect::new(job);
        for start in (0..n).step_by(chunksize) {
            c.push(start, chunksize.min(n - start))?;
        }
        let size = std::mem::size_of::<A>();
        let mut next = 0usize;
        let chunks = c.done.len();
        let feed = |tasks: &Frames| -> Result<bool, PoolError> {
            while next < chunks {
                let len = chunksize.min(n - next * chunksize);
                let header = RunHeader { job, chunk: next as u32, runner, target, tag };
                let mut slot = match tasks.try_reserve(header.len() + len * size) {
                    Ok(slot) => slot,
                    Err(TrySendError::Full(())) => return Ok(false),
                    Err(e) => return Err(PoolError::Channel(e.to_string())),
                };
                header.write(&mut slot[..header.len()]);
                let got = wire::write_raw(items.by_ref().take(len), &mut slot[header.len()..]);
                if got != len {
                    // Dropped uncommitted: nothing is sent.
                    return Err(PoolError::Input(format!(
                        "the input ended after {} of the {n} items it announced",
                        next * chunksize + got
                    )));
                }
                slot.commit();
                next += 1;
            }
            Ok(true)
        };
        c.direct = wire::raw_zeroed::<R>(n);
        self.collect(c, n, feed)
    }

    /// Sends the chunks of `items`, encoded, and collects their results. A
    /// raw type is written in place, one chunk at a time as room allows;
    /// others are encoded first, all of them, so that an argument that
    /// cannot be encoded fails the call before anything is sent.
    #[allow(clippy::ptr_arg, reason = "a `Vec` can be downcast to find the raw fast path")]
    fn submit_encoded<X: Serialize + 'static, R: DeserializeOwned + 'static>(
        &mut self,
        (runner, target): (isize, isize),
        tag: &'static str,
        items: &Vec<X>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        if chunksize == 0 {
            return Err(PoolError::ZeroChunksize);
        }
        let job = self.begin()?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = Collect::new(job);
        let (spans, mut frames) = self.frames(job, (runner, target), tag, items, chunksize)?;
        for (start, len) in spans {
            c.push(start, len)?;
        }
        // Last chunk first.
        frames.reverse();
        let feed = |tasks: &Frames| -> Result<bool, PoolError> {
            while let Some(frame) = frames.pop() {
                match tasks.try_put_bytes(&frame) {
                    Ok(()) => {}
                    Err(TrySendError::Full(())) => {
                        frames.push(frame);
                        return Ok(false);
                    }
                    Err(e) => return Err(PoolError::Channel(e.to_string())),
                }
            }
            Ok(true)
        };
        self.collect(c, items.len(), feed)
    }

    /// Feeds the call's chunks to the task queue (`feed` sends what fits and
    /// says whether all are sent) while collecting their results, and
    /// returns the `n` results in order or the first error in input order.
    /// Every chunk is waited for, even after one failed.
    fn collect<R: DeserializeOwned + 'static>(
        &mut self,
        mut c: Collect<R>,
        n: usize,
        mut feed: impl FnMut(&Frames) -> Result<bool, PoolError>,
    ) -> Result<Vec<R>, PoolError> {
        // Replace workers that died since the last call (nothing of this
        // call can be lost with them yet).
        let mut orphan_since: Option<Orphan> = None;
        self.check_workers(&mut c, &mut orphan_since, false)?;
        orphan_since = None;
        let mut last_check = Instant::now();
        let mut all_sent = false;
        while c.left > 0 {
            if !all_sent {
                all_sent = feed(&self.tasks)?;
            }
            match self.replies.get_in_place_timeout(SLICE) {
                Ok(view) => Self::handle(self.held.get_mut(), &view, &mut c),
                Err(e) if e.is_timeout() => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(PoolError::Channel(e.to_string())),
            }
            if c.left > 0 && last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                self.check_workers(&mut c, &mut orphan_since, all_sent)?;
            }
        }
        c.into_results(n)
    }

    /// Takes note of a reply: who runs what, and the results of this call's
    /// chunks (a reply for another call is dropped: that call was
    /// abandoned).
    fn handle<R: DeserializeOwned + 'static>(held: &mut HashMap<u64, (u64, u32)>, frame: &[u8], c: &mut Collect<R>) {
        match wire::parse_reply(frame) {
            Some(ReplyFrame::Started { worker, job, chunk }) => {
                held.insert(worker, (job, chunk));
            }
            Some(ReplyFrame::Done { worker, job, chunk, body }) => {
                held.remove(&worker);
                if job == c.job {
                    c.finish(chunk, body);
                }
            }
            None => {}
        }
    }

    /// Handles every reply waiting now.
    fn drain_replies<R: DeserializeOwned + 'static>(&mut self, c: &mut Collect<R>) {
        while let Ok(view) = self.replies.try_get_in_place() {
            Self::handle(self.held.get_mut(), &view, c);
        }
    }

    /// Replaces dead workers, failing the chunks they held.
    fn check_workers<R: DeserializeOwned + 'static>(
        &mut self,
        c: &mut Collect<R>,
        orphan_since: &mut Option<Orphan>,
        all_sent: bool,
    ) -> Result<(), PoolError> {
        for i in 0..self.processes() {
            if self.workers.get_mut()[i].process.is_alive() {
                continue;
            }
            // Everything the dead worker sent is in the queue by now.
            self.drain_replies(c);
            let exitcode = self.workers.get_mut()[i].process.exitcode();
            let id = self.workers.get_mut()[i].id;
            match self.held.get_mut().remove(&id) {
                Some((job, chunk)) => {
                    if job == c.job
                        && let Some(index) = c.start(chunk)
                    {
                        c.settle(chunk, Err(PoolError::WorkerDied { index, exitcode }));
                    }
                }
                // A worker that exited normally (maxtasksperchild) holds
                // nothing.
                None if exitcode == Some(0) => {}
                // It may have taken a chunk and died before announcing it.
                None => *orphan_since = Some((Instant::now(), exitcode, c.end())),
            }
            let replacement = self.start_worker()?;
            self.workers.get_mut()[i] = replacement;
        }
        if let Some((since, exitcode, end)) = *orphan_since {
            if since.elapsed() >= ORPHAN_GRACE && all_sent && self.tasks.is_empty() {
                self.drain_replies(c);
                // Every chunk is sent and none is queued: an unsettled chunk
                // that no worker announced was lost with the dead worker (if
                // it existed when the worker died: an `imap` adds chunks).
                for chunk in c.pending_chunks().into_iter().filter(|&chunk| chunk < end) {
                    let held = self.held.get_mut().values().any(|&(job, ch)| job == c.job && ch == chunk);
                    if !held && let Some(index) = c.start(chunk) {
                        c.settle(chunk, Err(PoolError::WorkerDied { index, exitcode }));
                    }
                }
                *orphan_since = None;
            }
        }
        Ok(())
    }
}

impl Drop for Pool {
    /// Terminates the workers (see [`terminate`](Pool::terminate)).
    fn drop(&mut self) {
        self.terminate();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes())
            .field("start_method", &self.method)
            .field("state", &self.state)
            .field("pids", &self.pids())
            .finish()
    }
}
