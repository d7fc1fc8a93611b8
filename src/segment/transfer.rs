//! Handing anonymous objects to a spawned child.
//!
//! An anonymous segment is a memfd: it has no name, so a child started by
//! re-executing the binary can only reach it through an inherited
//! descriptor. While the spawn path serialises a child's argument, each
//! anonymous segment in it records its descriptor here and serialises as a
//! slot number; the spawn path keeps exactly those descriptors open across
//! `exec`. In the child, the entry point adopts them and each deserialised
//! object takes its own duplicate of its slot's descriptor.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

thread_local! {
    static OUTGOING: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Runs `f` (which serialises a child's argument) and returns the
/// descriptors that the serialised anonymous objects need in the child.
pub(crate) fn collect_outgoing<R>(f: impl FnOnce() -> R) -> (R, Vec<RawFd>) {
    let previous = OUTGOING.with(|o| o.replace(Some(Vec::new())));
    let r = f();
    let fds = OUTGOING.with(|o| o.replace(previous)).unwrap_or_default();
    (r, fds)
}

/// Records `fd` for the child being prepared; the slot it will have there.
/// `None` when no spawn is serialising on this thread.
pub(crate) fn export(fd: BorrowedFd<'_>) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let list = o.as_mut()?;
        let raw = fd.as_raw_fd();
        let slot = list.iter().position(|&f| f == raw).unwrap_or_else(|| {
            list.push(raw);
            list.len() - 1
        });
        Some(slot as u32)
    })
}

/// Runs `f` (which deserialises the argument) with the inherited
/// descriptors available to [`import`]; closes them afterwards.
pub(crate) fn with_incoming<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let previous = INCOMING.with(|i| i.replace(Some(fds)));
    let r = f();
    INCOMING.with(|i| i.replace(previous));
    r
}

/// A new descriptor for the inherited object in `slot`.
pub(crate) fn import(slot: u32) -> io::Result<OwnedFd> {
    INCOMING.with(|i| {
        let i = i.borrow();
        let list = i
            .as_ref()
            .ok_or_else(|| io::Error::other("an inherited object can only be received by a child's entry point"))?;
        let fd = list.get(slot as usize).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("no inherited descriptor in slot {slot}"))
        })?;
        fd.try_clone()
    })
}
