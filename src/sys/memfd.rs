//! Anonymous memory files (`memfd_create`), the backing of anonymous segments.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::conv::{ret, ret_owned_fd};

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
///
/// The descriptor is close-on-exec; the spawn path clears that flag for
/// exactly the descriptors it hands to a child.
pub(crate) fn create(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; a successful call returns a fresh fd.
    unsafe { ret_owned_fd(libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)) }
}

/// Seals the size of a memfd: it can neither shrink (no `SIGBUS` for a
/// mapping) nor grow, and the seals themselves are final.
pub(crate) fn seal_size(fd: BorrowedFd<'_>) -> io::Result<()> {
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on an open descriptor with integer arguments.
    ret(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// Whether `fd` is a memfd whose size can no longer shrink.
pub(crate) fn is_size_sealed(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fcntl on an open descriptor; fails harmlessly on other files.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_SHRINK != 0
}
