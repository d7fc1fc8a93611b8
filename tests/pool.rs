//! `Pool` over real worker processes: results, chunking, panics, and a
//! worker killed mid-task.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, sigkill, sigkill_after, watchdog};
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
    let serial: Vec<u64> = (0..100_000).map(square).collect();
    assert_eq!(pool.map(square, 0..100_000).unwrap(), serial);
    assert_eq!(pool.map_chunksize(square, 0..100_000, 1).unwrap(), serial);
    assert_eq!(pool.map_chunksize(square, 0..100_000, 7).unwrap(), serial);
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
        let killer = sigkill_after(victim, Duration::from_millis(300));
        let start = Instant::now();
        let result = pool.map_chunksize(sleep_ms, [1_000, 1_000], 1);
        let took = start.elapsed();
        assert!(killer.join().unwrap());
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
    assert_eq!(pool.starmap(power as fn(u64, u32) -> u64, [(2, 10), (3, 5), (4, 3)]).unwrap(), vec![1024, 243, 64]);
    let pairs: Vec<(u64, u32)> = (0..1_000).map(|i| (i % 7, (i % 5) as u32)).collect();
    let serial: Vec<u64> = pairs.iter().map(|&(b, e)| power(b, e)).collect();
    assert_eq!(pool.starmap(power as fn(u64, u32) -> u64, pairs).unwrap(), serial);
    assert_eq!(pool.starmap(power as fn(u64, u32) -> u64, Vec::new()).unwrap(), Vec::<u64>::new());
}

#[test]
fn idle_worker_killed_between_calls_is_replaced() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..10).unwrap().len(), 10);
    let victim = pool.pids()[0];
    assert!(sigkill(victim));
    std::thread::sleep(Duration::from_millis(100));
    let serial: Vec<u64> = (0..1_000).map(square).collect();
    assert_eq!(pool.map_chunksize(square, 0..1_000, 1).unwrap(), serial);
    assert!(!pool.pids().contains(&victim));
}

#[test]
fn imap_is_in_order_for_every_chunksize() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(3).unwrap();
    let serial: Vec<u64> = (0..5_000).map(square).collect();
    for chunksize in [1, 3, 100, 10_000] {
        let got: Vec<u64> = pool.imap_chunksize(square, 0..5_000, chunksize).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, serial, "chunksize {chunksize}");
    }
    let got: Vec<u64> = pool.imap(square, 0..100).map(Result::unwrap).collect();
    assert_eq!(got, serial[..100]);
    assert_eq!(pool.imap(square, Vec::new()).count(), 0);
    // The pool is idle and usable afterwards.
    assert_eq!(pool.map(square, 0..5_000).unwrap(), serial);
}

#[test]
fn imap_unordered_is_a_permutation_of_the_serial_results() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(3).unwrap();
    let mut serial: Vec<u64> = (0..3_000).map(square).collect();
    for chunksize in [1, 7] {
        let mut got: Vec<u64> =
            pool.imap_unordered_chunksize(square, 0..3_000, chunksize).collect::<Result<_, _>>().unwrap();
        got.sort_unstable();
        serial.sort_unstable();
        assert_eq!(got, serial, "chunksize {chunksize}");
    }
    // Completion order: a slow first task comes out last.
    let got: Vec<u64> = pool.imap_unordered(sleep_ms, [400, 1, 1, 1]).map(Result::unwrap).collect();
    assert_eq!(got.last(), Some(&400), "got {got:?}");
}

#[test]
fn imap_is_lazy_and_bounded_over_an_endless_input() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let read = std::cell::Cell::new(0u64);
    let input = (0u64..).inspect(|_| read.set(read.get() + 1));
    let mut it = pool.imap_chunksize(square, input, 4);
    let bound = it.in_flight() as u64 * 4;
    for i in 0..1_000u64 {
        assert_eq!(it.next().unwrap().unwrap(), i * i);
        assert!(read.get() <= i + 1 + bound, "read {} items for {} results", read.get(), i + 1);
    }
    drop(it);
    // Abandoning the iterator leaves the pool usable.
    assert_eq!(pool.map(square, 0..10).unwrap(), (0..10).map(square).collect::<Vec<_>>());
}

#[test]
fn imap_yields_a_task_error_in_place_and_goes_on() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let got: Vec<Result<u32, PoolError>> = pool.imap(panic_on_13, 0..20).collect();
    assert_eq!(got.len(), 20);
    for (i, r) in got.iter().enumerate() {
        match r {
            Err(PoolError::Task { index: 13, message }) if i == 13 => assert!(message.contains("unlucky 13")),
            Ok(v) if i != 13 => assert_eq!(*v, i as u32 + 1),
            other => panic!("item {i}: {other:?}"),
        }
    }
    assert!(matches!(pool.imap_chunksize(square, [1], 0).collect::<Vec<_>>()[..], [Err(PoolError::ZeroChunksize)]));
    pool.close();
    assert!(matches!(pool.imap(square, [1, 2]).collect::<Vec<_>>()[..], [Err(PoolError::Closed)]));
}

#[test]
fn imap_worker_killed_mid_task_is_an_error_and_the_rest_arrive() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let victim = pool.pids()[0];
    let killer = sigkill_after(victim, Duration::from_millis(300));
    let start = Instant::now();
    let got: Vec<Result<u64, PoolError>> = pool.imap(sleep_ms, [1_000, 1_000, 10, 10]).collect();
    assert!(killer.join().unwrap());
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    assert_eq!(got.len(), 4);
    let died = got.iter().filter(|r| matches!(r, Err(PoolError::WorkerDied { exitcode: Some(-9), .. }))).count();
    assert_eq!(died, 1, "got {got:?}");
    assert!(matches!(got[2], Ok(10)) && matches!(got[3], Ok(10)), "got {got:?}");
}

#[test]
fn try_imap_stops_at_an_input_error_after_the_results_before_it() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    for chunksize in [1, 3, 1_000] {
        let input = (0..100u64).map(|i| if i == 57 { Err(format!("bad item {i}")) } else { Ok(i) });
        let got: Vec<Result<u64, PoolError>> = pool.try_imap(square, input, chunksize).collect();
        assert_eq!(got.len(), 58, "chunksize {chunksize}");
        for (i, r) in got[..57].iter().enumerate() {
            assert_eq!(*r.as_ref().unwrap(), square(i as u64));
        }
        assert!(matches!(&got[57], Err(PoolError::Input(m)) if m == "bad item 57"), "{:?}", got[57]);
    }
    let ok = (0..10u64).map(Ok::<u64, String>);
    let got: Vec<u64> = pool.try_imap(square, ok, 4).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, (0..10).map(square).collect::<Vec<_>>());
}

/// An argument whose `Serialize` fails on one value.
#[derive(Debug)]
struct Fussy(u32);

impl serde::Serialize for Fussy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            return Err(serde::ser::Error::custom("three cannot be sent"));
        }
        s.serialize_u32(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Fussy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Fussy)
    }
}

fn fussy(x: Fussy) -> u32 {
    x.0
}

#[test]
fn map_argument_that_fails_to_encode_is_an_error_and_the_pool_stays_usable() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let err = pool.map(fussy, (0..6).map(Fussy)).unwrap_err();
    assert!(matches!(err, PoolError::Encode(_)), "{err:?}");
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
}
