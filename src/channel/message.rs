//! How typed messages become bytes.
//!
//! Every serde type is a [`Message`], encoded with postcard (a compact
//! binary format). A [`bytemuck::Pod`] type wrapped in [`Plain`] travels as
//! its raw bytes instead, with no encoding step at all.

use std::mem::MaybeUninit;

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

/// Where a typed receive decodes its message: straight into the `Result`
/// the public call returns, with the error already narrowed to that call's
/// type (`narrow`: to `RecvError`, to `TryRecvError`, or `identity` for a
/// deadline call), written once by the `read` its ring calls.
///
/// Why: moving the value out through nested `Result`s and `Option`s
/// copied it at every level, each copy stalled on the one before (store
/// forwarding), and that was most of a receive. Measured on the 64-byte
/// `Plain` pipe, the consumer alone (a producer fills 3000 records, then
/// the consumer drains them; fork harness, builds alternated, session 14):
/// 14.8-27.1 ns a record decoding into two `Option`s and narrowing the
/// error after (`map_err`), 8.0-8.6 ns like this (callgrind: 135 -> 120
/// instructions). Two details matter as much: a `MaybeUninit` (an
/// `Option<Result<T, E>>` instead: 11.1-12.0 ns; a `Result` filled with an
/// error beforehand: 10.6-13.6 ns), and a general path that returns its own
/// result rather than writing into this one (13.0-15.7 ns when the
/// `Decoded` was handed to it).
pub(crate) struct Decoded<T, E, F> {
    out: MaybeUninit<Result<T, E>>,
    narrow: F,
}

/// What [`Decoded::read`] returns, and only it: the proof that it wrote
/// the result, which [`Decoded::finish`] asks for. A ring hands it back
/// from the `read` it called (its receives are generic in what `read`
/// returns, so they cannot make one), so each `Decoded` has its own.
pub(crate) struct Filled(());

impl<T: Message, E, F: Fn(RecvTimeoutError) -> E> Decoded<T, E, F> {
    #[inline]
    pub(crate) fn new(narrow: F) -> Self {
        Decoded { out: MaybeUninit::uninit(), narrow }
    }

    /// Decodes `bytes` into the result (a value, or why they are not one).
    #[inline]
    pub(crate) fn read(&mut self, bytes: &[u8]) -> Filled {
        self.out.write(match T::decode(bytes) {
            Ok(v) => Ok(v),
            Err(e) => Err((self.narrow)(RecvTimeoutError::Failed(Failure::Decode(e)))),
        });
        Filled(())
    }

    /// The result that [`read`](Self::read) wrote.
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) fn finish(self, _written: Filled) -> Result<T, E> {
        // SAFETY: a `Filled` is made only by `read`, which initialised
        // `out` first; each receive has one `Decoded` and passes it the
        // `Filled` its ring returned from calling that one's `read`.
        // `MaybeUninit` never drops, so the value is moved out once.
        unsafe { self.out.assume_init() }
    }
}
