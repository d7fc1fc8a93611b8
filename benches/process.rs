//! Start + join of a trivial child, with each start method.
//!
//! `main` is written by hand (not `criterion_main!`) because
//! `multiproc::init()` must run first: a spawned child is a copy of this
//! benchmark binary. The fork benchmark needs a single-threaded process;
//! criterion measures on the main thread, so it is.

use criterion::Criterion;
use multiproc::{Process, StartMethod};

fn trivial(_: ()) {}

fn start_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("process start+join");
    for (label, method) in [("fork", StartMethod::Fork), ("spawn", StartMethod::Spawn)] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut p = Process::new(trivial, ()).start_method(method);
                p.start().expect("start");
                assert_eq!(p.join().expect("join"), 0);
            })
        });
    }
    group.finish();
}

fn main() {
    multiproc::init();
    // What `criterion_group!` + `criterion_main!` would generate, after init.
    let mut c = Criterion::default().configure_from_args();
    start_join(&mut c);
    c.final_summary();
}
