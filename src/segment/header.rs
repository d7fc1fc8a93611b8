//! The header at the start of every segment, and what it records.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  "MPROC\0seg"[..8]
//!      8     4  format version
//!     12     4  state: 0 = being created, 1 = ready (written last, release)
//!     16     4  kind (Kind as u32)
//!     20     4  platform ABI tag (target and pthread_mutex_t layout)
//!     24     4  element size
//!     28     4  element alignment
//!     32     8  element count
//!     40     8  data length in bytes (from DATA_OFFSET)
//!     48     4  creator pid
//!     52     4  flags: bit 0 = persistent (never collected as stale),
//!                  bit 1 = attached processes hold the attach lock
//!     56     8  element type hash (FNV-1a of the type name)
//!     64    48  element type name, NUL-padded, truncated
//! 112..128      reserved, 0
//! ```
//! The data follows at [`DATA_OFFSET`], so it is 128-byte aligned.

use std::fmt;

/// Bytes reserved for the header; the data starts here.
pub(crate) const DATA_OFFSET: usize = 128;
pub(crate) const MAGIC: [u8; 8] = *b"MPROCSEG";
pub(crate) const VERSION: u32 = 1;
pub(crate) const STATE_CREATING: u32 = 0;
pub(crate) const STATE_READY: u32 = 1;
pub(crate) const STATE_OFFSET: usize = 12;
/// Header flag: created with [`Name::persistent`](crate::Name::persistent).
pub(crate) const FLAG_PERSISTENT: u32 = 1;
/// Header flag: every process that has this named segment open holds a
/// shared lock on its attach byte, so "nobody holds it" means "stale".
/// Segments made before attach locks existed lack it and are never
/// collected.
pub(crate) const FLAG_ATTACHED: u32 = 2;
const TYPE_NAME_LEN: usize = 48;

/// What kind of object a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Raw = 1,
    Mutex = 2,
    RLock = 3,
    Semaphore = 4,
    BoundedSemaphore = 5,
    Event = 6,
    Condition = 7,
    Barrier = 8,
    Value = 9,
    Array = 10,
    Queue = 11,
    SimpleQueue = 12,
    JoinableQueue = 13,
    Pipe = 14,
}

impl Kind {
    const ALL: [Kind; 14] = [
        Kind::Raw,
        Kind::Mutex,
        Kind::RLock,
        Kind::Semaphore,
        Kind::BoundedSemaphore,
        Kind::Event,
        Kind::Condition,
        Kind::Barrier,
        Kind::Value,
        Kind::Array,
        Kind::Queue,
        Kind::SimpleQueue,
        Kind::JoinableQueue,
        Kind::Pipe,
    ];

    fn from_u32(v: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u32 == v)
    }

    /// Whether objects of this kind are created with a size of the caller's
    /// choosing (so a different count is a mismatch, not corruption).
    fn has_variable_count(self) -> bool {
        matches!(self, Kind::Raw | Kind::Array | Kind::Queue | Kind::SimpleQueue | Kind::JoinableQueue | Kind::Pipe)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Raw => "SharedMemory",
            Kind::Mutex => "Mutex",
            Kind::RLock => "RLock",
            Kind::Semaphore => "Semaphore",
            Kind::BoundedSemaphore => "BoundedSemaphore",
            Kind::Event => "Event",
            Kind::Condition => "Condition",
            Kind::Barrier => "Barrier",
            Kind::Value => "Value",
            Kind::Array => "Array",
            Kind::Queue => "Queue",
            Kind::SimpleQueue => "SimpleQueue",
            Kind::JoinableQueue => "JoinableQueue",
            Kind::Pipe => "Pipe",
        }
    }
}

/// The element type of an object: enough to refuse a `Value<u32>` opened as
/// a `Value<u64>` or a `Value<f32>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeDesc {
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) hash: u64,
    name: [u8; TYPE_NAME_LEN],
}

impl TypeDesc {
    pub(crate) fn of<T>() -> TypeDesc {
        let full = std::any::type_name::<T>();
        let mut name = [0u8; TYPE_NAME_LEN];
        let n = full.len().min(TYPE_NAME_LEN);
        name[..n].copy_from_slice(&full.as_bytes()[..n]);
        TypeDesc {
            size: std::mem::size_of::<T>() as u32,
            align: std::mem::align_of::<T>() as u32,
            hash: fnv1a(full.as_bytes()),
            name,
        }
    }

