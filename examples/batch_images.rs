//! Twenty simulated image jobs (0.1 s of waiting each), first one after the
//! other, then on a Pool of four workers, which runs four at a time.

use std::thread::sleep;
use std::time::{Duration, Instant};

use multiproc::Pool;

const IMAGES: u32 = 20;
const WORKERS: usize = 4;

/// "Processes" image number `id`: waits 0.1 s, as if for I/O, and reports
/// success.
fn process_image(id: u32) -> bool {
    sleep(Duration::from_millis(100));
    id < IMAGES
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();

    let start = Instant::now();
    let sequential: Vec<bool> = (0..IMAGES).map(process_image).collect();
    let sequential_time = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut pool = Pool::new(WORKERS).expect("pool");
    // One image per task, so the four workers stay busy to the end.
    let parallel = pool.map_chunksize(process_image, 0..IMAGES, 1).expect("map");
    pool.close();
    pool.join().expect("join");
    let parallel_time = start.elapsed().as_secs_f64();

    assert_eq!(sequential, parallel);
    let done = parallel.iter().filter(|&&ok| ok).count();
    println!("Processed: {done}/{IMAGES}");
    println!("Sequential: {sequential_time:.2} seconds");
    println!("Parallel ({WORKERS} workers): {parallel_time:.2} seconds");
    println!("Speedup: {:.1}x", sequential_time / parallel_time);
}
