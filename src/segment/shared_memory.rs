//! [`SharedMemory`]: a block of raw bytes shared between processes.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::header::{Kind, Shape, TypeDesc};
use super::{Name, Segment, ShmError};

/// A block of bytes shared between processes — Python's
/// `shared_memory.SharedMemory`.
///
/// A segment is **named** ([`create`](Self::create) in one process,
/// [`open`](Self::open) in any other of the same user) or **anonymous**
/// ([`anonymous`](Self::anonymous): nothing in the file system, handed to
/// child processes as part of their start argument). Dropping a handle
/// unmaps it; the name stays until [`unlink`](Self::unlink), as in Python.
///
/// Cloning a `SharedMemory` makes another handle to the same mapping.
/// New segments are zero-filled. The data is 128-byte aligned, so it can be
/// viewed as a slice of any [`bytemuck::Pod`] type.
///
/// Reading or writing the bytes is `unsafe` because another process may
/// write them at the same time: the caller arranges exclusion (a
/// [`Mutex`](crate::Mutex), an [`Event`](crate::Event), or a protocol of its
/// own). [`Value`](crate::Value) and [`Array`](crate::Array) do that for you.
///
/// # Examples
///
/// ```
/// use multiproc::SharedMemory;
///
/// let shm = SharedMemory::anonymous(400)?;
/// // SAFETY: no other process has this segment yet.
/// let data: &mut [i32] = bytemuck::cast_slice_mut(unsafe { shm.as_mut_slice() });
/// for (i, x) in data.iter_mut().enumerate() {
///     *x = i as i32;
/// }
/// assert_eq!(data.iter().sum::<i32>(), 4950);
/// # Ok::<(), multiproc::ShmError>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    seg: Arc<Segment>,
}

fn shape(count: Option<usize>) -> Shape {
    Shape { kind: Kind::Raw, elem: TypeDesc::of::<u8>(), ctrl_size: 0, count }
}

fn no_init(_: *mut u8) -> std::io::Result<()> {
    Ok(())
}

impl SharedMemory {
    /// Creates a named segment of `size` bytes, zero-filled.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`] if the name is taken,
    /// [`ShmError::InvalidName`], [`ShmError::InvalidSize`] for size 0, and
    /// OS errors.
    pub fn create(name: impl Into<Name>, size: usize) -> Result<SharedMemory, ShmError> {
        Ok(SharedMemory { seg: Arc::new(Segment::create(Some(name.into()), &shape(Some(size)), size, no_init)?) })
    }

    /// Opens an existing named segment; its size is the one it was created
    /// with.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`], [`ShmError::Mismatch`] if the name holds
    /// another kind of object, [`ShmError::Corrupt`] if the file is not a
    /// valid segment, [`ShmError::NotReady`] if its creator did not finish.
    pub fn open(name: impl Into<Name>) -> Result<SharedMemory, ShmError> {
        Ok(SharedMemory { seg: Arc::new(Segment::open(name.into(), &shape(None))?) })
    }

    /// Opens the named segment, creating it with `size` bytes if it does not
    /// exist.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open); an existing
    /// segment of another size is a [`ShmError::Mismatch`].
    pub fn open_or_create(name: impl Into<Name>, size: usize) -> Result<SharedMemory, ShmError> {
        Ok(SharedMemory { seg: Arc::new(Segment::open_or_create(name.into(), &shape(Some(size)), size, no_init)?) })
    }

    /// Creates an anonymous segment of `size` bytes (a sealed memfd): nothing
    /// in the file system, gone when the last process using it lets go.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidSize`] for size 0, and OS errors.
    pub fn anonymous(size: usize) -> Result<SharedMemory, ShmError> {
        Ok(SharedMemory { seg: Arc::new(Segment::create(None, &shape(Some(size)), size, no_init)?) })
    }

    /// The name, or `None` for an anonymous segment.
    pub fn name(&self) -> Option<&str> {
        self.seg.name().map(Name::as_str)
    }

    /// The size asked for at creation, in bytes.
    pub fn len(&self) -> usize {
        self.seg.count()
    }

    /// Always `false`: a segment holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pointer to the first byte (128-byte aligned), valid while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.seg.data()
    }

    /// The bytes, shared.
    ///
    /// # Safety
    ///
    /// While the returned slice is alive, no process or thread may write the
    /// segment (reads are fine).
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the data is `len` bytes of our mapping, which lives as long
        // as `self`; the caller excludes concurrent writers.
        unsafe { std::slice::from_raw_parts(self.seg.data(), self.len()) }
    }

    /// The bytes, exclusively.
    ///
    /// # Safety
    ///
    /// While the returned slice is alive, no other process or thread may read
    /// or write the segment, and no other slice of it may exist in this one.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the caller guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.seg.data(), self.len()) }
    }

    /// Removes the name, as Python's `unlink()`. Existing mappings (here and
    /// in other processes) keep working; the name can be created again at
    /// once, as a new zero-filled segment.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`] if the name is already gone (a second unlink)
    /// or the segment is anonymous.
    pub fn unlink(&self) -> Result<(), ShmError> {
        self.seg.unlink()
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory").field("name", &self.seg.name()).field("len", &self.len()).finish()
    }
}

/// A named segment travels as its name; an anonymous one as an inherited
/// descriptor, which works only inside a child's start argument.
impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedMemory, D::Error> {
        Ok(SharedMemory { seg: Arc::new(Segment::deserialize(d, &shape(None))?) })
    }
}
