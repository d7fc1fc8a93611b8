//! Python's `Pool(5).map(f, [1, 2, 3, 4, 5])`: five worker processes square
//! the numbers; the results come back in input order.

use multiproc::Pool;

fn f(x: u64) -> u64 {
    x * x
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut pool = Pool::new(5).expect("pool");
    let squares = pool.map(f, [1, 2, 3, 4, 5]).expect("map");
    println!("{squares:?}");
    pool.close();
    pool.join().expect("join");
}