    fn name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(TYPE_NAME_LEN);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

impl fmt::Debug for TypeDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (size {}, align {})", self.name(), self.size, self.align)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A tag for the platform's layout of what lives in shared memory, so that
/// a glibc process and a musl process (or 32- and 64-bit ones) do not share
/// a pthread mutex by accident.
pub(crate) fn abi_tag() -> u32 {
    let desc = format!(
        "{}-{}-{}-{}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS,
        if cfg!(target_env = "musl") { "musl" } else { "gnu" },
        std::mem::size_of::<libc::pthread_mutex_t>(),
        std::mem::align_of::<libc::pthread_mutex_t>(),
    );
    fnv1a(desc.as_bytes()) as u32
}

/// Offset of the first element after a control block of `ctrl_size` bytes.
pub(crate) const fn elems_offset(ctrl_size: usize, elem_align: usize) -> usize {
    let align = if elem_align == 0 { 1 } else { elem_align };
    ctrl_size.div_ceil(align) * align
}

/// What a caller expects to find, or creates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) kind: Kind,
    pub(crate) elem: TypeDesc,
    /// Bytes of the control block before the elements.
    pub(crate) ctrl_size: usize,
    /// Element count; `None` on open means "whatever the segment has".
    pub(crate) count: Option<usize>,
}

impl Shape {
    /// Offset of the first element from the start of the data.
    pub(crate) fn elems_offset(&self) -> usize {
        elems_offset(self.ctrl_size, self.elem.align as usize)
    }

    /// Data length for `count` elements, if it fits in memory.
    pub(crate) fn data_len(&self, count: usize) -> Option<usize> {
        count.checked_mul(self.elem.size as usize)?.checked_add(self.elems_offset())
    }

    fn describe(&self, count: Option<usize>) -> String {
        let k = self.kind.name();
        match (self.kind, count) {
            (Kind::Raw, Some(n)) => format!("{k} of {n} byte{}", if n == 1 { "" } else { "s" }),
            (Kind::Queue | Kind::SimpleQueue | Kind::JoinableQueue | Kind::Pipe, Some(n)) => {
                format!("{k} with {n} bytes of buffer")
            }
            (Kind::Raw, None) => k.to_string(),
            (Kind::Array, Some(n)) => format!("{k}<{}> of {n}", self.elem.name()),
            (Kind::Value | Kind::Mutex | Kind::Array, _) => format!("{k}<{}>", self.elem.name()),
            _ => k.to_string(),
        }
    }
}

/// The fixed-size header as bytes, little endian.
#[derive(Clone, Copy)]
pub(crate) struct Header {
    pub(crate) bytes: [u8; DATA_OFFSET],
}

