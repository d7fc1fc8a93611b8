//! An `Array` of 0..99; two processes each add one to their half.

use multiproc::{Array, Process};

fn add_one(arg: (Array<i32>, usize, usize)) {
    let (arr, start, end) = arg;
    let mut data = arr.lock().expect("lock");
    for x in &mut data[start..end] {
        *x += 1;
    }
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let items: Vec<i32> = (0..100).collect();
    let arr = Array::new(&items).expect("array");
    let mut first = Process::new(add_one, (arr.clone(), 0, 50));
    let mut second = Process::new(add_one, (arr.clone(), 50, 100));
    first.start().expect("start");
    second.start().expect("start");
    first.join().expect("join");
    second.join().expect("join");
    println!("arr[0]: {}, arr[50]: {}", arr.get(0).expect("get"), arr.get(50).expect("get"));
}
