//! Stale segments, `segment::{list, inspect, gc}`, persistent names, other
//! owners and truncation, with real processes: a creator SIGKILLed before it
//! could unlink leaves a stale segment that `gc` removes, while segments a
//! live process holds, persistent ones and files that are not ours stay.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use multiproc::segment::{self, Status};
use multiproc::{Mutex, Name, Process, Queue, Semaphore, SharedMemory, ShmError, Value};

mod common;
use common::{join, serial, sigkill, wait_for_flag};

multiproc::test_support!();

/// A private segment directory, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("multiproc-gc-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn name(&self, name: &str) -> Name {
        Name::new(name).in_dir(&self.0)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn status_of(dir: &Path, name: &str) -> Option<Status> {
    segment::list(dir).unwrap().into_iter().find(|e| e.name.as_str() == name).map(|e| e.status())
}

/// Child: creates a `Mutex` and a `Queue` under `dir`, says so, then waits
/// to be killed (it never unlinks them).
fn create_and_wait((dir, flag): (PathBuf, Value<u32>)) {
    let m = Mutex::create(Name::new("from-child").in_dir(&dir), 7u32).unwrap();
    let q: Queue<u32> = Queue::create(Name::new("child-queue").in_dir(&dir), 4096).unwrap();
    q.put(1).unwrap();
    flag.set(1).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop((m, q));
}

