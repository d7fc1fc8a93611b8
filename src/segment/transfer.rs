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

/// What a serialised start argument needs passed to the child.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// Descriptors to keep open across `exec`, in slot order.
    pub(crate) fds: Vec<RawFd>,
    /// Descriptors made only for the child (see [`export_owned`]); the
    /// parent closes them once the child is started, by dropping this.
    pub(crate) owned: Vec<OwnedFd>,
}

thread_local! {
    static OUTGOING: RefCell<Option<Outgoing>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Runs `f` (which serialises a child's argument) and returns the
/// descriptors that the serialised anonymous objects need in the child.
pub(crate) fn collect_outgoing<R>(f: impl FnOnce() -> R) -> (R, Outgoing) {
    let previous = OUTGOING.with(|o| o.replace(Some(Outgoing::default())));
    let r = f();
    let out = OUTGOING.with(|o| o.replace(previous)).unwrap_or_default();
    (r, out)
}

/// Hands `fd` to the child being prepared, for it alone: the parent keeps it
/// only until the child is started. Its slot, or `None` (and `fd` closed)
/// when no spawn is serialising on this thread.
pub(crate) fn export_owned(fd: OwnedFd) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let out = o.as_mut()?;
        out.fds.push(fd.as_raw_fd());
        out.owned.push(fd);
        Some((out.fds.len() - 1) as u32)
    })
}

/// Records `fd` for the child being prepared; the slot it will have there.
/// `None` when no spawn is serialising on this thread.
pub(crate) fn export(fd: BorrowedFd<'_>) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let list = &mut o.as_mut()?.fds;
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
