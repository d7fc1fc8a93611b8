//! Operation sequences on one `Queue` or `Pipe` against an in-memory model;
//! every outcome must match. See `fuzz/common/channel_model.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/bytes.rs"]
#[allow(dead_code)]
mod bytes;
#[path = "../common/channel_model.rs"]
#[allow(dead_code)] // the encoder is for the seed generator
mod channel_model;
#[path = "../common/private_dir.rs"]
mod private_dir;

fuzz_target!(|data: &[u8]| {
    channel_model::run(private_dir::run_dir("fuzz-chan"), data);
});
