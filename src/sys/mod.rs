//! The only layer that makes system calls (and the one CPU hint `std`
//! lacks, in [`cpu`]).
//!
//! Every `unsafe` block that talks to the OS lives here, each with a
//! `// SAFETY:` comment. The layers above see typed, owned handles
//! ([`OwnedFd`](std::os::fd::OwnedFd), [`Pid`], mapped regions) and errors as
//! values; no raw integer escapes as a handle.
//!
//! Safety assumptions made once for the whole layer: we run on Linux with
//! glibc or musl, whose `pthread_mutex_t` is a plain in-memory structure that
//! may live in a `MAP_SHARED` mapping (POSIX `PTHREAD_PROCESS_SHARED`), and
//! futex words are 4-byte aligned 32-bit integers in such a mapping.
#![allow(unsafe_code)]

pub(crate) mod conv;
pub(crate) mod cpu;
pub(crate) mod fs;
pub(crate) mod futex;
pub(crate) mod lock;
pub(crate) mod memfd;
pub(crate) mod mman;
pub(crate) mod process;
pub(crate) mod pthread;
pub(crate) mod time;

pub(crate) use process::Pid;
