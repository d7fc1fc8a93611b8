//! `Pool` builder options: `initializer` and `maxtasksperchild`; and
//! `terminate` with a deep queue.

multiproc::test_support!();

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{WATCH, sigkill, watchdog};
use multiproc::{Pool, PoolError, Value};

fn count_start(counter: Value<u32>) {
    *counter.lock().unwrap() += 1;
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn square(x: u64) -> u64 {
    x * x
}

fn triple_and_pid(x: u64) -> (u64, u32) {
    (3 * x, std::process::id())
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn initializer_runs_once_in_every_worker_replacements_included() {
    let _w = watchdog(WATCH);
    let counter = Value::new(0u32).unwrap();
    let mut pool = Pool::builder(3).initializer(count_start, counter.clone()).build().unwrap();
    assert_eq!(pool.map(square, 0..100).unwrap(), (0..100).map(square).collect::<Vec<_>>());
    // Every worker has run it, before its first task, exactly once.
    let start = Instant::now();
    while counter.get().unwrap() < 3 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(counter.get().unwrap(), 3);
    // A replacement runs it too.
    let victim = pool.pids()[0];
    assert!(sigkill(victim));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pool.map_chunksize(square, 0..30, 1).unwrap().len(), 30);
    let start = Instant::now();
    while counter.get().unwrap() < 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "the replacement did not run the initializer");
        std::thread::sleep(Duration::from_millis(5));
    }
    pool.close();
    pool.join().unwrap();
    assert_eq!(counter.get().unwrap(), 4);
}

#[test]
fn maxtasksperchild_replaces_workers_and_results_stay_correct() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::builder(3).maxtasksperchild(10).build().unwrap();
    let first = pool.pids();
    let out = pool.map_chunksize(triple_and_pid, 0..100, 1).unwrap();
    let values: Vec<u64> = out.iter().map(|&(v, _)| v).collect();
    assert_eq!(values, (0..100).map(|x| 3 * x).collect::<Vec<_>>());
    let pids: HashSet<u32> = out.iter().map(|&(_, p)| p).collect();
    assert!(pids.len() > 3, "only {} distinct worker pids", pids.len());
    assert!(!pids.contains(&std::process::id()));
    // Again, through map_async and imap, still correct.
    assert_eq!(pool.map_async_chunksize(square, 0..100, 1).get().unwrap(), (0..100).map(square).collect::<Vec<_>>());
    let got: Vec<u64> = pool.imap(square, 0..100).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, (0..100).map(square).collect::<Vec<_>>());
    assert_ne!(pool.pids(), first);
    assert_ne!(pool.apply(pid_of, 0).unwrap(), std::process::id());
    pool.close();
    pool.join().unwrap();
    assert!(matches!(Pool::builder(1).maxtasksperchild(0).build(), Err(PoolError::ZeroChunksize)));
}

#[test]
fn terminate_with_10000_queued_long_tasks_is_prompt_and_leaves_no_worker() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(3).unwrap();
    let pids = pool.pids();
    // Queue 10,000 one-second tasks and forget the handle, so that nothing
    // removes them from the queue (dropping it would).
    let mut r = pool.map_async_chunksize(sleep_ms, vec![1_000; 10_000], 1);
    assert!(!r.wait_timeout(Duration::from_millis(200)));
    std::mem::forget(r);
    let start = Instant::now();
    pool.terminate();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "terminate took {took:?}");
    for pid in &pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} left behind");
    }
    assert!(matches!(pool.map(square, [1]), Err(PoolError::Closed)));
}
