//! Typed data in shared memory: [`Value<T>`] and [`Array<T>`], locked by
//! default, as Python's `multiprocessing.Value` and `Array`.
//!
//! Both put a robust cross-process lock in front of their data (the same
//! one [`Mutex`](crate::Mutex) uses), so every accessor reports a dead owner
//! the same way, and both offer explicit `unsafe` lock-free access for code
//! that brings its own synchronisation (Python's `RawValue`/`RawArray`).

mod array;
mod value;

pub use array::Array;
pub use value::Value;
