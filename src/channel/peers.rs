//! Which processes still hold a side of a channel.
//!
//! A process that holds a side (the writers of a queue, one end of a pipe)
//! keeps a shared byte lock on the channel's segment through an open file
//! description of its own ([`Hold`]). The kernel releases the lock when the
//! last descriptor of that description closes, which a dead process does
//! too; [`anyone_holds`] asks the kernel whether any such lock is left. See
//! [`crate::sys::lock`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys::lock;

/// This process's hold on one side of a channel: a description with a
/// shared lock on byte `byte` of the segment. Dropping it lets go.
#[derive(Debug)]
pub(crate) struct Hold {
    fd: OwnedFd,
}

impl Hold {
    /// Takes a hold on `byte` of the segment behind `seg`.
    pub(crate) fn take(seg: BorrowedFd<'_>, byte: u64) -> io::Result<Hold> {
        let fd = lock::reopen(seg)?;
        lock::lock_shared(fd.as_fd(), byte)?;
        Ok(Hold { fd })
    }

    /// Wraps a descriptor that already holds the lock (one inherited from
    /// the parent, sharing its description).
    pub(crate) fn adopt(fd: OwnedFd) -> Hold {
        Hold { fd }
    }

    /// The descriptor, to hand to a child.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The descriptor, to hand to a child for good.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Whether any process holds `byte` of the segment behind `seg`. When the
/// kernel cannot be asked, assumes yes: a wrong "no" would end a stream
/// early, a wrong "yes" only delays noticing.
pub(crate) fn anyone_holds(seg: BorrowedFd<'_>, byte: u64) -> bool {
    anyone_holds_any(seg, &[(byte, 1)])
}

/// Whether any process holds a byte in one of the `(start, len)` ranges.
pub(crate) fn anyone_holds_any(seg: BorrowedFd<'_>, ranges: &[(u64, u64)]) -> bool {
    match lock::reopen(seg) {
        Ok(probe) => ranges.iter().any(|&(start, len)| lock::is_locked(probe.as_fd(), start, len).unwrap_or(true)),
        Err(_) => true,
    }
}

/// Whether `a` and `b` are descriptors of the same file (device and inode),
/// to check that a hold inherited by a child belongs to the segment it came
/// with. `false` when either cannot be asked.
pub(crate) fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |fd: BorrowedFd<'_>| {
        let m = std::fs::File::from(fd.try_clone_to_owned()?).metadata()?;
        io::Result::Ok((m.dev(), m.ino()))
    };
    matches!((id(a), id(b)), (Ok(x), Ok(y)) if x == y)
}
