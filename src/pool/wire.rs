//! The pool's wire format: the frames that travel through its two queues,
//! and how a chunk of arguments or results becomes bytes.
//!
//! # Frames
//!
//! Frames are written with the queues' byte-level calls (in place where
//! possible) rather than as serde messages, so that a chunk's items are
//! copied once into the queue and decoded straight out of it. All integers
//! are little-endian.
//!
//! ```text
//! task   Run:  1u8 job:u64 chunk:u32 runner:i64 target:i64 tag_len:u16 tag  items
//!        Stop: 2u8
//! reply  Started: 1u8 worker:u64 job:u64 chunk:u32
//!        Done:    2u8 worker:u64 job:u64 chunk:u32 status:u8 ...
//!                 status 0: the chunk's results (items)
//!                 status 1: index:u32 message   (the first task that panicked)
//!                 status 2: message             (the chunk could not run)
//! ```
//!
//! One error slot per chunk, not one `Result` per item: a chunk either
//! succeeded as a whole (its results follow) or names its first failed
//! task. Every task of a chunk still runs after a panic in another one.
//!
//! # Items
//!
//! A chunk of a primitive number type (`u8` to `u128`, `i8` to `i128`,
//! `usize`, `isize`, `f32`, `f64`) travels as its raw bytes, native-endian
//! (both ends run the same executable on the same machine): no encoding
//! step, one copy. Any other serde type travels as a postcard sequence.
//! The choice is made at run time with [`TypeId`] (hence the `'static`
//! bounds on the pool's methods), because stable Rust cannot specialise a
//! serde blanket implementation for [`bytemuck::Pod`] types; the casts go
//! through [`Any`] downcasts, so no `unsafe` is involved.
//!
//! Decoding checks every length against the bytes present: a malformed
//! frame is an error, never a panic.

use std::any::{Any, TypeId};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Queue;

/// The pool's queues carry frames written and read as bytes (the message
/// type is never used to encode or decode).
pub(super) type Frames = Queue<Vec<u8>>;

/// Waits at most `slice` for the next reply frame (with a zero slice, only
/// looks). A reply queue with no writer for a moment (every worker gone,
/// about to be replaced) is "no reply yet", after a millisecond's pause.
pub(super) fn next_reply(
    replies: &Frames,
    slice: std::time::Duration,
) -> Result<Option<crate::channel::ReadView<'_>>, super::PoolError> {
    if slice.is_zero() {
        return Ok(replies.try_get_in_place().ok());
    }
    match replies.get_in_place_timeout(slice) {
        Ok(view) => Ok(Some(view)),
        Err(e) if e.is_timeout() => Ok(None),
        Err(crate::channel::RecvTimeoutError::Disconnected) => {
            std::thread::sleep(std::time::Duration::from_millis(1));
            Ok(None)
        }
        Err(e) => Err(super::PoolError::Channel(e.to_string())),
    }
}

pub(super) const TASK_RUN: u8 = 1;
pub(super) const TASK_STOP: u8 = 2;
pub(super) const REPLY_STARTED: u8 = 1;
pub(super) const REPLY_DONE: u8 = 2;
pub(super) const DONE_OK: u8 = 0;
pub(super) const DONE_TASK_FAILED: u8 = 1;
pub(super) const DONE_ERROR: u8 = 2;

/// The fixed part of a `Run` frame, before the tag.
const RUN_FIXED: usize = 1 + 8 + 4 + 8 + 8 + 2;

/// The header of a `Run` frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunHeader<'a> {
    pub(super) job: u64,
    pub(super) chunk: u32,
    pub(super) runner: isize,
    pub(super) target: isize,
    pub(super) tag: &'a str,
}

impl RunHeader<'_> {
    /// The header's length in bytes.
    pub(super) fn len(&self) -> usize {
        RUN_FIXED + self.tag.len()
    }

    /// Writes the header into the first [`len`](Self::len) bytes of `out`.
    pub(super) fn write(&self, out: &mut [u8]) {
        let tag_len = u16::try_from(self.tag.len()).unwrap_or(u16::MAX);
        let mut w = Writer { out, at: 0 };
        w.put(&[TASK_RUN]);
        w.put(&self.job.to_le_bytes());
        w.put(&self.chunk.to_le_bytes());
        w.put(&(self.runner as i64).to_le_bytes());
        w.put(&(self.target as i64).to_le_bytes());
        w.put(&tag_len.to_le_bytes());
        w.put(&self.tag.as_bytes()[..tag_len as usize]);
    }

    /// Appends the header to `out`.
    pub(super) fn append(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + self.len(), 0);
        self.write(&mut out[at..]);
    }
}

