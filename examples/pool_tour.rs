//! A tour of the Pool API, after Python's: `map` of squares over 1..10,000,
//! a prime count with `map_async` and a timeout, `imap` with chunks of 3 read
//! lazily, and `starmap` of `pow` over pairs of arguments.

use std::time::Duration;

use multiproc::Pool;

fn square(x: u64) -> u64 {
    x * x
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn pow(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut pool = Pool::new(4).expect("pool");

    let squares = pool.map(square, 1..10_000).expect("map");
    println!("First 5: {:?}", &squares[..5]);

    // map_async returns at once; get_timeout waits for the result, 10 s at most.
    let flags = {
        let mut pending = pool.map_async(is_prime, 100_000..100_100);
        pending.get_timeout(Duration::from_secs(10)).expect("map_async")
    };
    println!("Prime count: {}", flags.iter().filter(|&&p| p).count());

    let lazy: Vec<String> = pool.imap_chunksize(square, 0..10, 3).map(|r| r.expect("imap").to_string()).collect();
    println!("{}", lazy.join(" "));

    let powers = pool.starmap(pow as fn(u64, u32) -> u64, [(2, 10), (3, 5), (4, 3)]).expect("starmap");
    println!("Powers: {powers:?}");

    pool.close();
    pool.join().expect("join");
}
