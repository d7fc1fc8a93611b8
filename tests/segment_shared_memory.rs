//! `SharedMemory`: create, open, open_or_create, anonymous, unlink, names,
//! directories and file-system safety.
//!
//! Segments made by these tests live in private temporary directories
//! (`Name::in_dir`) unless the test is about the default directory; every
//! test removes what it creates through a drop guard, so a failing test
//! leaves nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use multiproc::{DEFAULT_DIR, DIR_ENV, MAX_NAME_LEN, Name, SharedMemory, ShmError};

// ---------------------------------------------------------------------------
// Helpers

/// A private temporary directory, removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("multiproc-shm-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn name(&self, name: &str) -> Name {
        Name::new(name).in_dir(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unlinks a name in the default directory on drop, whatever happened.
struct Unlink(Name);

impl Unlink {
    /// A name unique to this process and call, in the default directory.
    fn unique(tag: &str) -> Unlink {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Unlink(Name::new(format!("multiproc-test-{tag}-{}-{n}", std::process::id())))
    }
}

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = multiproc::unlink(&self.0);
    }
}

fn bytes(shm: &SharedMemory) -> Vec<u8> {
    // SAFETY: only this thread uses the segments of this test.
    unsafe { shm.as_slice() }.to_vec()
}

fn write(shm: &SharedMemory, at: usize, data: &[u8]) {
    // SAFETY: only this thread uses the segments of this test, and no slice
    // of it is alive.
    let all = unsafe { shm.as_mut_slice() };
    all[at..at + data.len()].copy_from_slice(data);
}

fn assert_zeroed(shm: &SharedMemory) {
    let b = bytes(shm);
    assert!(b.iter().all(|&x| x == 0), "segment of {} bytes is not zero-filled", b.len());
}

// ---------------------------------------------------------------------------
// create / open / open_or_create / anonymous

#[test]
fn shared_memory_create_has_exact_len_and_is_zeroed() {
    let dir = TempDir::new("len");
    for size in [1, 7, 127, 128, 129, 4095, 4096, 4097, 100_003] {
        let name = dir.name(&format!("s{size}"));
        let shm = SharedMemory::create(&name, size).unwrap();
        assert_eq!(shm.len(), size);
        assert!(!shm.is_empty());
        assert_eq!(shm.name(), Some(name.as_str()));
        assert_eq!(shm.as_ptr() as usize % 128, 0, "data is 128-byte aligned");
        assert_eq!(bytes(&shm).len(), size);
        assert_zeroed(&shm);
    }
}

#[test]
fn shared_memory_create_in_default_dir_is_a_file_there() {
    let g = Unlink::unique("default");
    let shm = SharedMemory::create(&g.0, 64).unwrap();
    assert_eq!(g.0.dir(), default_dir_now().as_path());
    assert!(g.0.path().is_file(), "{} should exist", g.0);
    assert_eq!(shm.len(), 64);
    shm.unlink().unwrap();
    assert!(!g.0.path().exists());
}

/// The default directory as this process sees it (the test environment may
/// set `MULTIPROC_DIR`).
fn default_dir_now() -> PathBuf {
    std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

#[test]
fn shared_memory_open_sees_len_and_data_of_creator() {
    let dir = TempDir::new("open");
    let name = dir.name("seg");
    let a = SharedMemory::create(&name, 1000).unwrap();
    write(&a, 0, b"hello");
    write(&a, 995, b"world");
    let b = SharedMemory::open(&name).unwrap();
    assert_eq!(b.len(), 1000);
    assert_eq!(b.name(), Some("seg"));
    let got = bytes(&b);
    assert_eq!(&got[..5], b"hello");
    assert_eq!(&got[995..], b"world");
    // And back the other way.
    write(&b, 500, b"!");
    assert_eq!(bytes(&a)[500], b'!');
}

#[test]
fn shared_memory_open_of_missing_name_is_not_found() {
    let dir = TempDir::new("missing");
    let err = SharedMemory::open(dir.name("nope")).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("nope") && msg.contains("not found"), "{msg}");
}

