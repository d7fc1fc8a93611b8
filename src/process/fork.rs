//! The fork start method: the child is a copy of the parent and runs the
//! target at once, with the argument moved in (no serialisation).
//!
//! # Safety
//!
//! The one unsafe step is the `fork` itself, whose contract is "the process
//! has one thread"; [`start`] checks that first and refuses otherwise.
#![allow(unsafe_code)]

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Job, ProcessError};
use crate::sys::{self, Pid, process::Forked};

/// Forks and runs the job in `slot` in the child. In the parent the slot is
/// emptied on success and left as it was on error.
///
/// Refuses with [`ProcessError::ForkWithThreads`] when the process has more
/// than one thread: the child would get a copy of every lock, including
/// those held at that moment by threads that do not exist in it (the
/// allocator's, stdout's, a user's `Mutex`), and could deadlock at random.
pub(super) fn start(slot: &mut Option<Box<dyn Job>>, die_with_parent: bool) -> Result<Pid, ProcessError> {
    let threads = sys::process::thread_count()?;
    if threads > 1 {
        return Err(ProcessError::ForkWithThreads { threads });
    }
    // Output still buffered now would otherwise be printed by both processes.
    let _ = std::io::stdout().flush();
    let parent = Pid::this();
    // SAFETY: `thread_count` just found this thread alone in the process,
    // and no other thread can have been started since: only a thread of this
    // process could start one, and this is the only one, busy here.
    match unsafe { sys::process::fork() }? {
        Forked::Parent(pid) => {
            // The parent's copy of the argument goes; the child has its own.
            *slot = None;
            Ok(pid)
        }
        Forked::Child => {
            let job = slot.take().expect("the caller checked that a job is present");
            child(job, die_with_parent, parent)
        }
    }
}

/// The forked child: runs the job and ends the process with `_exit`, so no
/// `atexit` handler or destructor of the parent's copy runs twice.
fn child(job: Box<dyn Job>, die_with_parent: bool, parent: Pid) -> ! {
    if die_with_parent {
        if let Err(e) = sys::process::die_with_parent(parent) {
            eprintln!("multiproc: forked child cannot set PR_SET_PDEATHSIG: {e}");
            sys::process::exit_now(1);
        }
    }
    // A panic's message has been printed by the panic hook.
    let code = match catch_unwind(AssertUnwindSafe(|| job.run())) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    let _ = std::io::stdout().flush();
    sys::process::exit_now(code)
}
