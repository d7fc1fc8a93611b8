//! Errors of channel operations, one type per operation as in
//! `crossbeam-channel`. Errors of sending operations hand the message back
//! ([`into_inner`](SendError::into_inner)); `Debug` does not print it.

use std::fmt;

/// Something is wrong with a message or with the channel itself, as
/// opposed to an ordinary condition (full, empty, closed, disconnected).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The message could not be encoded (its `Serialize` impl failed).
    Encode(String),
    /// A received message could not be decoded as the channel's type.
    Decode(String),
    /// An in-place message larger than one record of the ring.
    TooLarge {
        /// Bytes asked for.
        len: usize,
        /// The most one in-place record can hold.
        max: usize,
    },
    /// The channel's shared state is corrupt (written by a faulty or
    /// hostile process) or its lock unusable.
    Corrupt(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Encode(m) => write!(f, "message could not be encoded: {m}"),
            Failure::Decode(m) => write!(f, "message could not be decoded: {m}"),
            Failure::TooLarge { len, max } => {
                write!(f, "in-place message of {len} bytes is larger than the {max} bytes one record holds")
            }
            Failure::Corrupt(m) => write!(f, "channel is corrupt: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

const CLOSED: &str = "channel is closed";
const DISCONNECTED: &str = "every peer on the other side is gone";
const EMPTY: &str = "channel is empty";
const TIMED_OUT: &str = "timed out waiting for a message";

macro_rules! send_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $var:ident => $text:expr),* }) => {
        $(#[$doc])*
        pub enum $name<T> {
            $($(#[$vdoc])* $var(T),)*
            /// The message or the channel is faulty; the message is handed back.
            Failed(T, Failure),
        }

        impl<T> $name<T> {
            /// The message that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$var(t))|* | $name::Failed(t, _) => t,
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$var(_) => f.write_str(concat!(stringify!($var), "(..)")),)*
                    $name::Failed(_, e) => f.debug_tuple("Failed").field(&"..").field(e).finish(),
                }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$var(_) => f.write_str($text),)*
                    $name::Failed(_, e) => fmt::Display::fmt(e, f),
                }
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
}

macro_rules! recv_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $var:ident => $text:expr),* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $var,)*
            /// The message or the channel is faulty.
            Failed(Failure),
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$var => f.write_str($text),)*
                    $name::Failed(e) => fmt::Display::fmt(e, f),
                }
            }
        }

        impl std::error::Error for $name {}
    };
}

send_error!(
    /// Why a blocking send (`put`, `send`) failed.
    SendError {
        /// The channel (or the receiving end) was closed.
        Closed => CLOSED,
        /// Every receiving peer is gone (dropped or dead).
        Disconnected => DISCONNECTED
    }
);

send_error!(
    /// Why a `try_` send failed.
    TrySendError {
        /// There is no room now.
        Full => "channel is full",
        /// The channel (or the receiving end) was closed.
        Closed => CLOSED,
        /// Every receiving peer is gone (dropped or dead).
        Disconnected => DISCONNECTED
    }
);

send_error!(
    /// Why a `_timeout` send failed.
    SendTimeoutError {
        /// There was no room before the timeout.
        Timeout => "timed out waiting for room in the channel",
        /// The channel (or the receiving end) was closed.
        Closed => CLOSED,
        /// Every receiving peer is gone (dropped or dead).
        Disconnected => DISCONNECTED
    }
);

recv_error!(
    /// Why a blocking receive (`get`, `recv`) failed.
    RecvError {
        /// The channel was closed and every message in it has been received.
        Closed => CLOSED,
        /// End of stream: every sending peer is gone (dropped or dead) and
        /// every message it sent has been received.
        Disconnected => DISCONNECTED
    }
);

recv_error!(
    /// Why a `try_` receive failed.
    TryRecvError {
        /// Nothing to receive now.
        Empty => EMPTY,
        /// The channel was closed and every message in it has been received.
        Closed => CLOSED,
        /// End of stream: every sending peer is gone.
        Disconnected => DISCONNECTED
    }
);

recv_error!(
    /// Why a `_timeout` receive failed.
    RecvTimeoutError {
        /// Nothing arrived before the timeout.
        Timeout => TIMED_OUT,
        /// The channel was closed and every message in it has been received.
        Closed => CLOSED,
        /// End of stream: every sending peer is gone.
        Disconnected => DISCONNECTED
    }
);

impl<T> SendError<T> {
    /// Whether the channel was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }

    /// Whether every receiving peer is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected(_))
    }
}

impl<T> TrySendError<T> {
    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }
}

