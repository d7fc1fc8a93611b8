//! Channels on shared-memory ring buffers.
mod err;
mod mail;
mod message;
pub(crate) mod peers;
mod queue;
pub(crate) mod ring;
mod side;

pub use err::{Failure, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use message::{Message, Plain};
pub use queue::{
    DEFAULT_CAPACITY, Iter, JoinableQueue, MAX_CAPACITY, Queue, ReadView, SimpleQueue, TaskDoneError, WriteSlot,
};
mod pipe;
mod select;

pub use err::{RecvIntoError, RecvIntoTimeoutError, TryRecvIntoError};
pub use pipe::{CanRecv, CanSend, Connection, Direction, Duplex, Pipe, RecvOnly, SendOnly};
pub(crate) use queue::{JoinableFlavor, PlainFlavor, QueueCtrl, SimpleFlavor};
pub use select::{Waitable, wait};
