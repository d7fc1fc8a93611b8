//! What can go wrong when starting, waiting for or signalling a process.

use std::fmt;
use std::io;

/// Why a [`Process`](crate::Process) operation failed.
///
/// # Examples
///
/// ```
/// use multiproc::{Process, ProcessError};
///
/// fn nothing(_: ()) {}
///
/// let mut p = Process::new(nothing, ());
/// assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
/// assert_eq!(ProcessError::NotStarted.to_string(), "the process has not been started");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// `join`, `terminate`, … on a process that was never started.
    NotStarted,
    /// `start` on a process that was started already (a process runs once,
    /// as in Python).
    AlreadyStarted,
    /// The fork start method was asked for in a process with more than one
    /// thread. A forked child holds a copy of every lock, including those
    /// held by threads that do not exist in it (the allocator's, stdout's…),
    /// so it could deadlock at random; use [`StartMethod::Spawn`] instead.
    ///
    /// [`StartMethod::Spawn`]: crate::StartMethod::Spawn
    ForkWithThreads {
        /// Threads counted in this process.
        threads: usize,
    },
    /// The target (or the code that decodes its argument) does not live in
    /// the executable itself, for instance in a library loaded with `dlopen`,
    /// so a re-executed copy of the program could not find it.
    TargetNotInExecutable,
    /// The argument could not be serialised for a spawned child: a
    /// `Serialize` impl failed (the text is its message), or postcard cannot
    /// encode the type (`#[serde(flatten)]`, say; the text is postcard's).
    Encode(String),
    /// The spawned child ended without reaching its entry point: the program
    /// does not call [`init`](crate::init) first thing in `main` (or, in a
    /// test binary, lacks [`test_support!`](crate::test_support)). The child
    /// ran `main` from the start instead of the target. Also what
    /// [`start`](crate::Process::start) returns in such a child, which would
    /// otherwise spawn copies of the program without end.
    EntryNotCalled,
    /// An error from the OS.
    Io(io::Error),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NotStarted => f.write_str("the process has not been started"),
            ProcessError::AlreadyStarted => f.write_str("the process has already been started (a process can be started only once)"),
            ProcessError::ForkWithThreads { threads } => write!(
                f,
                "cannot fork: this process has {threads} threads, and a forked child could deadlock on locks held by the others; use the spawn start method"
            ),
            ProcessError::TargetNotInExecutable => f.write_str(
                "the target function is not in the executable (a dynamically loaded library?), so a spawned child could not find it",
            ),
            ProcessError::Encode(e) => write!(f, "cannot serialise the argument for the child: {e}"),
            ProcessError::EntryNotCalled => f.write_str(
                "a spawned child did not run its target: call `multiproc::init()` first thing in `main` (or put `multiproc::test_support!();` in a test binary)",
            ),
            ProcessError::Io(e) => write!(f, "process operation failed: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ProcessError {
    fn from(e: io::Error) -> ProcessError {
        ProcessError::Io(e)
    }
}
