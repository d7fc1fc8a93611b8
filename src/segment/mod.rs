//! Shared-memory segments: named files in a shared-memory directory, or
//! anonymous memfds, each starting with a 128-byte header that says what it
//! holds (kind, element type and layout, size, creator, flags); and the
//! tools to see which segments exist and to clean up the stale ones.
//!
//! [`SharedMemory`] is the public raw form; every typed object of
//! [`sync`](crate::sync), [`shared`](crate::shared) and
//! [`channel`](crate::channel) is one segment too. [`list`], [`inspect`] and
//! [`gc`] look at a directory of named segments; the `multiproc` command-line
//! tool is built on them.
//!
//! # Attached, stale, persistent
//!
//! Every process that has a named segment open holds a shared lock on its
//! first byte (an open-file-description lock taken through the segment's
//! own descriptor). The kernel drops that lock when the last descriptor
//! goes, however the process ends, so the question "does
//! any live process use this segment?" is answered by the kernel, not by
//! pids written in shared memory (which a dead process cannot clear and a
//! reused pid would fake).
//!
//! A segment of this crate that nobody holds is **stale**: its creator
//! exited or was killed without calling [`unlink`] on it, as Python's
//! `SharedMemory` leaks when a process dies before `unlink()`. [`gc`] removes
//! stale segments; `multiproc gc` is the same from a shell. A segment
//! created under a [`Name::persistent`] name is meant to outlive its users and
//! is never collected. Anonymous objects are memfds and never leave anything
//! behind.
//!
//! [`gc`] touches only files that are provably this crate's and this user's:
//! a regular file owned by the caller whose header carries the crate's magic
//! and the attach-lock flag (segments of builds from before attach locks lack
//! it and are left alone), not marked persistent, and whose attach byte the
//! collector can lock *exclusively*. It unlinks while holding that exclusive
//! lock, after checking that the name still refers to the file it locked.
//! An opener that raced with it finds, once it gets its shared lock, that its
//! file has no name left and reports [`ShmError::NotFound`], the same as if
//! it had come a moment later. What cannot be closed: between that last
//! check and the `unlink`, another process could replace the name with a new
//! file (there is no "unlink this inode" system call); it would have to do so
//! within microseconds, and only processes of the same user can.
//!
//! A child forked by any thread holds copies of the parent's descriptors
//! until it execs (or for good, with the fork start method), and with them
//! the attach locks: a segment open in the parent at that moment counts as
//! attached while the child has it, which is what it is.
//!
//! A creator killed in the microseconds between creating the file and
//! writing the first header bytes leaves an empty file that is not
//! recognisably ours; it is listed as [`Status::Foreign`] and not removed.
//!
//! # Threat model
//!
//! A *peer* is any process that can write a segment: for a named segment,
//! processes that can open its file (by default only this user's: files
//! are created `0600`, and `open` refuses a file owned by another user
//! unless [`Name::allow_owner`] names that user); for an anonymous object,
//! the processes it was handed to. Peers are trusted to be *this program*,
//! not to be correct: a peer may crash at any instruction, be `SIGKILL`ed,
//! or run buggy or hostile code with the same mapping.
//!
//! What a peer with write access **can** do:
//! - write any bytes at any time: wrong values in a [`Value`](crate::Value)
//!   or [`Array`](crate::Array), forged or garbled messages, rewritten ring
//!   indices or lock words. Readers get wrong data or errors
//!   ([`ShmError::Corrupt`] on open, a channel
//!   [`Failure`](crate::channel::Failure) or end of stream, a lock that
//!   reports itself unusable), never undefined behaviour;
//! - hold a lock, or keep a queue full or empty, for as long as it lives:
//!   a call without a timeout waits as long as that lasts (as with any
//!   lock); every blocking call has a `_timeout` or `try_` variant, and a
//!   *dead* holder is always detected (robust mutexes, kernel-held file
//!   locks);
//! - remove the name of a named segment, or create a file under a name
//!   before its rightful creator does (which then gets
//!   [`ShmError::AlreadyExists`]);
//! - **truncate a named segment file** while others have it mapped. This is
//!   the limit of what a shared mapping can guarantee: the next access to a
//!   page past the new end raises `SIGBUS` in every process that touches it,
//!   and the crate does not install a signal handler to turn that into an
//!   error (that would hijack the program's own signal handling and cannot
//!   be done soundly in a library). Opening a truncated segment is an error
//!   ([`ShmError::Corrupt`] naming the sizes). Anonymous objects are sealed
//!   memfds (`F_SEAL_SHRINK`), which nobody can truncate: use them when
//!   peers are not trusted this far.
//!
//! What it **cannot** do:
//! - cause undefined behaviour in a reader: control blocks are atomics and
//!   pthread mutexes (any bit pattern is a valid value), every index and
//!   length read from shared memory is bounds-checked before use, headers
//!   are validated once on open and never trusted again, and a mutex whose
//!   glibc kind word was rewritten is refused before glibc dispatches on it
//!   (a rewrite *during* a pthread call is beyond what a shared-memory lock
//!   can defend);
//! - make a call with a timeout wait past it, or hang a call on a peer that
//!   died;
//! - reach other segments or files: each object is its own file and
//!   mapping, nothing in a segment refers outside it, names are single
//!   file-name components, and neither the segment nor its directory is
//!   ever opened through a symbolic link;
//! - make [`gc`] remove anything but this user's stale segments of this
//!   crate.
//!
//! Fuzz targets (`fuzz/`) and the crash torture test (`tests/torture.rs`)
//! exercise these promises.

