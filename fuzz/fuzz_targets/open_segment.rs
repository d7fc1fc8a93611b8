//! Writes the input as a segment file in a private directory and opens it
//! as every kind of named object; each attempt must end in an error or in a
//! handle that works. See `fuzz/common/open_segment.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/open_segment.rs"]
#[allow(dead_code)]
mod open_segment;
#[path = "../common/private_dir.rs"]
mod private_dir;

fuzz_target!(|data: &[u8]| {
    // Each input replaces the file in the run's directory.
    for result in open_segment::open_all(private_dir::run_dir("fuzz"), data) {
        // Format errors too: Display must not panic on hostile contents.
        let _ = std::hint::black_box(match result {
            Ok(s) => s,
            Err(e) => e.to_string(),
        });
    }
});
