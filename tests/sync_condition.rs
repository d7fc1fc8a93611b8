//! `Condition`: waits, notifies, ownership errors, timeouts and dead
//! processes, between threads and real processes.

multiproc::test_support!();

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{WATCH, join, unique, wait_for_flag, watchdog};
use multiproc::{Condition, ConditionWaitError, LockError, NotifyError, Process, ShmError, TryLockError, Value};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn condition_notify_without_the_lock_is_an_error() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    assert_eq!(cond.notify(1), Err(NotifyError));
    assert_eq!(cond.notify_all(), Err(NotifyError));
    let g = cond.lock().unwrap();
    cond.notify(1).unwrap();
    cond.notify_all().unwrap();
    let other = cond.clone();
    let from_other_thread = std::thread::spawn(move || other.notify(1)).join().unwrap();
    assert_eq!(from_other_thread, Err(NotifyError), "another thread does not hold it");
    drop(g);
    assert_eq!(cond.notify(1), Err(NotifyError), "released");
}

#[test]
fn condition_wait_with_a_guard_of_another_condition_is_an_error() {
    let _w = watchdog(WATCH);
    let a = Condition::new().unwrap();
    let b = Condition::new().unwrap();
    let gb = b.lock().unwrap();
    let gb = match a.wait(gb) {
        Err(ConditionWaitError::ForeignGuard(g)) => g,
        other => panic!("expected ForeignGuard, got {other:?}"),
    };
    // Nothing happened: b is still held by us, a is free.
    b.notify(1).unwrap();
    assert!(a.try_lock().is_ok());
    let gb = match a.wait_timeout(gb, Duration::from_millis(1)) {
        Err(ConditionWaitError::ForeignGuard((g, _))) => g,
        other => panic!("expected ForeignGuard, got {other:?}"),
    };
    drop(gb);
    assert!(b.try_lock().is_ok());
}

#[test]
fn condition_accepts_a_guard_from_another_handle_of_the_same_condition() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("cond-handles");
    let a = Condition::create(name.as_str()).unwrap();
    let b = Condition::open(name.as_str()).unwrap();
    let g = a.lock().unwrap();
    let (g, timed_out) = b.wait_timeout(g, Duration::from_millis(20)).unwrap();
    assert!(timed_out.timed_out());
    b.notify(1).unwrap();
    drop(g);
    assert!(matches!(Condition::create(name.as_str()), Err(ShmError::AlreadyExists { .. })));
    let _c = Condition::open_or_create(name.as_str()).unwrap();
}

#[test]
fn condition_lock_twice_from_one_thread_is_an_error_not_a_deadlock() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let g = cond.lock().unwrap();
    let deadlock = |e: &std::io::Error| e.raw_os_error() == Some(libc::EDEADLK);
    assert!(matches!(cond.try_lock(), Err(TryLockError::Unusable(e)) if deadlock(&e)));
    assert!(matches!(cond.lock(), Err(LockError::Unusable(e)) if deadlock(&e)));
    assert!(
        matches!(cond.lock_timeout(Duration::from_millis(10)), Err(multiproc::LockTimeoutError::Unusable(e)) if deadlock(&e))
    );
    drop(g);
    drop(cond.lock().unwrap());
}

#[test]
fn condition_wait_timeout_times_out_in_time() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let g = cond.lock().unwrap();
    let start = Instant::now();
    let (g, r) = cond.wait_timeout(g, Duration::from_millis(200)).unwrap();
    let took = start.elapsed();
    assert!(r.timed_out());
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "took {took:?}");
    cond.notify(1).expect("the lock is held again after a wait");
    drop(g);
}

#[test]
fn condition_notify_wakes_a_waiting_thread() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let ready = AtomicBool::new(false);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let g = cond.lock().unwrap();
            let (g, ok) = cond.wait_for(g, || ready.load(Ordering::SeqCst), LONG).unwrap();
            drop(g);
            ok
        });
        std::thread::sleep(Duration::from_millis(50));
        let g = cond.lock().unwrap();
        ready.store(true, Ordering::SeqCst);
        cond.notify(1).unwrap();
        drop(g);
        assert!(waiter.join().unwrap());
    });
}

