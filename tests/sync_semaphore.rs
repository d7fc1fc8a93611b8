//! `Semaphore` and `BoundedSemaphore`: counting, timeouts, over-release,
//! and waiters killed across real processes.

multiproc::test_support!();

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{WATCH, join, unique, wait_for_flag, watchdog};
use multiproc::{BoundedSemaphore, Process, Semaphore, ShmError, Value};

#[test]
fn semaphore_counts_down_and_up() {
    let _w = watchdog(WATCH);
    let sem = Semaphore::new(2).unwrap();
    assert_eq!(sem.value(), 2);
    sem.acquire();
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    assert_eq!(sem.value(), 0);
    sem.release().unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value(), 3, "a plain semaphore may go above its initial value");
}

#[test]
fn semaphore_acquire_timeout_gives_up_in_time() {
    let _w = watchdog(WATCH);
    let sem = Semaphore::new(0).unwrap();
    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(200)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "took {took:?}");
    assert!(!sem.acquire_timeout(Duration::ZERO));
    sem.release().unwrap();
    assert!(sem.acquire_timeout(Duration::ZERO));
}

#[test]
fn semaphore_release_wakes_a_blocked_thread() {
    let _w = watchdog(WATCH);
    let sem = Semaphore::new(0).unwrap();
    let other = sem.clone();
    let t = std::thread::spawn(move || other.acquire_timeout(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    sem.release().unwrap();
    assert!(t.join().unwrap());
    assert_eq!(sem.value(), 0);
}

#[test]
fn semaphore_bounds_concurrency_between_threads() {
    let _w = watchdog(WATCH);
    let sem = Semaphore::new(3).unwrap();
    let inside = AtomicU32::new(0);
    let most = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..if cfg!(miri) { 10 } else { 2_000 } {
                    assert!(sem.acquire_timeout(Duration::from_secs(20)));
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    sem.release().unwrap();
                }
            });
        }
    });
    assert!(most.load(Ordering::SeqCst) <= 3);
    assert_eq!(sem.value(), 3);
}

#[test]
fn semaphore_release_at_u32_max_is_refused() {
    let sem = Semaphore::new(u32::MAX).unwrap();
    let err = sem.release().unwrap_err();
    assert_eq!(err.limit(), u32::MAX);
    assert_eq!(sem.value(), u32::MAX);
}

#[test]
fn bounded_semaphore_over_release_is_an_error_and_changes_nothing() {
    let sem = BoundedSemaphore::new(2).unwrap();
    assert_eq!(sem.limit(), 2);
    let err = sem.release().unwrap_err();
    assert_eq!(err.limit(), 2);
    assert_eq!(err.to_string(), "semaphore released too many times (its limit is 2)");
    assert_eq!(sem.value(), 2);
    sem.acquire();
    sem.acquire();
    assert!(!sem.try_acquire());
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(sem.release().is_err());
    assert_eq!(sem.value(), 2);
}

#[test]
fn semaphore_named_create_open_and_kind_check() {
    let (name, _cleanup) = unique("sem-named");
    let sem = Semaphore::create(name.as_str(), 1).unwrap();
    assert!(matches!(Semaphore::create(name.as_str(), 1), Err(ShmError::AlreadyExists { .. })));
    let again = Semaphore::open(name.as_str()).unwrap();
    assert!(again.try_acquire());
    assert!(!sem.try_acquire(), "both handles share one count");
    let third = Semaphore::open_or_create(name.as_str(), 99).unwrap();
    assert_eq!(third.value(), 0, "open_or_create of an existing one ignores the value");
    assert!(matches!(BoundedSemaphore::open(name.as_str()), Err(ShmError::Mismatch { .. })));
    assert_eq!(sem.name(), Some(name.as_str()));
    sem.unlink().unwrap();
    assert!(matches!(Semaphore::open(name.as_str()), Err(ShmError::NotFound { .. })));
}

