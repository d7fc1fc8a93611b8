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

mod error;
mod worker;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::PoolError;

use crate::channel::{RecvTimeoutError, TrySendError};
use crate::process::code_offset;
use crate::{Process, Queue, StartMethod};
use worker::{Reply, Task};

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

/// Builds a [`Pool`] with options: see [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    processes: usize,
    method: StartMethod,
}

impl PoolBuilder {
    /// How the workers are started: [`StartMethod::Spawn`] (the default) or
    /// [`StartMethod::Fork`].
    pub fn start_method(mut self, method: StartMethod) -> PoolBuilder {
        self.method = method;
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`PoolError::ZeroWorkers`]; [`PoolError::Channel`] when the queues
    /// cannot be created; [`PoolError::Process`] when a worker cannot start.
    pub fn build(self) -> Result<Pool, PoolError> {
        if self.processes == 0 {
            return Err(PoolError::ZeroWorkers);
        }
        let tasks = Queue::new(QUEUE_CAPACITY).map_err(|e| PoolError::Channel(e.to_string()))?;
        let replies = Queue::new(QUEUE_CAPACITY).map_err(|e| PoolError::Channel(e.to_string()))?;
        let mut pool = Pool {
            workers: Vec::with_capacity(self.processes),
            tasks,
            replies,
            method: self.method,
            next_id: 0,
            next_job: 0,
            held: HashMap::new(),
            state: State::Open,
        };
        for _ in 0..self.processes {
            let w = pool.start_worker()?;
            pool.workers.push(w);
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
    workers: Vec<Worker>,
    tasks: Queue<Task>,
    replies: Queue<Reply>,
    method: StartMethod,
    next_id: u64,
    next_job: u64,
    /// The chunk each worker (by id) announced and has not finished.
    held: HashMap<u64, (u64, u32)>,
    state: State,
}

/// The progress of one call: each chunk's outcome once settled.
struct Collect<R> {
    job: u64,
    /// Index in the input of each chunk's first item.
    starts: Vec<usize>,
    done: Vec<Option<Result<Vec<R>, PoolError>>>,
    left: usize,
}

impl<R: DeserializeOwned> Collect<R> {
    fn settle(&mut self, chunk: u32, outcome: Result<Vec<R>, PoolError>) {
        let slot = &mut self.done[chunk as usize];
        if slot.is_none() {
            *slot = Some(outcome);
            self.left -= 1;
        }
    }

    /// Decodes a finished chunk's results.
    fn finish(&mut self, chunk: u32, out: Result<Vec<u8>, String>) {
        let Some(&start) = self.starts.get(chunk as usize) else { return };
        let outcome = match out {
            Err(message) => Err(PoolError::Task { index: start, message }),
            Ok(bytes) => match postcard::from_bytes::<Vec<Result<R, String>>>(&bytes) {
                Err(e) => Err(PoolError::Decode(e.to_string())),
                Ok(items) => {
                    let mut values = Vec::with_capacity(items.len());
                    let mut failed = None;
                    for (i, item) in items.into_iter().enumerate() {
                        match item {
                            Ok(v) => values.push(v),
                            Err(message) => {
                                failed = Some(PoolError::Task { index: start + i, message });
                                break;
                            }
                        }
                    }
                    failed.map_or(Ok(values), Err)
                }
            },
        };
        self.settle(chunk, outcome);
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
        PoolBuilder { processes, method: StartMethod::Spawn }
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.workers.len()
    }

    /// The process ids of the current workers (a replaced worker has a new
    /// one).
    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().filter_map(|w| w.process.pid()).collect()
    }

    /// Applies `f` to every item, in the workers, and returns the results in
    /// input order (Python's `map`). The input is split into chunks of
    /// ceil(n / (4 × workers)) items, as Python does. An empty input gives an
    /// empty result at once.
    ///
    /// Every chunk is waited for, even after one failed, so the pool is idle
    /// when this returns; the error is the first failure in input order.
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] when `f` panicked on an item;
    /// [`PoolError::WorkerDied`] when a worker died while running a chunk;
    /// [`PoolError::Closed`] after [`close`](Self::close) or
    /// [`terminate`](Self::terminate); [`PoolError::Encode`] or
    /// [`PoolError::Decode`] for arguments or results serde refuses;
    /// [`PoolError::TargetNotInExecutable`]; [`PoolError::Process`] when a
    /// dead worker cannot be replaced; [`PoolError::Channel`].
    pub fn map<A, R>(&mut self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = items.len().div_ceil(4 * self.workers.len()).max(1);
        self.run(f, &items, chunksize)
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
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        if chunksize == 0 {
            return Err(PoolError::ZeroChunksize);
        }
        let items: Vec<A> = items.into_iter().collect();
        self.run(f, &items, chunksize)
    }

