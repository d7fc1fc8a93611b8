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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name {
    name: String,
    dir: PathBuf,
}

impl Name {
    /// A name in the default directory.
    pub fn new(name: impl Into<String>) -> Name {
        let dir = std::env::var_os(DIR_ENV)
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
        Name { name: name.into(), dir }
    }

    /// The same name in another directory.
    pub fn in_dir(self, dir: impl Into<PathBuf>) -> Name {
        Name { dir: dir.into(), ..self }
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