#[test]
fn shared_memory_open_in_missing_dir_is_not_found_naming_the_dir() {
    let dir = TempDir::new("nodir");
    let missing = dir.path().join("does-not-exist");
    let err = SharedMemory::open(Name::new("seg").in_dir(&missing)).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("does-not-exist"), "{err}");
}

#[test]
fn shared_memory_create_of_existing_name_is_already_exists() {
    let dir = TempDir::new("exists");
    let name = dir.name("seg");
    let a = SharedMemory::create(&name, 16).unwrap();
    write(&a, 0, b"keep");
    let err = SharedMemory::create(&name, 16).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    // Another size, too; and the existing segment is untouched.
    let err = SharedMemory::create(&name, 4096).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(&bytes(&a)[..4], b"keep");
    assert_eq!(SharedMemory::open(&name).unwrap().len(), 16);
}

#[test]
fn shared_memory_open_or_create_creates_then_opens() {
    let dir = TempDir::new("ooc");
    let name = dir.name("seg");
    let a = SharedMemory::open_or_create(&name, 300).unwrap();
    assert_eq!(a.len(), 300);
    assert_zeroed(&a);
    write(&a, 299, b"z");
    let b = SharedMemory::open_or_create(&name, 300).unwrap();
    assert_eq!(b.len(), 300);
    assert_eq!(bytes(&b)[299], b'z', "the second call opened the first segment");
}

#[test]
fn shared_memory_open_or_create_of_other_size_is_mismatch_naming_both_sizes() {
    let dir = TempDir::new("oocsize");
    let name = dir.name("seg");
    let _a = SharedMemory::create(&name, 64).unwrap();
    let err = SharedMemory::open_or_create(&name, 128).unwrap_err();
    let ShmError::Mismatch { expected, found, .. } = &err else { panic!("expected Mismatch, got {err:?}") };
    assert!(expected.contains("128"), "expected side {expected:?}");
    assert!(found.contains("64"), "found side {found:?}");
    let msg = err.to_string();
    assert!(msg.contains("64") && msg.contains("128"), "{msg}");
}

