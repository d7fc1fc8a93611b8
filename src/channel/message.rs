//! How typed messages become bytes.
//!
//! Every serde type is a [`Message`], encoded with postcard (a compact
//! binary format). A [`bytemuck::Pod`] type wrapped in [`Plain`] travels as
//! its raw bytes instead, with no encoding step at all.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::err::{Failure, RecvTimeoutError};

/// A value that can travel through a channel.
///
/// Implemented for every `Serialize + DeserializeOwned` type and for
/// [`Plain<T>`] with `T: bytemuck::Pod`. Decoding sees bytes another process
/// wrote, so it rejects anything that is not a valid `Self` with an error,
/// never a panic.
pub trait Message: Sized {
    /// Appends the encoding of `self` to `out`.
    ///
    /// # Errors
    ///
    /// A message saying why `self` cannot be encoded.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String>;

    /// Decodes one message.
    ///
    /// # Errors
    ///
    /// A message saying why `bytes` are not a `Self`.
    fn decode(bytes: &[u8]) -> Result<Self, String>;

    /// The length in bytes of every encoding of `Self`, when they all have
    /// the same one (a [`Plain`] type's size); `None` otherwise.
    ///
    /// A receive that knows it checks a waiting record's header in a
    /// single comparison, and copies a length known when it was compiled.
    /// A message of another length is still received, and
    /// [`decode`](Self::decode) says what is wrong with it; so a wrong
    /// value in a hand-written implementation costs speed, never a message.
    ///
    /// ```
    /// use multiproc::channel::{Message, Plain};
    ///
    /// assert_eq!(<Plain<[u64; 8]>>::SIZE, Some(64));
    /// assert_eq!(<String>::SIZE, None);
    /// assert_eq!(<u64>::SIZE, None); // postcard: a varint, 1 to 10 bytes
    /// ```
    const SIZE: Option<usize> = None;

    /// The bytes of `self` as they are, when no encoding step is needed
    /// (they are then written to the channel directly).
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }
}

/// Serde types go through postcard (varints, no padding).
///
/// # Examples
///
/// ```
/// use multiproc::channel::Message;
///
/// let mut bytes = Vec::new();
/// ("job".to_string(), 7u32).encode(&mut bytes).unwrap();
/// assert_eq!(<(String, u32)>::decode(&bytes).unwrap(), ("job".to_string(), 7));
/// assert!(<(String, u32)>::decode(&bytes[..2]).is_err());
/// ```
impl<T: Serialize + DeserializeOwned> Message for T {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        match postcard::to_extend(self, std::mem::take(out)) {
            Ok(v) => {
                *out = v;
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e.to_string())
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        match postcard::take_from_bytes(bytes) {
            Ok((v, [])) => Ok(v),
            Ok((_, rest)) => Err(format!("{} bytes left over after the message", rest.len())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A plain-old-data value sent as its raw bytes: no encoding, no
/// allocation. A received message of the wrong size is an error.
///
/// The wrapper is aligned to 8 bytes (the bytes sent are `T`'s alone):
/// a byte array such as `[u8; 64]` would otherwise sit at odd offsets in
/// the `Result`s that carry it out of a receive, and copying it there
/// stalled the 64-byte pipe benchmark on store forwarding.
///
/// # Examples
///
/// ```
/// use multiproc::channel::{Message, Plain};
///
/// assert_eq!(Plain(1u32).as_bytes(), Some(&[1u8, 0, 0, 0][..]));
/// assert_eq!(Plain::<u32>::decode(&[2, 0, 0, 0]).unwrap(), Plain(2));
/// assert!(Plain::<u32>::decode(&[2, 0]).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C, align(8))]
pub struct Plain<T>(pub T);

#[cold]
fn wrong_size<T>(len: usize) -> String {
    format!("a message of {len} bytes is not a {} ({} bytes)", std::any::type_name::<T>(), std::mem::size_of::<T>())
}

impl<T: bytemuck::Pod> Message for Plain<T> {
    const SIZE: Option<usize> = Some(std::mem::size_of::<T>());

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(bytemuck::bytes_of(&self.0));
        Ok(())
    }

    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != std::mem::size_of::<T>() {
            return Err(wrong_size::<T>(bytes.len()));
        }
        // Copied straight into the value returned: built elsewhere and
        // moved, it was copied twice more, each copy waiting on the one
        // before (perf, the 64-byte pipe benchmark).
        let mut v = Plain(T::zeroed());
        bytemuck::bytes_of_mut(&mut v.0).copy_from_slice(bytes);
        Ok(v)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(bytemuck::bytes_of(&self.0))
    }
}

/// What a typed receive decoded, filled in by the `read` its ring calls: a
/// value, or why the bytes were not one. Both `Connection::recv` and
/// `Queue::get` decode into a local rather than return through the layers
/// below: moving a value out through nested `Result`s copies it at every
/// level, each copy stalled on the one before (and an `Option<Result<T, _>>`
/// here cost three 64-byte copies more per message than these two
/// `Option`s).
pub(crate) struct Decoded<T> {
    value: Option<T>,
    failed: Option<String>,
}

impl<T: Message> Decoded<T> {
    pub(crate) fn new() -> Self {
        Decoded { value: None, failed: None }
    }

    #[inline]
    pub(crate) fn read(&mut self, bytes: &[u8]) {
        match T::decode(bytes) {
            Ok(v) => self.value = Some(v),
            Err(e) => self.failed = Some(e),
        }
    }

    #[inline]
    pub(crate) fn finish(self) -> Result<T, RecvTimeoutError> {
        match (self.value, self.failed) {
            (Some(v), _) => Ok(v),
            (None, Some(e)) => Err(RecvTimeoutError::Failed(Failure::Decode(e))),
            (None, None) => unreachable!("a ring calls `read` whenever its receive succeeds"),
        }
    }
}
