//! Private directories for the files an input needs.
//!
//! Shared by the three fuzz targets (`fuzz/fuzz_targets/*.rs`) and the
//! corpus replay on stable Rust (`tests/fuzz_corpus.rs`), which include this
//! file with `#[path]`. The replay makes a [`PrivateDir`] per input and drops
//! it; a fuzz target uses one directory for its whole run, [`run_dir`],
//! which is never dropped (libFuzzer ends the process with `exit`, which
//! runs no destructors), so it is removed at exit instead.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A fresh private directory under the system temp dir, removed on drop.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Creates `<tmp>/multiproc-<tag>-<pid>-<n>`, mode 0700.
    pub fn new(tag: &str) -> PrivateDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("multiproc-{tag}-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        PrivateDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directory of this run, once made.
static RUN_DIR: OnceLock<PrivateDir> = OnceLock::new();

/// The one directory of this process's fuzzing run: the first call makes
/// it (a [`PrivateDir`] named after `tag`) and registers its removal at
/// exit; every later call returns the same directory, whatever its `tag`.
/// Each input replaces or removes what the previous one left there.
pub fn run_dir(tag: &str) -> &'static Path {
    RUN_DIR
        .get_or_init(|| {
            // SAFETY: `remove_run_dir` is a plain `extern "C" fn()` that
            // stays valid for the life of the process.
            unsafe { libc_atexit(remove_run_dir) };
            PrivateDir::new(tag)
        })
        .path()
}

extern "C" fn remove_run_dir() {
    if let Some(d) = RUN_DIR.get() {
        let _ = std::fs::remove_dir_all(d.path());
    }
}

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}