#[test]
fn bounded_semaphore_named_open_or_create() {
    let (name, _cleanup) = unique("bsem-named");
    let a = BoundedSemaphore::open_or_create(name.as_str(), 2).unwrap();
    let b = BoundedSemaphore::open_or_create(name.as_str(), 7).unwrap();
    assert_eq!(b.limit(), 2);
    assert!(b.try_acquire());
    assert_eq!(a.value(), 1);
    assert!(matches!(Semaphore::open(name.as_str()), Err(ShmError::Mismatch { .. })));
}

// --- Across processes ---

/// Says it is about to wait, then blocks until killed.
fn acquire_forever(arg: (Semaphore, Value<u32>)) {
    let (sem, flag) = arg;
    flag.set(1).unwrap();
    sem.acquire();
    // Only reached if a unit appeared while the test expected none.
    std::process::exit(3);
}

/// Exits 0 if it gets a unit within `secs`, 2 otherwise.
fn acquire_within(arg: (Semaphore, Value<u32>, u64)) {
    let (sem, flag, secs) = arg;
    flag.set(1).unwrap();
    std::process::exit(if sem.acquire_timeout(Duration::from_secs(secs)) { 0 } else { 2 });
}

#[test]
fn semaphore_child_killed_while_waiting_leaves_others_working() {
    let _w = watchdog(WATCH);
    let sem = Semaphore::new(0).unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut victim = Process::new(acquire_forever, (sem.clone(), flag.clone()));
    victim.start().unwrap();
    wait_for_flag(&flag, 1);
    // Let it fall asleep in the futex wait.
    std::thread::sleep(Duration::from_millis(200));
    victim.kill().unwrap();
    assert_eq!(join(&mut victim), -9);
    assert_eq!(sem.value(), 0, "a killed waiter took nothing");

    flag.set(0).unwrap();
    let mut next = Process::new(acquire_within, (sem.clone(), flag.clone(), 20));
    next.start().unwrap();
    wait_for_flag(&flag, 1);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    sem.release().unwrap();
    assert_eq!(join(&mut next), 0, "a release after the death lets another acquirer in");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(sem.value(), 0);
    sem.release().unwrap();
    assert_eq!(sem.value(), 1);
    assert!(sem.try_acquire());
}

fn take_and_give(arg: (Semaphore, Value<u32>, u32)) {
    let (sem, inside, rounds) = arg;
    for _ in 0..rounds {
        assert!(sem.acquire_timeout(Duration::from_secs(20)));
        {
            let mut g = inside.lock().unwrap();
            *g += 1;
            assert!(*g <= 2, "{} processes inside a semaphore of 2", *g);
        }
        std::thread::yield_now();
        *inside.lock().unwrap() -= 1;
        sem.release().unwrap();
    }
}

#[test]
fn semaphore_bounds_concurrency_between_processes() {
    let _w = watchdog(WATCH);
    let sem = Semaphore::new(2).unwrap();
    let inside = Value::new(0u32).unwrap();
    let mut kids: Vec<Process> =
        (0..4).map(|_| Process::new(take_and_give, (sem.clone(), inside.clone(), 500))).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    for k in &mut kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(sem.value(), 2);
    assert_eq!(inside.get().unwrap(), 0);
}

fn over_release(sem: BoundedSemaphore) {
    std::process::exit(match sem.release() {
        Err(e) if e.limit() == 1 => 0,
        Err(_) => 2,
        Ok(()) => 3,
    });
}

#[test]
fn bounded_semaphore_over_release_in_a_child_changes_nothing() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("bsem-child");
    let sem = BoundedSemaphore::create(name.as_str(), 1).unwrap();
    let by_name = BoundedSemaphore::open(name.as_str()).unwrap();
    let mut child = Process::new(over_release, by_name);
    child.start().unwrap();
    assert_eq!(join(&mut child), 0);
    assert_eq!(sem.value(), 1);
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
}
