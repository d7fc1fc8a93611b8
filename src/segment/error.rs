//! What can go wrong when creating or opening a shared object.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a shared object could not be created or opened.
///
/// Every variant names the object (its path, or "anonymous"), so a message
/// can be shown to a user as it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmError {
    /// The name cannot be used; `reason` says why.
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A size or count is unusable (zero, or too large).
    InvalidSize {
        /// What is wrong.
        reason: String,
    },
    /// `create` found an object of that name already.
    AlreadyExists {
        /// Path of the existing object.
        name: String,
    },
    /// `open` found no object of that name.
    NotFound {
        /// Path that was looked up.
        name: String,
    },
    /// The OS refused access, or the file belongs to another user, or it is
    /// a symbolic link.
    PermissionDenied {
        /// The object.
        name: String,
        /// What was refused.
        reason: String,
    },
    /// The object exists but is not what the caller asked for: another kind
    /// (a `Semaphore` opened as a `Mutex`), another element type
    /// (`Value<u32>` opened as `Value<u64>`), another format version or
    /// platform.
    Mismatch {
        /// The object.
        name: String,
        /// What the caller asked for.
        expected: String,
        /// What the segment holds.
        found: String,
    },
    /// The file is not a valid segment: truncated, garbage, or written by a
    /// hostile peer.
    Corrupt {
        /// The object.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The creator did not finish initialising the object in time (it may
    /// have died while creating it).
    NotReady {
        /// The object.
        name: String,
        /// How long the opener waited.
        waited: Duration,
    },
    /// Any other error from the OS.
    Io {
        /// The object.
        name: String,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl ShmError {
    pub(crate) fn io(name: &str, action: &'static str, source: io::Error) -> ShmError {
        match source.raw_os_error() {
            Some(libc::EEXIST) => ShmError::AlreadyExists { name: name.into() },
            Some(libc::ENOENT) => ShmError::NotFound { name: name.into() },
            Some(libc::ELOOP) => ShmError::PermissionDenied {
                name: name.into(),
                reason: "it is a symbolic link, which is never followed".into(),
            },
            Some(libc::EACCES | libc::EPERM) => {
                ShmError::PermissionDenied { name: name.into(), reason: format!("{action}: {source}") }
            }
            _ => ShmError::Io { name: name.into(), action, source },
        }
    }

    pub(crate) fn corrupt(name: &str, reason: impl Into<String>) -> ShmError {
        ShmError::Corrupt { name: name.into(), reason: reason.into() }
    }
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::InvalidName { name, reason } => write!(f, "invalid name {name:?}: {reason}"),
            ShmError::InvalidSize { reason } => write!(f, "invalid size: {reason}"),
            ShmError::AlreadyExists { name } => write!(f, "{name} already exists"),
            ShmError::NotFound { name } => write!(f, "{name} not found"),
            ShmError::PermissionDenied { name, reason } => write!(f, "{name}: permission denied: {reason}"),
            ShmError::Mismatch { name, expected, found } => {
                write!(f, "{name} holds {found}, but {expected} was asked for")
            }
            ShmError::Corrupt { name, reason } => write!(f, "{name} is not a valid segment: {reason}"),
            ShmError::NotReady { name, waited } => {
                write!(f, "{name} was not initialised by its creator within {waited:?}")
            }
            ShmError::Io { name, action, source } => write!(f, "{name}: {action}: {source}"),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ShmError> for io::Error {
    fn from(e: ShmError) -> io::Error {
        let kind = match &e {
            ShmError::InvalidName { .. } | ShmError::InvalidSize { .. } => io::ErrorKind::InvalidInput,
            ShmError::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            ShmError::NotFound { .. } => io::ErrorKind::NotFound,
            ShmError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            ShmError::Mismatch { .. } | ShmError::Corrupt { .. } => io::ErrorKind::InvalidData,
            ShmError::NotReady { .. } => io::ErrorKind::TimedOut,
            ShmError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}