mod error;
pub(crate) mod header;
mod inventory;
mod name;
pub(crate) mod object;
mod shared_memory;
pub(crate) mod transfer;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use error::ShmError;
pub use inventory::{Details, Entry, HeaderInfo, Status, default_dir, gc, inspect, list};
pub use name::{DEFAULT_DIR, DIR_ENV, MAX_NAME_LEN, Name};
pub use shared_memory::SharedMemory;

use crate::sys::{self, Pid, fs, memfd, mman::Mapping};
use header::{DATA_OFFSET, FLAG_ATTACHED, FLAG_PERSISTENT, Header, STATE_CREATING, STATE_OFFSET, STATE_READY, Shape};

/// The byte of a named segment file on which every process that has it
/// open holds a shared open-file-description lock (taken through the
/// segment's own descriptor, so it lasts exactly as long as the mapping's
/// descriptor, in this process and in forked children that inherited it).
/// A segment whose byte nobody holds is not in use by any live process: see
/// [`inventory`]. Channels lock other bytes (`channel::peers`).
pub(crate) const ATTACH_BYTE: u64 = 0;

/// How long an opener waits for a creator to finish initialising.
///
/// Under `cargo fuzz` (which builds every crate with `--cfg fuzzing`) the
/// wait is 2 ms, so that the many blank or half-created inputs a fuzzer
/// makes are not a second each; the waiting path is the same.
pub(crate) const OPEN_WAIT: Duration = if cfg!(fuzzing) { Duration::from_millis(2) } else { Duration::from_secs(1) };

/// A mapped segment whose header has been written (by us) or validated (when
/// opened). The values cached here were checked once; the header in shared
/// memory is never trusted again, since a peer could rewrite it.
#[derive(Debug)]
pub(crate) struct Segment {
    map: Mapping,
    fd: OwnedFd,
    name: Option<Name>,
    count: usize,
}

/// How a segment travels to a child process inside its start argument.
#[derive(Serialize, Deserialize)]
enum Token {
    Named { dir: std::path::PathBuf, name: String, owner: Option<u32> },
    Inherited { slot: u32 },
}

fn display(name: Option<&Name>) -> String {
    name.map_or_else(|| "anonymous segment".to_string(), |n| n.to_string())
}

