//! `Process` with the spawn start method, on real processes: exit codes,
//! signals, timeouts, misuse, and shared memory handed to children.

multiproc::test_support!();

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{exit_with, panics, sleep_secs};
use multiproc::{Process, ProcessError, SharedMemory, StartMethod};

/// Upper bound for any wait: a test fails instead of hanging.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Joins with the watchdog bound.
fn join(p: &mut Process) -> i32 {
    p.join_timeout(WATCHDOG).expect("join").expect("child still running after 20 s")
}

/// Removes a named segment when dropped, so a failing test leaves nothing in
/// the shared-memory directory.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = multiproc::unlink(self.0.as_str());
    }
}

fn unique(tag: &str) -> (String, Unlink) {
    let name = format!("mp-test-{}-process-{tag}", std::process::id());
    (name.clone(), Unlink(name))
}

/// The 32-bit atomic at the start of `shm`.
fn atomic(shm: &SharedMemory) -> &AtomicU32 {
    assert!(shm.len() >= 4);
    // SAFETY: the data is 128-byte aligned and at least 4 bytes long (checked),
    // it lives as long as `shm`, and other processes touch it only atomically.
    unsafe { &*shm.as_ptr().cast::<AtomicU32>() }
}

fn square_is_49(x: u64) {
    assert_eq!(x * x, 49);
}

fn nothing(_: ()) {}

