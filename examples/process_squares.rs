//! Four processes run at once, each printing one square (any order).

use multiproc::Process;

fn print_square(n: u64) {
    println!("{n} squared is {}", n * n);
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut children: Vec<Process> = (1..=4).map(|n| Process::new(print_square, n)).collect();
    for p in &mut children {
        p.start().expect("start");
    }
    for p in &mut children {
        p.join().expect("join");
    }
}
