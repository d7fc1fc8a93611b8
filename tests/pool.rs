//! `Pool` over real worker processes: results, chunking, panics, and a
//! worker killed mid-task.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, watchdog};
use multiproc::{Pool, PoolError};

fn square(x: u64) -> u64 {
    x * x
}

fn panic_on_13(x: u32) -> u32 {
    if x == 13 {
        panic!("unlucky {x}");
    }
    x + 1
}

/// Sleeps `ms` milliseconds and returns it.
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

#[test]
fn map_square_matches_serial_default_chunksize_and_chunksize_1() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(3).unwrap();
    let serial: Vec<u64> = (0..10_000).map(square).collect();
    assert_eq!(pool.map(square, 0..10_000).unwrap(), serial);
    assert_eq!(pool.map_chunksize(square, 0..10_000, 1).unwrap(), serial);
    assert_eq!(pool.map_chunksize(square, 0..10_000, 7).unwrap(), serial);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn empty_input_gives_empty_result_at_once() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let start = Instant::now();
    assert_eq!(pool.map(square, Vec::new()).unwrap(), Vec::<u64>::new());
    assert_eq!(pool.map_chunksize(square, Vec::new(), 1).unwrap(), Vec::<u64>::new());
    assert!(start.elapsed() < Duration::from_millis(100), "took {:?}", start.elapsed());
}

#[test]
fn apply_runs_in_another_process() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(1).unwrap();
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    let pid = pool.apply(pid_of, 0).unwrap();
    assert_ne!(pid, std::process::id());
    assert_eq!(pool.pids(), vec![pid]);
}

#[test]
fn zero_workers_and_zero_chunksize_are_errors() {
    assert!(matches!(Pool::new(0), Err(PoolError::ZeroWorkers)));
    let mut pool = Pool::new(1).unwrap();
    assert!(matches!(pool.map_chunksize(square, [1], 0), Err(PoolError::ZeroChunksize)));
}

#[test]
fn panicking_task_is_an_error_with_its_message_and_the_pool_stays_usable() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    for chunksize in [1, 5, 100] {
        match pool.map_chunksize(panic_on_13, 0..40, chunksize) {
            Err(PoolError::Task { index, message }) => {
                assert_eq!(index, 13);
                assert!(message.contains("unlucky 13"), "message: {message}");
            }
            other => panic!("expected a task error, got {other:?}"),
        }
        let expected: Vec<u32> = (1..=12).collect();
        assert_eq!(pool.map(panic_on_13, 0..12).unwrap(), expected);
    }
    assert!(matches!(pool.apply(panic_on_13, 13), Err(PoolError::Task { index: 0, .. })));
}

#[test]
fn worker_killed_mid_task_is_an_error_within_2s_and_is_replaced() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    for round in 0..20 {
        let before = pool.pids();
        // Kill a worker once it is running a long task.
        let victim = before[round % before.len()];
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::process::Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap()
        });
        let start = Instant::now();
        let result = pool.map_chunksize(sleep_ms, [1_000, 1_000], 1);
        let took = start.elapsed();
        assert!(killer.join().unwrap().success());
        match result {
            Err(PoolError::WorkerDied { exitcode, .. }) => assert_eq!(exitcode, Some(-9)),
            other => panic!("round {round}: expected WorkerDied, got {other:?}"),
        }
        assert!(took < Duration::from_secs(2), "round {round}: took {took:?}");
        let after = pool.pids();
        assert_eq!(after.len(), 2);
        assert!(!after.contains(&victim), "round {round}: the dead worker is still listed");
        let serial: Vec<u64> = (0..100).map(square).collect();
        assert_eq!(pool.map(square, 0..100).unwrap(), serial, "round {round}");
    }
}

#[test]
fn closed_pool_refuses_work_and_join_needs_close() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    assert!(matches!(pool.join(), Err(PoolError::NotClosed)));
    pool.close();
    assert!(matches!(pool.map(square, [1, 2]), Err(PoolError::Closed)));
    pool.join().unwrap();
    let mut pool = Pool::new(2).unwrap();
    let pids = pool.pids();
    let start = Instant::now();
    pool.terminate();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(matches!(pool.apply(square, 1), Err(PoolError::Closed)));
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} left behind");
    }
}

fn power(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

#[test]
fn starmap_of_pairs_matches_serial() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    assert_eq!(pool.starmap(power, [(2, 10), (3, 5), (4, 3)]).unwrap(), vec![1024, 243, 64]);
    let pairs: Vec<(u64, u32)> = (0..1_000).map(|i| (i % 7, (i % 5) as u32)).collect();
    let serial: Vec<u64> = pairs.iter().map(|&(b, e)| power(b, e)).collect();
    assert_eq!(pool.starmap(power, pairs).unwrap(), serial);
    assert_eq!(pool.starmap(power, Vec::new()).unwrap(), Vec::<u64>::new());
}

#[test]
fn idle_worker_killed_between_calls_is_replaced() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..10).unwrap().len(), 10);
    let victim = pool.pids()[0];
    assert!(std::process::Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(100));
    let serial: Vec<u64> = (0..1_000).map(square).collect();
    assert_eq!(pool.map_chunksize(square, 0..1_000, 1).unwrap(), serial);
    assert!(!pool.pids().contains(&victim));
}
