//! Open-file-description byte locks (`F_OFD_SETLK`), used to tell whether
//! any live process still holds one end of a channel.
//!
//! A holder takes a shared lock on one byte of the segment file through an
//! open file description of its own. The kernel drops the lock when the last
//! descriptor of that description closes — including when the process dies,
//! however it dies — so "is the byte locked?" answers "is a holder alive?"
//! without pids, polling of `/proc`, or trust in anything a peer wrote.
//! Descriptors inherited by a child share the description, and so the lock:
//! a hand-over to a child never lets go of it in between.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::conv::{ret, ret_owned_fd};

/// A new open file description of the same file as `fd`
/// (`open("/proc/self/fd/N")`), so that locks taken through it are its own.
pub(crate) fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: `path` is NUL-terminated; success returns a fresh descriptor.
    unsafe { ret_owned_fd(libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC)) }
}

fn flock_for(kind: libc::c_short, start: u64, len: u64) -> libc::flock {
    // SAFETY: `flock` is plain integers; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    fl
}

/// Takes a shared lock on `byte` through `fd`'s description (never blocks:
/// shared locks do not conflict with each other, and nobody takes exclusive
/// ones).
pub(crate) fn lock_shared(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    let fl = flock_for(libc::F_RDLCK as libc::c_short, byte, 1);
    // SAFETY: `fl` is a valid flock for the duration of the call.
    ret(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) }).map(drop)
}

/// Takes a shared lock on `byte` through `fd`'s description, retrying while
/// an exclusive lock (a collector of stale segments, which holds it only to
/// unlink) is in the way, for at most `wait`.
pub(crate) fn lock_shared_within(fd: BorrowedFd<'_>, byte: u64, wait: std::time::Duration) -> io::Result<()> {
    let start = std::time::Instant::now();
    loop {
        match lock_shared(fd, byte) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && start.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            other => return other,
        }
    }
}

/// Tries to take an exclusive lock on `byte` through `fd`'s description
/// (which must be open for writing). `Ok(false)` when another description
/// holds a lock on it.
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let fl = flock_for(libc::F_WRLCK as libc::c_short, byte, 1);
    // SAFETY: `fl` is a valid flock for the duration of the call.
    match ret(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) }) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether any description other than `fd`'s holds a lock on a byte of
/// `start..start + len`.
pub(crate) fn is_locked(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    let mut fl = flock_for(libc::F_WRLCK as libc::c_short, start, len);
    // SAFETY: `fl` is a valid, writable flock for the duration of the call.
    ret(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) })?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}
