//! The worker side of a [`Pool`](crate::Pool): the worker loop and the
//! runners that call a task's target (the frames are in [`super::wire`]).
//!
//! # Naming functions across processes
//!
//! A task names two functions by their offsets from the process module's
//! anchor ([`code_offset`](crate::process::code_offset)): a monomorphised
//! runner such as [`run::<A, R>`](run), which decodes a chunk of `A`s, calls
//! the target on each and encodes the `R`s, and the target `fn(A) -> R`
//! itself. Workers run the same executable file as the pool's owner
//! (spawned children check the file's identity; forked ones share the
//! image), so the same offsets name the same functions there.
//!
//! # Safety
//!
//! The unsafe steps are the transmutes that turn those addresses back into
//! function pointers, in [`execute`], [`run`], the `starmap` runners and
//! [`worker_main`]; their `SAFETY` comments spell out why they hold.
#![allow(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::wire::{self, Frames, TaskFrame};
use crate::process::code_at;

/// Why a chunk did not produce its results.
pub(super) enum Failed {
    /// The task at `index` in the chunk (the first that failed) panicked.
    Task { index: usize, message: String },
    /// The chunk could not run.
    Other(String),
}

/// The signature shared by every runner: the target's address, the type
/// tag, the encoded chunk, and the reply to put the results in.
pub(super) type Runner = fn(*const (), &str, &[u8], &mut Reply<'_>) -> Result<(), Failed>;

/// The `Done` reply a runner fills: its header and status byte are in
/// `out` already; the results are appended to `out`, or, raw ones, written
/// with the header straight into the reply queue ([`Reply::send_raw`]).
pub(super) struct Reply<'a> {
    replies: &'a Frames,
    out: &'a mut Vec<u8>,
    /// Whether the reply was sent by `send_raw`.
    sent: bool,
    /// Whether the reply queue failed.
    broken: bool,
}

impl Reply<'_> {
    /// Writes the reply (header, then `results`) in place into the reply
    /// queue: one copy of the results instead of two.
    fn send_raw(&mut self, results: &[u8]) {
        let len = self.out.len() + results.len();
        // (Less a margin for the ring's own record header.)
        if len + 64 > self.replies.capacity() / 2 {
            self.out.extend_from_slice(results);
            return;
        }
        match self.replies.reserve(len) {
            Ok(mut slot) => {
                let head = self.out.len();
                slot[..head].copy_from_slice(self.out);
                slot[head..].copy_from_slice(results);
                slot.commit();
                self.sent = true;
            }
            Err(_) => self.broken = true,
        }
    }
}

/// The tag that pairs a runner with its target's type.
pub(super) fn tag_of<A, R>() -> &'static str {
    std::any::type_name::<fn(A) -> R>()
}

/// The address of `run::<A, R>`.
pub(super) fn runner_of<A: DeserializeOwned + 'static, R: Serialize + 'static>() -> *const () {
    run::<A, R> as Runner as *const ()
}

/// The text of a panic payload.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the task panicked with a non-string payload".to_string()
    }
}

/// Decodes a chunk, calls the target on each item, encodes the results.
fn run<A: DeserializeOwned + 'static, R: Serialize + 'static>(
    target: *const (),
    tag: &str,
    args: &[u8],
    out: &mut Reply<'_>,
) -> Result<(), Failed> {
    check_tag(tag, tag_of::<A, R>())?;
    // SAFETY: `target` is the anchor's address plus the offset that the pool
    // measured from its own `f as fn(A) -> R` with `code_offset`, which
    // checked that `f` lies in the executable's image together with the
    // anchor. This worker runs the same executable file (a spawned worker is
    // a re-execution checked by device and inode; a forked one shares the
    // image), which the loader relocates as one block, so `target` is that
    // same function here. It has the type `fn(A) -> R` for this `A` and `R`:
    // the pool measured this runner's offset from `run::<A, R>` with the
    // same `A` and `R` as the target's, and the tags were compared above.
    // `*const ()` to `fn` pointer is the transmute std documents for turning
    // a code address into a callable function pointer.
    let f = unsafe { std::mem::transmute::<*const (), fn(A) -> R>(target) };
    // Raw arguments are read one by one straight from the frame.
    match wire::raw_items::<A>(args) {
        Some(Ok(items)) => call_each(items, f, out),
        Some(Err(e)) => Err(Failed::Other(format!("cannot decode the arguments: {e}"))),
        None => call_each(decode_args::<A>(args)?.into_iter(), f, out),
    }
}

pub(super) fn check_tag(got: &str, want: &str) -> Result<(), Failed> {
    if got == want {
        Ok(())
    } else {
        Err(Failed::Other(format!("task type mismatch: the pool sent `{got}`, this runner is for `{want}`")))
    }
}

pub(super) fn decode_args<X: DeserializeOwned + 'static>(args: &[u8]) -> Result<Vec<X>, Failed> {
    let mut items = Vec::new();
    wire::decode_items(args, &mut items).map_err(|e| Failed::Other(format!("cannot decode the arguments: {e}")))?;
    Ok(items)
}

