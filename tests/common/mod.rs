//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use multiproc::{Process, Value};

/// Removes a named object when dropped, so a failing test leaves nothing in
/// the shared-memory directory.
pub struct Unlink(pub String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = multiproc::unlink(self.0.as_str());
    }
}

/// A name unique to this process and test.
pub fn unique(tag: &str) -> (String, Unlink) {
    let name = format!("mp-test-{}-{tag}", std::process::id());
    (name.clone(), Unlink(name))
}

/// Polls `flag` until it holds `want`, failing the test after 20 s.
pub fn wait_for_flag(flag: &Value<u32>, want: u32) {
    let start = Instant::now();
    while flag.get().unwrap_or_else(|e| e.into_guard().unwrap()) != want {
        assert!(start.elapsed() < Duration::from_secs(20), "child never set the flag to {want}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Joins with a generous bound, failing instead of hanging.
pub fn join(p: &mut Process) -> i32 {
    p.join_timeout(Duration::from_secs(20)).expect("join").expect("child still running after 20 s")
}