impl TryRecvError {
    /// Whether the channel was empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }
}

impl RecvTimeoutError {
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }
}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        match e {
            SendError::Closed(t) => TrySendError::Closed(t),
            SendError::Disconnected(t) => TrySendError::Disconnected(t),
            SendError::Failed(t, f) => TrySendError::Failed(t, f),
        }
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        match e {
            SendError::Closed(t) => SendTimeoutError::Closed(t),
            SendError::Disconnected(t) => SendTimeoutError::Disconnected(t),
            SendError::Failed(t, f) => SendTimeoutError::Failed(t, f),
        }
    }
}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => TryRecvError::Closed,
            RecvError::Disconnected => TryRecvError::Disconnected,
            RecvError::Failed(f) => TryRecvError::Failed(f),
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => RecvTimeoutError::Closed,
            RecvError::Disconnected => RecvTimeoutError::Disconnected,
            RecvError::Failed(f) => RecvTimeoutError::Failed(f),
        }
    }
}

macro_rules! recv_into_error {
    (
        $(#[$doc:meta])* $name:ident from $base:ident $(, $narrow:ident)?
        { $($(#[$vdoc:meta])* $var:ident => $text:expr, $is:ident $is_doc:literal),* }
    ) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub enum $name {
            /// The buffer was shorter than the message. The message was
            /// consumed, and is handed over whole here (Python's
            /// `BufferTooShort`).
            BufferTooShort(Vec<u8>),
            $($(#[$vdoc])* $var,)*
            /// The end was closed and every message in it has been received.
            Closed,
            /// End of stream: every sending peer is gone (dropped or dead)
            /// and every message it sent has been received.
            Disconnected,
            /// The channel is faulty.
            Failed(Failure),
        }

        impl $name {
            /// The message that did not fit, if that was the trouble.
            pub fn into_message(self) -> Option<Vec<u8>> {
                match self {
                    $name::BufferTooShort(m) => Some(m),
                    _ => None,
                }
            }

            /// Whether the buffer was too short.
            pub fn is_buffer_too_short(&self) -> bool {
                matches!(self, $name::BufferTooShort(_))
            }

            $(
                #[doc = $is_doc]
                pub fn $is(&self) -> bool {
                    matches!(self, $name::$var)
                }
            )*
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::BufferTooShort(m) => write!(f, "BufferTooShort({} bytes)", m.len()),
                    $($name::$var => f.write_str(stringify!($var)),)*
                    $name::Closed => f.write_str("Closed"),
                    $name::Disconnected => f.write_str("Disconnected"),
                    $name::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::BufferTooShort(m) => write!(f, "buffer too short for a message of {} bytes", m.len()),
                    $($name::$var => f.write_str($text),)*
                    $name::Closed => f.write_str(CLOSED),
                    $name::Disconnected => f.write_str(DISCONNECTED),
                    $name::Failed(e) => fmt::Display::fmt(e, f),
                }
            }
        }

        impl std::error::Error for $name {}

        impl From<$base> for $name {
            fn from(e: $base) -> Self {
                match e {
                    $($base::$var => $name::$var,)*
                    $base::Closed => $name::Closed,
                    $base::Disconnected => $name::Disconnected,
                    $base::Failed(f) => $name::Failed(f),
                }
            }
        }

        $(
            impl From<$narrow> for $name {
                fn from(e: $narrow) -> Self {
                    match e {
                        $narrow::BufferTooShort(m) => $name::BufferTooShort(m),
                        $narrow::Closed => $name::Closed,
                        $narrow::Disconnected => $name::Disconnected,
                        $narrow::Failed(f) => $name::Failed(f),
                    }
                }
            }
        )?
    };
}

recv_into_error!(
    /// Why [`recv_bytes_into`](crate::channel::Connection::recv_bytes_into)
    /// failed.
    RecvIntoError from RecvError {}
);

recv_into_error!(
    /// Why [`try_recv_bytes_into`](crate::channel::Connection::try_recv_bytes_into)
    /// failed.
    TryRecvIntoError from TryRecvError, RecvIntoError {
        /// Nothing to receive now.
        Empty => EMPTY, is_empty "Whether the channel was empty."
    }
);

recv_into_error!(
    /// Why [`recv_bytes_into_timeout`](crate::channel::Connection::recv_bytes_into_timeout)
    /// failed.
    RecvIntoTimeoutError from RecvTimeoutError, RecvIntoError {
        /// Nothing arrived before the timeout.
        Timeout => TIMED_OUT, is_timeout "Whether the timeout passed."
    }
);
