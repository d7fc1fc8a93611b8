//! Typed objects in segments: a control block followed by elements.
//!
//! Every synchronisation primitive and shared value is an [`Object`]: one
//! segment whose data starts with a `#[repr(C)]` control block `C` (lock
//! words, counters) followed by `count` elements of `E`. This module does the
//! create/open/anonymous/unlink/serde plumbing once for all of them.
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use super::header::{Kind, Shape, TypeDesc, elems_offset};
use super::{Name, Segment, ShmError};

/// A control block that lives in shared memory.
///
/// # Safety
///
/// Implementors are `#[repr(C)]` and made only of integers, atomics and
/// `UnsafeCell`s of integers (such as a `pthread_mutex_t`), so that every
/// bit pattern is a valid value: a peer writing arbitrary bytes into the
/// block cannot make a reference to it undefined behaviour. Their alignment
/// is at most 128 (the data alignment of a segment).
pub(crate) unsafe trait Control: Sync + Sized {
    /// The kind recorded in the header.
    const KIND: Kind;

    /// Lines for `multiproc info` (lock holders, counts), read without
    /// locking: a snapshot for people, never for decisions. `count` is the
    /// segment's element count.
    fn describe(&self, _count: usize) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// [`Control::describe`] of the control block of `seg`, read as a `C`;
/// `None` when the segment is too short to hold one.
pub(crate) fn describe<C: Control>(seg: &Segment) -> Option<Vec<(&'static str, String)>> {
    if seg.data_len() < std::mem::size_of::<C>() || std::mem::align_of::<C>() > 128 {
        return None;
    }
    // SAFETY: the mapping holds at least a `C` at its 128-byte aligned data
    // (checked above) and lives as long as `seg`; any bit pattern is a
    // valid `C` (trait contract), so whatever the file holds is fine.
    Some(unsafe { &*seg.data().cast::<C>() }.describe(seg.count()))
}

/// A segment holding a `C` and `count` elements of `E`.
///
/// Cloning makes another handle to the same mapping, like copying a
/// reference to a Python object: both see the same shared data.
pub(crate) struct Object<C, E = ()> {
    seg: Arc<Segment>,
    _types: PhantomData<(C, E)>,
}

impl<C, E> Clone for Object<C, E> {
    fn clone(&self) -> Self {
        Object { seg: Arc::clone(&self.seg), _types: PhantomData }
    }
}

// SAFETY: an Object owns its mapping; the control block is `Sync` by the
// `Control` contract and elements are only reached through typed wrappers
// that enforce their own synchronisation (or `unsafe` raw access).
unsafe impl<C: Control, E: Send> Send for Object<C, E> {}
// SAFETY: as above.
unsafe impl<C: Control, E: Send> Sync for Object<C, E> {}

impl<C: Control, E> Object<C, E> {
    const ELEMS_OFFSET: usize = elems_offset(std::mem::size_of::<C>(), std::mem::align_of::<E>());

    fn shape(count: Option<usize>) -> Shape {
        assert!(std::mem::align_of::<C>() <= 128 && std::mem::align_of::<E>() <= 128);
        Shape { kind: C::KIND, elem: TypeDesc::of::<E>(), ctrl_size: std::mem::size_of::<C>(), count }
    }

    /// Creates the object (named when `name` is given); `init` gets the
    /// zeroed control block and elements before anyone else can see them.
    pub(crate) fn create(
        name: Option<Name>,
        count: usize,
        init: impl Fn(*mut C, *mut E) -> io::Result<()>,
    ) -> Result<Self, ShmError> {
        let shape = Self::shape(Some(count));
        let offset = shape.elems_offset();
        let seg = Segment::create(name, &shape, count, |data| init(data.cast(), data.wrapping_add(offset).cast()))?;
        Ok(Object { seg: Arc::new(seg), _types: PhantomData })
    }

    /// Opens a named object; `count` is checked when given.
    pub(crate) fn open(name: Name, count: Option<usize>) -> Result<Self, ShmError> {
        Ok(Object { seg: Arc::new(Segment::open(name, &Self::shape(count))?), _types: PhantomData })
    }

    /// Opens the named object, or creates it with `init`.
    pub(crate) fn open_or_create(
        name: Name,
        count: usize,
        init: impl Fn(*mut C, *mut E) -> io::Result<()>,
    ) -> Result<Self, ShmError> {
        let shape = Self::shape(Some(count));
        let offset = shape.elems_offset();
        let seg =
            Segment::open_or_create(name, &shape, count, |data| init(data.cast(), data.wrapping_add(offset).cast()))?;
        Ok(Object { seg: Arc::new(seg), _types: PhantomData })
    }

    /// The control block.
    #[inline]
    pub(crate) fn ctrl(&self) -> &C {
        // SAFETY: the segment was created or validated with room for a `C`
        // at the start of its 128-byte aligned data, and the mapping lives as
        // long as `self`. Any bit pattern is a valid `C` (trait contract).
        unsafe { &*self.seg.data().cast::<C>() }
    }

    /// Pointer to the first element; `len()` elements follow.
    #[inline]
    pub(crate) fn elems(&self) -> *mut E {
        self.seg.data().wrapping_add(Self::ELEMS_OFFSET).cast()
    }

    /// The segment's descriptor (for byte locks that track holders).
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.seg.fd()
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.seg.count()
    }

    /// The name of a named object.
    pub(crate) fn name(&self) -> Option<&str> {
        self.seg.name().map(Name::as_str)
    }

    /// Removes the name; see `Segment::unlink`.
    pub(crate) fn unlink(&self) -> Result<(), ShmError> {
        self.seg.unlink()
    }

    /// Serialises the object for a child's start argument.
    pub(crate) fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }

    /// Reopens the object in a child.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Object { seg: Arc::new(Segment::deserialize(d, &Self::shape(None))?), _types: PhantomData })
    }
}

/// Implements `name`, `unlink`, `Serialize`, `Deserialize` and `Debug` for a
/// public type whose only field `obj` is an [`Object`].
macro_rules! shared_object {
    ($ty:ident $(<$($g:ident $(: $b:path)?),*>)?) => {
        impl $(<$($g $(: $b)?),*>)? $ty $(<$($g),*>)? {
            /// The name, or `None` for an anonymous object.
            pub fn name(&self) -> Option<&str> {
                self.obj.name()
            }

            /// Removes the name so no new process can open it; handles that
            /// are open keep working. The name can be created again at once.
            ///
            /// # Errors
            ///
            /// [`ShmError::NotFound`](crate::ShmError::NotFound) if the name
            /// is already gone or the object is anonymous.
            pub fn unlink(&self) -> Result<(), $crate::ShmError> {
                self.obj.unlink()
            }
        }

        /// Another handle to the same shared object (not a copy of the data).
        impl $(<$($g $(: $b)?),*>)? Clone for $ty $(<$($g),*>)? {
            fn clone(&self) -> Self {
                $ty { obj: self.obj.clone() }
            }
        }

        /// A named object travels as its name; an anonymous one as an
        /// inherited descriptor, which works only inside a child's start
        /// argument.
        impl $(<$($g $(: $b)?),*>)? serde::Serialize for $ty $(<$($g),*>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.obj.serialize(s)
            }
        }

        impl<'de $(, $($g $(: $b)?),*)?> serde::Deserialize<'de> for $ty $(<$($g),*>)? {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($ty { obj: $crate::segment::object::Object::deserialize(d)? })
            }
        }

        impl $(<$($g $(: $b)?),*>)? std::fmt::Debug for $ty $(<$($g),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty)).field("name", &self.obj.name()).finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use shared_object;
