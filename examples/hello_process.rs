//! Two children run one after the other, then the parent finishes.

use multiproc::Process;

fn announce(name: String) {
    println!("Hello from process {name}");
}

fn greet(name: String) {
    println!("Hello, {name}! This is a child process.");
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut a = Process::new(announce, "A".to_string());
    a.start().expect("start");
    a.join().expect("join");
    let mut b = Process::new(greet, "Alice".to_string());
    b.start().expect("start");
    b.join().expect("join");
    println!("Main process exiting");
}