#[test]
fn gc_removes_what_a_sigkilled_creator_left_and_keeps_the_live_and_the_persistent() {
    let _serial = serial();
    let dir = TempDir::new("killed");
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(create_and_wait, (dir.path().to_path_buf(), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);

    let live = Semaphore::create(dir.name("live"), 1).unwrap();
    drop(Semaphore::create(dir.name("kept").persistent(), 1).unwrap());
    std::fs::write(dir.path().join("not-ours"), b"some other program's shared memory").unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();

    // While the child lives, everything it made is attached.
    assert_eq!(status_of(dir.path(), "from-child"), Some(Status::Attached));
    assert_eq!(status_of(dir.path(), "child-queue"), Some(Status::Attached));
    assert!(segment::gc(dir.path(), false).unwrap().is_empty(), "nothing is stale yet");

    assert!(sigkill(child.pid().unwrap()));
    assert_eq!(join(&mut child), -9);

    let listed = segment::list(dir.path()).unwrap();
    let names: Vec<_> = listed.iter().map(|e| (e.name.as_str(), e.status())).collect();
    assert_eq!(
        names,
        [
            ("child-queue", Status::Stale),
            ("empty", Status::Foreign),
            ("from-child", Status::Stale),
            ("kept", Status::Persistent),
            ("live", Status::Attached),
            ("not-ours", Status::Foreign),
        ]
    );
    let from_child = listed.iter().find(|e| e.name.as_str() == "from-child").unwrap();
    let h = from_child.header.as_ref().unwrap();
    assert_eq!((h.kind.as_str(), h.creator_pid, h.ready), ("Mutex", child.pid().unwrap(), true));
    assert!(h.element_type.contains("u32"), "{h:?}");

    // A dry run reports and removes nothing.
    let would: Vec<_> =
        segment::gc(dir.path(), true).unwrap().into_iter().map(|e| e.name.as_str().to_string()).collect();
    assert_eq!(would, ["child-queue", "from-child"]);
    assert!(dir.path().join("from-child").exists());

    let removed: Vec<_> =
        segment::gc(dir.path(), false).unwrap().into_iter().map(|e| e.name.as_str().to_string()).collect();
    assert_eq!(removed, ["child-queue", "from-child"]);
    let left: Vec<_> = segment::list(dir.path()).unwrap().into_iter().map(|e| e.name.as_str().to_string()).collect();
    assert_eq!(left, ["empty", "kept", "live", "not-ours"]);
    assert_eq!(std::fs::read(dir.path().join("not-ours")).unwrap(), b"some other program's shared memory");

    // The live one still works, and once dropped it is stale too.
    live.release().unwrap();
    drop(live);
    assert_eq!(status_of(dir.path(), "live"), Some(Status::Stale));
    // Opening a stale segment attaches to it again.
    let again = Semaphore::open(dir.name("live")).unwrap();
    assert_eq!(status_of(dir.path(), "live"), Some(Status::Attached));
    drop(again);
    multiproc::unlink(dir.name("kept")).unwrap();
}

/// Child: opens the named value and holds it until killed.
fn open_and_hold((name, flag): (Name, Value<u32>)) {
    let v = Value::<u64>::open(name).unwrap();
    flag.set(1).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop(v);
}

#[test]
fn a_segment_is_attached_while_any_process_has_it_open() {
    let _serial = serial();
    let dir = TempDir::new("opener");
    let v = Value::create(dir.name("v"), 5u64).unwrap();
    drop(v); // the creator lets go: stale, until someone opens it
    assert_eq!(status_of(dir.path(), "v"), Some(Status::Stale));
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(open_and_hold, (dir.name("v"), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    assert_eq!(status_of(dir.path(), "v"), Some(Status::Attached), "the child holds it");
    assert!(segment::gc(dir.path(), false).unwrap().is_empty());
    sigkill(child.pid().unwrap());
    join(&mut child);
    assert_eq!(status_of(dir.path(), "v"), Some(Status::Stale));
    assert_eq!(segment::gc(dir.path(), false).unwrap().len(), 1);
    let err = Value::<u64>::open(dir.name("v")).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
}

/// Child: locks the mutex, says so, and waits to be killed holding it.
fn lock_and_wait((m, flag): (Mutex<u32>, Value<u32>)) {
    let _g = m.lock().unwrap();
    flag.set(1).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

fn field<'a>(d: &'a segment::Details, key: &str) -> &'a str {
    d.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key}: {d:?}"))
}

#[test]
fn inspect_shows_ring_occupancy_and_lock_holders() {
    let _serial = serial();
    let dir = TempDir::new("inspect");
    let q: Queue<String> = Queue::create(dir.name("q"), 4096).unwrap();
    q.put("one".into()).unwrap();
    q.put("two".into()).unwrap();
    let d = segment::inspect(dir.name("q")).unwrap();
    assert_eq!(d.entry.header.as_ref().unwrap().kind, "Queue");
    assert_eq!(d.entry.status(), Status::Attached);
    assert_eq!(field(&d, "messages waiting"), "2");
    assert!(field(&d, "ring").ends_with("of 4096 bytes used"), "{d:?}");
    assert_eq!(field(&d, "send side"), "lock free");

    let m = Mutex::create(dir.name("m"), 0u32).unwrap();
    assert_eq!(field(&segment::inspect(dir.name("m")).unwrap(), "lock"), "free");
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(lock_and_wait, (m.clone(), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    let held = segment::inspect(dir.name("m")).unwrap();
    assert!(field(&held, "lock").starts_with("held by thread "), "{held:?}");
    sigkill(child.pid().unwrap());
    join(&mut child);
    let died = segment::inspect(dir.name("m")).unwrap();
    assert!(field(&died, "lock").contains("died"), "{died:?}");
    assert!(m.lock().is_err(), "the next lock reports the dead owner");

    let s = Semaphore::create(dir.name("s"), 3).unwrap();
    assert_eq!(field(&segment::inspect(dir.name("s")).unwrap(), "value"), "3");

    std::fs::write(dir.path().join("junk"), [7u8; 300]).unwrap();
    let junk = segment::inspect(dir.name("junk")).unwrap();
    assert!(junk.entry.header.is_none() && field(&junk, "problem").contains("no multiproc header"), "{junk:?}");
    let err = segment::inspect(dir.name("missing")).unwrap_err();
    assert!(matches!(err, ShmError::NotFound { .. }), "{err:?}");
    for n in ["q", "m", "s"] {
        multiproc::unlink(dir.name(n)).unwrap();
    }
    drop((q, m, s));
}

#[test]
fn a_truncated_segment_is_a_clear_error_on_open_and_in_inspect() {
    let _serial = serial();
    let dir = TempDir::new("trunc");
    let shm = SharedMemory::create(dir.name("t"), 4096).unwrap();
    drop(shm);
    let file = std::fs::OpenOptions::new().write(true).open(dir.path().join("t")).unwrap();
    file.set_len(1000).unwrap();
    let err = SharedMemory::open(dir.name("t")).unwrap_err();
    let ShmError::Corrupt { reason, .. } = &err else { panic!("expected Corrupt, got {err:?}") };
    assert!(reason.contains("truncated") && reason.contains("1000"), "{reason}");
    let d = segment::inspect(dir.name("t")).unwrap();
    assert!(field(&d, "problem").contains("truncated"), "{d:?}");
    // Still a segment of ours that nobody holds: collectable.
    assert_eq!(segment::gc(dir.path(), false).unwrap().len(), 1);
}

/// Child: maps the segment, says so, waits for the parent to truncate the
/// file, then touches the last page: the documented limit is SIGBUS.
fn touch_after_truncation((name, flag): (Name, Value<u32>)) {
    let shm = SharedMemory::open(name).unwrap();
    flag.set(1).unwrap();
    wait_for_flag(&flag, 2);
    // SAFETY: a plain byte read of our own mapping; what this test shows is
    // that the kernel raises SIGBUS for a page past the file's new end.
    let last = unsafe { shm.as_slice() }[shm.len() - 1];
    std::process::exit(i32::from(last) + 40);
}

#[test]
fn truncation_under_a_mapped_reader_is_sigbus_as_documented() {
    let _serial = serial();
    let dir = TempDir::new("sigbus");
    let shm = SharedMemory::create(dir.name("t"), 64 * 1024).unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(touch_after_truncation, (dir.name("t"), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    std::fs::OpenOptions::new().write(true).open(dir.path().join("t")).unwrap().set_len(4096).unwrap();
    flag.set(2).unwrap();
    assert_eq!(join(&mut child), -libc::SIGBUS, "the limit the segment docs state");
    shm.unlink().unwrap();
}

#[test]
fn another_users_segment_is_refused_unless_allowed() {
    let _serial = serial();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to give a file away");
        return;
    }
    let dir = TempDir::new("owner");
    let v = Value::create(dir.name("v"), 42u32).unwrap();
    std::os::unix::fs::chown(dir.path().join("v"), Some(4242), Some(4242)).unwrap();
    assert_eq!(std::fs::metadata(dir.path().join("v")).unwrap().uid(), 4242);
    let err = Value::<u32>::open(dir.name("v")).unwrap_err();
    let ShmError::PermissionDenied { reason, .. } = &err else { panic!("expected PermissionDenied, got {err:?}") };
    assert!(reason.contains("4242") && reason.contains("allow_owner"), "{reason}");
    assert!(Value::<u32>::open(dir.name("v").allow_owner(1000)).is_err(), "only the named owner is accepted");
    let opened = Value::<u32>::open(dir.name("v").allow_owner(4242)).unwrap();
    assert_eq!(opened.get().unwrap(), 42);
    // Another user's segment is never ours to collect.
    drop((v, opened));
    assert_eq!(status_of(dir.path(), "v"), Some(Status::Foreign));
    assert!(segment::gc(dir.path(), false).unwrap().is_empty());
}

#[test]
fn list_of_a_missing_or_symlinked_directory_is_an_error() {
    let _serial = serial();
    let dir = TempDir::new("dirs");
    let err = segment::list(&dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
    let err = segment::gc(&dir.path().join("link"), false).unwrap_err();
    assert!(matches!(&err, ShmError::PermissionDenied { reason, .. } if reason.contains("symbolic link")), "{err:?}");
    assert_eq!(segment::default_dir(), Name::new("x").dir());
}

/// `gc` racing with processes that open the segment it is about to remove:
/// every open that succeeds finds its segment still named (and so not
/// collected), every other open is `NotFound`, and nothing else happens.
/// Open file description locks belong to descriptions, not processes, so
/// threads race here exactly as processes would.
#[test]
fn gc_racing_with_openers_never_removes_an_opened_segment() {
    let _serial = serial();
    let dir = TempDir::new("race");
    let (mut opened, mut missed, mut collected) = (0, 0, 0);
    for round in 0..200 {
        drop(Value::create(dir.name("v"), round as u64).unwrap()); // stale at once
        let path = dir.path().join("v");
        let (open, removed) = std::thread::scope(|s| {
            let opener = s.spawn(|| Value::<u64>::open(dir.name("v")));
            let removed = segment::gc(dir.path(), false).unwrap().len();
            (opener.join().unwrap(), removed)
        });
        match open {
            Ok(v) => {
                opened += 1;
                assert_eq!(v.get().unwrap(), round as u64);
                assert!(path.exists(), "round {round}: gc removed a segment a process had opened");
                assert_eq!(segment::gc(dir.path(), false).unwrap().len(), 0, "attached: kept");
                drop(v);
                if path.exists() {
                    multiproc::unlink(dir.name("v")).unwrap();
                }
            }
            Err(ShmError::NotFound { .. }) => {
                missed += 1;
                assert!(!path.exists());
            }
            Err(e) => panic!("round {round}: {e:?}"),
        }
        collected += removed;
    }
    eprintln!("opened {opened}, not found {missed}, collected {collected}");
    assert_eq!(opened + missed, 200);
}
