//! `Pool::map_async`, `apply_async`, `starmap_async`: handles, timeouts and
//! callbacks.

multiproc::test_support!();

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use common::{WATCH, sigkill_after, watchdog};
use multiproc::{Pool, PoolError};

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn panic_on_13(x: u32) -> u32 {
    if x == 13 {
        panic!("unlucky {x}");
    }
    x + 1
}

fn power(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

#[test]
fn map_async_runs_in_the_background_and_get_returns_the_results() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(4).unwrap();
    let serial: Vec<u64> = (0..10_000).map(square).collect();
    assert_eq!(pool.map_async(square, 0..10_000).get().unwrap(), serial);
    assert_eq!(pool.map_async_chunksize(square, 0..1_000, 1).get().unwrap(), serial[..1_000]);
    assert_eq!(pool.map_async(square, Vec::new()).get().unwrap(), Vec::<u64>::new());
    // The workers run while the caller does something else: after the
    // sleep the results are there, collected without waiting.
    let mut r = pool.map_async_chunksize(sleep_ms, [300, 300, 300, 300], 1);
    std::thread::sleep(Duration::from_millis(700));
    assert!(r.ready(), "not done after 700 ms");
    assert_eq!(r.successful(), Some(true));
    assert_eq!(r.get().unwrap(), vec![300; 4]);
}

#[test]
fn ready_wait_and_get_timeout() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(1).unwrap();
    let mut r = pool.apply_async(sleep_ms, 300);
    assert!(!r.ready());
    // Polling with ready() alone gets there.
    let start = Instant::now();
    while !r.ready() {
        assert!(start.elapsed() < Duration::from_secs(10), "ready() never turned true");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(r.get().unwrap(), 300);
    let mut r = pool.apply_async(sleep_ms, 300);
    assert_eq!(r.successful(), None);
    assert!(matches!(r.get_timeout(Duration::from_millis(10)), Err(PoolError::Timeout)));
    assert!(!r.wait_timeout(Duration::from_millis(10)));
    r.wait();
    assert!(r.ready());
    assert_eq!(r.get_timeout(Duration::from_secs(5)).unwrap(), 300);
    assert!(matches!(r.get_timeout(Duration::from_secs(5)), Err(PoolError::ResultTaken)));
    drop(r);
    assert_eq!(pool.apply_async(square, 12).get().unwrap(), 144);
    assert_eq!(
        pool.starmap_async(power as fn(u64, u32) -> u64, [(2, 10), (3, 5), (4, 3)]).get().unwrap(),
        vec![1024, 243, 64]
    );
}

#[test]
fn callbacks_run_exactly_once_and_never_both() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(2).unwrap();
    let calls = RefCell::new(Vec::new());
    let r = pool
        .apply_async(square, 7)
        .on_success(|v| calls.borrow_mut().push(format!("ok {v}")))
        .on_error(|e| calls.borrow_mut().push(format!("err {e}")));
    assert_eq!(r.get().unwrap(), 49);
    assert_eq!(*calls.borrow(), vec!["ok 49".to_string()]);

    calls.borrow_mut().clear();
    let mut r = pool
        .map_async_chunksize(panic_on_13, 0..20, 1)
        .on_success(|v| calls.borrow_mut().push(format!("ok {}", v.len())))
        .on_error(|e| calls.borrow_mut().push(format!("err {e}")));
    r.wait();
    r.wait();
    match r.get() {
        Err(PoolError::Task { index: 13, message }) => assert!(message.contains("unlucky 13")),
        other => panic!("expected a task error, got {other:?}"),
    }
    assert_eq!(calls.borrow().len(), 1, "{:?}", calls.borrow());
    assert!(calls.borrow()[0].starts_with("err task 13"), "{:?}", calls.borrow());

    // Dropping the handle with a callback still due waits and runs it.
    calls.borrow_mut().clear();
    drop(pool.map_async(square, 0..10).on_success(|v| calls.borrow_mut().push(format!("ok {}", v.len()))));
    assert_eq!(*calls.borrow(), vec!["ok 10".to_string()]);
    // A callback set after the outcome is known runs at once.
    calls.borrow_mut().clear();
    let mut r = pool.apply_async(square, 3);
    r.wait();
    let r = r.on_success(|v| calls.borrow_mut().push(format!("ok {v}")));
    assert_eq!(*calls.borrow(), vec!["ok 9".to_string()]);
    assert_eq!(r.get().unwrap(), 9);
    assert_eq!(calls.borrow().len(), 1);
}

#[test]
fn async_worker_death_is_an_error_and_abandoned_calls_leave_the_pool_usable() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let victim = pool.pids()[0];
    let killer = sigkill_after(victim, Duration::from_millis(300));
    let start = Instant::now();
    let r = pool.map_async_chunksize(sleep_ms, [1_000, 1_000], 1);
    let got = r.get();
    assert!(killer.join().unwrap());
    assert!(matches!(got, Err(PoolError::WorkerDied { exitcode: Some(-9), .. })), "got {got:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    // Abandon a call with many queued chunks: the next call is not behind them.
    drop(pool.map_async_chunksize(sleep_ms, vec![100; 1_000], 1));
    let start = Instant::now();
    assert_eq!(pool.map(square, 0..10).unwrap(), (0..10).map(square).collect::<Vec<_>>());
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    pool.close();
    assert!(matches!(pool.apply_async(square, 1).get(), Err(PoolError::Closed)));
}

