//! The parent sends a request to a worker process over a `Pipe`; the worker
//! prints it and sends back a reply on the same (duplex) pipe.

use multiproc::{Connection, Pipe, Process};

fn worker(conn: Connection) {
    let request: String = conn.recv().expect("recv");
    println!("[Worker] Received: {request}");
    conn.send(&format!("Processed: {}", request.to_uppercase())).expect("send");
}

/// Runs the example (also called by the tour).
pub fn main() {
    multiproc::init();
    let (parent_end, child_end) = Pipe::new().expect("pipe");
    let mut child = Process::new(worker, child_end);
    child.start().expect("start");
    parent_end.send(&"hello world".to_string()).expect("send");
    let response: String = parent_end.recv().expect("recv");
    println!("[Main] Response: {response}");
    child.join().expect("join");
}
