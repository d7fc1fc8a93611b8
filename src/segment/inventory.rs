//! What lives in a segment directory, which of it is stale, and removing
//! what is.
//!
//! The rules are in the [module docs of `segment`](super).

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::header::{DATA_OFFSET, FLAG_ATTACHED, FLAG_PERSISTENT, Header, Kind, STATE_READY, VERSION};
use super::object::describe;
use super::{ATTACH_BYTE, Name, Segment, ShmError, open_dir};
use crate::sys::{fs, lock, mman::Mapping};

/// The directory named segments live in unless a [`Name::in_dir`] says
/// otherwise: `$MULTIPROC_DIR` when set, else `/dev/shm`.
pub fn default_dir() -> PathBuf {
    super::name::default_dir()
}

/// One file of a segment directory, as [`list`] found it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Entry {
    /// Its name and directory.
    pub name: Name,
    /// Size of the file in bytes.
    pub size: u64,
    /// The user that owns the file.
    pub uid: u32,
    /// What its header says, when it has a header of this crate.
    pub header: Option<HeaderInfo>,
    /// Whether some live process has it open (holds its attach lock).
    pub attached: bool,
}

/// What a segment's header records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HeaderInfo {
    /// The kind of object: `"Queue"`, `"Mutex"`, … or `"an unknown kind (#N)"`.
    pub kind: String,
    /// Format version.
    pub version: u32,
    /// Whether the creator finished initialising it.
    pub ready: bool,
    /// Process id of the creator.
    pub creator_pid: u32,
    /// Created with [`Name::persistent`]: never collected.
    pub persistent: bool,
    /// Element type name as recorded (cut at 48 bytes).
    pub element_type: String,
    /// Element size in bytes.
    pub element_size: u32,
    /// Element alignment in bytes.
    pub element_align: u32,
    /// Number of elements (bytes of buffer for channels).
    pub count: u64,
    /// Bytes of data after the 128-byte header.
    pub data_len: u64,
    /// Whether its users hold attach locks (set by every build that has
    /// them); without it, staleness cannot be told.
    tracked: bool,
}

/// What [`gc`] would do with an [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// A live process has it open.
    Attached,
    /// A segment of this crate that no live process has open.
    Stale,
    /// Created as [`persistent`](Name::persistent): kept whether used or not.
    Persistent,
    /// Not a segment of this crate (or not recognisably one: empty, another
    /// program's, another user's, or made by a build without attach locks).
    Foreign,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Attached => "attached",
            Status::Stale => "stale",
            Status::Persistent => "persistent",
            Status::Foreign => "foreign",
        })
    }
}

impl Entry {
    /// Attached, stale, persistent or foreign; see [`Status`].
    pub fn status(&self) -> Status {
        match &self.header {
            Some(h) if self.uid == fs::euid() && h.tracked => {
                if h.persistent {
                    Status::Persistent
                } else if self.attached {
                    Status::Attached
                } else {
                    Status::Stale
                }
            }
            _ => Status::Foreign,
        }
    }
}

/// [`inspect`]'s answer: the entry and what the object's control block says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Details {
    /// The file and its header.
    pub entry: Entry,
    /// Kind-specific lines, as `(what, value)`: ring occupancy and message
    /// counts of a queue, who holds a lock, a semaphore's value, … or why
    /// the control block could not be read. A snapshot taken without
    /// locking.
    pub fields: Vec<(String, String)>,
}

/// Every file of `dir` but subdirectories, sorted by name, with what its
/// header says and whether a live process has it open. Never follows a
/// symbolic link (one is listed as [`Status::Foreign`]); file names that are
/// not UTF-8 are skipped.
///
/// # Errors
///
/// The directory cannot be read, or is a symbolic link.
///
/// # Examples
///
/// ```
/// use multiproc::segment::{self, Status};
/// use multiproc::{Name, Mutex};
///
/// let dir = std::env::temp_dir().join(format!("multiproc-doc-list-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let m = Mutex::create(Name::new("counter").in_dir(&dir), 0u64)?;
/// let found = segment::list(&dir)?;
/// assert_eq!(found[0].name.as_str(), "counter");
/// assert_eq!(found[0].status(), Status::Attached, "we have it open");
/// m.unlink()?;
/// # std::fs::remove_dir(&dir).unwrap();
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub fn list(dir: &Path) -> Result<Vec<Entry>, ShmError> {
    let probe = Name::new("probe").in_dir(dir);
    let dfd = open_dir(&probe)?;
    let shown = dir.display().to_string();
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| ShmError::io(&shown, "read directory", e))? {
        let item = item.map_err(|e| ShmError::io(&shown, "read directory", e))?;
        let Ok(file) = item.file_name().into_string() else { continue };
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(found) = entry(dfd.as_fd(), Name::new(file).in_dir(dir)) {
            entries.push(found.entry);
        }
    }
    entries.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(entries)
}

