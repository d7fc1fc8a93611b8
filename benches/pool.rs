//! `Pool` against issue 4's targets: per-task overhead of `map` at chunksize
//! 1 and at the default chunksize (with `rayon` in-process as the floor),
//! 1,000 outstanding `apply_async` handles collected in order,
//! pool create + tiny map + shutdown with each start method, and a CPU-bound
//! map on 2 workers against the same work done sequentially.
//!
//! `main` is written by hand (not `criterion_main!`) because
//! `multiproc::init()` must run first: a spawned worker is a copy of this
//! benchmark binary. The fork benchmark needs a single-threaded process:
//! criterion measures on the main thread, and `rayon`'s thread pool, which
//! would add threads for good, is only started by the last group.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use multiproc::{Pool, StartMethod};
use rayon::prelude::*;

/// Tasks of the chunksize-1 benchmark (the 20,000).
const SMALL: u64 = 20_000;
/// Tasks of the default-chunksize benchmark (the 200,000).
const LARGE: u64 = 200_000;
/// Handles of the `apply_async` benchmark.
const HANDLES: u64 = 1_000;
/// The primes benchmark counts primes below this (as `examples/primes_speedup.rs`).
const LIMIT: u64 = 2_000_000;
/// ... in this many ranges, one per task.
const PIECES: u64 = 40;

/// The CPU-bound work of the example, shared rather than copied.
#[path = "../examples/primes_speedup.rs"]
#[allow(dead_code)]
mod primes_speedup;
use primes_speedup::count_primes;

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn pieces() -> Vec<(u64, u64)> {
    (0..PIECES).map(|i| (i * LIMIT / PIECES, (i + 1) * LIMIT / PIECES)).collect()
}

/// `Pool(2)` create + map of 3 trivial tasks + close + join. First, while the
/// process still has one thread.
fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_lifecycle");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (label, method) in [("fork", StartMethod::Fork), ("spawn", StartMethod::Spawn)] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut pool = Pool::builder(2).start_method(method).build().expect("pool");
                assert_eq!(pool.map(trivial, [1, 2, 3]).expect("map"), vec![1, 4, 9]);
                pool.close();
                pool.join().expect("join");
            })
        });
    }
    group.finish();
}

/// Per-task cost of `map` on 2 workers: chunksize 1 over 20,000 tasks, the
/// default chunksize over 200,000. Criterion's throughput line gives tasks/s;
/// the time per task is the iteration time divided by the task count.
fn per_task(c: &mut Criterion) {
    let mut pool = Pool::new(2).expect("pool");
    let mut group = c.benchmark_group("pool_map");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(SMALL));
    group.bench_function(BenchmarkId::new("chunksize_1", SMALL), |b| {
        b.iter(|| black_box(pool.map_chunksize(trivial, 0..black_box(SMALL), 1).expect("map")))
    });
    group.throughput(Throughput::Elements(LARGE));
    group.bench_function(BenchmarkId::new("default_chunksize", LARGE), |b| {
        b.iter(|| black_box(pool.map(trivial, 0..black_box(LARGE)).expect("map")))
    });
    group.finish();
    // Python's idiom: many `apply_async` handles outstanding, then `get`
    // on each in order.
    let mut group = c.benchmark_group("pool_async");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(HANDLES));
    group.bench_function(BenchmarkId::new("apply_async_then_get", HANDLES), |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..black_box(HANDLES)).map(|x| pool.apply_async(trivial, x)).collect();
            black_box(handles.into_iter().map(|h| h.get().expect("get")).sum::<u64>())
        })
    });
    group.finish();
    pool.close();
    pool.join().expect("join");
}

/// The primes count on one core, and in 40 ranges on `Pool(2)` (pool started
/// outside the timing, as the work dominates).
fn primes(c: &mut Criterion) {
    let mut pool = Pool::new(2).expect("pool");
    let mut group = c.benchmark_group("pool_primes");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("sequential", |b| b.iter(|| black_box(count_primes((0, black_box(LIMIT))))));
    group.bench_function("pool_2", |b| {
        b.iter(|| {
            let counts = pool.map_chunksize(count_primes, black_box(pieces()), 1).expect("map");
            black_box(counts.iter().sum::<u64>())
        })
    });
    group.finish();
    pool.close();
    pool.join().expect("join");
}

/// The floor: the default-chunksize map done by `rayon` in this process (its
/// global pool: one thread per core). Last, as it leaves threads behind.
fn rayon_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_map");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(LARGE));
    group.bench_function(BenchmarkId::new("rayon", LARGE), |b| {
        b.iter(|| black_box((0..black_box(LARGE)).into_par_iter().map(trivial).collect::<Vec<u64>>()))
    });
    group.finish();
}

fn main() {
    multiproc::init();
    // What `criterion_group!` + `criterion_main!` would generate, after init.
    let mut c = Criterion::default().configure_from_args();
    lifecycle(&mut c);
    per_task(&mut c);
    primes(&mut c);
    rayon_floor(&mut c);
    c.final_summary();
}