/// Writes consecutive byte strings into a slice that has room for them.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Reads a frame front to back; every read is bounds-checked.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn isize(&mut self) -> Option<isize> {
        self.take().map(i64::from_le_bytes).and_then(|v| isize::try_from(v).ok())
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    /// The rest of the frame.
    pub(super) fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// A task frame, parsed.
pub(super) enum TaskFrame<'a> {
    /// Run `header`'s chunk, whose encoded items are `items`.
    Run {
        header: RunHeader<'a>,
        items: &'a [u8],
    },
    Stop,
}

/// Parses a task frame.
pub(super) fn parse_task(frame: &[u8]) -> Result<TaskFrame<'_>, String> {
    let bad = || format!("malformed task frame of {} bytes", frame.len());
    let mut r = Reader(frame);
    match r.u8().ok_or_else(bad)? {
        TASK_STOP => Ok(TaskFrame::Stop),
        TASK_RUN => {
            let (job, chunk) = (r.u64().ok_or_else(bad)?, r.u32().ok_or_else(bad)?);
            let (runner, target) = (r.isize().ok_or_else(bad)?, r.isize().ok_or_else(bad)?);
            let tag_len = r.take::<2>().map(u16::from_le_bytes).ok_or_else(bad)?;
            let tag = std::str::from_utf8(r.bytes(tag_len as usize).ok_or_else(bad)?).map_err(|_| bad())?;
            Ok(TaskFrame::Run { header: RunHeader { job, chunk, runner, target, tag }, items: r.rest() })
        }
        _ => Err(bad()),
    }
}

/// Appends a reply header (kind, worker, job, chunk) to `out`.
pub(super) fn reply_header(out: &mut Vec<u8>, kind: u8, worker: u64, job: u64, chunk: u32) {
    out.push(kind);
    out.extend_from_slice(&worker.to_le_bytes());
    out.extend_from_slice(&job.to_le_bytes());
    out.extend_from_slice(&chunk.to_le_bytes());
}

/// A reply frame, parsed (the body of `Done` is left to [`Done::parse`]).
pub(super) enum ReplyFrame<'a> {
    Started { worker: u64, job: u64, chunk: u32 },
    Done { worker: u64, job: u64, chunk: u32, body: &'a [u8] },
}

/// Parses a reply frame's header.
pub(super) fn parse_reply(frame: &[u8]) -> Option<ReplyFrame<'_>> {
    let mut r = Reader(frame);
    let kind = r.u8()?;
    let (worker, job, chunk) = (r.u64()?, r.u64()?, r.u32()?);
    match kind {
        REPLY_STARTED => Some(ReplyFrame::Started { worker, job, chunk }),
        REPLY_DONE => Some(ReplyFrame::Done { worker, job, chunk, body: r.rest() }),
        _ => None,
    }
}

/// The body of a `Done` reply.
pub(super) enum Done<'a> {
    /// The encoded results of every task of the chunk.
    Ok(&'a [u8]),
    /// The task at `index` in the chunk (the first that failed) panicked.
    TaskFailed { index: u32, message: String },
    /// The chunk could not run (type mismatch, undecodable arguments...).
    Error(String),
}

impl<'a> Done<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Done<'a> {
        let mut r = Reader(body);
        match r.u8() {
            Some(DONE_OK) => Done::Ok(r.rest()),
            Some(DONE_TASK_FAILED) => match r.u32() {
                Some(index) => Done::TaskFailed { index, message: String::from_utf8_lossy(r.rest()).into_owned() },
                None => Done::Error("malformed reply from a worker".into()),
            },
            Some(DONE_ERROR) => Done::Error(String::from_utf8_lossy(r.rest()).into_owned()),
            _ => Done::Error("malformed reply from a worker".into()),
        }
    }
}