#[test]
fn shared_memory_open_or_create_from_many_threads_makes_one_segment() {
    let dir = TempDir::new("oocrace");
    let name = dir.name("seg");
    let handles: Vec<SharedMemory> = std::thread::scope(|s| {
        let ts: Vec<_> = (0..8).map(|_| s.spawn(|| SharedMemory::open_or_create(&name, 256).unwrap())).collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    write(&handles[0], 10, b"one");
    for h in &handles {
        assert_eq!(h.len(), 256);
        assert_eq!(&bytes(h)[10..13], b"one");
    }
}

#[test]
fn shared_memory_anonymous_has_len_no_name_and_is_zeroed() {
    for size in [1, 4096, 65_537] {
        let shm = SharedMemory::anonymous(size).unwrap();
        assert_eq!(shm.len(), size);
        assert_eq!(shm.name(), None);
        assert_zeroed(&shm);
        write(&shm, size - 1, &[9]);
        assert_eq!(bytes(&shm)[size - 1], 9);
    }
}

#[test]
fn shared_memory_anonymous_unlink_is_not_found() {
    let shm = SharedMemory::anonymous(8).unwrap();
    let err = shm.unlink().unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
}

#[test]
fn shared_memory_size_zero_is_invalid_size() {
    let dir = TempDir::new("zero");
    let name = dir.name("seg");
    for err in [
        SharedMemory::create(&name, 0).unwrap_err(),
        SharedMemory::open_or_create(&name, 0).unwrap_err(),
        SharedMemory::anonymous(0).unwrap_err(),
    ] {
        assert!(matches!(err, ShmError::InvalidSize { .. }), "{err:?}");
        assert!(err.to_string().contains("size 0"), "{err}");
    }
    assert!(!name.path().exists(), "a refused create left a file");
}

#[test]
fn shared_memory_absurd_size_is_invalid_size_and_leaves_no_file() {
    let dir = TempDir::new("huge");
    let name = dir.name("seg");
    for size in [usize::MAX, usize::MAX - 127, isize::MAX as usize] {
        let err = SharedMemory::create(&name, size).unwrap_err();
        assert!(matches!(err, ShmError::InvalidSize { .. }), "{size}: {err:?}");
        let err = SharedMemory::anonymous(size).unwrap_err();
        assert!(matches!(err, ShmError::InvalidSize { .. }), "{size}: {err:?}");
    }
    assert!(!name.path().exists(), "a refused create left a file");
}

// ---------------------------------------------------------------------------
// unlink

#[test]
fn shared_memory_unlink_keeps_the_mapping_working() {
    let dir = TempDir::new("unlink");
    let name = dir.name("seg");
    let a = SharedMemory::create(&name, 64).unwrap();
    let b = SharedMemory::open(&name).unwrap();
    write(&a, 0, b"before");
    a.unlink().unwrap();
    assert!(!name.path().exists(), "unlink removes the file");
    write(&a, 10, b"after");
    assert_eq!(&bytes(&a)[..6], b"before");
    assert_eq!(&bytes(&a)[10..15], b"after");
    assert_eq!(&bytes(&b)[10..15], b"after", "the other handle still shares the memory");
    let err = SharedMemory::open(&name).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
}

#[test]
fn shared_memory_name_can_be_created_again_at_once_after_unlink() {
    let dir = TempDir::new("recreate");
    let name = dir.name("seg");
    let old = SharedMemory::create(&name, 64).unwrap();
    write(&old, 0, &[0xAA; 64]);
    old.unlink().unwrap();
    let new = SharedMemory::create(&name, 64).unwrap();
    assert_zeroed(&new);
    write(&old, 0, b"old");
    assert_zeroed(&new);
    write(&new, 0, b"new");
    assert_eq!(&bytes(&old)[..3], b"old", "the old segment is a different one");
    assert_eq!(&bytes(&SharedMemory::open(&name).unwrap())[..3], b"new");
}

#[test]
fn shared_memory_second_unlink_is_not_found() {
    let dir = TempDir::new("unlink2");
    let name = dir.name("seg");
    let shm = SharedMemory::create(&name, 8).unwrap();
    shm.unlink().unwrap();
    let err = shm.unlink().unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
    let err = multiproc::unlink(&name).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
}

#[test]
fn unlink_function_removes_a_name_it_did_not_open() {
    let dir = TempDir::new("unlinkfn");
    let name = dir.name("seg");
    let shm = SharedMemory::create(&name, 8).unwrap();
    multiproc::unlink(&name).unwrap();
    assert!(!name.path().exists());
    write(&shm, 0, b"ok");
    assert_eq!(&bytes(&shm)[..2], b"ok");
}

#[test]
fn shared_memory_in_default_dir_unlink_leaves_nothing() {
    let g = Unlink::unique("unlinkdefault");
    let shm = SharedMemory::create(&g.0, 32).unwrap();
    shm.unlink().unwrap();
    assert!(!g.0.path().exists(), "{} is still there", g.0);
    write(&shm, 0, b"x");
}

// ---------------------------------------------------------------------------
// names

/// Checks that every entry point refuses `name` with `InvalidName` whose
/// message contains `why`, and that no file was made.
fn assert_invalid(name: &str, why: &str) {
    let dir = TempDir::new("badname");
    let n = Name::new(name).in_dir(dir.path());
    let results = [
        ("create", SharedMemory::create(n.clone(), 8).map(drop)),
        ("open", SharedMemory::open(n.clone()).map(drop)),
        ("open_or_create", SharedMemory::open_or_create(n.clone(), 8).map(drop)),
        ("unlink", multiproc::unlink(n.clone())),
        ("Mutex::create", multiproc::Mutex::create(n.clone(), 0u32).map(drop)),
        ("Mutex::open", multiproc::Mutex::<u32>::open(n.clone()).map(drop)),
    ];
    for (what, r) in results {
        let err = r.expect_err(what);
        let ShmError::InvalidName { name: got, reason } = &err else {
            panic!("{what}({name:?}): expected InvalidName, got {err:?}")
        };
        assert_eq!(got, name, "{what}: the error names the rejected name");
        assert!(reason.contains(why), "{what}({name:?}): reason {reason:?} should say {why:?}");
        assert!(err.to_string().contains(why), "{what}: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "an invalid name made files: {left:?}");
}

#[test]
fn name_empty_is_invalid() {
    assert_invalid("", "empty");
}

#[test]
fn name_with_slash_is_invalid() {
    assert_invalid("a/b", "'/'");
    assert_invalid("/abs", "'/'");
    assert_invalid("trailing/", "'/'");
    assert_invalid("../escape", "'/'");
}

#[test]
fn name_dot_and_dotdot_are_invalid() {
    assert_invalid(".", "'.' and '..'");
    assert_invalid("..", "'.' and '..'");
}

#[test]
fn name_over_max_len_is_invalid() {
    assert_eq!(MAX_NAME_LEN, 200);
    assert_invalid(&"a".repeat(MAX_NAME_LEN + 1), "longer than 200 bytes");
    assert_invalid(&"a".repeat(4096), "longer than 200 bytes");
    // Bytes, not characters: 101 two-byte characters are 202 bytes.
    assert_invalid(&"é".repeat(101), "longer than 200 bytes");
}

#[test]
fn name_with_control_character_is_invalid() {
    for name in ["a\0b", "tab\there", "new\nline", "\x7f", "esc\x1b[0m", "c1\u{85}"] {
        assert_invalid(name, "control character");
    }
}

#[test]
fn name_of_max_len_and_unusual_characters_are_valid() {
    let dir = TempDir::new("goodname");
    for name in ["a".repeat(MAX_NAME_LEN), "...".into(), ".hidden".into(), "sp ace".into(), "ünï-cødé_✓".into()] {
        let n = dir.name(&name);
        let shm = SharedMemory::create(&n, 8).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(n.path().is_file(), "{name:?}");
        assert_eq!(SharedMemory::open(&n).unwrap().len(), 8);
        shm.unlink().unwrap();
    }
}

// ---------------------------------------------------------------------------
// directories

#[test]
fn name_in_dir_puts_the_segment_in_that_dir_only() {
    let a = TempDir::new("dira");
    let b = TempDir::new("dirb");
    let seg = format!("in-dir-{}", std::process::id());
    let na = a.name(&seg);
    let shm = SharedMemory::create(&na, 16).unwrap();
    write(&shm, 0, b"in a");
    assert!(a.path().join(&seg).is_file());
    assert!(!default_dir_now().join(&seg).exists(), "nothing in the default directory");
    let err = SharedMemory::open(&seg).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
    let err = SharedMemory::open(b.name(&seg)).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
    // The same name in another directory is another segment.
    let other = SharedMemory::create(b.name(&seg), 16).unwrap();
    assert_zeroed(&other);
    assert_eq!(&bytes(&SharedMemory::open(&na).unwrap())[..4], b"in a");
    // The error names the full path.
    let err = SharedMemory::create(&na, 16).unwrap_err();
    assert!(err.to_string().contains(&a.path().join(&seg).display().to_string()), "{err}");
}

#[test]
fn name_new_uses_default_dir_and_in_dir_overrides_it() {
    assert_eq!(Name::new("x").dir(), default_dir_now().as_path());
    assert_eq!(Name::new("x").in_dir("/somewhere").dir(), Path::new("/somewhere"));
    assert_eq!(Name::new("x").in_dir("/somewhere").path(), Path::new("/somewhere/x"));
    assert_eq!(Name::from("x"), Name::new("x"));
}

const CHILD: &str = "MULTIPROC_TEST_DIR_ENV_CHILD";
const CHILD_SEG: &str = "multiproc-test-from-env";

/// Runs `dir_env_child` in a fresh copy of this test binary with `CHILD`
/// set to `mode` and `MULTIPROC_DIR` set (or removed), so that changing the
/// environment cannot race with the other tests' threads.
fn run_child(mode: &str, dir_env: Option<&std::ffi::OsStr>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "dir_env_child", "--nocapture", "--test-threads=1"]).env(CHILD, mode);
    match dir_env {
        Some(d) => cmd.env(DIR_ENV, d),
        None => cmd.env_remove(DIR_ENV),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child ({mode}) failed: {}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains(&format!("dir_env_child {mode}: ok")), "child ({mode}) did not run:\n{stdout}\n{stderr}");
}

#[test]
fn name_dir_env_var_overrides_default_dir() {
    let dir = TempDir::new("env");
    run_child("set", Some(dir.path().as_os_str()));
    // The child created its segment in our directory and left it there.
    let shm = SharedMemory::open(dir.name(CHILD_SEG)).unwrap();
    assert_eq!(&bytes(&shm)[..5], b"child");
    assert!(!Path::new(DEFAULT_DIR).join(CHILD_SEG).exists(), "nothing in {DEFAULT_DIR}");
}

#[test]
fn name_dir_env_var_empty_or_unset_means_default_dir() {
    run_child("empty", Some(std::ffi::OsStr::new("")));
    run_child("unset", None);
}

/// The child half of the two tests above; does nothing in a normal run.
#[test]
fn dir_env_child() {
    let Ok(mode) = std::env::var(CHILD) else { return };
    match mode.as_str() {
        "set" => {
            let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("MULTIPROC_DIR is set"));
            assert_eq!(Name::new("x").dir(), dir.as_path());
            assert_eq!(Name::from("x").dir(), dir.as_path());
            assert_eq!(Name::new("x").in_dir("/elsewhere").dir(), Path::new("/elsewhere"), "in_dir beats the env");
            let shm = SharedMemory::create(CHILD_SEG, 16).unwrap();
            write(&shm, 0, b"child");
            assert!(dir.join(CHILD_SEG).is_file(), "created in MULTIPROC_DIR");
            // Left in place for the parent, which removes the directory.
        }
        "empty" | "unset" => {
            assert_eq!(Name::new("x").dir(), Path::new(DEFAULT_DIR));
            assert_eq!(DEFAULT_DIR, "/dev/shm");
        }
        other => panic!("unknown child mode {other:?}"),
    }
    println!("dir_env_child {mode}: ok");
}

// ---------------------------------------------------------------------------
// file-system safety

#[test]
fn shared_memory_file_is_mode_0600() {
    let dir = TempDir::new("mode");
    let name = dir.name("seg");
    let _shm = SharedMemory::create(&name, 8).unwrap();
    let meta = std::fs::symlink_metadata(name.path()).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.len(), 128 + 8, "header plus the data");

    let g = Unlink::unique("mode");
    let _shm = SharedMemory::create(&g.0, 8).unwrap();
    assert_eq!(std::fs::metadata(g.0.path()).unwrap().permissions().mode() & 0o7777, 0o600);
    let _mutex = multiproc::Mutex::create(dir.name("mutex"), 1u64).unwrap();
    assert_eq!(std::fs::metadata(dir.path().join("mutex")).unwrap().permissions().mode() & 0o7777, 0o600);
}

