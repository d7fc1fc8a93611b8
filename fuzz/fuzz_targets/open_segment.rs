//! Writes the input as a segment file in a private directory and opens it
//! as every kind of named object; each attempt must end in an error or in a
//! handle that works. See `fuzz/common/open_segment.rs`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../common/open_segment.rs"]
#[allow(dead_code)]
mod open_segment;

use open_segment::PrivateDir;

/// One directory for the whole run; each input replaces the file in it.
/// Never dropped (libFuzzer exits without running destructors), so it is
/// removed at exit instead.
static DIR: OnceLock<PrivateDir> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(d) = DIR.get() {
        let _ = std::fs::remove_dir_all(d.path());
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        // SAFETY: `remove_dir` is a plain `extern "C" fn()` that stays valid
        // for the life of the process.
        unsafe { libc_atexit(remove_dir) };
        PrivateDir::new("fuzz")
    });
    for result in open_segment::open_all(dir.path(), data) {
        // Format errors too: Display must not panic on hostile contents.
        let _ = std::hint::black_box(match result {
            Ok(s) => s,
            Err(e) => e.to_string(),
        });
    }
});

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}
