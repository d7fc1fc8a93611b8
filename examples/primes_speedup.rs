//! A CPU-bound job, counting the primes below 2,000,000 by trial division,
//! first on one core, then split into ranges on a Pool of two workers: on two
//! cores it takes about half the time.

use std::time::Instant;

use multiproc::Pool;

const LIMIT: u64 = 2_000_000;
const WORKERS: usize = 2;
/// The range is cut into this many pieces: more than the workers, so that a
/// worker that drew the cheap low numbers takes more pieces.
const PIECES: u64 = 40;

/// Trial division (also used by `benches/pool.rs`).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// The number of primes in `start..end`.
pub fn count_primes((start, end): (u64, u64)) -> u64 {
    (start..end).filter(|&n| is_prime(n)).count() as u64
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();

    let start = Instant::now();
    let sequential = count_primes((0, LIMIT));
    let sequential_time = start.elapsed().as_secs_f64();

    let pieces: Vec<(u64, u64)> = (0..PIECES).map(|i| (i * LIMIT / PIECES, (i + 1) * LIMIT / PIECES)).collect();
    let start = Instant::now();
    let mut pool = Pool::new(WORKERS).expect("pool");
    let parallel: u64 = pool.map_chunksize(count_primes, pieces, 1).expect("map").iter().sum();
    pool.close();
    pool.join().expect("join");
    let parallel_time = start.elapsed().as_secs_f64();

    assert_eq!(sequential, parallel);
    println!("Primes below {LIMIT}: {parallel}");
    println!("Sequential: {sequential_time:.2} seconds");
    println!("Parallel ({WORKERS} workers): {parallel_time:.2} seconds");
    println!("Speedup: {:.2}x", sequential_time / parallel_time);
}
