//! Python's `multiprocessing`, done right in Rust.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod channel;
pub mod pool;
pub mod process;
pub mod segment;
pub mod shared;
pub mod sync;
pub(crate) mod sys;

pub use channel::{Connection, Pipe};
pub use channel::{JoinableQueue, Queue, SimpleQueue};
pub use pool::{Pool, PoolBuilder, PoolError};
pub use process::{Process, ProcessError, StartMethod, init};
pub use segment::{DEFAULT_DIR, DIR_ENV, MAX_NAME_LEN, Name, SharedMemory, ShmError, unlink};
pub use shared::*;
pub use sync::*;
