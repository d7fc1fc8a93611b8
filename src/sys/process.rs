//! Process control: fork, wait, signals, pidfds, and the pre-exec hook of
//! the spawn start method.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use super::conv::{ret, ret_owned_fd};

/// A process id. Only this process's own children are waited on or
/// signalled, and only until they are reaped, so the id cannot be reused
/// under us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Pid(libc::pid_t);

impl Pid {
    /// The calling process.
    pub(crate) fn this() -> Pid {
        // SAFETY: getpid has no preconditions.
        Pid(unsafe { libc::getpid() })
    }

    /// The parent of the calling process.
    pub(crate) fn parent() -> Pid {
        // SAFETY: getppid has no preconditions.
        Pid(unsafe { libc::getppid() })
    }

    /// Wraps a number read from the OS (a child we spawned).
    pub(crate) fn from_u32(pid: u32) -> Pid {
        Pid(pid as libc::pid_t)
    }

    /// The number, for display.
    pub(crate) fn as_u32(self) -> u32 {
        self.0 as u32
    }
}

/// Where `fork` left the caller.
pub(crate) enum Forked {
    /// In the parent; the child's id.
    Parent(Pid),
    /// In the child.
    Child,
}

/// `fork()`.
///
/// # Safety
///
/// The calling process must have exactly one thread: otherwise the child may
/// inherit locks held by threads that do not exist in it.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees the process is single-threaded, so the
    // child starts with a consistent copy of every lock.
    let pid = ret(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(Pid(pid)) })
}

/// Number of threads in the calling process (entries of `/proc/self/task`).
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// How a child ended, Python style: the exit code, or `-signum`.
pub(crate) fn decode_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        // Stopped/continued are not requested (no WUNTRACED); treat as alive.
        i32::MIN
    }
}

/// `waitpid(pid, WNOHANG?)`: `Some(exit code)` once the child has ended.
pub(crate) fn wait(pid: Pid, block: bool) -> io::Result<Option<i32>> {
    let mut status: libc::c_int = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let r = unsafe { libc::waitpid(pid.0, &mut status, flags) };
        match r {
            0 => return Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            _ => return Ok(Some(decode_status(status))),
        }
    }
}

/// `kill(pid, sig)`.
pub(crate) fn kill(pid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    ret(unsafe { libc::kill(pid.0, sig) }).map(drop)
}

/// `pidfd_open(pid)`: a descriptor that becomes readable when the child ends.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open returns a fresh descriptor (close-on-exec) on success.
    unsafe { ret_owned_fd(libc::syscall(libc::SYS_pidfd_open, pid.0, 0) as libc::c_int) }
}

