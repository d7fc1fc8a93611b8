//! Files in the shared-memory directory: opened relative to a directory
//! descriptor, never following symbolic links.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::conv::{ret, ret_owned_fd};

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `open(dir, O_DIRECTORY | O_NOFOLLOW)` — the directory that holds named
/// segments. A symbolic link as the last component is refused.
pub(crate) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let path = cstring(dir.as_os_str().as_bytes())?;
    // SAFETY: `path` is a valid NUL-terminated string; the flags ask for a
    // new descriptor that we own.
    unsafe {
        ret_owned_fd(libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC))
    }
}

/// `openat(dir, name, O_RDWR | O_NOFOLLOW [| O_CREAT | O_EXCL], 0600)`.
pub(crate) fn open_at(dir: BorrowedFd<'_>, name: &str, create: bool) -> io::Result<OwnedFd> {
    let cname = cstring(name.as_bytes())?;
    let mut flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    if create {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    // SAFETY: `cname` is NUL-terminated, `dir` is an open descriptor for the
    // duration of the call, and a successful call returns a fresh descriptor.
    unsafe { ret_owned_fd(libc::openat(dir.as_raw_fd(), cname.as_ptr(), flags, 0o600 as libc::c_uint)) }
}

/// `unlinkat(dir, name, 0)`.
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let cname = cstring(name.as_bytes())?;
    // SAFETY: `cname` is NUL-terminated and `dir` is open for the call.
    ret(unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) }).map(drop)
}

/// What `fstat` says about a segment file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileInfo {
    pub(crate) size: u64,
    pub(crate) is_regular: bool,
    pub(crate) uid: u32,
    /// Names the file has; 0 once it was unlinked.
    pub(crate) links: u64,
    /// Device and inode: which file this is.
    pub(crate) id: (u64, u64),
}

impl FileInfo {
    // The stat fields are u32 on some targets.
    #[allow(clippy::useless_conversion)]
    fn from_stat(st: &libc::stat) -> FileInfo {
        FileInfo {
            size: st.st_size as u64,
            is_regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
            uid: st.st_uid,
            links: u64::from(st.st_nlink),
            id: (u64::from(st.st_dev), u64::from(st.st_ino)),
        }
    }
}

/// `fstat(fd)`.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points to writable memory for one `stat`; `fd` is open.
    ret(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled in the whole structure.
    let st = unsafe { st.assume_init() };
    Ok(FileInfo::from_stat(&st))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: what the name points to now.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<FileInfo> {
    let cname = cstring(name.as_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `cname` is NUL-terminated, `dir` is open and `st` is writable
    // memory for one `stat`.
    ret(unsafe { libc::fstatat(dir.as_raw_fd(), cname.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: fstatat succeeded, so it filled in the whole structure.
    Ok(FileInfo::from_stat(&unsafe { st.assume_init() }))
}

/// Writes all of `buf` at `offset` (`pwrite`), retrying on EINTR.
pub(crate) fn write_at(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &buf[done..];
        // SAFETY: `rest` is valid for reads of `rest.len()` bytes.
        let r = unsafe {
            libc::pwrite(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), (offset + done as u64) as libc::off_t)
        };
        if r > 0 {
            done += r as usize;
        } else if r == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        } else {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// `ftruncate(fd, len)`.
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    // SAFETY: plain syscall on an open descriptor.
    ret(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// `geteuid()`.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Reads at most `buf.len()` bytes at `offset` (`pread`), retrying on EINTR.
pub(crate) fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset as libc::off_t) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
