//! A named queue whose segment a hostile peer overwrites between legal
//! operations; every operation must end in an error or in data. See
//! `fuzz/common/ring_reader.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/bytes.rs"]
#[allow(dead_code)]
mod bytes;
#[path = "../common/private_dir.rs"]
mod private_dir;
#[path = "../common/ring_reader.rs"]
#[allow(dead_code)] // the encoder is for the seed generator
mod ring_reader;

fuzz_target!(|data: &[u8]| {
    ring_reader::run(private_dir::run_dir("fuzz-ring"), data);
});
