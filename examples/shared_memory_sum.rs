//! A child fills a named `SharedMemory` block, viewed as 100 `i32`s, with
//! 0..99; the parent opens the same block by name and sums it.

use multiproc::{Process, SharedMemory};

fn fill(name: String) {
    let shm = SharedMemory::open(name.as_str()).expect("open by name");
    // SAFETY: the parent does not touch the block until this child has exited.
    let view: &mut [i32] = bytemuck::cast_slice_mut(unsafe { shm.as_mut_slice() });
    for (i, x) in view.iter_mut().enumerate() {
        *x = i as i32;
    }
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let name = format!("multiproc-example-sum-{}", std::process::id());
    let shm = SharedMemory::create(name.as_str(), 100 * std::mem::size_of::<i32>()).expect("create");
    let mut child = Process::new(fill, name.clone());
    child.start().expect("start");
    child.join().expect("join");
    // SAFETY: the only other user (the child) has exited.
    let view: &[i32] = bytemuck::cast_slice(unsafe { shm.as_slice() });
    println!("Shared memory sum: {}", view.iter().sum::<i32>());
    shm.unlink().expect("unlink");
}
