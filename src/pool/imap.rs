//! [`Imap`]: the lazy iterator behind [`Pool::imap`](crate::Pool::imap) and
//! [`Pool::imap_unordered`](crate::Pool::imap_unordered).

use std::collections::VecDeque;
use std::iter::Fuse;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{self, RunHeader};
use super::{CHECK_EVERY, Collect, Pool, PoolError, SLICE};
use crate::channel::{TryRecvError, TrySendError};

/// Where an [`UntilErr`] leaves the text of its input's error.
pub(super) type InputError = Arc<Mutex<Option<String>>>;

/// The input of [`Pool::try_imap`](crate::Pool::try_imap): the `Ok` items of
/// an iterator of `Result`s, up to the first `Err`, whose text it keeps for
/// the [`Imap`] to yield after the results before it.
pub struct UntilErr<I> {
    inner: Option<I>,
    slot: InputError,
}

impl<I> UntilErr<I> {
    pub(super) fn new(inner: I, slot: InputError) -> UntilErr<I> {
        UntilErr { inner: Some(inner), slot }
    }
}

impl<A, E: std::fmt::Display, I: Iterator<Item = Result<A, E>>> Iterator for UntilErr<I> {
    type Item = A;

    fn next(&mut self) -> Option<A> {
        match self.inner.as_mut()?.next()? {
            Ok(a) => Some(a),
            Err(e) => {
                self.inner = None;
                if let Ok(mut slot) = self.slot.lock() {
                    *slot = Some(e.to_string());
                }
                None
            }
        }
    }
}

impl<I> std::fmt::Debug for UntilErr<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntilErr").field("failed", &self.inner.is_none()).finish_non_exhaustive()
    }
}

/// One step of [`Imap::poll`].
pub(super) enum Poll<R> {
    /// The next result.
    Item(Result<R, PoolError>),
    /// No more results.
    End,
    /// The deadline passed first.
    Pending,
}

/// The results of [`Pool::imap`](crate::Pool::imap) (input order) or
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered) (completion order), produced lazily.
///
/// The input is read a chunk at a time, only as results are consumed: at
/// most [`in_flight`](Imap::in_flight) chunks are sent and not yet handed
/// out, so memory stays bounded over an input of any length. Each item is
/// `Ok(result)`, or an error: a chunk that failed ([`PoolError::Task`],
/// [`PoolError::WorkerDied`]) yields one error in place of its results and
/// the iteration goes on with the next chunk; an error of the call itself
/// ([`PoolError::Closed`], [`PoolError::Encode`], a queue failure) is the
/// last item.
///
/// The iterator borrows the pool mutably. Dropping it early abandons the
/// rest of the input and removes its queued chunks; chunks already running
/// finish in the workers and their results are ignored.
pub struct Imap<'p, I: Iterator, R> {
    pool: &'p mut Pool,
    items: Fuse<I>,
    runner: isize,
    target: isize,
    tag: &'static str,
    chunksize: usize,
    ordered: bool,
    max_chunks: usize,
    c: Collect<R>,
    /// Task frames built but not yet in the task queue.
    pending: VecDeque<Vec<u8>>,
    /// The next chunk to hand out, in input order.
    next_chunk: u32,
    /// The rest of the chunk being handed out.
    current: std::vec::IntoIter<R>,
    /// The input index of the next item read.
    next_index: usize,
    exhausted: bool,
    /// An error to yield next, after which the iteration ends.
    error: Option<PoolError>,
    finished: bool,
    orphan_since: Option<super::Orphan>,
    /// Where an [`UntilErr`] input leaves its error.
    input_error: Option<InputError>,
    last_check: Instant,
}

