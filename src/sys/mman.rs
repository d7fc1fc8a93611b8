//! Shared mappings of segment files.

use std::io;
use std::os::fd::BorrowedFd;

use memmap2::{MmapOptions, MmapRaw};

/// A `MAP_SHARED`, read-write mapping of a whole descriptor, unmapped on drop.
///
/// It hands out only a raw pointer: what may be read or written through it is
/// decided by the typed layers above, which know the layout.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: MmapRaw,
}

impl Mapping {
    /// Maps the first `len` bytes of `fd`, shared and read-write.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        use std::os::fd::AsRawFd;
        let raw = MmapOptions::new().len(len).map_raw(fd.as_raw_fd())?;
        Ok(Mapping { raw })
    }

    /// First byte of the mapping; page-aligned.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.raw.as_mut_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}

impl Mapping {
    /// Copies `bytes` into the mapping at `offset`.
    ///
    /// # Panics
    ///
    /// If the bytes do not fit; callers pass constant header offsets.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset.checked_add(bytes.len()).is_some_and(|end| end <= self.len()), "write out of bounds");
        // SAFETY: the range was checked to lie within the mapping, which is
        // writable; a byte copy has no alignment needs. Other processes may
        // access the same bytes only after the publishing store that follows.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.as_ptr().add(offset), bytes.len()) };
    }

    /// The 32-bit atomic at `offset`.
    ///
    /// # Panics
    ///
    /// If it is out of bounds or misaligned; callers pass constant offsets.
    pub(crate) fn atomic_u32(&self, offset: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len(), "atomic out of bounds");
        // SAFETY: in bounds and 4-byte aligned (the mapping is page-aligned),
        // and it lives as long as `&self`. Shared memory may be written by
        // other processes at any time, which is what atomics are for.
        unsafe { &*self.as_ptr().add(offset).cast::<std::sync::atomic::AtomicU32>() }
    }
}