#[test]
fn shared_memory_symlink_is_refused_on_open() {
    let dir = TempDir::new("symlink");
    let target = dir.name("target");
    let real = SharedMemory::create(&target, 8).unwrap();
    std::os::unix::fs::symlink(target.path(), dir.path().join("link")).unwrap();
    let link = dir.name("link");

    let err = SharedMemory::open(&link).unwrap_err();
    let ShmError::PermissionDenied { reason, .. } = &err else { panic!("expected PermissionDenied, got {err:?}") };
    assert!(reason.contains("symbolic link"), "{reason}");
    assert!(err.to_string().contains("link"), "{err}");

    // create never writes through it (O_EXCL), and open_or_create reports it.
    let err = SharedMemory::create(&link, 8).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");
    let err = SharedMemory::open_or_create(&link, 8).unwrap_err();
    let ShmError::PermissionDenied { reason, .. } = &err else { panic!("expected PermissionDenied, got {err:?}") };
    assert!(reason.contains("symbolic link"), "{reason}");
    assert!(std::fs::symlink_metadata(link.path()).unwrap().file_type().is_symlink(), "the link is left alone");
    assert_zeroed(&real);
}

#[test]
fn shared_memory_dangling_symlink_is_not_followed() {
    let dir = TempDir::new("dangling");
    let target = dir.path().join("would-be-created");
    std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
    let link = dir.name("link");
    let err = SharedMemory::create(&link, 8).unwrap_err();
    assert!(matches!(err, ShmError::AlreadyExists { .. }), "{err:?}");
    let err = SharedMemory::open(&link).unwrap_err();
    assert!(matches!(&err, ShmError::PermissionDenied { reason, .. } if reason.contains("symbolic link")), "{err:?}");
    assert!(!target.exists(), "create followed the link");
}