/// Runs `$body` once for each primitive number type that travels raw, with
/// `$t` naming it.
macro_rules! for_raw_types {
    ($t:ident => $body:block) => {{
        {
            type $t = u8;
            $body
        }
        {
            type $t = u16;
            $body
        }
        {
            type $t = u32;
            $body
        }
        {
            type $t = u64;
            $body
        }
        {
            type $t = u128;
            $body
        }
        {
            type $t = usize;
            $body
        }
        {
            type $t = i8;
            $body
        }
        {
            type $t = i16;
            $body
        }
        {
            type $t = i32;
            $body
        }
        {
            type $t = i64;
            $body
        }
        {
            type $t = i128;
            $body
        }
        {
            type $t = isize;
            $body
        }
        {
            type $t = f32;
            $body
        }
        {
            type $t = f64;
            $body
        }
    }};
}

/// Whether `T` travels as raw bytes.
pub(super) fn is_raw<T: 'static>() -> bool {
    for_raw_types!(P => {
        if TypeId::of::<T>() == TypeId::of::<P>() {
            return true;
        }
    });
    false
}

/// Writes the raw bytes of the items of `items` one after the other into
/// `out`, until either runs out; the number of items written. Nothing is
/// written when `T` does not travel raw.
pub(super) fn write_raw<T: 'static>(items: impl Iterator<Item = T>, out: &mut [u8]) -> usize {
    let size = std::mem::size_of::<T>();
    if !is_raw::<T>() || size == 0 {
        return 0;
    }
    let mut written = 0;
    for (item, place) in items.zip(out.chunks_exact_mut(size)) {
        let any: &dyn Any = &item;
        for_raw_types!(P => {
            if let Some(p) = any.downcast_ref::<P>() {
                place.copy_from_slice(bytemuck::bytes_of(p));
            }
        });
        written += 1;
    }
    written
}

/// Reads one raw item of type `T` from exactly `size_of::<T>()` bytes.
#[inline]
fn read_raw<T: 'static>(bytes: &[u8]) -> Option<T> {
    let mut slot: Option<T> = None;
    let any: &mut dyn Any = &mut slot;
    for_raw_types!(P => {
        if let Some(slot) = any.downcast_mut::<Option<P>>() {
            *slot = bytemuck::try_pod_read_unaligned::<P>(bytes).ok();
        }
    });
    slot
}

/// The items of a raw chunk, read one at a time straight from its bytes
/// (`None` when `T` does not travel raw).
///
/// # Errors
///
/// When the bytes are not a whole number of items.
pub(super) fn raw_items<T: 'static>(bytes: &[u8]) -> Option<Result<impl Iterator<Item = T> + '_, String>> {
    if !is_raw::<T>() {
        return None;
    }
    let size = std::mem::size_of::<T>();
    if bytes.len() % size != 0 {
        return Some(Err(format!("{} bytes are not a whole number of {}", bytes.len(), std::any::type_name::<T>())));
    }
    // `read_raw` does not fail here: the type is raw and each piece has its
    // size.
    Some(Ok(bytes.chunks_exact(size).map_while(read_raw)))
}

/// A vector of `n` zeros when `T` travels raw, to decode chunks into with
/// [`decode_raw_at`].
pub(super) fn raw_zeroed<T: 'static>(n: usize) -> Option<Vec<T>> {
    for_raw_types!(P => {
        if TypeId::of::<T>() == TypeId::of::<P>() {
            let zeros: Box<dyn Any> = Box::new(vec![P::default(); n]);
            return zeros.downcast::<Vec<T>>().ok().map(|v| *v);
        }
    });
    None
}

/// Copies a raw chunk of exactly `len` items into `out[start..start + len]`.
///
/// # Errors
///
/// When `T` does not travel raw, when the bytes are not `len` items, or
/// when the range is outside `out`.
#[allow(clippy::ptr_arg, reason = "a `Vec`, not a slice, can be downcast through `Any`")]
pub(super) fn decode_raw_at<T: 'static>(
    bytes: &[u8],
    out: &mut Vec<T>,
    start: usize,
    len: usize,
) -> Result<(), String> {
    let any: &mut dyn Any = out;
    for_raw_types!(P => {
        if let Some(v) = any.downcast_mut::<Vec<P>>() {
            if bytes.len() != len * std::mem::size_of::<P>() {
                return Err(format!("{} bytes are not {len} results", bytes.len()));
            }
            let place = v.get_mut(start..start + len).ok_or("results outside the call's range")?;
            bytemuck::cast_slice_mut::<P, u8>(place).copy_from_slice(bytes);
            return Ok(());
        }
    });
    Err(format!("{} does not travel raw", std::any::type_name::<T>()))
}

