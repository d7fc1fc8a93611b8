//! `RLock`: re-entrance, ownership errors, timeouts and owner death, between
//! threads and real processes.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, join, unique, wait_for_flag, watchdog};
use multiproc::{LockError, LockTimeoutError, Process, RLock, ReleaseError, ShmError, TryLockError, Value};

#[test]
fn rlock_is_reentrant_and_counts_releases() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    for _ in 0..3 {
        lock.acquire().unwrap();
    }
    lock.try_acquire().unwrap();
    lock.acquire_timeout(Duration::from_secs(1)).unwrap();
    for _ in 0..5 {
        lock.release().unwrap();
    }
    assert!(matches!(lock.release(), Err(ReleaseError::NotOwner)), "one release too many");
    // Still usable, and free.
    lock.acquire().unwrap();
    lock.release().unwrap();
}

#[test]
fn rlock_release_of_a_never_acquired_lock_is_an_error() {
    let lock = RLock::new().unwrap();
    let err = lock.release().unwrap_err();
    assert!(matches!(err, ReleaseError::NotOwner));
    assert_eq!(err.to_string(), "cannot release a lock the calling thread does not hold");
}

#[test]
fn rlock_guards_nest() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    let a = lock.lock().unwrap();
    let b = lock.lock().unwrap();
    let c = lock.try_lock().unwrap();
    drop(c);
    drop(b);
    let other = lock.clone();
    let held_elsewhere = std::thread::spawn(move || matches!(other.try_acquire(), Err(TryLockError::WouldBlock)));
    assert!(held_elsewhere.join().unwrap(), "still held at depth one");
    drop(a);
    let other = lock.clone();
    let free = std::thread::spawn(move || {
        let ok = other.try_acquire().is_ok();
        other.release().unwrap();
        ok
    });
    assert!(free.join().unwrap(), "free after the last guard");
}

#[test]
fn rlock_release_by_another_thread_is_an_error() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    lock.acquire().unwrap();
    let other = lock.clone();
    let t = std::thread::spawn(move || {
        let release = other.release();
        let try_acquire = other.try_acquire();
        (matches!(release, Err(ReleaseError::NotOwner)), matches!(try_acquire, Err(TryLockError::WouldBlock)))
    });
    assert_eq!(t.join().unwrap(), (true, true));
    // The failed release changed nothing: still ours, at depth one.
    lock.release().unwrap();
    assert!(lock.release().is_err());
}

#[test]
fn rlock_acquire_timeout_gives_up_in_time() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    let _g = lock.lock().unwrap();
    let other = lock.clone();
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        let r = other.acquire_timeout(Duration::from_millis(200));
        let g = other.lock_timeout(Duration::from_millis(10));
        (matches!(r, Err(LockTimeoutError::Timeout)), matches!(g, Err(LockTimeoutError::Timeout)), start.elapsed())
    });
    let (timed_out, guard_timed_out, took) = t.join().unwrap();
    assert!(timed_out && guard_timed_out);
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn rlock_thread_exiting_while_holding_reports_owner_died() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    let other = lock.clone();
    std::thread::spawn(move || {
        other.acquire().unwrap();
        other.acquire().unwrap();
    })
    .join()
    .unwrap();
    assert!(matches!(lock.acquire(), Err(LockError::OwnerDied(()))));
    // Taken over at depth one.
    lock.release().unwrap();
    assert!(lock.release().is_err());
    lock.acquire().expect("works normally afterwards");
    lock.release().unwrap();
}

#[test]
fn rlock_named_create_open() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("rlock-named");
    let a = RLock::create(name.as_str()).unwrap();
    let b = RLock::open(name.as_str()).unwrap();
    let c = RLock::open_or_create(name.as_str()).unwrap();
    a.acquire().unwrap();
    b.acquire().unwrap(); // same thread: re-entrant through another handle
    c.release().unwrap();
    a.release().unwrap();
    assert!(b.release().is_err());
    assert!(matches!(multiproc::Lock::open(name.as_str()), Err(ShmError::Mismatch { .. })));
}

// --- Across processes ---

/// Exits 0 if releasing the lock (held by the parent) is refused, and it
/// cannot be taken either.
fn release_not_owned(lock: RLock) {
    let refused = matches!(lock.release(), Err(ReleaseError::NotOwner));
    let busy = matches!(lock.try_acquire(), Err(TryLockError::WouldBlock));
    std::process::exit(if refused && busy { 0 } else { 2 });
}

#[test]
fn rlock_release_by_another_process_is_an_error() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    let mut child = Process::new(release_not_owned, lock.clone());
    child.start().unwrap();
    assert_eq!(join(&mut child), 0);
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(lock.release().is_err(), "the child's failed release changed nothing");
}

/// Takes the lock three levels deep, says so, and sleeps until killed.
fn hold_deep_forever(arg: (RLock, Value<u32>)) {
    let (lock, flag) = arg;
    for _ in 0..3 {
        lock.acquire().unwrap();
    }
    flag.set(1).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn rlock_child_killed_holding_it_reports_owner_died() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(hold_deep_forever, (lock.clone(), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    assert!(matches!(lock.try_acquire(), Err(TryLockError::WouldBlock)));
    child.kill().unwrap();
    assert_eq!(join(&mut child), -9);

    let start = Instant::now();
    let guard = match lock.lock() {
        Err(LockError::OwnerDied(g)) => g,
        Ok(_) => panic!("the owner's death was hidden"),
        Err(e) => panic!("unexpected {e}"),
    };
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(guard);
    assert!(lock.release().is_err(), "taken over at depth one, released by the guard");
    lock.acquire().expect("works normally afterwards");
    lock.acquire().unwrap();
    lock.release().unwrap();
    lock.release().unwrap();
}

fn lock_and_count(arg: (RLock, Value<u64>, u32)) {
    let (lock, total, rounds) = arg;
    for _ in 0..rounds {
        let _outer = lock.lock().unwrap();
        let _inner = lock.lock().unwrap();
        // A plain read-modify-write under the RLock, not the Value's lock.
        let v = total.get().unwrap();
        std::thread::yield_now();
        total.set(v + 1).unwrap();
    }
}

#[test]
fn rlock_excludes_other_processes() {
    let _w = watchdog(WATCH);
    let lock = RLock::new().unwrap();
    let total = Value::new(0u64).unwrap();
    let mut kids: Vec<Process> =
        (0..3).map(|_| Process::new(lock_and_count, (lock.clone(), total.clone(), 300))).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    for k in &mut kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(total.get().unwrap(), 900);
}