    /// Runs `f(arg)` in a worker and returns its result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    pub fn apply<A, R>(&mut self, f: fn(A) -> R, arg: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let mut out = self.run(f, &[arg], 1)?;
        out.pop().ok_or_else(|| PoolError::Decode("a worker returned no result".into()))
    }

    /// Applies `f` to every pair of arguments, in the workers, and returns
    /// the results in input order (Python's `starmap`, for functions of two
    /// arguments). Chunks as [`map`](Self::map).
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
    ///
    /// let mut pool = Pool::new(2)?;
    /// assert_eq!(pool.starmap(power, [(2, 10), (3, 5), (4, 3)])?, vec![1024, 243, 64]);
    /// # Ok::<(), multiproc::PoolError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    pub fn starmap<A, B, R>(
        &mut self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let items: Vec<(A, B)> = items.into_iter().collect();
        let chunksize = items.len().div_ceil(4 * self.workers.len()).max(1);
        let runner = worker::pairs_runner_of::<A, B, R>();
        self.submit(runner, f as *const (), worker::tag_of_pairs::<A, B, R>(), &items, chunksize)
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
        for _ in 0..self.workers.len() {
            if self.tasks.put_timeout(Task::Stop, STOP_WAIT).is_err() {
                break;
            }
        }
        let mut first_error = None;
        for w in &mut self.workers {
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
        for w in &mut self.workers {
            let _ = w.process.kill();
        }
        for w in &mut self.workers {
            let _ = w.process.join_timeout(KILL_WAIT);
        }
        self.tasks.close();
        self.replies.close();
    }

    fn start_worker(&mut self) -> Result<Worker, PoolError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut process = Process::new(worker::worker_main, (self.tasks.clone(), self.replies.clone(), id))
            .name(format!("PoolWorker-{id}"))
            .start_method(self.method)
            .die_with_parent(true);
        process.start()?;
        Ok(Worker { process, id })
    }

    /// Runs `f` on chunks of `items`.
    fn run<A, R>(&mut self, f: fn(A) -> R, items: &[A], chunksize: usize) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.submit(worker::runner_of::<A, R>(), f as *const (), worker::tag_of::<A, R>(), items, chunksize)
    }

    /// Sends the chunks of `items`, for the runner and target at these
    /// addresses, and collects their results.
    fn submit<X: Serialize, R: DeserializeOwned>(
        &mut self,
        runner: *const (),
        target: *const (),
        tag: &'static str,
        items: &[X],
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        if self.state != State::Open {
            return Err(PoolError::Closed);
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let runner = code_offset(runner).ok_or(PoolError::TargetNotInExecutable)?;
        let target = code_offset(target).ok_or(PoolError::TargetNotInExecutable)?;
        let job = self.next_job;
        self.next_job += 1;
        let mut pending = Vec::new();
        let mut starts = Vec::new();
        for (chunk, part) in items.chunks(chunksize).enumerate() {
            let chunk = u32::try_from(chunk).map_err(|_| PoolError::Encode("more than 2^32 chunks".into()))?;
            let args = postcard::to_allocvec(part).map_err(|e| PoolError::Encode(e.to_string()))?;
            starts.push(chunk as usize * chunksize);
            pending.push(Task::Run { job, chunk, runner, target, tag: tag.to_string(), args });
        }
        pending.reverse();
        let n = starts.len();
        let mut c = Collect { job, starts, done: (0..n).map(|_| None).collect(), left: n };
        // Replace workers that died since the last call (nothing of this
        // call can be lost with them yet).
        let mut orphan_since: Option<(Instant, Option<i32>)> = None;
        self.check_workers(&mut c, &mut orphan_since, false)?;
        orphan_since = None;
        let mut last_check = Instant::now();
        while c.left > 0 {
            while let Some(task) = pending.pop() {
                match self.tasks.try_put(task) {
                    Ok(()) => {}
                    Err(TrySendError::Full(task)) => {
                        pending.push(task);
                        break;
                    }
                    Err(e) => return Err(PoolError::Channel(e.to_string())),
                }
            }
            match self.replies.get_timeout(SLICE) {
                Ok(reply) => self.handle(reply, &mut c),
                Err(e) if e.is_timeout() => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(PoolError::Channel(e.to_string())),
            }
            if c.left > 0 && last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                self.check_workers(&mut c, &mut orphan_since, pending.is_empty())?;
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for outcome in c.done {
            out.extend(outcome.expect("every chunk is settled")?);
        }
        Ok(out)
    }

    fn handle<R: DeserializeOwned>(&mut self, reply: Reply, c: &mut Collect<R>) {
        match reply {
            Reply::Started { worker, job, chunk } => {
                self.held.insert(worker, (job, chunk));
            }
            Reply::Done { worker, job, chunk, out } => {
                self.held.remove(&worker);
                if job == c.job {
                    c.finish(chunk, out);
                }
            }
        }
    }

    /// Replaces dead workers, failing the chunks they held.
    fn check_workers<R: DeserializeOwned>(
        &mut self,
        c: &mut Collect<R>,
        orphan_since: &mut Option<(Instant, Option<i32>)>,
        all_sent: bool,
    ) -> Result<(), PoolError> {
        for i in 0..self.workers.len() {
            if self.workers[i].process.is_alive() {
                continue;
            }
            // Everything the dead worker sent is in the queue by now.
            while let Ok(reply) = self.replies.try_get() {
                self.handle(reply, c);
            }
            let exitcode = self.workers[i].process.exitcode();
            match self.held.remove(&self.workers[i].id) {
                Some((job, chunk)) => {
                    if job == c.job {
                        let index = c.starts[chunk as usize];
                        c.settle(chunk, Err(PoolError::WorkerDied { index, exitcode }));
                    }
                }
                // It may have taken a chunk and died before announcing it.
                None => *orphan_since = Some((Instant::now(), exitcode)),
            }
            let replacement = self.start_worker()?;
            self.workers[i] = replacement;
        }
        if let Some((since, exitcode)) = *orphan_since {
            if since.elapsed() >= ORPHAN_GRACE && all_sent && self.tasks.is_empty() {
                while let Ok(reply) = self.replies.try_get() {
                    self.handle(reply, c);
                }
                // Every chunk is sent and none is queued: an unsettled chunk
                // that no worker announced was lost with the dead worker.
                for chunk in 0..c.done.len() {
                    let chunk = chunk as u32;
                    let held = self.held.values().any(|&(job, ch)| job == c.job && ch == chunk);
                    if c.done[chunk as usize].is_none() && !held {
                        let index = c.starts[chunk as usize];
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
            .field("processes", &self.workers.len())
            .field("start_method", &self.method)
            .field("state", &self.state)
            .field("pids", &self.pids())
            .finish()
    }
}