#[test]
fn several_apply_async_handles_coexist_as_in_python() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(3).unwrap();
    // results = [pool.apply_async(f, (x,)) for x in xs]; [r.get() for r in results]
    let results: Vec<_> = (0..200u64).map(|x| pool.apply_async(square, x)).collect();
    let got: Vec<u64> = results.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(got, (0..200).map(square).collect::<Vec<_>>());
    // Asked in reverse order, with map_async and starmap_async among them.
    let a = pool.map_async_chunksize(sleep_ms, [50, 50, 50], 1);
    let b = pool.starmap_async(power as fn(u64, u32) -> u64, [(2, 10), (3, 5), (4, 3)]);
    let c = pool.apply_async(sleep_ms, 20);
    let d = pool.map_async(square, 0..10_000);
    assert_eq!(d.get().unwrap(), (0..10_000).map(square).collect::<Vec<_>>());
    assert_eq!(c.get().unwrap(), 20);
    assert_eq!(b.get().unwrap(), vec![1024, 243, 64]);
    assert_eq!(a.get().unwrap(), vec![50; 3]);
}

#[test]
fn get_on_one_handle_collects_the_results_of_the_others() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(2).unwrap();
    let mut quick = pool.apply_async(sleep_ms, 10);
    let mut errs = pool.map_async_chunksize(panic_on_13, 0..20, 4);
    let slow = pool.apply_async(sleep_ms, 400);
    assert_eq!(slow.get().unwrap(), 400);
    // Their results came while `slow` was collected: filed, not lost.
    assert!(quick.wait_timeout(Duration::ZERO), "the quick call's result was not filed");
    assert_eq!(quick.get_timeout(Duration::ZERO).unwrap(), 10);
    assert!(errs.wait_timeout(Duration::ZERO), "the failing call's result was not filed");
    match errs.get_timeout(Duration::ZERO) {
        Err(PoolError::Task { index: 13, message }) => assert!(message.contains("unlucky 13")),
        other => panic!("expected task 13's error, got {other:?}"),
    }
}

#[test]
fn callbacks_of_several_handles_each_run_once_with_their_own_outcome() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(2).unwrap();
    let calls = RefCell::new(Vec::new());
    let handles: Vec<_> = (0..10u32)
        .map(|x| {
            pool.apply_async(panic_on_13, x + 10)
                .on_success(|v| calls.borrow_mut().push(format!("ok {v}")))
                .on_error(|e| calls.borrow_mut().push(format!("err {e}")))
        })
        .collect();
    drop(handles);
    let mut got = calls.borrow().clone();
    got.sort();
    let mut want: Vec<String> = (10..20).filter(|&x| x != 13).map(|x| format!("ok {}", x + 1)).collect();
    want.push("err task 0 failed: unlucky 13".to_string());
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn worker_killed_with_several_calls_outstanding_fails_only_its_call() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(2).unwrap();
    for round in 0..5 {
        let victim = pool.pids()[round % 2];
        let killer = sigkill_after(victim, Duration::from_millis(300));
        let start = Instant::now();
        let long: Vec<_> = (0..2).map(|_| pool.apply_async(sleep_ms, 1_000)).collect();
        let quick = pool.map_async(square, 0..1_000);
        let outcomes: Vec<_> = long.into_iter().map(|r| r.get()).collect();
        assert!(killer.join().unwrap());
        assert!(start.elapsed() < Duration::from_secs(3), "round {round}: took {:?}", start.elapsed());
        let died =
            outcomes.iter().filter(|r| matches!(r, Err(PoolError::WorkerDied { exitcode: Some(-9), .. }))).count();
        let fine = outcomes.iter().filter(|r| matches!(r, Ok(1_000))).count();
        assert_eq!((died, fine), (1, 1), "round {round}: {outcomes:?}");
        assert_eq!(quick.get().unwrap(), (0..1_000).map(square).collect::<Vec<_>>(), "round {round}");
    }
}

#[test]
fn abandoning_one_of_several_calls_removes_its_queued_chunks_only() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(2).unwrap();
    let before = pool.apply_async(sleep_ms, 30);
    let abandoned = pool.map_async_chunksize(sleep_ms, vec![100; 500], 1);
    let after = pool.map_async_chunksize(square, 0..100, 1);
    let start = Instant::now();
    drop(abandoned);
    assert_eq!(after.get().unwrap(), (0..100).map(square).collect::<Vec<_>>());
    assert_eq!(before.get().unwrap(), 30);
    // Not behind 500 x 100 ms of abandoned work (at most the two chunks
    // running when it was dropped).
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

#[test]
fn async_calls_larger_than_the_task_queue_are_fed_as_it_drains() {
    let _w = watchdog(WATCH);
    let pool = Pool::new(2).unwrap();
    // 3,000,000 u64 are 24 MB of frames, three times the 8 MiB task queue:
    // most wait in the call until some handle is asked.
    let n = 3_000_000u64;
    let big = pool.map_async_chunksize(square, 0..n, 50_000);
    let small = pool.apply_async(square, 9);
    assert_eq!(small.get().unwrap(), 81);
    let got = big.get().unwrap();
    assert_eq!(got.len(), n as usize);
    assert!(got.iter().enumerate().all(|(i, &v)| v == square(i as u64)));
}