#[test]
fn condition_wait_for_returns_the_predicates_last_value_on_timeout() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let calls = AtomicU32::new(0);
    let g = cond.lock().unwrap();
    let start = Instant::now();
    let (g, ok) = cond
        .wait_for(
            g,
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                false
            },
            Duration::from_millis(150),
        )
        .unwrap();
    assert!(!ok);
    assert!(start.elapsed() >= Duration::from_millis(150) && start.elapsed() < Duration::from_secs(5));
    assert!(calls.load(Ordering::SeqCst) >= 2, "checked before and after waiting");
    let (g, ok) = cond.wait_for(g, || true, Duration::ZERO).unwrap();
    assert!(ok);
    drop(g);
}

#[test]
fn condition_notify_all_wakes_every_waiting_thread() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let go = AtomicU32::new(0);
    let done = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| {
                let g = cond.lock().unwrap();
                let g = cond.wait_while(g, || go.load(Ordering::SeqCst) == 0).unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                drop(g);
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        let g = cond.lock().unwrap();
        go.store(1, Ordering::SeqCst);
        cond.notify_all().unwrap();
        drop(g);
    });
    assert_eq!(done.load(Ordering::SeqCst), 5);
}

#[test]
fn condition_notify_n_wakes_enough_waiters_for_n_tokens() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let tokens = AtomicU32::new(0);
    let done = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let g = cond.lock().unwrap();
                let (g, got) = cond.wait_for(g, || tokens.load(Ordering::SeqCst) > 0, LONG).unwrap();
                assert!(got, "a waiter was not woken for its token");
                tokens.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                drop(g);
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        let g = cond.lock().unwrap();
        tokens.store(2, Ordering::SeqCst);
        cond.notify(2).unwrap();
        drop(g);
        let start = Instant::now();
        while done.load(Ordering::SeqCst) < 2 {
            assert!(start.elapsed() < LONG);
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(done.load(Ordering::SeqCst), 2, "two tokens, two waiters through");
        let g = cond.lock().unwrap();
        tokens.store(1, Ordering::SeqCst);
        cond.notify(1).unwrap();
        drop(g);
    });
    assert_eq!(done.load(Ordering::SeqCst), 3);
}

#[test]
fn condition_producer_consumer_between_threads() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let items = AtomicU32::new(0);
    let consumed = AtomicU32::new(0);
    const N: u32 = 2_000;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let g = cond.lock().unwrap();
                    let (g, got) = cond
                        .wait_for(g, || items.load(Ordering::SeqCst) > 0 || consumed.load(Ordering::SeqCst) >= N, LONG)
                        .unwrap();
                    assert!(got, "consumer starved");
                    if consumed.load(Ordering::SeqCst) >= N {
                        cond.notify_all().unwrap();
                        return;
                    }
                    items.fetch_sub(1, Ordering::SeqCst);
                    consumed.fetch_add(1, Ordering::SeqCst);
                    drop(g);
                }
            });
        }
        for _ in 0..N {
            let g = cond.lock().unwrap();
            items.fetch_add(1, Ordering::SeqCst);
            cond.notify(1).unwrap();
            drop(g);
        }
    });
    assert_eq!(consumed.load(Ordering::SeqCst), N);
}

// --- Across processes ---

/// Locks, says so, waits for one notify (20 s at most): exits 0 if woken
/// before the timeout.
fn wait_once(arg: (Condition, Value<u32>)) {
    let (cond, flag) = arg;
    let g = cond.lock().unwrap();
    flag.set(1).unwrap();
    // The parent can lock only once this wait has released the lock.
    let (g, r) = cond.wait_timeout(g, LONG).unwrap();
    drop(g);
    std::process::exit(if r.timed_out() { 2 } else { 0 });
}

/// Locks, says so, and waits until killed.
fn wait_forever(arg: (Condition, Value<u32>)) {
    let (cond, flag) = arg;
    let g = cond.lock().unwrap();
    flag.set(1).unwrap();
    let _g = cond.wait_while(g, || true);
    std::process::exit(3);
}