#[test]
fn shared_memory_symlinked_dir_is_refused() {
    let dir = TempDir::new("symdir");
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let _shm = SharedMemory::create(Name::new("seg").in_dir(&real), 8).unwrap();
    let via = dir.path().join("via");
    std::os::unix::fs::symlink(&real, &via).unwrap();
    for err in [
        SharedMemory::open(Name::new("seg").in_dir(&via)).unwrap_err(),
        SharedMemory::create(Name::new("new").in_dir(&via), 8).unwrap_err(),
    ] {
        assert!(
            matches!(&err, ShmError::PermissionDenied { reason, .. } if reason.contains("symbolic link")),
            "{err:?}"
        );
    }
    assert!(!real.join("new").exists());
}

#[test]
fn shared_memory_open_of_file_owned_by_another_user_is_permission_denied() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to give a file away");
        return;
    }
    let dir = TempDir::new("owner");
    let name = dir.name("seg");
    let _shm = SharedMemory::create(&name, 8).unwrap();
    std::os::unix::fs::chown(name.path(), Some(4242), Some(4242)).unwrap();
    let err = SharedMemory::open(&name).unwrap_err();
    let ShmError::PermissionDenied { reason, .. } = &err else { panic!("expected PermissionDenied, got {err:?}") };
    assert!(reason.contains("4242"), "{reason}");
}

