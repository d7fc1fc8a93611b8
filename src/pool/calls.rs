//! The pool's outstanding asynchronous calls: several
//! [`AsyncResult`](super::AsyncResult)s at once, each collecting through a
//! shared borrow of the pool.
//!
//! # Design
//!
//! Each call made by `map_async`, `apply_async` or `starmap_async` is
//! registered here under its job number, with its chunks' frames (those the
//! task queue had no room for yet wait in the call's `unsent` list). The
//! pool has no thread of its own, so results are collected by whichever
//! handle is being asked ([`Pool::pump`]): it feeds waiting frames of every
//! call to the task queue, takes replies off the reply queue and files each
//! under its call and chunk (the reply body is kept as bytes, so the
//! registry needs no result types), and looks at the workers, replacing dead
//! ones and failing the chunks they held, whichever call they belong to. A
//! handle decodes its results when its call is complete.
//!
//! A handle dropped before its result is known (and with no callback due)
//! abandons its call: the registry forgets it and its chunks still queued
//! are removed (the task queue is drained, and the other calls' chunks are
//! put back in front of their waiting ones); chunks already running finish
//! and their replies are ignored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::wire::{self, ReplyFrame, TaskFrame};
use super::{CHECK_EVERY, ORPHAN_GRACE, Pool, PoolError, SLICE};
use crate::channel::{TryRecvError, TrySendError};

/// One outstanding call.
pub(super) struct Call {
    /// The first input index and the length of each chunk.
    pub(super) spans: Vec<(usize, usize)>,
    /// Each chunk's reply body once it came, or why it was lost.
    pub(super) settled: Vec<Option<Result<Vec<u8>, PoolError>>>,
    /// Chunks not settled yet.
    left: usize,
    /// Frames not yet in the task queue, in chunk order.
    unsent: VecDeque<Vec<u8>>,
    /// An error that ended the call early (a queue failure, a worker that
    /// could not be replaced).
    pub(super) failed: Option<PoolError>,
}

impl Call {
    fn settle(&mut self, chunk: u32, outcome: Result<Vec<u8>, PoolError>) {
        if let Some(slot) = self.settled.get_mut(chunk as usize)
            && slot.is_none()
        {
            *slot = Some(outcome);
            self.left -= 1;
        }
    }

    fn lose(&mut self, chunk: u32, exitcode: Option<i32>) {
        if let Some(&(index, _)) = self.spans.get(chunk as usize) {
            self.settle(chunk, Err(PoolError::WorkerDied { index, exitcode }));
        }
    }

    fn is_complete(&self) -> bool {
        self.left == 0 || self.failed.is_some()
    }
}

/// The registry of outstanding calls.
#[derive(Default)]
pub(super) struct Calls {
    calls: BTreeMap<u64, Call>,
    /// The calls with frames not yet in the task queue (so that feeding
    /// does not visit every outstanding call).
    waiting: BTreeSet<u64>,
    /// A worker died holding no announced chunk: when it was noticed, its
    /// exit code, and the first job number not yet made then.
    orphan: Option<(Instant, Option<i32>, u64)>,
    last_check: Option<Instant>,
}

impl Pool {
    /// Registers call `job`, whose chunks have these spans and frames, and
    /// queues as many frames as fit.
    pub(super) fn register(&self, job: u64, spans: Vec<(usize, usize)>, frames: Vec<Vec<u8>>) {
        let n = spans.len();
        let call =
            Call { spans, settled: (0..n).map(|_| None).collect(), left: n, unsent: frames.into(), failed: None };
        {
            let mut calls = self.calls.borrow_mut();
            if !call.unsent.is_empty() {
                calls.waiting.insert(job);
            }
            calls.calls.insert(job, call);
        }
        // Replace workers that died since the last look (at most every
        // `CHECK_EVERY`: asking the kernel about each worker at every call
        // would cost more than a small call).
        if let Err(e) = self.check_async_workers(false) {
            self.fail(job, e);
        }
        if let Err(e) = self.feed() {
            self.fail(job, e);
        }
    }

    /// Ends call `job` early with `e`.
    fn fail(&self, job: u64, e: PoolError) {
        if let Some(call) = self.calls.borrow_mut().calls.get_mut(&job) {
            call.failed.get_or_insert(e);
        }
    }