/// Locks, says so, and sleeps holding the lock until killed.
fn hold_forever(arg: (Condition, Value<u32>)) {
    let (cond, flag) = arg;
    let _g = cond.lock().unwrap();
    flag.set(1).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Starts `wait_once` in a child and returns once the child is waiting
/// (it held the lock when it said so; we got the lock, so it is waiting).
fn start_waiter(cond: &Condition) -> Process {
    let flag = Value::new(0u32).unwrap();
    let mut p = Process::new(wait_once, (cond.clone(), flag.clone()));
    p.start().unwrap();
    wait_for_flag(&flag, 1);
    p
}

#[test]
fn condition_notify_from_the_parent_wakes_a_waiting_child() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let mut child = start_waiter(&cond);
    let g = cond.lock().unwrap();
    cond.notify(1).unwrap();
    drop(g);
    assert_eq!(join(&mut child), 0, "the child was not woken by the notify");
}

#[test]
fn condition_child_killed_while_waiting_leaves_it_working() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut victim = Process::new(wait_forever, (cond.clone(), flag.clone()));
    victim.start().unwrap();
    wait_for_flag(&flag, 1);
    // Locking succeeds only once the victim sleeps in its wait.
    drop(cond.lock().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    victim.kill().unwrap();
    assert_eq!(join(&mut victim), -9);

    let g = cond.lock().expect("a waiter does not hold the lock: no owner death");
    drop(g);
    let mut child = start_waiter(&cond);
    let g = cond.lock().unwrap();
    cond.notify(1).unwrap();
    drop(g);
    assert_eq!(join(&mut child), 0);
}

#[test]
fn condition_child_killed_holding_the_lock_reports_owner_died_and_keeps_working() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("cond-owner-died");
    let cond = Condition::create(name.as_str()).unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut victim = Process::new(hold_forever, (Condition::open(name.as_str()).unwrap(), flag.clone()));
    victim.start().unwrap();
    wait_for_flag(&flag, 1);
    assert!(matches!(cond.try_lock(), Err(TryLockError::WouldBlock)));
    victim.kill().unwrap();
    assert_eq!(join(&mut victim), -9);

    let start = Instant::now();
    let g = match cond.lock() {
        Err(LockError::OwnerDied(g)) => g,
        Ok(_) => panic!("the owner's death was hidden"),
        Err(e) => panic!("unexpected {e}"),
    };
    assert!(start.elapsed() < Duration::from_secs(1));
    cond.notify_all().expect("the recovered guard makes us the owner");
    drop(g);
    assert_eq!(cond.notify(1), Err(NotifyError));

    let mut child = start_waiter(&cond);
    let g = cond.lock().expect("repaired");
    cond.notify(1).unwrap();
    drop(g);
    assert_eq!(join(&mut child), 0);
}

/// A waiter relocking after the holder died sees `OwnerDied` from `wait`.
#[test]
fn condition_waiter_relocking_after_a_dead_holder_gets_owner_died() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut g = cond.lock().unwrap();
    let mut victim = Process::new(hold_forever, (cond.clone(), flag.clone()));
    victim.start().unwrap();
    let killer = std::thread::spawn(move || {
        wait_for_flag(&flag, 1);
        std::thread::sleep(Duration::from_millis(200));
        victim.kill().unwrap();
        join(&mut victim)
    });
    // Each short wait lets the child take the lock; once it has, our relock
    // blocks until the child is killed holding it.
    let start = Instant::now();
    loop {
        match cond.wait_timeout(g, Duration::from_millis(20)) {
            Ok((again, _)) => {
                assert!(start.elapsed() < LONG, "the child never took the lock");
                g = again;
            }
            Err(ConditionWaitError::OwnerDied((again, _))) => {
                cond.notify(1).expect("relocked: we own it");
                drop(again);
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(killer.join().unwrap(), -9);
    drop(cond.lock().expect("repaired"));
}

/// Notifies (holding the lock) until `stop` is set.
fn notify_until(arg: (Condition, Value<u32>)) {
    let (cond, stop) = arg;
    while stop.get().unwrap() == 0 {
        let g = cond.lock().unwrap();
        cond.notify_all().unwrap();
        drop(g);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn condition_notify_from_a_child_wakes_the_parent() {
    let _w = watchdog(WATCH);
    let cond = Condition::new().unwrap();
    let stop = Value::new(0u32).unwrap();
    let mut child = Process::new(notify_until, (cond.clone(), stop.clone()));
    child.start().unwrap();
    let g = cond.lock().unwrap();
    let (g, r) = cond.wait_timeout(g, LONG).unwrap();
    assert!(!r.timed_out(), "the child's notify did not wake the parent");
    drop(g);
    stop.set(1).unwrap();
    assert_eq!(join(&mut child), 0);
}
