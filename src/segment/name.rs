//! Names of segments and the directory that holds them.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable that overrides the default directory.
pub const DIR_ENV: &str = "MULTIPROC_DIR";

/// Where named segments live unless [`DIR_ENV`] or [`Name::in_dir`] says
/// otherwise.
pub const DEFAULT_DIR: &str = "/dev/shm";

/// The longest name accepted, in bytes. Leaves room under the 255-byte file
/// name limit of Linux file systems for suffixes a later version may add.
pub const MAX_NAME_LEN: usize = 200;

/// The name of a named object, and the directory it lives in.
///
/// Every constructor that takes a name takes `impl Into<Name>`, so a plain
/// `&str` works and uses the default directory ([`DEFAULT_DIR`], or
/// [`DIR_ENV`] when set); [`Name::in_dir`] picks another directory for one
/// call.
///
/// A name is one file-name component: 1 to [`MAX_NAME_LEN`] bytes, no `/`,
/// no NUL or other control character, and not `.` or `..`. It is checked
/// before any system call, and a bad name is an
/// [`ShmError::InvalidName`](crate::ShmError::InvalidName) that says what is
/// wrong.
///
/// # Examples
///
/// ```
/// use multiproc::Name;
///
/// let n = Name::new("jobs").in_dir("/tmp");
/// assert_eq!(n.as_str(), "jobs");
/// assert_eq!(n.dir(), std::path::Path::new("/tmp"));
/// ```
///
/// A `Name` is `Serialize`/`Deserialize`, so it can be handed to a child
/// process in its start argument.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Name {
    name: String,
    dir: PathBuf,
    persistent: bool,
    owner: Option<u32>,
}

/// [`DIR_ENV`] when set and not empty, else [`DEFAULT_DIR`].
pub(crate) fn default_dir() -> PathBuf {
    std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

impl Name {
    /// A name in the default directory.
    pub fn new(name: impl Into<String>) -> Name {
        Name { name: name.into(), dir: default_dir(), persistent: false, owner: None }
    }

    /// The same name in another directory.
    pub fn in_dir(self, dir: impl Into<PathBuf>) -> Name {
        Name { dir: dir.into(), ..self }
    }

    /// Marks the segment created under this name as persistent: it is meant
    /// to outlive every process attached to it (a configuration block, a
    /// cache that a later run picks up), so [`segment::gc`](crate::segment::gc)
    /// and `multiproc gc` never remove it. Only [`unlink`](crate::unlink)
    /// does. Has no effect on `open`.
    ///
    /// Without it a named segment that no live process has open is *stale*
    /// and may be collected; see [`segment`](crate::segment).
    pub fn persistent(self) -> Name {
        Name { persistent: true, ..self }
    }

    /// Also accepts, on open, a segment file owned by the user `uid`.
    ///
    /// By default `open` refuses a file that does not belong to this
    /// process's effective user: another user's segment is data this user
    /// did not write and a lock word it does not control (see the threat
    /// model in [`segment`](crate::segment)). A service that deliberately
    /// shares segments with one other account (and has arranged the file
    /// mode for it) names that account here.
    pub fn allow_owner(self, uid: u32) -> Name {
        Name { owner: Some(uid), ..self }
    }

    /// Whether [`persistent`](Self::persistent) was asked for.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The extra owner accepted on open, if any.
    pub(crate) fn allowed_owner(&self) -> Option<u32> {
        self.owner
    }

    /// The name, without the directory.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full path of the segment file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Why this name cannot be used, if it cannot.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let n = &self.name;
        if n.is_empty() {
            Some("it is empty")
        } else if n.len() > MAX_NAME_LEN {
            Some("it is longer than 200 bytes")
        } else if n.contains('/') {
            Some("it contains '/'; a name is one file name, use Name::in_dir for the directory")
        } else if n == "." || n == ".." {
            Some("'.' and '..' are not names")
        } else if n.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        }
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name::new(s)
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name::new(s.as_str())
    }
}

impl From<&Name> for Name {
    fn from(n: &Name) -> Name {
        n.clone()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.path())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path().display())
    }
}
