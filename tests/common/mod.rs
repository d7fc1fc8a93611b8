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

/// Aborts the test binary if the test that made it runs longer than its
/// limit: no test may hang, even when a wait under test is broken. Dropping
/// it (at the end of the test) disarms it.
pub struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

/// The limit tests use unless they need another.
pub const WATCH: Duration = Duration::from_secs(60);

/// Arms a [`Watchdog`] for the calling test.
pub fn watchdog(limit: Duration) -> Watchdog {
    use std::sync::mpsc;
    let (tx, rx) = mpsc::channel::<()>();
    let test = std::thread::current().name().unwrap_or("?").to_string();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: {test} still running after {limit:?}");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// Sends `SIGKILL` to `pid` (a process this test did not start itself, such
/// as a pool worker); whether `kill` succeeded.
pub fn sigkill(pid: u32) -> bool {
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().is_ok_and(|s| s.success())
}

/// Kills `pid` with `SIGKILL` after `delay`, from another thread; join the
/// handle to learn whether it worked.
pub fn sigkill_after(pid: u32, delay: Duration) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        sigkill(pid)
    })
}

/// Child target: exits with `code`.
pub fn exit_with(code: i32) {
    std::process::exit(code);
}

/// Child target: panics with `message`.
pub fn panics(message: String) {
    panic!("{message}");
}

/// Child target: sleeps `s` seconds.
pub fn sleep_secs(s: u64) {
    std::thread::sleep(Duration::from_secs(s));
}

/// Runs the tests that call it one at a time. A child that another test
/// thread is starting holds copies of this process's descriptors until it
/// execs, and with them the holds and attach locks open at that moment: a
/// test whose assertions depend on those being released at once (a closed
/// end, a stale segment) takes this, as do the tests that start children.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
