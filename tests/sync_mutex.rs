//! `Mutex<T>` across real processes: exclusion, owner death, timeouts.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{join, unique, wait_for_flag};
use multiproc::{LockError, LockTimeoutError, Mutex, Process, TryLockError, Value};

/// Takes the lock, says so, and sleeps holding it until killed.
fn hold_forever(arg: (Mutex<u64>, Value<u32>)) {
    let (m, flag) = arg;
    let mut g = m.lock().unwrap();
    *g = 41;
    flag.set(1).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn mutex_reports_owner_killed_holding_it_and_keeps_working() {
    let m = Mutex::new(0u64).unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(hold_forever, (m.clone(), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    child.kill().unwrap();
    assert_eq!(join(&mut child), -9);

    let start = Instant::now();
    let guard = match m.lock() {
        Err(LockError::OwnerDied(g)) => g,
        Ok(_) => panic!("the owner's death was hidden"),
        Err(e) => panic!("unexpected {e}"),
    };
    assert!(start.elapsed() < Duration::from_secs(1), "recovery took {:?}", start.elapsed());
    assert_eq!(*guard, 41, "the guard hands over the data the dead owner wrote");
    drop(guard);
    let mut g = m.lock().expect("works normally after recovery");
    *g += 1;
    drop(g);
    assert_eq!(*m.try_lock().unwrap(), 42);
}

fn increment_named(arg: (String, u64)) {
    let (name, n) = arg;
    let m = Mutex::<u64>::open(name.as_str()).unwrap();
    for _ in 0..n {
        *m.lock().unwrap() += 1;
    }
}

#[test]
fn mutex_named_is_shared_with_a_child_that_opens_it() {
    let (name, _cleanup) = unique("mutex-named");
    let m = Mutex::create(name.as_str(), 0u64).unwrap();
    let mut kids: Vec<Process> = (0..2).map(|_| Process::new(increment_named, (name.clone(), 10_000))).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    for _ in 0..10_000 {
        *m.lock().unwrap() += 1;
    }
    for k in &mut kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(*m.lock().unwrap(), 30_000);
    assert_eq!(m.name(), Some(name.as_str()));
}

#[test]
fn mutex_lock_timeout_gives_up_and_try_lock_would_block() {
    let m = Mutex::new(5u32).unwrap();
    let g = m.lock().unwrap();
    let other = m.clone();
    let t = std::thread::spawn(move || {
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        let start = Instant::now();
        let r = other.lock_timeout(Duration::from_millis(50));
        assert!(matches!(r, Err(LockTimeoutError::Timeout)));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50), "returned early: {waited:?}");
        assert!(waited < Duration::from_secs(5), "timeout overshot: {waited:?}");
    });
    t.join().unwrap();
    drop(g);
    assert_eq!(*m.lock_timeout(Duration::from_secs(5)).unwrap(), 5);
}

#[test]
fn mutex_reports_a_thread_that_exited_holding_it() {
    let m = Mutex::new(1u8).unwrap();
    let other = m.clone();
    std::thread::spawn(move || std::mem::forget(other.lock().unwrap())).join().unwrap();
    assert!(m.lock().unwrap_err().is_owner_died());
    assert!(m.lock().is_ok());
}

#[test]
fn mutex_open_of_a_value_is_a_mismatch() {
    let (name, _cleanup) = unique("mutex-kind");
    let _v = Value::create(name.as_str(), 1u32).unwrap();
    let err = Mutex::<u32>::open(name.as_str()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Mutex") && text.contains("Value"), "{text}");
}