/// The bytes of `items` when `T` travels raw.
#[allow(clippy::ptr_arg, reason = "a `Vec`, not a slice, can be downcast through `Any`")]
pub(super) fn raw_bytes<T: 'static>(items: &Vec<T>) -> Option<&[u8]> {
    let any: &dyn Any = items;
    for_raw_types!(P => {
        if let Some(v) = any.downcast_ref::<Vec<P>>() {
            return Some(bytemuck::cast_slice::<P, u8>(v));
        }
    });
    None
}

/// Appends the encoding of `items` to `out`.
///
/// # Errors
///
/// Serde's message when an item cannot be encoded; `out` is then empty.
#[allow(clippy::ptr_arg, reason = "a `Vec`, not a slice, can be downcast through `Any`")]
pub(super) fn encode_items<T: Serialize + 'static>(items: &Vec<T>, out: &mut Vec<u8>) -> Result<(), String> {
    match raw_bytes(items) {
        Some(bytes) => {
            out.extend_from_slice(bytes);
            Ok(())
        }
        None => encode_slice(items, out),
    }
}

/// Appends the postcard encoding of `items` to `out` (for a type that does
/// not travel raw).
///
/// # Errors
///
/// Serde's message when an item cannot be encoded; `out` is then empty.
pub(super) fn encode_slice<T: Serialize>(items: &[T], out: &mut Vec<u8>) -> Result<(), String> {
    // On error postcard drops the buffer, which leaves `out` empty.
    postcard::to_extend(items, std::mem::take(out)).map(|v| *out = v).map_err(|e| e.to_string())
}

