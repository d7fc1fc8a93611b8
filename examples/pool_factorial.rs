//! Python's `Pool().map(factorial, [5, 6, 7, 8])`: a pool with one worker
//! per core computes the factorials; the results come back in input order.

use multiproc::Pool;

fn factorial(n: u64) -> u64 {
    (1..=n).product()
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut pool = Pool::with_available_cores().expect("pool");
    let factorials = pool.map(factorial, [5, 6, 7, 8]).expect("map");
    println!("{factorials:?}");
    pool.close();
    pool.join().expect("join");
}