impl Segment {
    /// Creates a segment for `count` elements of `shape`, runs `init` on its
    /// (zeroed) data, then publishes it. Named when `name` is given.
    pub(crate) fn create(
        name: Option<Name>,
        shape: &Shape,
        count: usize,
        init: impl FnOnce(*mut u8) -> io::Result<()>,
    ) -> Result<Segment, ShmError> {
        let shown = display(name.as_ref());
        let data_len =
            shape.data_len(count).filter(|&l| l > 0 && l <= isize::MAX as usize - DATA_OFFSET).ok_or_else(|| {
                ShmError::InvalidSize {
                    reason: if count == 0 && shape.ctrl_size == 0 {
                        "size 0: a segment must hold at least one byte".to_string()
                    } else {
                        format!("{count} elements of {} bytes do not fit in memory", shape.elem.size)
                    },
                }
            })?;
        let (fd, dir) = match &name {
            Some(n) => {
                check_name(n)?;
                let dir = open_dir(n)?;
                let fd = fs::open_at(dir.as_fd(), n.as_str(), true).map_err(|e| ShmError::io(&shown, "create", e))?;
                if let Err(e) = attach_lock(fd.as_fd(), &shown) {
                    let _ = fs::unlink_at(dir.as_fd(), n.as_str());
                    return Err(e);
                }
                (fd, Some(dir))
            }
            None => {
                let label = CString::new(format!("multiproc:{}", shape.kind.name())).expect("no NUL");
                (memfd::create(&label).map_err(|e| ShmError::io(&shown, "memfd_create", e))?, None)
            }
        };
        let built = (|| {
            let flags = match &name {
                Some(n) if n.is_persistent() => FLAG_ATTACHED | FLAG_PERSISTENT,
                Some(_) => FLAG_ATTACHED,
                None => 0,
            };
            let header = Header::new(shape, count, data_len, Pid::this().as_u32(), flags);
            if name.is_some() {
                // The header (still "being created") goes in first, so that a
                // creator killed from here on leaves a file that is
                // recognisably ours and can be collected as stale.
                fs::write_at(fd.as_fd(), &header.bytes, 0).map_err(|e| ShmError::io(&shown, "write header", e))?;
            }
            let total = (DATA_OFFSET + data_len) as u64;
            fs::set_len(fd.as_fd(), total).map_err(|e| ShmError::io(&shown, "set size", e))?;
            if name.is_none() {
                memfd::seal_size(fd.as_fd()).map_err(|e| ShmError::io(&shown, "seal", e))?;
            }
            let map = Mapping::new(fd.as_fd(), DATA_OFFSET + data_len).map_err(|e| ShmError::io(&shown, "map", e))?;
            // The header copy leaves the state at STATE_CREATING; the data is
            // ours until the release store publishes it.
            map.write(0, &header.bytes);
            init(map.as_ptr().wrapping_add(DATA_OFFSET)).map_err(|e| ShmError::io(&shown, "initialise", e))?;
            map.atomic_u32(STATE_OFFSET).store(STATE_READY, Ordering::Release);
            Ok(Segment { map, fd, name: name.clone(), count })
        })();
        if built.is_err() {
            if let (Some(dir), Some(n)) = (&dir, &name) {
                let _ = fs::unlink_at(dir.as_fd(), n.as_str());
            }
        }
        built
    }

    /// Opens the named segment and checks that it holds `shape`.
    pub(crate) fn open(name: Name, shape: &Shape) -> Result<Segment, ShmError> {
        check_name(&name)?;
        let shown = name.to_string();
        let dir = open_dir(&name)?;
        let fd = fs::open_at(dir.as_fd(), name.as_str(), false).map_err(|e| ShmError::io(&shown, "open", e))?;
        let info = fs::stat(fd.as_fd()).map_err(|e| ShmError::io(&shown, "stat", e))?;
        if !info.is_regular {
            return Err(ShmError::corrupt(&shown, "not a regular file"));
        }
        if info.uid != fs::euid() && Some(info.uid) != name.allowed_owner() {
            return Err(ShmError::PermissionDenied {
                name: shown,
                reason: format!(
                    "owned by uid {}, not by this user (uid {}); Name::allow_owner accepts another owner",
                    info.uid,
                    fs::euid()
                ),
            });
        }
        attach_lock(fd.as_fd(), &shown)?;
        // A collector may have removed the name between our open and our
        // lock (it unlinks only while holding the byte exclusively).
        if fs::stat(fd.as_fd()).map_err(|e| ShmError::io(&shown, "stat", e))?.links == 0 {
            return Err(ShmError::NotFound { name: shown });
        }
        Segment::attach(fd, Some(name), shape, OPEN_WAIT)
    }

