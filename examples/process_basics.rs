//! Two children each do CPU work and print their pid; the parent reports
//! their exit codes.

use multiproc::Process;

fn work(label: String) {
    let sum: u64 = (0..10_000_000u64).sum();
    println!("{label}: sum {sum} computed in process {}", std::process::id());
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let mut p1 = Process::new(work, "p1".to_string());
    let mut p2 = Process::new(work, "p2".to_string());
    p1.start().expect("start");
    p2.start().expect("start");
    p1.join().expect("join");
    p2.join().expect("join");
    println!("p1 exit code: {}", p1.exitcode().expect("finished"));
    println!("p2 exit code: {}", p2.exitcode().expect("finished"));
}
