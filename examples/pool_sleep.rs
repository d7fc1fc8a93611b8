//! Five tasks that each sleep 1 s and return their square, on a Pool of five
//! workers: they run at once, so the whole map takes about 1 s, not 5.

use std::thread::sleep;
use std::time::{Duration, Instant};

use multiproc::Pool;

fn slow_square(x: u64) -> u64 {
    sleep(Duration::from_secs(1));
    x * x
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let start = Instant::now();
    let mut pool = Pool::new(5).expect("pool");
    let squares = pool.map(slow_square, [1, 2, 3, 4, 5]).expect("map");
    pool.close();
    pool.join().expect("join");
    println!("Squares: {squares:?}");
    println!("Time Taken: {:.1} seconds", start.elapsed().as_secs_f64());
}
