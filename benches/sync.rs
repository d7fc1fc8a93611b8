//! Locks and shared values against their references, in the same run.
//!
//! - `mutex_uncontended`: lock+unlock of `multiproc::Mutex<()>` against a raw
//!   robust process-shared pthread mutex in a shared mapping (the floor), and
//!   `std::sync::Mutex`.
//! - `value_increment`: `*Value<u64>::lock() += 1` against raw
//!   lock+increment+unlock.
//! - `contended_2proc`: two processes (one forked child) each doing locked
//!   increments of one counter; time per increment, ours against raw.
//! - `shm`: `SharedMemory` 1 MiB create+unlink, and open by name.
//!
//! Targets (issue 2): uncontended ≤ 1.1x raw, contended ≤ 1.2x raw, Value
//! increment ≤ 1.3x raw. Figures go in `benches/README.md`.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use multiproc::{Mutex, Process, SharedMemory, StartMethod, Value};

/// A robust, process-shared pthread mutex and a counter in a shared
/// anonymous mapping: what our lock is measured against.
struct RawRobust {
    ptr: *mut u8,
}

impl RawRobust {
    fn new() -> RawRobust {
        // SAFETY: a fresh anonymous shared mapping of one page; the mutex is
        // initialised once before use and the mapping is never unmapped
        // (benchmarks live for the whole process).
        unsafe {
            let ptr = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(ptr, libc::MAP_FAILED);
            let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
            libc::pthread_mutexattr_init(attr.as_mut_ptr());
            libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST);
            assert_eq!(libc::pthread_mutex_init(ptr.cast(), attr.as_ptr()), 0);
            RawRobust { ptr: ptr.cast() }
        }
    }

    #[inline]
    fn increment(&self) {
        // SAFETY: the mutex was initialised in `new`; the counter sits after
        // it in the same page and is only touched under the mutex.
        unsafe {
            let m = self.ptr.cast::<libc::pthread_mutex_t>();
            libc::pthread_mutex_lock(m);
            let c = self.ptr.add(128).cast::<u64>();
            *c += 1;
            libc::pthread_mutex_unlock(m);
        }
    }

    #[inline]
    fn lock_unlock(&self) {
        // SAFETY: as in `increment`.
        unsafe {
            let m = self.ptr.cast::<libc::pthread_mutex_t>();
            libc::pthread_mutex_lock(m);
            libc::pthread_mutex_unlock(m);
        }
    }
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_uncontended");
    let raw = RawRobust::new();
    g.bench_function("raw_robust_pthread", |b| b.iter(|| raw.lock_unlock()));
    let m = Mutex::new(()).unwrap();
    g.bench_function("multiproc_mutex", |b| b.iter(|| drop(m.lock().unwrap())));
    let s = std::sync::Mutex::new(());
    g.bench_function("std_mutex", |b| b.iter(|| drop(s.lock().unwrap())));
    g.finish();

    let mut g = c.benchmark_group("value_increment");
    g.bench_function("raw_robust_pthread", |b| b.iter(|| raw.increment()));
    let v = Value::new(0u64).unwrap();
    g.bench_function("multiproc_value", |b| b.iter(|| *v.lock().unwrap() += 1));
    g.finish();
}

fn hammer_ours(arg: (Value<u64>, u64)) {
    let (counter, iters) = arg;
    for _ in 0..iters {
        *counter.lock().unwrap() += 1;
    }
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended_2proc");
    g.sample_size(20);
    g.bench_function("raw_robust_pthread", |b| {
        b.iter_custom(|iters| {
            let raw = RawRobust::new();
            let start = Instant::now();
            // SAFETY: the benchmark's main thread is the only thread (criterion
            // runs benchmarks on it), so the child may run Rust code.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                for _ in 0..iters {
                    raw.increment();
                }
                // SAFETY: leave the child without running the parent's exit handlers.
                unsafe { libc::_exit(0) };
            }
            for _ in 0..iters {
                raw.increment();
            }
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            start.elapsed() / 2
        })
    });
    g.bench_function("multiproc_value", |b| {
        b.iter_custom(|iters| {
            let counter = Value::new(0u64).unwrap();
            let mut child = Process::new(hammer_ours, (counter.clone(), iters)).start_method(StartMethod::Fork);
            let start = Instant::now();
            child.start().unwrap();
            for _ in 0..iters {
                *counter.lock().unwrap() += 1;
            }
            child.join().unwrap();
            let t = start.elapsed() / 2;
            assert_eq!(counter.get().unwrap(), 2 * iters);
            t
        })
    });
    g.finish();
}

fn shm(c: &mut Criterion) {
    let mut g = c.benchmark_group("shm_1MiB");
    let name = format!("mp-bench-{}", std::process::id());
    g.bench_function("create_unlink", |b| {
        b.iter(|| {
            let s = SharedMemory::create(name.as_str(), 1 << 20).unwrap();
            s.unlink().unwrap();
        })
    });
    let keep = SharedMemory::create(name.as_str(), 1 << 20).unwrap();
    g.bench_function("open", |b| b.iter(|| black_box(SharedMemory::open(name.as_str()).unwrap())));
    keep.unlink().unwrap();
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = uncontended, contended, shm
}

fn main() {
    multiproc::init();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
