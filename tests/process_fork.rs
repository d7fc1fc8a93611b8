//! `Process` with the fork start method. Fork is refused in a threaded
//! process, and libtest runs tests on threads, so this file has its own
//! single-threaded `main` (`harness = false`): it runs each check, prints one
//! line per check and a summary, and exits non-zero on any failure.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{exit_with, panics, sleep_secs};
use multiproc::{Process, ProcessError, SharedMemory, StartMethod};

/// Upper bound for any wait: a check fails instead of hanging.
const WATCHDOG: Duration = Duration::from_secs(20);

fn fork<A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(target: fn(A), arg: A) -> Process {
    Process::new(target, arg).start_method(StartMethod::Fork)
}

fn join(p: &mut Process) -> i32 {
    p.join_timeout(WATCHDOG).expect("join").expect("child still running after 20 s")
}

fn nothing(_: ()) {}

fn store_in(shm: SharedMemory) {
    assert!(shm.len() >= 4);
    // SAFETY: 128-byte aligned, at least 4 bytes, alive for the call; the
    // parent reads it only atomically.
    let a = unsafe { &*shm.as_ptr().cast::<AtomicU32>() };
    a.store(0xC0FFEE, Ordering::SeqCst);
}

fn fork_target_returning_exits_zero() {
    let mut p = fork(nothing, ());
    p.start().unwrap();
    assert!(p.pid().is_some());
    assert_eq!(join(&mut p), 0);
}

fn fork_explicit_exit_code_is_reported() {
    let mut p = fork(exit_with, 7);
    p.start().unwrap();
    assert_eq!(join(&mut p), 7);
}

fn fork_panic_exits_one() {
    let mut p = fork(panics, "expected panic in a forked child (test)".to_string());
    p.start().unwrap();
    assert_eq!(join(&mut p), 1);
}

fn fork_terminate_gives_minus_sigterm() {
    let mut p = fork(sleep_secs, 60);
    p.start().unwrap();
    assert_eq!(p.join_timeout(Duration::from_millis(20)).unwrap(), None);
    assert!(p.is_alive());
    p.terminate().unwrap();
    assert_eq!(join(&mut p), -15);
}

fn fork_kill_gives_minus_sigkill() {
    let mut p = fork(sleep_secs, 60);
    p.start().unwrap();
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    assert_eq!(join(&mut p), -9);
    assert_eq!(p.exitcode(), Some(-9));
}

fn fork_child_writes_anonymous_shared_memory() {
    let shm = SharedMemory::anonymous(64).unwrap();
    let mut p = fork(store_in, shm.clone());
    p.start().unwrap();
    assert_eq!(join(&mut p), 0);
    // SAFETY: as in `store_in`.
    let a = unsafe { &*shm.as_ptr().cast::<AtomicU32>() };
    assert_eq!(a.load(Ordering::SeqCst), 0xC0FFEE);
}

fn fork_starting_twice_is_an_error() {
    let mut p = fork(nothing, ());
    p.start().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
    assert_eq!(join(&mut p), 0);
}

fn fork_is_refused_when_another_thread_exists() {
    let parked = std::thread::spawn(std::thread::park);
    let mut p = fork(nothing, ());
    let r = p.start();
    parked.thread().unpark();
    parked.join().unwrap();
    match r {
        Err(ProcessError::ForkWithThreads { threads }) => assert!(threads >= 2, "{threads}"),
        other => panic!("expected ForkWithThreads, got {other:?}"),
    }
    assert_eq!(p.pid(), None);
    // The thread has ended (joined), so the same process may now fork. The
    // kernel may take a moment to remove the thread's /proc entry.
    let t = Instant::now();
    loop {
        match p.start() {
            Ok(()) => break,
            Err(ProcessError::ForkWithThreads { .. }) if t.elapsed() < WATCHDOG => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(join(&mut p), 0);
}

/// Forked child: keeps its inherited copy of the mutex until killed.
fn hold_inherited(m: multiproc::Mutex<u32>) {
    let _keep = m;
    std::thread::sleep(Duration::from_secs(60));
}

fn fork_child_keeps_a_named_segment_attached() {
    use multiproc::segment::{self, Status};
    let dir = std::env::temp_dir().join(format!("multiproc-fork-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = || segment::list(&dir).unwrap().into_iter().find(|e| e.name.as_str() == "m").map(|e| e.status());
    let run = || {
        let m = multiproc::Mutex::create(multiproc::Name::new("m").in_dir(&dir), 0u32).unwrap();
        let mut p = fork(hold_inherited, m.clone());
        p.start().unwrap();
        drop(m);
        // The child shares the parent's open file description, and so its
        // attach lock: the segment is in use until the child is gone too.
        assert_eq!(status(), Some(Status::Attached));
        p.kill().unwrap();
        assert_eq!(join(&mut p), -9);
        assert_eq!(status(), Some(Status::Stale));
        assert_eq!(segment::gc(&dir, false).unwrap().len(), 1);
    };
    let r = catch_unwind(AssertUnwindSafe(run));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

fn main() {
    let checks: &[(&str, fn())] = &[
        ("fork_target_returning_exits_zero", fork_target_returning_exits_zero),
        ("fork_explicit_exit_code_is_reported", fork_explicit_exit_code_is_reported),
        ("fork_panic_exits_one", fork_panic_exits_one),
        ("fork_terminate_gives_minus_sigterm", fork_terminate_gives_minus_sigterm),
        ("fork_kill_gives_minus_sigkill", fork_kill_gives_minus_sigkill),
        ("fork_child_writes_anonymous_shared_memory", fork_child_writes_anonymous_shared_memory),
        ("fork_starting_twice_is_an_error", fork_starting_twice_is_an_error),
        ("fork_is_refused_when_another_thread_exists", fork_is_refused_when_another_thread_exists),
        ("fork_child_keeps_a_named_segment_attached", fork_child_keeps_a_named_segment_attached),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        if catch_unwind(AssertUnwindSafe(check)).is_ok() {
            println!("{name} ... ok");
            passed += 1;
        } else {
            println!("{name} ... FAILED");
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