#[test]
fn shared_memory_open_of_fifo_or_dir_is_an_error_without_blocking() {
    let dir = TempDir::new("special");
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    let start = Instant::now();
    let err = SharedMemory::open(dir.name("fifo")).unwrap_err();
    assert!(matches!(&err, ShmError::Corrupt { reason, .. } if reason.contains("not a regular file")), "{err:?}");
    let err = SharedMemory::open(dir.name("subdir")).unwrap_err();
    assert!(matches!(err, ShmError::Io { .. } | ShmError::Corrupt { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(500), "opening a special file blocked");
}

#[test]
fn shared_memory_file_has_the_documented_header() {
    let dir = TempDir::new("header");
    let name = dir.name("seg");
    let _shm = SharedMemory::create(&name, 10).unwrap();
    let b = std::fs::read(name.path()).unwrap();
    assert_eq!(b.len(), 138);
    assert_eq!(&b[0..8], b"MPROCSEG", "magic");
    assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 1, "version");
    assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 1, "state ready");
    assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 1, "kind raw");
    assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 10, "count");
    assert_eq!(u64::from_le_bytes(b[40..48].try_into().unwrap()), 10, "data length");
    assert_eq!(u32::from_le_bytes(b[48..52].try_into().unwrap()), std::process::id(), "creator pid");
    assert!(b[128..].iter().all(|&x| x == 0));
}
