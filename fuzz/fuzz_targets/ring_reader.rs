//! A named queue whose segment a hostile peer overwrites between legal
//! operations; every operation must end in an error or in data. See
//! `fuzz/common/ring_reader.rs`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../common/bytes.rs"]
#[allow(dead_code)]
mod bytes;
#[path = "../common/open_segment.rs"]
#[allow(dead_code)]
mod open_segment;
#[path = "../common/ring_reader.rs"]
#[allow(dead_code)] // the encoder is for the seed generator
mod ring_reader;

use open_segment::PrivateDir;

/// One directory for the whole run (see `open_segment.rs` in this folder).
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
        PrivateDir::new("fuzz-ring")
    });
    ring_reader::run(dir.path(), data);
});

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}