impl<'p, I, R> Imap<'p, I, R>
where
    I: Iterator,
    I::Item: Serialize + 'static,
    R: DeserializeOwned + 'static,
{
    pub(super) fn new(
        pool: &'p mut Pool,
        items: I,
        code: Result<(isize, isize), PoolError>,
        tag: &'static str,
        chunksize: usize,
        ordered: bool,
    ) -> Imap<'p, I, R> {
        let job = pool.new_job();
        let max_chunks = (4 * pool.processes()).max(8);
        let mut it = Imap {
            pool,
            items: items.fuse(),
            runner: 0,
            target: 0,
            tag,
            chunksize,
            ordered,
            max_chunks,
            c: Collect::new(job),
            pending: VecDeque::new(),
            next_chunk: 0,
            current: Vec::new().into_iter(),
            next_index: 0,
            exhausted: false,
            error: None,
            finished: false,
            orphan_since: None,
            input_error: None,
            last_check: Instant::now(),
        };
        let start = if chunksize == 0 {
            Err(PoolError::ZeroChunksize)
        } else if it.pool.state != super::State::Open {
            Err(PoolError::Closed)
        } else {
            code
        };
        match start {
            Ok((runner, target)) => {
                it.runner = runner;
                it.target = target;
                // Replace workers that died since the last call.
                let mut orphan = None;
                if let Err(e) = it.pool.check_workers(&mut it.c, &mut orphan, false) {
                    it.error = Some(e);
                }
            }
            Err(e) => it.error = Some(e),
        }
        it
    }

    /// Yields `PoolError::Input` with the error an [`UntilErr`] input left in
    /// `slot`, after the results before it.
    pub(super) fn with_input_error(mut self, slot: InputError) -> Self {
        self.input_error = Some(slot);
        self
    }

    /// The most chunks this iterator keeps sent and not yet handed out:
    /// 4 per worker, at least 8.
    pub fn in_flight(&self) -> usize {
        self.max_chunks
    }

    /// The next result, waiting at most until `deadline` (for ever if
    /// `None`).
    pub(super) fn poll(&mut self, deadline: Option<Instant>) -> Poll<R> {
        let mut stalled = false;
        loop {
            if let Some(e) = self.error.take() {
                self.finished = true;
                return Poll::Item(Err(e));
            }
            if self.finished {
                return Poll::End;
            }
            if let Some(v) = self.current.next() {
                return Poll::Item(Ok(v));
            }
            let next = if self.ordered { Some(self.next_chunk) } else { self.c.completed.front().copied() };
            if let Some(outcome) = next.and_then(|chunk| self.c.take(chunk)) {
                if self.ordered {
                    self.next_chunk += 1;
                }
                match outcome {
                    Ok(values) => {
                        self.current = values.into_iter();
                        continue;
                    }
                    Err(e) => return Poll::Item(Err(e)),
                }
            }
            if self.exhausted && self.c.done.is_empty() && self.pending.is_empty() {
                self.finished = true;
                let failed = self.input_error.as_ref().and_then(|slot| slot.lock().ok()?.take());
                return match failed {
                    Some(message) => Poll::Item(Err(PoolError::Input(message))),
                    None => Poll::End,
                };
            }
            // Past the deadline, go on only while replies keep arriving, so
            // that a zero timeout still collects what is there.
            let slice = match deadline {
                None => SLICE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() && stalled {
                        return Poll::Pending;
                    }
                    left.min(SLICE)
                }
            };
            match self.step(slice) {
                Ok(progressed) => stalled = !progressed,
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Reads and sends chunks up to the bound, then waits at most `slice`
    /// for a reply and looks at the workers; whether a reply came.
    fn step(&mut self, slice: Duration) -> Result<bool, PoolError> {
        self.fill_and_send()?;
        self.receive(slice)
    }

    /// Reads chunks up to the bound and queues as many as fit.
    fn fill_and_send(&mut self) -> Result<(), PoolError> {
        while !self.exhausted && self.c.done.len() < self.max_chunks {
            let part: Vec<I::Item> = self.items.by_ref().take(self.chunksize).collect();
            if part.is_empty() {
                self.exhausted = true;
                break;
            }
            let start = self.next_index;
            self.next_index += part.len();
            let chunk = self.c.push(start, part.len())?;
            let header = RunHeader { job: self.c.job, chunk, runner: self.runner, target: self.target, tag: self.tag };
            let mut frame = Vec::new();
            header.append(&mut frame);
            wire::encode_items(&part, &mut frame).map_err(PoolError::Encode)?;
            // A frame larger than this could never be put in the task queue
            // (it would wait for room for ever).
            let capacity = self.pool.tasks.capacity();
            if frame.len() > capacity - (64 << 10) {
                return Err(PoolError::Encode(format!(
                    "a chunk of {} bytes does not fit in the task queue ({capacity} bytes): use a smaller chunksize",
                    frame.len()
                )));
            }
            self.pending.push_back(frame);
        }
        while let Some(frame) = self.pending.pop_front() {
            match self.pool.tasks.try_put_bytes(&frame) {
                Ok(()) => {}
                Err(TrySendError::Full(())) => {
                    self.pending.push_front(frame);
                    break;
                }
                Err(e) => return Err(PoolError::Channel(e.to_string())),
            }
        }
        Ok(())
    }

    /// Waits at most `slice` for a reply and looks at the workers; whether
    /// a reply came.
    fn receive(&mut self, slice: Duration) -> Result<bool, PoolError> {
        let progressed = {
            let pool = &mut *self.pool;
            let reply = wire::next_reply(&pool.replies, slice)?;
            let progressed = reply.is_some();
            if let Some(view) = reply {
                Pool::handle(pool.held.get_mut(), &view, &mut self.c);
            }
            progressed
        };
        if self.c.left > 0 && self.last_check.elapsed() >= CHECK_EVERY {
            self.last_check = Instant::now();
            let all_sent = self.pending.is_empty();
            self.pool.check_workers(&mut self.c, &mut self.orphan_since, all_sent)?;
        }
        Ok(progressed)
    }
}

impl<I, R> Iterator for Imap<'_, I, R>
where
    I: Iterator,
    I::Item: Serialize + 'static,
    R: DeserializeOwned + 'static,
{
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Result<R, PoolError>> {
        match self.poll(None) {
            Poll::Item(item) => Some(item),
            Poll::End | Poll::Pending => None,
        }
    }
}

impl<I: Iterator, R> Drop for Imap<'_, I, R> {
    /// Removes this call's chunks still queued, so the next call does not
    /// wait behind them.
    fn drop(&mut self) {
        // A `try_get` can find the queue busy (a worker taking a chunk) and
        // say empty; go on while chunks are still visibly there.
        loop {
            match self.pool.tasks.try_get_in_place() {
                Ok(_) => {}
                Err(TryRecvError::Empty) if !self.pool.tasks.is_empty() => {}
                Err(_) => break,
            }
        }
    }
}

impl<I: Iterator, R> std::fmt::Debug for Imap<'_, I, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("job", &self.c.job)
            .field("chunksize", &self.chunksize)
            .field("ordered", &self.ordered)
            .field("in_flight", &self.max_chunks)
            .finish_non_exhaustive()
    }
}