/// What [`entry`] found: the entry, and for a regular file we could open its
/// descriptor and, when it has one of ours, its header as read.
struct Found {
    entry: Entry,
    fd: Option<OwnedFd>,
    header: Option<Header>,
}

/// Looks at one file. `None` when it vanished meanwhile.
fn entry(dir: BorrowedFd<'_>, name: Name) -> Option<Found> {
    let st = fs::stat_at(dir, name.as_str()).ok()?;
    let mut e = Entry { name, size: st.size, uid: st.uid, header: None, attached: false };
    if !st.is_regular {
        return Some(Found { entry: e, fd: None, header: None });
    }
    // A fresh open file description, holding no locks of its own, so that
    // asking about locks through it sees everybody's.
    let Ok(fd) = fs::open_at(dir, e.name.as_str(), false) else {
        return Some(Found { entry: e, fd: None, header: None });
    };
    let mut header = Header { bytes: [0; DATA_OFFSET] };
    let ours = fs::read_at(fd.as_fd(), &mut header.bytes, 0).is_ok_and(|n| n == DATA_OFFSET) && header.magic_ok();
    if ours {
        let (element_type, element_size, element_align) = header.elem_desc();
        e.header = Some(HeaderInfo {
            kind: header.kind_name(),
            version: header.version(),
            ready: header.state() == STATE_READY,
            creator_pid: header.creator(),
            persistent: header.flags() & FLAG_PERSISTENT != 0,
            element_type,
            element_size,
            element_align,
            count: header.count(),
            data_len: header.data_len(),
            tracked: header.flags() & FLAG_ATTACHED != 0,
        });
    }
    // When the kernel cannot be asked, say "attached": a wrong "stale"
    // could get a live segment removed.
    e.attached = lock::is_locked(fd.as_fd(), ATTACH_BYTE, 1).unwrap_or(true);
    Some(Found { entry: e, fd: Some(fd), header: ours.then_some(header) })
}

/// The file `name`, its header, and what its control block says now.
///
/// # Errors
///
/// [`ShmError::NotFound`] when there is no such file; the directory's
/// errors as for [`list`]. A file that is not a valid segment is not an
/// error: its [`Details::fields`] say what is wrong.
///
/// # Examples
///
/// ```
/// use multiproc::segment;
/// use multiproc::{Name, Queue};
///
/// let dir = std::env::temp_dir().join(format!("multiproc-doc-inspect-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let q: Queue<String> = Queue::create(Name::new("jobs").in_dir(&dir), 4096)?;
/// q.put("hello".to_string()).unwrap();
/// let d = segment::inspect(Name::new("jobs").in_dir(&dir))?;
/// assert_eq!(d.entry.header.as_ref().unwrap().kind, "Queue");
/// assert!(d.fields.iter().any(|(k, v)| k == "messages waiting" && v == "1"));
/// q.unlink()?;
/// # std::fs::remove_dir(&dir).unwrap();
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub fn inspect(name: impl Into<Name>) -> Result<Details, ShmError> {
    let name = name.into();
    super::check_name(&name)?;
    let dir = open_dir(&name)?;
    let shown = name.to_string();
    let Some(Found { entry, fd, header }) = entry(dir.as_fd(), name) else {
        return Err(ShmError::NotFound { name: shown });
    };
    let fields = match (fd, header, &entry.header) {
        (None, ..) => vec![("problem".into(), "not a regular file, or it cannot be opened".into())],
        (Some(fd), Some(header), Some(h)) => control_fields(fd, &header, &entry, h),
        (Some(_), ..) => vec![("problem".into(), "no multiproc header: not a segment of this crate".into())],
    };
    Ok(Details { entry, fields })
}

