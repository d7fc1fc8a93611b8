//! The worker side of a [`Pool`](crate::Pool): the messages, the worker
//! loop, and the runners that call a task's target.
//!
//! # Naming functions across processes
//!
//! A task names two functions by their offsets from the process module's
//! anchor ([`code_offset`](crate::process::code_offset)): a monomorphised
//! [`run::<A, R>`](run), which decodes a chunk of `A`s, calls the target on
//! each and encodes the `R`s, and the target `fn(A) -> R` itself. Workers run
//! the same executable file as the pool's owner (spawned children check the
//! file's identity; forked ones share the image), so the same offsets name
//! the same functions there.
//!
//! # Safety
//!
//! The unsafe steps are the two transmutes that turn those addresses back
//! into function pointers, in [`execute`] and [`run`]; their `SAFETY`
//! comments spell out why they hold.
#![allow(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Queue;
use crate::process::code_at;

/// A message from the pool to its workers.
#[derive(Serialize, Deserialize)]
pub(super) enum Task {
    /// Run `target` on each item of a chunk.
    Run {
        /// The call the chunk belongs to.
        job: u64,
        /// The chunk's number within the call.
        chunk: u32,
        /// Offset of `run::<A, R>`.
        runner: isize,
        /// Offset of the target `fn(A) -> R`.
        target: isize,
        /// `type_name::<fn(A) -> R>()`, checked by the runner.
        tag: String,
        /// The chunk, a postcard-encoded sequence of `A`.
        args: Vec<u8>,
    },
    /// Leave the worker loop and exit.
    Stop,
}

/// A message from a worker to the pool.
#[derive(Serialize, Deserialize)]
pub(super) enum Reply {
    /// The worker took this chunk and is about to run it.
    Started { worker: u64, job: u64, chunk: u32 },
    /// The chunk is done: the encoded `Vec<Result<R, String>>` (one entry
    /// per item, `Err` with the panic message), or why it could not run.
    Done { worker: u64, job: u64, chunk: u32, out: Result<Vec<u8>, String> },
}

/// The signature shared by every instance of [`run`]: the target's address,
/// the type tag, the encoded chunk.
pub(super) type Runner = fn(*const (), &str, &[u8]) -> Result<Vec<u8>, String>;

/// The tag that pairs a runner with its target's type.
pub(super) fn tag_of<A, R>() -> &'static str {
    std::any::type_name::<fn(A) -> R>()
}

/// The address of `run::<A, R>`.
pub(super) fn runner_of<A: DeserializeOwned, R: Serialize>() -> *const () {
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

/// Decodes a chunk, calls the target on each item (each under
/// `catch_unwind`), encodes the results.
fn run<A: DeserializeOwned, R: Serialize>(target: *const (), tag: &str, args: &[u8]) -> Result<Vec<u8>, String> {
    check_tag(tag, tag_of::<A, R>())?;
    let args: Vec<A> = decode_args(args)?;
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
    call_each(args, f)
}

/// The tag that pairs [`run_pairs`] with its target's type.
pub(super) fn tag_of_pairs<A, B, R>() -> &'static str {
    std::any::type_name::<fn(A, B) -> R>()
}

/// The address of `run_pairs::<A, B, R>`.
pub(super) fn pairs_runner_of<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>() -> *const () {
    run_pairs::<A, B, R> as Runner as *const ()
}

/// As [`run`], for a target `fn(A, B) -> R` and a chunk of pairs.
fn run_pairs<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>(
    target: *const (),
    tag: &str,
    args: &[u8],
) -> Result<Vec<u8>, String> {
    check_tag(tag, tag_of_pairs::<A, B, R>())?;
    let args: Vec<(A, B)> = decode_args(args)?;
    // SAFETY: as in `run`, with `fn(A, B) -> R`: the pool measured the
    // target's offset from its own `f as fn(A, B) -> R` and this runner's
    // from `run_pairs::<A, B, R>` for the same types; the tags were compared
    // above.
    let f = unsafe { std::mem::transmute::<*const (), fn(A, B) -> R>(target) };
    call_each(args, |(a, b)| f(a, b))
}

fn check_tag(got: &str, want: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("task type mismatch: the pool sent `{got}`, this runner is for `{want}`"))
    }
}

fn decode_args<X: DeserializeOwned>(args: &[u8]) -> Result<Vec<X>, String> {
    postcard::from_bytes(args).map_err(|e| format!("cannot decode the arguments: {e}"))
}

/// Calls `f` on each item under `catch_unwind` and encodes the outcomes.
fn call_each<X, R: Serialize>(args: Vec<X>, f: impl Fn(X) -> R) -> Result<Vec<u8>, String> {
    let out: Vec<Result<R, String>> =
        args.into_iter().map(|a| catch_unwind(AssertUnwindSafe(|| f(a))).map_err(|p| panic_message(&*p))).collect();
    postcard::to_allocvec(&out).map_err(|e| format!("cannot encode the results: {e}"))
}

/// Finds the runner at `runner` and calls it.
fn execute(runner: isize, target: isize, tag: &str, args: &[u8]) -> Result<Vec<u8>, String> {
    // SAFETY: the address is the anchor's plus the offset the pool measured
    // with `code_offset` from its own `run::<A, R>`, which lies in the
    // executable's image with the anchor; this worker runs the same
    // executable file (see `run`), so the address is that function here.
    // Every `run::<A, R>` has the type `Runner`, since `A` and `R` appear
    // only in its body.
    let runner = unsafe { std::mem::transmute::<*const (), Runner>(code_at(runner)) };
    runner(code_at(target), tag, args)
}

/// What a worker process is started with.
#[derive(Serialize, Deserialize)]
pub(super) struct WorkerArgs<A> {
    pub(super) tasks: Queue<Task>,
    pub(super) replies: Queue<Reply>,
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

/// The worker process: runs the initializer, then takes tasks until
/// [`Task::Stop`], until a queue fails, or after `maxtasks` chunks,
/// announcing each chunk before running it.
pub(super) fn worker_main<A: DeserializeOwned>(arg: WorkerArgs<A>) {
    let WorkerArgs { tasks, replies, worker, maxtasks, init } = arg;
    if let Some((target, tag, a)) = init {
        if let Err(e) = check_tag(&tag, init_tag_of::<A>()) {
            eprintln!("pool worker {worker}: {e}");
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
    let mut done = 0usize;
    while let Ok(task) = tasks.get() {
        let Task::Run { job, chunk, runner, target, tag, args } = task else { break };
        if replies.put(Reply::Started { worker, job, chunk }).is_err() {
            break;
        }
        let out = catch_unwind(AssertUnwindSafe(|| execute(runner, target, &tag, &args)))
            .unwrap_or_else(|p| Err(panic_message(&*p)));
        if replies.put(Reply::Done { worker, job, chunk, out }).is_err() {
            break;
        }
        done += 1;
        if maxtasks.is_some_and(|m| done >= m) {
            break;
        }
    }
}