    /// Collects results for the outstanding calls until call `job` is
    /// complete or `deadline` passes (for ever if `None`); whether it is
    /// complete. Past the deadline it goes on only while replies keep
    /// arriving, so that a zero timeout still collects what is there.
    pub(super) fn pump(&self, job: u64, deadline: Option<Instant>) -> bool {
        let mut stalled = false;
        loop {
            if let Err(e) = self.feed() {
                self.fail(job, e);
            }
            match self.calls.borrow().calls.get(&job) {
                None => return true,
                Some(call) if call.is_complete() => return true,
                Some(_) => {}
            }
            let slice = match deadline {
                None => SLICE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() && stalled {
                        return false;
                    }
                    left.min(SLICE)
                }
            };
            match self.receive(slice) {
                Ok(progressed) => stalled = !progressed,
                Err(e) => self.fail(job, e),
            }
            if let Err(e) = self.check_async_workers(false) {
                self.fail(job, e);
            }
        }
    }

    /// Removes call `job` from the registry and returns it.
    pub(super) fn take_call(&self, job: u64) -> Option<Call> {
        self.calls.borrow_mut().calls.remove(&job)
    }

    /// Abandons call `job`: forgets it and removes its chunks still queued.
    pub(super) fn abandon(&self, job: u64) {
        if self.take_call(job).is_none() {
            return;
        }
        // Drain the task queue, keeping the other calls' frames in order. A
        // `try_` can find the queue busy (a worker taking a chunk) and say
        // empty; go on while frames are still visibly there.
        let mut kept: Vec<(u64, Vec<u8>)> = Vec::new();
        loop {
            match self.tasks.try_get_in_place() {
                Ok(view) => {
                    if let Ok(TaskFrame::Run { header, .. }) = wire::parse_task(&view)
                        && self.calls.borrow().calls.contains_key(&header.job)
                    {
                        kept.push((header.job, view.to_vec()));
                    }
                }
                Err(TryRecvError::Empty) if !self.tasks.is_empty() => {}
                Err(_) => break,
            }
        }
        let mut calls = self.calls.borrow_mut();
        for (job, frame) in kept.into_iter().rev() {
            if let Some(call) = calls.calls.get_mut(&job) {
                call.unsent.push_front(frame);
                calls.waiting.insert(job);
            }
        }
        drop(calls);
        // Nothing to report to: a failure shows at the next pump.
        let _ = self.feed();
    }

    /// Queues waiting frames, oldest call first, as far as the task queue
    /// takes them.
    fn feed(&self) -> Result<(), PoolError> {
        let mut guard = self.calls.borrow_mut();
        let Calls { calls, waiting, .. } = &mut *guard;
        while let Some(&job) = waiting.first() {
            if let Some(call) = calls.get_mut(&job) {
                while let Some(frame) = call.unsent.front() {
                    match self.tasks.try_put_bytes(frame) {
                        Ok(()) => {
                            call.unsent.pop_front();
                        }
                        Err(TrySendError::Full(())) => return Ok(()),
                        Err(e) => return Err(PoolError::Channel(e.to_string())),
                    }
                }
            }
            waiting.remove(&job);
        }
        Ok(())
    }

    /// Waits at most `slice` for a reply and files it; whether one came.
    fn receive(&self, slice: Duration) -> Result<bool, PoolError> {
        match wire::next_reply(&self.replies, slice)? {
            Some(view) => {
                self.file(&view);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Files a reply under its call (a reply for no outstanding call is
    /// dropped: that call was abandoned, or was not asynchronous).
    fn file(&self, frame: &[u8]) {
        match wire::parse_reply(frame) {
            Some(ReplyFrame::Started { worker, job, chunk }) => {
                self.held.borrow_mut().insert(worker, (job, chunk));
            }
            Some(ReplyFrame::Done { worker, job, chunk, body }) => {
                self.held.borrow_mut().remove(&worker);
                if let Some(call) = self.calls.borrow_mut().calls.get_mut(&job) {
                    call.settle(chunk, Ok(body.to_vec()));
                }
            }
            None => {}
        }
    }

    /// Files every reply waiting now.
    fn drain(&self) {
        while let Ok(view) = self.replies.try_get_in_place() {
            self.file(&view);
        }
    }

    /// Replaces dead workers and fails the chunks they held (at most every
    /// [`CHECK_EVERY`] unless `now`), as `Pool::check_workers` does for a
    /// call made with `&mut self`.
    fn check_async_workers(&self, now: bool) -> Result<(), PoolError> {
        {
            let mut calls = self.calls.borrow_mut();
            if !now && calls.last_check.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
                return Ok(());
            }
            calls.last_check = Some(Instant::now());
        }
        for i in 0..self.processes() {
            let (id, exitcode) = {
                let mut workers = self.workers.borrow_mut();
                let w = &mut workers[i];
                if w.process.is_alive() {
                    continue;
                }
                (w.id, w.process.exitcode())
            };
            // Everything the dead worker sent is in the queue by now.
            self.drain();
            let held = self.held.borrow_mut().remove(&id);
            match held {
                Some((job, chunk)) => {
                    if let Some(call) = self.calls.borrow_mut().calls.get_mut(&job) {
                        call.lose(chunk, exitcode);
                    }
                }
                // A worker that exited normally (maxtasksperchild) holds
                // nothing.
                None if exitcode == Some(0) => {}
                // It may have taken a chunk and died before announcing it.
                None => self.calls.borrow_mut().orphan = Some((Instant::now(), exitcode, self.next_job.get())),
            }
            let replacement = self.start_worker()?;
            self.workers.borrow_mut()[i] = replacement;
        }
        let orphan = self.calls.borrow().orphan;
        if let Some((since, exitcode, end)) = orphan {
            let all_sent = self.calls.borrow().waiting.is_empty();
            if since.elapsed() >= ORPHAN_GRACE && all_sent && self.tasks.is_empty() {
                self.drain();
                // Every chunk is sent and none is queued: an unsettled chunk
                // of a call made before the death that no worker announced
                // was lost with the dead worker.
                let held = self.held.borrow();
                let mut calls = self.calls.borrow_mut();
                for (&job, call) in calls.calls.range_mut(..end) {
                    for chunk in 0..call.spans.len() as u32 {
                        let taken = held.values().any(|&(j, c)| j == job && c == chunk);
                        if !taken && call.settled[chunk as usize].is_none() {
                            call.lose(chunk, exitcode);
                        }
                    }
                }
                calls.orphan = None;
            }
        }
        Ok(())
    }
}