impl Header {
    pub(crate) fn new(shape: &Shape, count: usize, data_len: usize, creator: u32, flags: u32) -> Header {
        let mut b = [0u8; DATA_OFFSET];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&STATE_CREATING.to_le_bytes());
        b[16..20].copy_from_slice(&(shape.kind as u32).to_le_bytes());
        b[20..24].copy_from_slice(&abi_tag().to_le_bytes());
        b[24..28].copy_from_slice(&shape.elem.size.to_le_bytes());
        b[28..32].copy_from_slice(&shape.elem.align.to_le_bytes());
        b[32..40].copy_from_slice(&(count as u64).to_le_bytes());
        b[40..48].copy_from_slice(&(data_len as u64).to_le_bytes());
        b[48..52].copy_from_slice(&creator.to_le_bytes());
        b[52..56].copy_from_slice(&flags.to_le_bytes());
        b[56..64].copy_from_slice(&shape.elem.hash.to_le_bytes());
        b[64..64 + TYPE_NAME_LEN].copy_from_slice(&shape.elem.name);
        Header { bytes: b }
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes"))
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"))
    }

    pub(crate) fn magic_ok(&self) -> bool {
        self.bytes[0..8] == MAGIC
    }

    pub(crate) fn is_blank(&self) -> bool {
        self.bytes.iter().all(|&b| b == 0)
    }

    pub(crate) fn state(&self) -> u32 {
        self.u32_at(STATE_OFFSET)
    }

    pub(crate) fn version(&self) -> u32 {
        self.u32_at(8)
    }

    /// The kind, if it is one this version knows.
    pub(crate) fn kind(&self) -> Option<Kind> {
        Kind::from_u32(self.u32_at(16))
    }

    pub(crate) fn creator(&self) -> u32 {
        self.u32_at(48)
    }

    pub(crate) fn flags(&self) -> u32 {
        self.u32_at(52)
    }

    pub(crate) fn count(&self) -> u64 {
        self.u64_at(32)
    }

    pub(crate) fn data_len(&self) -> u64 {
        self.u64_at(40)
    }

    /// Whether the platform tag is this build's.
    pub(crate) fn abi_ok(&self) -> bool {
        self.u32_at(20) == abi_tag()
    }

    /// The element type as recorded: name, size and alignment.
    pub(crate) fn elem_desc(&self) -> (String, u32, u32) {
        let e = self.found_elem();
        (e.name(), e.size, e.align)
    }

    /// The kind's name as recorded, or "unknown kind (#N)".
    pub(crate) fn kind_name(&self) -> String {
        self.found_kind_name()
    }

    fn found_elem(&self) -> TypeDesc {
        let mut name = [0u8; TYPE_NAME_LEN];
        name.copy_from_slice(&self.bytes[64..64 + TYPE_NAME_LEN]);
        TypeDesc { size: self.u32_at(24), align: self.u32_at(28), hash: self.u64_at(56), name }
    }

    fn found_kind_name(&self) -> String {
        Kind::from_u32(self.u32_at(16))
            .map_or_else(|| format!("an unknown kind (#{})", self.u32_at(16)), |k| k.name().into())
    }

    /// Checks this header against what the caller expects. On success gives
    /// the element count and data length, both validated against `shape`.
    /// `Err((expected, found))` for a mismatch, `Ok(Err(reason))` for a corrupt
    /// header.
    pub(crate) fn check(&self, shape: &Shape) -> Result<Result<(usize, usize), String>, (String, String)> {
        let version = self.u32_at(8);
        if version != VERSION {
            return Err((format!("format version {VERSION}"), format!("format version {version}")));
        }
        let abi = self.u32_at(20);
        if abi != abi_tag() {
            return Err((
                format!("a segment of this platform (ABI tag {:08x})", abi_tag()),
                format!("a segment of another platform (ABI tag {abi:08x})"),
            ));
        }
        let Some(kind) = Kind::from_u32(self.u32_at(16)) else {
            return Err((shape.describe(shape.count), self.found_kind_name()));
        };
        let elem = self.found_elem();
        let count = self.u64_at(32);
        let found = Shape { kind, elem, ctrl_size: shape.ctrl_size, count: usize::try_from(count).ok() };
        if kind != shape.kind || elem != shape.elem {
            let (expected, got) = (shape.describe(shape.count), found.describe(found.count));
            if expected != got {
                return Err((expected, got));
            }
            // Same names, other layout (a type name cut at 48 bytes, or a
            // lying header): show what differs.
            return Err((
                format!("{expected} with elements {:?}", shape.elem),
                format!("{got} with elements {elem:?}"),
            ));
        }
        let Ok(count) = usize::try_from(count) else {
            return Ok(Err(format!("element count {count} does not fit in memory")));
        };
        if let Some(want) = shape.count {
            if want != count {
                if kind.has_variable_count() {
                    return Err((shape.describe(Some(want)), found.describe(Some(count))));
                }
                // Other kinds always hold the same count: this one lies.
                return Ok(Err(format!("element count {count}, but a {} holds {want}", shape.describe(None))));
            }
        }
        let data_len = self.u64_at(40);
        let Some(expected_len) = shape.data_len(count).filter(|&l| l <= isize::MAX as usize - DATA_OFFSET) else {
            return Ok(Err(format!("element count {count} overflows the address space")));
        };
        if expected_len == 0 {
            // `create` refuses this (`SharedMemory::len` is never 0).
            return Ok(Err("element count 0: the segment holds no data".to_string()));
        }
        if data_len != expected_len as u64 {
            return Ok(Err(format!("data length {data_len} does not match {count} elements ({expected_len} bytes)")));
        }
        Ok(Ok((count, expected_len)))
    }
}
