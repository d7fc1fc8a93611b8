//! Shared-memory segments: named files in a shared-memory directory, or
//! anonymous memfds, each starting with a [header](header) that says what
//! it holds.
//!
//! [`SharedMemory`] is the public raw form; the typed objects of
//! [`sync`](crate::sync) and [`shared`](crate::shared) are built on the
//! crate-private [`Segment`].

mod error;
pub(crate) mod header;
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
pub use name::{DEFAULT_DIR, DIR_ENV, MAX_NAME_LEN, Name};
pub use shared_memory::SharedMemory;

use crate::sys::{self, Pid, fs, memfd, mman::Mapping};
use header::{DATA_OFFSET, Header, STATE_CREATING, STATE_OFFSET, STATE_READY, Shape};

/// How long an opener waits for a creator to finish initialising.
///
/// Under `cargo fuzz` (which builds every crate with `--cfg fuzzing`) the
/// wait is 2 ms, so that the many blank or half-created inputs a fuzzer
/// makes are not a second each; the waiting path is the same.
#[allow(unexpected_cfgs)]
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
    Named { dir: std::path::PathBuf, name: String },
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
                (fd, Some(dir))
            }
            None => {
                let label = CString::new(format!("multiproc:{}", shape.kind.name())).expect("no NUL");
                (memfd::create(&label).map_err(|e| ShmError::io(&shown, "memfd_create", e))?, None)
            }
        };
        let built = (|| {
            let total = (DATA_OFFSET + data_len) as u64;
            fs::set_len(fd.as_fd(), total).map_err(|e| ShmError::io(&shown, "set size", e))?;
            if name.is_none() {
                memfd::seal_size(fd.as_fd()).map_err(|e| ShmError::io(&shown, "seal", e))?;
            }
            let map = Mapping::new(fd.as_fd(), DATA_OFFSET + data_len).map_err(|e| ShmError::io(&shown, "map", e))?;
            let header = Header::new(shape, count, data_len, Pid::this().as_u32());
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
        if info.uid != fs::euid() {
            return Err(ShmError::PermissionDenied {
                name: shown,
                reason: format!("owned by uid {}, not by this user (uid {})", info.uid, fs::euid()),
            });
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
            Some(n) => Token::Named { dir: n.dir().to_path_buf(), name: n.as_str().to_string() },
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
            Token::Named { dir, name } => Segment::open(Name::new(name).in_dir(dir), shape).map_err(D::Error::custom),
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
