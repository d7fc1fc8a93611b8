//! Python's `Pool(3).map(cube, range(1, 6))`: three worker processes cube
//! the numbers 1 to 5; the results come back in input order.

use multiproc::Pool;

fn cube(x: u64) -> u64 {
    x * x * x
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut pool = Pool::new(3).expect("pool");
    let cubes = pool.map(cube, 1..6).expect("map");
    println!("{cubes:?}");
    pool.close();
    pool.join().expect("join");
}