/// Maps a segment whose header looks sound and describes its control block.
fn control_fields(fd: OwnedFd, header: &Header, entry: &Entry, h: &HeaderInfo) -> Vec<(String, String)> {
    let problem = |why: String| vec![("problem".to_string(), why)];
    let Some(kind) = header.kind() else { return problem(format!("{}: nothing to show", h.kind)) };
    if h.version != VERSION {
        return problem(format!("format version {} (this build reads {VERSION})", h.version));
    }
    if !header.abi_ok() {
        return problem("made on another platform (ABI tag differs)".into());
    }
    if !h.ready {
        return problem("not ready: its creator has not finished (or died while) creating it".into());
    }
    let total = usize::try_from(h.data_len).ok().and_then(|l| l.checked_add(DATA_OFFSET));
    let Some(total) = total.filter(|&t| t as u64 <= entry.size && t > DATA_OFFSET) else {
        return problem(format!(
            "truncated or corrupt: {} bytes of data recorded, file has {}",
            h.data_len, entry.size
        ));
    };
    let Ok(map) = Mapping::new(fd.as_fd(), total) else { return problem("cannot be mapped".into()) };
    let count = usize::try_from(h.count).unwrap_or(usize::MAX);
    let seg = Segment { map, fd, name: Some(entry.name.clone()), count };
    let lines = match kind {
        Kind::Raw => Some(Vec::new()),
        // The lock kinds share one control block: a robust mutex.
        Kind::Mutex | Kind::Value | Kind::Array | Kind::RLock => {
            describe::<crate::sync::LockCtrl<{ Kind::Mutex as u32 }>>(&seg)
        }
        Kind::Semaphore | Kind::BoundedSemaphore => describe::<crate::sync::SemCtrl<{ Kind::Semaphore as u32 }>>(&seg),
        Kind::Event => describe::<crate::sync::EventCtrl>(&seg),
        Kind::Condition => describe::<crate::sync::CondCtrl>(&seg),
        Kind::Barrier => describe::<crate::sync::BarrierCtrl>(&seg),
        Kind::Queue => describe::<crate::channel::QueueCtrl<crate::channel::PlainFlavor>>(&seg),
        Kind::SimpleQueue => describe::<crate::channel::QueueCtrl<crate::channel::SimpleFlavor>>(&seg),
        Kind::JoinableQueue => describe::<crate::channel::QueueCtrl<crate::channel::JoinableFlavor>>(&seg),
        Kind::Pipe => None,
    };
    match lines {
        Some(lines) => lines.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        None => problem(format!("too short for a {} control block", h.kind)),
    }
}

/// Finds the stale segments of `dir` (see [`Status::Stale`]) and removes
/// them, or with `dry_run` only reports them. Returns what was removed (or
/// would be). A segment that some process attaches to while this runs is
/// kept. See the [module docs](super#attached-stale-persistent) for what is
/// guaranteed.
///
/// # Errors
///
/// As for [`list`]; a segment that cannot be removed (permissions) is an
/// error naming it, after the others were handled.
///
/// # Examples
///
/// ```
/// use multiproc::segment;
/// use multiproc::{Name, Semaphore};
///
/// let dir = std::env::temp_dir().join(format!("multiproc-doc-gc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// drop(Semaphore::create(Name::new("left-behind").in_dir(&dir), 1)?); // never unlinked
/// let kept = Semaphore::create(Name::new("in-use").in_dir(&dir), 1)?;
/// let removed = segment::gc(&dir, false)?;
/// assert_eq!(removed.len(), 1);
/// assert_eq!(removed[0].name.as_str(), "left-behind");
/// kept.unlink()?;
/// # std::fs::remove_dir(&dir).unwrap();
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub fn gc(dir: &Path, dry_run: bool) -> Result<Vec<Entry>, ShmError> {
    let dfd = open_dir(&Name::new("probe").in_dir(dir))?;
    let mut removed = Vec::new();
    let mut failed = None;
    for candidate in list(dir)?.into_iter().filter(|e| e.status() == Status::Stale) {
        if dry_run {
            removed.push(candidate);
            continue;
        }
        match collect(dfd.as_fd(), candidate) {
            Ok(Some(e)) => removed.push(e),
            Ok(None) => {}
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Removes one stale candidate if it still is stale, holding its attach byte
/// exclusively while it unlinks. `Ok(None)` when it is no longer stale.
fn collect(dir: BorrowedFd<'_>, candidate: Entry) -> Result<Option<Entry>, ShmError> {
    let shown = candidate.name.to_string();
    let Some(Found { entry: now, fd: Some(fd), .. }) = entry(dir, candidate.name) else { return Ok(None) };
    if now.status() != Status::Stale {
        return Ok(None);
    }
    if !lock::try_lock_exclusive(fd.as_fd(), ATTACH_BYTE).map_err(|e| ShmError::io(&shown, "lock", e))? {
        return Ok(None); // someone attached meanwhile
    }
    let ours = fs::stat(fd.as_fd()).map_err(|e| ShmError::io(&shown, "stat", e))?;
    match fs::stat_at(dir, now.name.as_str()) {
        Ok(there) if there.id == ours.id => {}
        _ => return Ok(None), // the name was removed or replaced meanwhile
    }
    fs::unlink_at(dir, now.name.as_str()).map_err(|e| ShmError::io(&shown, "unlink", e))?;
    Ok(Some(now))
}