/// Calls `f` on every item, catching panics, and appends the encoded
/// results to `out` (raw results as they come, others encoded at the end);
/// a panic makes the chunk fail with the first failed item's index and
/// message (the items after it still run; the caller then discards `out`).
pub(super) fn call_each<X, R: Serialize + 'static>(
    args: impl Iterator<Item = X>,
    f: impl Fn(X) -> R,
    out: &mut Reply<'_>,
) -> Result<(), Failed> {
    let mut results = Vec::with_capacity(args.size_hint().0);
    let mut failed: Option<Failed> = None;
    // One `catch_unwind` per item (free unless a panic happens): one around
    // the whole loop would capture `results` by reference, and its length
    // would then go through memory at every call of `f`.
    for (i, a) in args.enumerate() {
        match catch_unwind(AssertUnwindSafe(|| f(a))) {
            Ok(r) if failed.is_none() => results.push(r),
            Ok(_) => {}
            Err(p) => {
                if failed.is_none() {
                    failed = Some(Failed::Task { index: i, message: panic_message(&*p) });
                }
            }
        }
    }
    if let Some(failed) = failed {
        return Err(failed);
    }
    // Raw results are collected in a local `Vec` and copied at the end:
    // appending each one to `out` would keep `out`'s length in memory across
    // the call of `f`.
    if let Some(bytes) = wire::raw_bytes(&results) {
        out.send_raw(bytes);
        return Ok(());
    }
    wire::encode_slice(&results, out.out).map_err(|e| Failed::Other(format!("cannot encode the results: {e}")))
}

/// Finds the runner at `runner` and calls it.
fn execute(runner: isize, target: isize, tag: &str, args: &[u8], out: &mut Reply<'_>) -> Result<(), Failed> {
    // SAFETY: the address is the anchor's plus the offset the pool measured
    // with `code_offset` from its own runner (`run::<A, R>` or a `starmap`
    // runner), which lies in the executable's image with the anchor; this
    // worker runs the same executable file (see `run`), so the address is
    // that function here. Every runner has the type `Runner`, since its type
    // parameters appear only in its body.
    let runner = unsafe { std::mem::transmute::<*const (), Runner>(code_at(runner)) };
    runner(code_at(target), tag, args, out)
}

/// What a worker process is started with.
#[derive(Serialize, Deserialize)]
pub(super) struct WorkerArgs<A> {
    pub(super) tasks: Frames,
    pub(super) replies: Frames,
    /// The worker's id.
    pub(super) worker: u64,
    /// Exit after this many chunks (Python's `maxtasksperchild`).
    pub(super) maxtasks: Option<usize>,
    /// The initializer's offset, its `type_name::<fn(A)>()`, its argument.
    pub(super) init: Option<(isize, String, A)>,
}

/// The tag of an initializer `fn(A)`.
pub(super) fn init_tag_of<A>() -> &'static str {
    std::any::type_name::<fn(A)>()
}

/// The worker process: runs the initializer, then takes tasks until a
/// `Stop` frame, until a queue fails, or after `maxtasks` chunks,
/// announcing each chunk before running it.
pub(super) fn worker_main<A: DeserializeOwned>(arg: WorkerArgs<A>) {
    let WorkerArgs { tasks, replies, worker, maxtasks, init } = arg;
    if let Some((target, tag, a)) = init {
        if check_tag(&tag, init_tag_of::<A>()).is_err() {
            eprintln!("pool worker {worker}: initializer type mismatch: `{tag}`");
            std::process::exit(1);
        }
        // SAFETY: as in `run`: `target` is the offset the pool measured with
        // `code_offset` from its own `f as fn(A)` (checked to lie in the
        // executable's image), this worker runs the same executable file, and
        // the pool started this `worker_main::<A>` for the same `A`; the tags
        // were compared above.
        let f = unsafe { std::mem::transmute::<*const (), fn(A)>(code_at(target)) };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(a))) {
            eprintln!("pool worker {worker}: the initializer panicked: {}", panic_message(&*p));
            std::process::exit(1);
        }
    }
    // Both buffers are reused from chunk to chunk.
    let mut task = Vec::new();
    let mut out = Vec::new();
    let mut done = 0usize;
    loop {
        // Copy the frame out of the queue at once, so that the receive lock
        // and the ring's room are given back before the chunk runs.
        match tasks.get_in_place() {
            Ok(view) => {
                task.clear();
                task.extend_from_slice(&view);
            }
            Err(_) => break,
        }
        let header = match wire::parse_task(&task) {
            Ok(TaskFrame::Run { header, .. }) => header,
            Ok(TaskFrame::Stop) | Err(_) => break,
        };
        let (job, chunk) = (header.job, header.chunk);
        out.clear();
        wire::reply_header(&mut out, wire::REPLY_STARTED, worker, job, chunk);
        if replies.put_bytes(&out).is_err() {
            break;
        }
        out.clear();
        wire::reply_header(&mut out, wire::REPLY_DONE, worker, job, chunk);
        let body = out.len();
        out.push(wire::DONE_OK);
        let mut reply = Reply { replies: &replies, out: &mut out, sent: false, broken: false };
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let Ok(TaskFrame::Run { header, items }) = wire::parse_task(&task) else {
                return Err(Failed::Other("malformed task frame".into()));
            };
            execute(header.runner, header.target, header.tag, items, &mut reply)
        }))
        .unwrap_or_else(|p| Err(Failed::Other(panic_message(&*p))));
        let (sent, broken) = (reply.sent, reply.broken);
        if broken {
            break;
        }
        if let Err(failed) = ran {
            out.truncate(body);
            match failed {
                Failed::Task { index, message } => {
                    out.push(wire::DONE_TASK_FAILED);
                    out.extend_from_slice(&u32::try_from(index).unwrap_or(u32::MAX).to_le_bytes());
                    out.extend_from_slice(message.as_bytes());
                }
                Failed::Other(message) => {
                    out.push(wire::DONE_ERROR);
                    out.extend_from_slice(message.as_bytes());
                }
            }
        }
        if !sent && replies.put_bytes(&out).is_err() {
            break;
        }
        done += 1;
        if maxtasks.is_some_and(|m| done >= m) {
            break;
        }
    }
}