    /// Opens the named segment, or creates it if there is none.
    pub(crate) fn open_or_create(
        name: Name,
        shape: &Shape,
        count: usize,
        init: impl Fn(*mut u8) -> io::Result<()>,
    ) -> Result<Segment, ShmError> {
        // Bounded: each round loses a race to a peer that created or removed
        // the name in between.
        let mut last = None;
        for _ in 0..16 {
            match Segment::create(Some(name.clone()), shape, count, &init) {
                Err(ShmError::AlreadyExists { .. }) => {}
                other => return other,
            }
            match Segment::open(name.clone(), &Shape { count: Some(count), ..*shape }) {
                Err(e @ ShmError::NotFound { .. }) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or(ShmError::NotFound { name: name.to_string() }))
    }

    /// Validates the header of `fd` (waiting up to `wait` for a creator to
    /// finish) and maps the segment.
    fn attach(fd: OwnedFd, name: Option<Name>, shape: &Shape, wait: Duration) -> Result<Segment, ShmError> {
        let shown = display(name.as_ref());
        let start = Instant::now();
        let (count, data_len) = loop {
            let mut header = Header { bytes: [0; DATA_OFFSET] };
            let got =
                fs::read_at(fd.as_fd(), &mut header.bytes, 0).map_err(|e| ShmError::io(&shown, "read header", e))?;
            let waiting = if got > 0 && got < DATA_OFFSET {
                // A creator sizes the file (to more than a header) before it
                // writes anything, so a short file is never one at work.
                return Err(ShmError::corrupt(&shown, format!("truncated to {got} bytes, shorter than a header")));
            } else if header.is_blank() {
                // Created, not yet sized or written: the creator is at work.
                true
            } else if !header.magic_ok() {
                return Err(ShmError::corrupt(&shown, "no segment header"));
            } else {
                match header.check(shape) {
                    Err((expected, found)) => return Err(ShmError::Mismatch { name: shown, expected, found }),
                    Ok(Err(reason)) => return Err(ShmError::corrupt(&shown, reason)),
                    Ok(Ok(layout)) => match header.state() {
                        STATE_READY => break layout,
                        STATE_CREATING => true,
                        s => return Err(ShmError::corrupt(&shown, format!("unknown state {s}"))),
                    },
                }
            };
            if waiting && start.elapsed() >= wait {
                return Err(ShmError::NotReady { name: shown, waited: wait });
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        // `Header::check` bounds the length; checked anyway, since a wrap
        // here would map less than `count` promises.
        let Some(total) = DATA_OFFSET.checked_add(data_len) else {
            return Err(ShmError::corrupt(&shown, format!("data length {data_len} overflows the address space")));
        };
        let size = fs::stat(fd.as_fd()).map_err(|e| ShmError::io(&shown, "stat", e))?.size;
        if size < total as u64 {
            return Err(ShmError::corrupt(&shown, format!("truncated: {size} bytes, the header needs {total}")));
        }
        let map = Mapping::new(fd.as_fd(), total).map_err(|e| ShmError::io(&shown, "map", e))?;
        // Pairs with the creator's release store, so the data it initialised
        // is visible through our mapping.
        if map.atomic_u32(STATE_OFFSET).load(Ordering::Acquire) != STATE_READY {
            return Err(ShmError::corrupt(&shown, "state changed while opening"));
        }
        Ok(Segment { map, fd, name, count })
    }

    /// Bytes of data mapped after the header.
    pub(crate) fn data_len(&self) -> usize {
        self.map.len() - DATA_OFFSET
    }

    /// Start of the data, 128-byte aligned.
    pub(crate) fn data(&self) -> *mut u8 {
        self.map.as_ptr().wrapping_add(DATA_OFFSET)
    }

    /// Number of elements, as validated.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The descriptor of the segment file.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The name, for a named segment.
    pub(crate) fn name(&self) -> Option<&Name> {
        self.name.as_ref()
    }

    /// Removes the name; mappings stay valid. Anonymous segments have no name.
    pub(crate) fn unlink(&self) -> Result<(), ShmError> {
        let Some(n) = &self.name else {
            return Err(ShmError::NotFound { name: "anonymous segment (it has no name to remove)".into() });
        };
        unlink(n)
    }

    /// Serialises this segment for a child's start argument.
    pub(crate) fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let token = match &self.name {
            Some(n) => {
                Token::Named { dir: n.dir().to_path_buf(), name: n.as_str().to_string(), owner: n.allowed_owner() }
            }
            None => Token::Inherited {
                slot: transfer::export(self.fd.as_fd()).ok_or_else(|| {
                    serde::ser::Error::custom(
                        "an anonymous object can only be sent to a child process as part of its start argument",
                    )
                })?,
            },
        };
        token.serialize(s)
    }

    /// The inverse of [`Segment::serialize`], checking that it holds `shape`.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D, shape: &Shape) -> Result<Segment, D::Error> {
        use serde::de::Error;
        match Token::deserialize(d)? {
            Token::Named { dir, name, owner } => {
                let n = Name::new(name).in_dir(dir);
                let n = match owner {
                    Some(uid) => n.allow_owner(uid),
                    None => n,
                };
                Segment::open(n, shape).map_err(D::Error::custom)
            }
            Token::Inherited { slot } => {
                let fd = transfer::import(slot).map_err(D::Error::custom)?;
                let ours = memfd::is_size_sealed(fd.as_fd())
                    && sys::process::fd_target(fd.as_fd())
                        .is_ok_and(|p| p.to_string_lossy().starts_with("/memfd:multiproc:"));
                if !ours {
                    return Err(D::Error::custom("inherited descriptor is not a multiproc anonymous segment"));
                }
                Segment::attach(fd, None, shape, Duration::ZERO).map_err(D::Error::custom)
            }
        }
    }
}

/// Takes this process's attach lock on a named segment (see [`ATTACH_BYTE`]).
fn attach_lock(fd: std::os::fd::BorrowedFd<'_>, shown: &str) -> Result<(), ShmError> {
    sys::lock::lock_shared_within(fd, ATTACH_BYTE, OPEN_WAIT).map_err(|e| {
        if e.raw_os_error() == Some(libc::EAGAIN) {
            ShmError::NotReady { name: shown.to_string(), waited: OPEN_WAIT }
        } else {
            ShmError::io(shown, "lock", e)
        }
    })
}

/// Opens the directory of `n`. A symbolic link there is refused (the open
/// uses `O_NOFOLLOW`, which Linux reports as `ENOTDIR` for a directory), and
/// the error says so rather than "not a directory".
fn open_dir(n: &Name) -> Result<OwnedFd, ShmError> {
    fs::open_dir(n.dir()).map_err(|e| {
        let shown = n.dir().display().to_string();
        let is_link = std::fs::symlink_metadata(n.dir()).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) {
            ShmError::PermissionDenied {
                name: shown,
                reason: "the directory is a symbolic link, which is never followed".into(),
            }
        } else {
            ShmError::io(&shown, "open directory", e)
        }
    })
}

fn check_name(n: &Name) -> Result<(), ShmError> {
    match n.problem() {
        Some(reason) => Err(ShmError::InvalidName { name: n.as_str().to_string(), reason }),
        None => Ok(()),
    }
}

/// Removes the named segment `name` (whatever it holds).
pub fn unlink(name: impl Into<Name>) -> Result<(), ShmError> {
    let n = name.into();
    check_name(&n)?;
    let dir = open_dir(&n)?;
    fs::unlink_at(dir.as_fd(), n.as_str()).map_err(|e| ShmError::io(&n.to_string(), "unlink", e))
}