/// `poll(fd, POLLIN, timeout)`: whether `fd` became readable in time.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let ms = left.map_or(-1, |l| {
            l.as_millis().min(i32::MAX as u128) as libc::c_int + i32::from(l.subsec_nanos() % 1_000_000 != 0)
        });
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is one valid pollfd for the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        match r {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            0 => return Ok(false),
            _ => return Ok(true),
        }
    }
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)` and a check that the parent is still
/// `parent` (it may have died before the call). Async-signal-safe.
pub(crate) fn die_with_parent(parent: Pid) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    ret(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) })?;
    if Pid::parent() != parent {
        // The parent is already gone: do what the signal would have done.
        exit_now(-libc::SIGKILL);
    }
    Ok(())
}

/// `_exit(code)`: ends the process without running `atexit` handlers or
/// destructors. A negative code `-sig` re-raises `sig` so the parent sees a
/// death by signal.
pub(crate) fn exit_now(code: i32) -> ! {
    if code < 0 {
        // SAFETY: plain syscalls; restoring the default action makes the
        // raised signal fatal.
        unsafe {
            libc::signal(-code, libc::SIG_DFL);
            libc::raise(-code);
        }
    }
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code & 0xff) }
}

/// Arranges for the spawned child to keep `keep` open across `exec` and,
/// if `parent` is given, to die with it.
pub(crate) fn prepare_spawn(cmd: &mut Command, keep: Vec<RawFd>, parent: Option<Pid>) {
    let hook = move || -> io::Result<()> {
        for &fd in &keep {
            // SAFETY: fcntl is async-signal-safe; `fd` was open in the parent
            // at fork time and so is open here.
            ret(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
        }
        if let Some(parent) = parent {
            die_with_parent(parent)?;
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec in the child and calls only
    // async-signal-safe functions (fcntl, prctl, getppid, _exit, signal,
    // raise); it allocates nothing, since `keep` was built before the fork.
    unsafe { cmd.pre_exec(hook) };
}

/// Whether two code addresses lie in the same loaded object (executable or
/// shared library), so that their distance is the same in a re-executed copy.
pub(crate) fn same_object(a: usize, b: usize) -> bool {
    fn base(addr: usize) -> Option<usize> {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::uninit();
        // SAFETY: dladdr only reads the loader's tables and fills `info`.
        let found = unsafe { libc::dladdr(addr as *const libc::c_void, info.as_mut_ptr()) };
        // SAFETY: a non-zero return means `info` was filled in.
        (found != 0).then(|| unsafe { info.assume_init() }.dli_fbase as usize)
    }
    matches!((base(a), base(b)), (Some(x), Some(y)) if x == y)
}

/// Takes ownership of an inherited descriptor number, if it is open.
pub(crate) fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only queries the descriptor.
    ret(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: `fd` is open (checked above); the spawn protocol hands each
    // inherited descriptor to exactly one owner, the child's entry point, and
    // marks it close-on-exec again below so grandchildren do not inherit it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on a descriptor we now own.
    ret(unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(owned)
}

/// Where a descriptor points (`readlink /proc/self/fd/N`), to recognise ours.
pub(crate) fn fd_target(fd: BorrowedFd<'_>) -> io::Result<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Where descriptor number `fd` points (`readlink /proc/self/fd/N`), checked
/// *before* taking ownership of an inherited number that might not be ours.
/// An error means the number is not open.
pub(crate) fn raw_fd_target(fd: RawFd) -> io::Result<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
}

/// `gettid()` — the calling thread's id, unique among the live threads of
/// the system (of its pid namespace).
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

thread_local! {
    /// This thread's id, once asked for; 0 until then.
    static TID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Its id and the low 32 bits of its start time, as [`token`] puts them
    /// together (one load on the per-message path); 0 until the start time
    /// is read.
    static TOKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// [`gettid`] without a system call after the first: for per-message paths
/// (a channel side biased to one thread compares it on every message).
///
/// The cache is per thread; a child made by `fork` runs on a copy of the
/// forking thread's cache but has a thread id of its own, so a `fork`
/// handler, registered with the first call, clears the copy in the child.
#[inline]
pub(crate) fn current_tid() -> u32 {
    let tid = TID.get();
    if tid != 0 { tid } else { cache_tid() }
}

/// The calling thread as an id that stays unique after it exits: its id,
/// and the low 32 bits of its start time above them. 0 until
/// [`thread_token`] has been asked once on this thread (so a cheap
/// comparison with a recorded token fails safe).
#[inline]
pub(crate) fn cached_thread_token() -> u64 {
    TOKEN.get()
}

/// [`cached_thread_token`], reading the start time from `/proc` the first
/// time; 0 when it cannot be read.
#[cold]
pub(crate) fn thread_token() -> u64 {
    // First: the first call installs the fork handler that clears the cache.
    let tid = current_tid();
    if NO_CACHE.load(std::sync::atomic::Ordering::Relaxed) {
        return 0;
    }
    if TOKEN.get() == 0 {
        TOKEN.set(token(tid, proc_stat(tid).map_or(0, |s| s.1 as u32)));
    }
    TOKEN.get()
}

fn token(tid: u32, start: u32) -> u64 {
    if start == 0 { 0 } else { u64::from(tid) | u64::from(start) << 32 }
}

/// The thread id and start-time bits of a token.
pub(crate) fn token_parts(token: u64) -> (u32, u32) {
    (token as u32, (token >> 32) as u32)
}

#[cold]
fn cache_tid() -> u32 {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        extern "C" fn clear_in_child() {
            TID.set(0);
            TOKEN.set(0);
        }
        // Without the handler a forked child would compare a stale id.
        if in_forked_child(clear_in_child) {
            NO_CACHE.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let tid = gettid();
    if !NO_CACHE.load(std::sync::atomic::Ordering::Relaxed) {
        TID.set(tid);
    }
    tid
}

/// Has `handler` run in the child after every later `fork()` (glibc's and
/// musl's `fork` run these; a raw `clone` would not, and nothing here makes
/// one). It must do only what is safe in a freshly forked child: system
/// calls, plain stores. Returns `false` when it could not be installed
/// (ENOMEM).
pub(crate) fn in_forked_child(handler: extern "C" fn()) -> bool {
    // SAFETY: `pthread_atfork` only records the pointer; a plain `extern
    // "C" fn()` lives for the whole program, and the contract above keeps
    // what it does safe in the child.
    unsafe { libc::pthread_atfork(None, None, Some(handler)) == 0 }
}

/// Set until the fork handler is registered.
static NO_CACHE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// `kill(pid, 0)` — whether a process with id `pid` exists (a zombie
/// counts). `pid` may come from shared memory: values that `kill` would read
/// as a process group or "every process" (0, or above `i32::MAX`) are
/// answered `false` without a system call.
pub(crate) fn exists(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else { return false };
    if p <= 0 {
        return false;
    }
    // SAFETY: plain syscall with integer arguments; signal 0 only checks.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Low 32 bits of the inode of the calling process's pid namespace (0:
/// unknown).
pub(crate) fn own_pid_ns() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino() as u32)
}

/// `(state, start time)` from `/proc/<id>/stat`, for a process or a thread
/// id (a thread's own directory is there too, though not listed); `Err`
/// when it cannot be read or parsed (`InvalidData`).
pub(crate) fn proc_stat(id: u32) -> io::Result<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{id}/stat"))?;
    // The command name (field 2) is in parentheses and may hold anything,
    // so fields are counted from the last ')'.
    let bad = || io::Error::from(io::ErrorKind::InvalidData);
    let rest = text.rsplit_once(')').ok_or_else(bad)?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next().and_then(|s| s.chars().next()).ok_or_else(bad)?;
    // Field 22 (starttime) is the 19th after the state (field 3).
    let start = fields.nth(18).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok((state, start))
}

/// Whether the process or thread `id` of pid namespace `ns`, whose start
/// time passes `started`, still runs (a zombie does not), as seen from
/// namespace `own_ns`. Ids come from shared memory, where another process
/// recorded them: it errs towards "alive" when it cannot tell (another
/// namespace, no `/proc`). What cannot be an id (0, above `i32::MAX`) is
/// the caller's to judge first.
pub(crate) fn task_alive(id: u32, ns: u32, own_ns: u32, started: impl Fn(u64) -> bool) -> bool {
    if ns != own_ns || ns == 0 {
        // Another pid namespace (or unknown): its id means nothing here.
        return true;
    }
    match proc_stat(id) {
        Ok((state, start)) => !matches!(state, 'Z' | 'X' | 'x') && started(start),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => false,
        Err(_) => exists(id),
    }
}