#[test]
fn process_spawn_target_returning_exits_zero() {
    let mut p = Process::new(square_is_49, 7);
    assert_eq!(p.pid(), None);
    p.start().unwrap();
    assert!(p.pid().is_some());
    assert_eq!(join(&mut p), 0);
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    // Joining again gives the cached code.
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn process_spawn_explicit_exit_code_is_reported() {
    let mut p = Process::new(exit_with, 7);
    p.start().unwrap();
    assert_eq!(join(&mut p), 7);
}

#[test]
fn process_spawn_panic_exits_one() {
    let mut p = Process::new(panics, "expected panic in a child (test)".to_string());
    p.start().unwrap();
    assert_eq!(join(&mut p), 1);
}

#[test]
fn process_spawn_terminate_gives_minus_sigterm() {
    let mut p = Process::new(sleep_secs, 60);
    p.start().unwrap();
    p.terminate().unwrap();
    assert_eq!(join(&mut p), -15);
    assert_eq!(p.exitcode(), Some(-15));
}

#[test]
fn process_spawn_kill_gives_minus_sigkill() {
    let mut p = Process::new(sleep_secs, 60);
    p.start().unwrap();
    p.kill().unwrap();
    assert_eq!(join(&mut p), -9);
}

#[test]
fn process_spawn_join_timeout_returns_none_while_running() {
    let mut p = Process::new(sleep_secs, 60);
    p.start().unwrap();
    let t = Instant::now();
    assert_eq!(p.join_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    assert_eq!(join(&mut p), -9);
    assert!(!p.is_alive());
}

#[test]
fn process_spawn_join_timeout_wakes_when_child_ends() {
    let mut p = Process::new(exit_with, 5);
    p.start().unwrap();
    let t = Instant::now();
    assert_eq!(p.join_timeout(WATCHDOG).unwrap(), Some(5));
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn process_spawn_exitcode_is_none_before_start_and_while_running() {
    let mut p = Process::new(sleep_secs, 60);
    assert_eq!(p.exitcode(), None);
    assert!(!p.is_alive());
    p.start().unwrap();
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    assert_eq!(join(&mut p), -9);
    assert_eq!(p.exitcode(), Some(-9));
}

#[test]
fn process_spawn_operations_before_start_are_errors() {
    let mut p = Process::new(nothing, ());
    assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
    assert!(matches!(p.join_timeout(Duration::ZERO), Err(ProcessError::NotStarted)));
    assert!(matches!(p.terminate(), Err(ProcessError::NotStarted)));
    assert!(matches!(p.kill(), Err(ProcessError::NotStarted)));
}

#[test]
fn process_spawn_starting_twice_is_an_error() {
    let mut p = Process::new(nothing, ());
    p.start().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
    assert_eq!(join(&mut p), 0);
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
}

#[test]
fn process_spawn_signals_after_exit_are_no_ops() {
    let mut p = Process::new(nothing, ());
    p.start().unwrap();
    assert_eq!(join(&mut p), 0);
    p.terminate().unwrap();
    p.kill().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn process_spawn_default_names_count_up_and_can_be_set() {
    let a = Process::new(nothing, ());
    let b = Process::new(nothing, ());
    let n = |p: &Process| p.get_name().strip_prefix("Process-").unwrap().parse::<u64>().unwrap();
    assert!(n(&b) > n(&a));
    assert_eq!(Process::new(nothing, ()).name("worker").get_name(), "worker");
}

#[test]
fn process_spawn_many_children_run_concurrently() {
    let mut ps: Vec<Process> = (0..8).map(|i| Process::new(exit_with, i)).collect();
    for p in &mut ps {
        p.start().unwrap();
    }
    let codes: Vec<i32> = ps.iter_mut().map(join).collect();
    assert_eq!(codes, (0..8).collect::<Vec<_>>());
}

/// Fails to serialise, whatever serde backend.
#[derive(Debug)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be encoded"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Unencodable, D::Error> {
        Ok(Unencodable)
    }
}

fn takes_unencodable(_: Unencodable) {}

#[test]
fn process_spawn_argument_that_cannot_be_encoded_is_an_error() {
    let mut p = Process::new(takes_unencodable, Unencodable);
    match p.start() {
        Err(ProcessError::Encode(msg)) => assert!(msg.contains("refuses"), "{msg}"),
        other => panic!("expected an encoding error, got {other:?}"),
    }
    // Still unstarted.
    assert_eq!(p.pid(), None);
    assert!(matches!(p.join(), Err(ProcessError::NotStarted)));
}

#[test]
fn process_spawn_fork_is_refused_in_a_threaded_test_binary() {
    // libtest runs each test on a thread of its own: at least two threads.
    let mut p = Process::new(nothing, ()).start_method(StartMethod::Fork);
    match p.start() {
        Err(ProcessError::ForkWithThreads { threads }) => assert!(threads >= 2),
        other => panic!("expected ForkWithThreads, got {other:?}"),
    }
    assert_eq!(p.pid(), None);
}

const CHILD_TEXT: &[u8] = b"written by the child";

/// Checks the parent's bytes, then writes its own after them.
fn write_after_parent(arg: (u32, SharedMemory)) {
    let (tag, shm) = arg;
    // SAFETY: the parent does not touch the segment until this child ends.
    let bytes = unsafe { shm.as_mut_slice() };
    assert_eq!(&bytes[..4], &tag.to_le_bytes());
    bytes[4..4 + CHILD_TEXT.len()].copy_from_slice(CHILD_TEXT);
}

#[test]
fn process_spawn_anonymous_shared_memory_in_argument_is_shared() {
    let shm = SharedMemory::anonymous(64).unwrap();
    assert_eq!(shm.name(), None);
    // SAFETY: no child has the segment yet.
    unsafe { shm.as_mut_slice()[..4].copy_from_slice(&0xfeed_u32.to_le_bytes()) };
    let mut p = Process::new(write_after_parent, (0xfeed, shm.clone()));
    p.start().unwrap();
    assert_eq!(join(&mut p), 0);
    // SAFETY: the child has ended; nobody else writes.
    assert_eq!(&unsafe { shm.as_slice() }[4..4 + CHILD_TEXT.len()], CHILD_TEXT);
}

#[test]
fn process_spawn_named_shared_memory_travels_by_name() {
    let (name, _unlink) = unique("named");
    let shm = SharedMemory::create(name.as_str(), 64).unwrap();
    // SAFETY: no child has the segment yet.
    unsafe { shm.as_mut_slice()[..4].copy_from_slice(&7_u32.to_le_bytes()) };
    let mut p = Process::new(write_after_parent, (7, shm.clone()));
    p.start().unwrap();
    assert_eq!(join(&mut p), 0);
    // SAFETY: the child has ended; nobody else writes.
    assert_eq!(&unsafe { shm.as_slice() }[4..4 + CHILD_TEXT.len()], CHILD_TEXT);
    // Also reachable by its name alone.
    let again = SharedMemory::open(name.as_str()).unwrap();
    // SAFETY: as above.
    assert_eq!(&unsafe { again.as_slice() }[4..4 + CHILD_TEXT.len()], CHILD_TEXT);
}

fn open_by_name_and_write(name: String) {
    let shm = SharedMemory::open(name.as_str()).unwrap();
    atomic(&shm).store(42, Ordering::SeqCst);
}

#[test]
fn process_spawn_named_shared_memory_opened_by_the_child() {
    let (name, _unlink) = unique("by-name");
    let shm = SharedMemory::create(name.as_str(), 8).unwrap();
    let mut p = Process::new(open_by_name_and_write, name.clone());
    p.start().unwrap();
    assert_eq!(join(&mut p), 0);
    assert_eq!(atomic(&shm).load(Ordering::SeqCst), 42);
}

/// Starts a sleeping grandchild that dies with us, reports its pid, sleeps.
fn start_grandchild_and_sleep(report: SharedMemory) {
    let mut g = Process::new(sleep_secs, 60).die_with_parent(true);
    g.start().unwrap();
    atomic(&report).store(g.pid().unwrap(), Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(60));
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !matches!(stat.rsplit(')').next().and_then(|s| s.trim_start().chars().next()), Some('Z' | 'X')),
        Err(_) => false,
    }
}

#[test]
fn process_spawn_grandchild_dies_with_its_killed_parent() {
    let report = SharedMemory::anonymous(8).unwrap();
    let mut child = Process::new(start_grandchild_and_sleep, report.clone());
    child.start().unwrap();
    let t = Instant::now();
    let grandchild = loop {
        match atomic(&report).load(Ordering::SeqCst) {
            0 => {
                assert!(t.elapsed() < WATCHDOG, "the child never reported its grandchild");
                std::thread::sleep(Duration::from_millis(1));
            }
            pid => break pid,
        }
    };
    assert!(alive(grandchild));
    child.kill().unwrap();
    assert_eq!(join(&mut child), -9);
    let t = Instant::now();
    while alive(grandchild) {
        assert!(t.elapsed() < WATCHDOG, "the grandchild outlived its killed parent");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn process_spawn_handle_can_be_joined_on_another_thread() {
    fn assert_send<T: Send>(_: &T) {}
    let mut p = Process::new(exit_with, 4);
    assert_send(&p);
    // Started here: this thread outlives the child (die-with-parent follows
    // the starting thread), and the join happens elsewhere.
    p.start().unwrap();
    let code = std::thread::spawn(move || join(&mut p)).join().unwrap();
    assert_eq!(code, 4);
}
