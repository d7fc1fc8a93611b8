//! Conversion of C return values into `io::Result`, in one place.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `-1` means "look at errno"; anything else is success.
pub(crate) fn ret(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// pthread functions return the error number instead of setting errno.
pub(crate) fn ret_pthread(r: libc::c_int) -> io::Result<()> {
    if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
}

/// Wraps a returned descriptor in an [`OwnedFd`].
///
/// # Safety
///
/// `r` must be the return value of a call that, on success, returns a new
/// descriptor that nothing else owns.
pub(crate) unsafe fn ret_owned_fd(r: libc::c_int) -> io::Result<OwnedFd> {
    let fd = ret(r)?;
    // SAFETY: the caller promises `fd` is a fresh descriptor owned by no one.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