/// Appends the items encoded in `bytes` to `out`.
///
/// # Errors
///
/// Why `bytes` are not a sequence of `T`.
pub(super) fn decode_items<T: DeserializeOwned + 'static>(bytes: &[u8], out: &mut Vec<T>) -> Result<(), String> {
    let any: &mut dyn Any = out;
    for_raw_types!(P => {
        if let Some(v) = any.downcast_mut::<Vec<P>>() {
            let size = std::mem::size_of::<P>();
            if bytes.len() % size != 0 {
                return Err(format!("{} bytes are not a whole number of {}", bytes.len(), std::any::type_name::<P>()));
            }
            let start = v.len();
            v.resize(start + bytes.len() / size, P::default());
            bytemuck::cast_slice_mut::<P, u8>(&mut v[start..]).copy_from_slice(bytes);
            return Ok(());
        }
    });
    let items: Vec<T> = match postcard::take_from_bytes(bytes) {
        Ok((items, [])) => items,
        Ok((_, rest)) => return Err(format!("{} bytes left over after the items", rest.len())),
        Err(e) => return Err(e.to_string()),
    };
    if out.is_empty() {
        *out = items;
    } else {
        out.extend(items);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + DeserializeOwned + 'static + PartialEq + std::fmt::Debug + Clone>(items: Vec<T>) {
        let mut bytes = Vec::new();
        encode_items(&items, &mut bytes).unwrap();
        let mut back = Vec::new();
        decode_items::<T>(&bytes, &mut back).unwrap();
        assert_eq!(back, items);
        // Appending to what is there.
        let mut more = items.clone();
        decode_items::<T>(&bytes, &mut more).unwrap();
        assert_eq!(more.len(), 2 * items.len());
    }

    #[test]
    fn items_round_trip_raw_and_serde() {
        round_trip::<u64>((0..1_000).collect());
        round_trip::<i8>(vec![-1, 0, 1]);
        round_trip::<f64>(vec![0.5, -1.25, f64::MAX]);
        round_trip::<u128>(vec![u128::MAX, 7]);
        round_trip::<(u64, u32)>(vec![(1, 2), (3, 4)]);
        round_trip::<String>(vec!["a".into(), String::new()]);
        round_trip::<u32>(Vec::new());
        assert!(is_raw::<u64>() && is_raw::<f32>() && !is_raw::<bool>() && !is_raw::<(u8, u8)>());
    }

    #[test]
    fn raw_helpers_agree_with_encode_items() {
        let items: Vec<i32> = vec![-3, 0, 7];
        let mut bytes = Vec::new();
        encode_items(&items, &mut bytes).unwrap();
        let mut written = vec![0; 16];
        assert_eq!(write_raw(items.iter().copied(), &mut written), 3);
        assert_eq!(written[..12], bytes);
        assert_eq!(write_raw(items.iter().copied(), &mut written[..9]), 2);
        assert_eq!(write_raw(["x"].into_iter(), &mut written), 0);
        let read: Vec<i32> = raw_items::<i32>(&bytes).unwrap().unwrap().collect();
        assert_eq!(read, items);
        assert!(raw_items::<i32>(&bytes[1..]).unwrap().is_err());
        assert!(raw_items::<String>(&bytes).is_none());
        let mut out = raw_zeroed::<i32>(5).unwrap();
        decode_raw_at(&bytes, &mut out, 2, 3).unwrap();
        assert_eq!(out, [0, 0, -3, 0, 7]);
        assert!(decode_raw_at(&bytes, &mut out, 3, 3).is_err());
        assert!(decode_raw_at(&bytes, &mut out, 0, 2).is_err());
        assert!(raw_zeroed::<String>(1).is_none());
    }

    #[test]
    fn raw_items_are_their_bytes() {
        let mut bytes = Vec::new();
        encode_items(&vec![1u32, 2], &mut bytes).unwrap();
        assert_eq!(bytes, [1u32.to_ne_bytes(), 2u32.to_ne_bytes()].concat());
    }

    #[test]
    fn malformed_items_are_errors() {
        let mut out = Vec::<u64>::new();
        assert!(decode_items(&[1, 2, 3], &mut out).is_err());
        let mut out = Vec::<String>::new();
        assert!(decode_items(&[5, b'a'], &mut out).is_err());
        assert!(decode_items(&[0, 9], &mut out).is_err());
    }

    #[test]
    fn task_frames_round_trip_and_malformed_ones_are_errors() {
        let header = RunHeader { job: 7, chunk: 3, runner: -12, target: 99, tag: "fn(u64) -> u64" };
        let mut frame = Vec::new();
        header.append(&mut frame);
        assert_eq!(frame.len(), header.len());
        frame.extend_from_slice(b"items");
        match parse_task(&frame).unwrap() {
            TaskFrame::Run { header: h, items } => {
                assert_eq!((h.job, h.chunk, h.runner, h.target, h.tag), (7, 3, -12, 99, "fn(u64) -> u64"));
                assert_eq!(items, b"items");
            }
            TaskFrame::Stop => panic!("parsed as Stop"),
        }
        assert!(matches!(parse_task(&[TASK_STOP]), Ok(TaskFrame::Stop)));
        for cut in 0..header.len() {
            assert!(parse_task(&frame[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_task(&[9]).is_err());
    }

    #[test]
    fn reply_frames_round_trip_and_malformed_ones_are_rejected() {
        let mut frame = Vec::new();
        reply_header(&mut frame, REPLY_DONE, 1, 2, 3);
        frame.push(DONE_TASK_FAILED);
        frame.extend_from_slice(&5u32.to_le_bytes());
        frame.extend_from_slice(b"boom");
        match parse_reply(&frame) {
            Some(ReplyFrame::Done { worker: 1, job: 2, chunk: 3, body }) => match Done::parse(body) {
                Done::TaskFailed { index: 5, message } => assert_eq!(message, "boom"),
                _ => panic!("wrong body"),
            },
            _ => panic!("wrong frame"),
        }
        assert!(parse_reply(&frame[..10]).is_none());
        assert!(matches!(Done::parse(&[]), Done::Error(_)));
        assert!(matches!(Done::parse(&[DONE_TASK_FAILED, 1]), Done::Error(_)));
    }
}
