//! What opening refuses: objects of another kind or element type, and files
//! that are not valid segments (truncated, garbage, blank, or with a header
//! that lies). Each case must be an error — `Mismatch`, `Corrupt` or
//! `NotReady` — and never a panic, a hang or a handle larger than the file.
//!
//! Hand-made files are written into a private directory under the system
//! temp dir and opened with `Name::new("x").in_dir(dir)`; the directory is
//! removed on drop, even when a test fails.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use multiproc::{Array, Mutex, Name, SharedMemory, ShmError, Value};

// ---------------------------------------------------------------------------
// Helpers

/// A private temporary directory, removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("multiproc-err-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }

    fn name(&self, name: &str) -> Name {
        Name::new(name).in_dir(&self.0)
    }

    /// Writes `bytes` as the file `x` (replacing it) and returns its name.
    fn file(&self, bytes: &[u8]) -> Name {
        let path = self.0.join("x");
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, bytes).unwrap();
        self.name("x")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixed-seed xorshift64 generator: reproducible garbage without a
/// dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// Header field offsets (src/segment/header.rs).
const VERSION: usize = 8;
const STATE: usize = 12;
const KIND: usize = 16;
const ABI: usize = 20;
const ELEM_SIZE: usize = 24;
const COUNT: usize = 32;
const DATA_LEN: usize = 40;
const HEADER: usize = 128;

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The bytes of a real `SharedMemory` of `size` bytes (its data set to a
/// pattern), made by the library in `dir`.
fn real_shared_memory(dir: &TempDir, size: usize) -> Vec<u8> {
    let name = dir.name("real-shm");
    let shm = SharedMemory::create(&name, size).unwrap();
    // SAFETY: only this thread uses the segment.
    for (i, b) in unsafe { shm.as_mut_slice() }.iter_mut().enumerate() {
        *b = i as u8;
    }
    let bytes = std::fs::read(name.path()).unwrap();
    shm.unlink().unwrap();
    bytes
}

/// The bytes of a real `Mutex<u32>`, made by the library in `dir`.
fn real_mutex(dir: &TempDir) -> Vec<u8> {
    let name = dir.name("real-mutex");
    let m = Mutex::create(&name, 7u32).unwrap();
    let bytes = std::fs::read(name.path()).unwrap();
    m.unlink().unwrap();
    bytes
}

/// Opens `name` as every kind these tests know and returns the errors;
/// panics if any of them opens.
fn open_everything(name: &Name) -> Vec<(&'static str, ShmError)> {
    fn err<T>(what: &'static str, r: Result<T, ShmError>) -> (&'static str, ShmError) {
        match r {
            Ok(_) => panic!("{what} opened an invalid segment"),
            Err(e) => (what, e),
        }
    }
    vec![
        err("SharedMemory", SharedMemory::open(name)),
        err("Mutex<u32>", Mutex::<u32>::open(name)),
        err("Mutex<u64>", Mutex::<u64>::open(name)),
        err("Value<u32>", Value::<u32>::open(name)),
        err("Array<u8>", Array::<u8>::open(name)),
    ]
}

/// Asserts that every kind refuses `bytes` as `Corrupt` with `why` in the
/// reason, promptly (no waiting for a creator).
fn assert_corrupt(bytes: &[u8], why: &str) {
    let dir = TempDir::new("corrupt");
    let name = dir.file(bytes);
    let start = Instant::now();
    for (what, err) in open_everything(&name) {
        let ShmError::Corrupt { reason, .. } = &err else { panic!("{what}: expected Corrupt, got {err:?}") };
        assert!(reason.contains(why), "{what}: reason {reason:?} should say {why:?}");
        let msg = err.to_string();
        assert!(msg.contains("not a valid segment") && msg.contains(&name.to_string()), "{msg}");
    }
    assert!(start.elapsed() < Duration::from_millis(500), "a corrupt file was waited on");
}

// ---------------------------------------------------------------------------
// Wrong kind or element type

fn mismatch(err: ShmError) -> (String, String, String) {
    let msg = err.to_string();
    match err {
        ShmError::Mismatch { expected, found, .. } => (expected, found, msg),
        other => panic!("expected Mismatch, got {other:?}"),
    }
}

#[test]
fn shared_memory_opened_as_mutex_is_mismatch_naming_both() {
    let dir = TempDir::new("shm-as-mutex");
    let name = dir.name("seg");
    let _shm = SharedMemory::create(&name, 64).unwrap();
    let (expected, found, msg) = mismatch(Mutex::<u32>::open(&name).unwrap_err());
    assert!(expected.contains("Mutex<u32>"), "{expected}");
    assert!(found.contains("SharedMemory"), "{found}");
    assert!(msg.contains("Mutex<u32>") && msg.contains("SharedMemory"), "{msg}");
    assert!(msg.contains(&name.to_string()), "{msg}");
}

#[test]
fn mutex_opened_as_shared_memory_is_mismatch_naming_both() {
    let dir = TempDir::new("mutex-as-shm");
    let name = dir.name("seg");
    let _m = Mutex::create(&name, 1u32).unwrap();
    let (expected, found, msg) = mismatch(SharedMemory::open(&name).unwrap_err());
    assert!(expected.contains("SharedMemory"), "{expected}");
    assert!(found.contains("Mutex<u32>"), "{found}");
    assert!(msg.contains("Mutex<u32>") && msg.contains("SharedMemory"), "{msg}");
}

#[test]
fn mutex_u32_opened_as_mutex_u64_is_mismatch_naming_both() {
    let dir = TempDir::new("u32-as-u64");
    let name = dir.name("seg");
    let _m = Mutex::create(&name, 1u32).unwrap();
    let (expected, found, msg) = mismatch(Mutex::<u64>::open(&name).unwrap_err());
    assert!(expected.contains("Mutex<u64>"), "{expected}");
    assert!(found.contains("Mutex<u32>"), "{found}");
    assert!(msg.contains("Mutex<u32>") && msg.contains("Mutex<u64>"), "{msg}");
}

#[test]
fn mutex_u32_opened_as_mutex_f32_is_mismatch_naming_both() {
    // Same size and alignment: only the type itself differs.
    let dir = TempDir::new("u32-as-f32");
    let name = dir.name("seg");
    let _m = Mutex::create(&name, 1u32).unwrap();
    let (expected, found, msg) = mismatch(Mutex::<f32>::open(&name).unwrap_err());
    assert!(expected.contains("Mutex<f32>"), "{expected}");
    assert!(found.contains("Mutex<u32>"), "{found}");
    assert!(msg.contains("Mutex<u32>") && msg.contains("Mutex<f32>"), "{msg}");
    // And the right type still opens.
    assert_eq!(*Mutex::<u32>::open(&name).unwrap().lock().unwrap(), 1);
}

#[test]
fn value_opened_as_mutex_and_array_of_other_type_are_mismatches() {
    let dir = TempDir::new("value-array");
    let v = dir.name("value");
    let _v = Value::create(&v, 5u32).unwrap();
    let (expected, found, _) = mismatch(Mutex::<u32>::open(&v).unwrap_err());
    assert!(expected.contains("Mutex<u32>") && found.contains("Value<u32>"), "{expected} / {found}");

    let a = dir.name("array");
    let _a = Array::create(&a, &[1u32, 2, 3]).unwrap();
    let (expected, found, _) = mismatch(Array::<u64>::open(&a).unwrap_err());
    assert!(expected.contains("Array<u64>") && found.contains("Array<u32>"), "{expected} / {found}");
    let (expected, found, _) = mismatch(Value::<u32>::open(&a).unwrap_err());
    assert!(expected.contains("Value<u32>") && found.contains("Array<u32>"), "{expected} / {found}");
}

#[test]
fn mutex_open_or_create_of_other_type_is_mismatch() {
    let dir = TempDir::new("ooc-type");
    let name = dir.name("seg");
    let _m = Mutex::create(&name, 1u32).unwrap();
    let (expected, found, _) = mismatch(Mutex::open_or_create(&name, 1u64).unwrap_err());
    assert!(expected.contains("Mutex<u64>") && found.contains("Mutex<u32>"), "{expected} / {found}");
}

#[test]
fn mismatch_is_invalid_data_as_io_error() {
    let dir = TempDir::new("io-kind");
    let name = dir.name("seg");
    let _m = Mutex::create(&name, 1u32).unwrap();
    let e: io::Error = SharedMemory::open(&name).unwrap_err().into();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    let e: io::Error = SharedMemory::open(dir.name("missing")).unwrap_err().into();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let e: io::Error = SharedMemory::create(&name, 1).unwrap_err().into();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    let e: io::Error = SharedMemory::anonymous(0).unwrap_err().into();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

// ---------------------------------------------------------------------------
// Truncated files

#[test]
fn segment_truncated_to_ten_bytes_is_corrupt() {
    let dir = TempDir::new("ten");
    let real = real_shared_memory(&dir, 64);
    assert_corrupt(&real[..10], "truncated");
    let real = real_mutex(&dir);
    assert_corrupt(&real[..10], "truncated");
}

#[test]
fn segment_truncated_inside_the_header_is_corrupt() {
    let dir = TempDir::new("short");
    let real = real_mutex(&dir);
    for len in [1, 7, 8, 9, 12, 16, 33, 64, 127] {
        assert_corrupt(&real[..len], "truncated");
    }
}

#[test]
fn segment_truncated_to_its_header_is_corrupt() {
    let dir = TempDir::new("header-only");
    let name = dir.name("shm");
    let _shm = SharedMemory::create(&name, 4096).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(name.path()).unwrap();
    for len in [HEADER as u64, HEADER as u64 + 4095] {
        f.set_len(len).unwrap();
        let err = SharedMemory::open(&name).unwrap_err();
        assert!(matches!(&err, ShmError::Corrupt { reason, .. } if reason.contains("truncated")), "{len}: {err:?}");
    }

    let name = dir.name("mutex");
    let _m = Mutex::create(&name, 9u64).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(name.path()).unwrap();
    f.set_len(HEADER as u64).unwrap();
    let err = Mutex::<u64>::open(&name).unwrap_err();
    assert!(matches!(&err, ShmError::Corrupt { reason, .. } if reason.contains("truncated")), "{err:?}");
}

// ---------------------------------------------------------------------------
// Garbage, blank and lying headers

#[test]
fn file_of_random_bytes_is_corrupt() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..32 {
        let len = 1 + (rng.next() % 700) as usize;
        let mut b = rng.bytes(len);
        if b[0] == 0 {
            b[0] = 1; // keep the header from being blank (that waits)
        }
        let why = if len < HEADER { "truncated" } else { "no segment header" };
        assert_corrupt(&b, why);
    }
}

#[test]
fn random_bytes_after_a_valid_magic_are_an_error_never_a_panic() {
    let mut rng = XorShift(0x0123_4567_89AB_CDEF);
    let dir = TempDir::new("magic");
    for round in 0..64 {
        let len = HEADER + (rng.next() % 512) as usize;
        let mut b = rng.bytes(len);
        b[..8].copy_from_slice(b"MPROCSEG");
        if round % 2 == 0 {
            put_u32(&mut b, VERSION, 1);
        }
        if round % 4 == 0 {
            put_u32(&mut b, STATE, 1);
        }
        if round % 8 == 0 {
            // The real platform tag, so the checks go further.
            let real = real_shared_memory(&dir, 1);
            b[ABI..ABI + 4].copy_from_slice(&real[ABI..ABI + 4]);
        }
        let name = dir.file(&b);
        for (what, err) in open_everything(&name) {
            assert!(
                matches!(err, ShmError::Corrupt { .. } | ShmError::Mismatch { .. }),
                "round {round}: {what}: {err:?}"
            );
            let _ = err.to_string();
        }
    }
}

#[test]
fn all_zero_file_is_not_ready_after_a_bounded_wait() {
    let dir = TempDir::new("zeros");
    let name = dir.file(&[0u8; 4096]);
    let start = Instant::now();
    let err = SharedMemory::open(&name).unwrap_err();
    let waited = start.elapsed();
    let ShmError::NotReady { waited: said, .. } = &err else { panic!("expected NotReady, got {err:?}") };
    assert!(waited >= Duration::from_millis(900), "gave up after {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(*said >= Duration::from_millis(900), "{said:?}");
    assert!(err.to_string().contains("not initialised"), "{err}");
    let e: io::Error = err.into();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
}

#[test]
fn empty_file_is_not_ready_after_a_bounded_wait() {
    // A creator that died between creating the file and sizing it.
    let dir = TempDir::new("empty");
    let name = dir.file(&[]);
    let start = Instant::now();
    let err = Mutex::<u32>::open(&name).unwrap_err();
    assert!(matches!(err, ShmError::NotReady { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn header_left_in_creating_state_is_not_ready() {
    // A creator that died before publishing.
    let dir = TempDir::new("creating");
    let mut b = real_mutex(&dir);
    put_u32(&mut b, STATE, 0);
    let name = dir.file(&b);
    let start = Instant::now();
    let err = Mutex::<u32>::open(&name).unwrap_err();
    assert!(matches!(err, ShmError::NotReady { .. }), "{err:?}");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn header_with_bad_version_is_mismatch_naming_both_versions() {
    let dir = TempDir::new("version");
    for version in [0, 2, u32::MAX] {
        let mut b = real_shared_memory(&dir, 32);
        put_u32(&mut b, VERSION, version);
        let name = dir.file(&b);
        let (expected, found, msg) = mismatch(SharedMemory::open(&name).unwrap_err());
        assert!(expected.contains("version 1"), "{expected}");
        assert!(found.contains(&format!("version {version}")), "{found}");
        assert!(msg.contains("version 1") && msg.contains(&format!("version {version}")), "{msg}");
    }
}

#[test]
fn header_with_bad_state_is_corrupt() {
    let dir = TempDir::new("state");
    for state in [2, 7, u32::MAX] {
        let mut b = real_mutex(&dir);
        put_u32(&mut b, STATE, state);
        let err = Mutex::<u32>::open(dir.file(&b)).unwrap_err();
        let ShmError::Corrupt { reason, .. } = &err else { panic!("state {state}: expected Corrupt, got {err:?}") };
        assert!(reason.contains(&format!("unknown state {state}")), "{reason}");
    }
}

#[test]
fn header_with_unknown_kind_is_mismatch() {
    let dir = TempDir::new("kind");
    let mut b = real_mutex(&dir);
    put_u32(&mut b, KIND, 99);
    let (expected, found, _) = mismatch(Mutex::<u32>::open(dir.file(&b)).unwrap_err());
    assert!(expected.contains("Mutex<u32>"), "{expected}");
    assert!(found.contains("unknown kind") && found.contains("99"), "{found}");
}

#[test]
fn header_of_another_platform_is_mismatch() {
    let dir = TempDir::new("abi");
    let mut b = real_mutex(&dir);
    let tag = u32::from_le_bytes(b[ABI..ABI + 4].try_into().unwrap());
    put_u32(&mut b, ABI, tag ^ 1);
    let (expected, found, _) = mismatch(Mutex::<u32>::open(dir.file(&b)).unwrap_err());
    assert!(expected.contains("this platform") && found.contains("another platform"), "{expected} / {found}");
}

#[test]
fn header_with_other_element_size_is_mismatch_that_shows_the_difference() {
    // A header claiming `u32` of 8 bytes: names alone would read
    // "holds Mutex<u32>, but Mutex<u32> was asked for".
    let dir = TempDir::new("elemsize");
    let mut b = real_mutex(&dir);
    put_u32(&mut b, ELEM_SIZE, 8);
    let (expected, found, msg) = mismatch(Mutex::<u32>::open(dir.file(&b)).unwrap_err());
    assert_ne!(expected, found, "{msg}");
    assert!(found.contains('8') && expected.contains('4'), "{expected} / {found}");
}

#[test]
fn header_with_absurd_count_is_an_error() {
    let dir = TempDir::new("count");
    let shm = real_shared_memory(&dir, 64);
    let mutex = real_mutex(&dir);
    // (count, data length): overflowing, huge, and inconsistent.
    let cases = [
        (u64::MAX, u64::MAX),
        (u64::MAX - 127, u64::MAX - 127),
        (u64::MAX, 64),
        (1 << 62, 1 << 62),
        ((isize::MAX as u64) - 127, (isize::MAX as u64) - 127),
        (1 << 40, 1 << 40),
        (65, 65),
        (64, 65),
        (0, 0),
    ];
    for (count, data_len) in cases {
        for (what, base) in [("SharedMemory", &shm), ("Mutex<u32>", &mutex)] {
            let mut b = base.clone();
            put_u64(&mut b, COUNT, count);
            if what == "SharedMemory" {
                put_u64(&mut b, DATA_LEN, data_len);
            }
            let name = dir.file(&b);
            let err = match what {
                "SharedMemory" => SharedMemory::open(&name).map(|s| s.len()).unwrap_err(),
                _ => Mutex::<u32>::open(&name).map(drop).unwrap_err(),
            };
            assert!(
                matches!(err, ShmError::Corrupt { .. } | ShmError::Mismatch { .. }),
                "{what} count {count} data length {data_len}: {err:?}"
            );
            let _ = err.to_string();
        }
    }
}

#[test]
fn mutex_header_with_count_other_than_one_is_corrupt_not_a_puzzling_mismatch() {
    let dir = TempDir::new("mutex-count");
    let mut b = real_mutex(&dir);
    let data_len = u64::from_le_bytes(b[DATA_LEN..DATA_LEN + 8].try_into().unwrap());
    put_u64(&mut b, COUNT, 2);
    put_u64(&mut b, DATA_LEN, data_len + 4);
    b.extend_from_slice(&[0; 4]);
    let err = Mutex::<u32>::open(dir.file(&b)).unwrap_err();
    match &err {
        ShmError::Corrupt { reason, .. } => assert!(reason.contains('2'), "{reason}"),
        ShmError::Mismatch { expected, found, .. } => assert_ne!(expected, found, "{err}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn header_with_wrong_data_length_is_corrupt() {
    let dir = TempDir::new("datalen");
    let mut b = real_shared_memory(&dir, 64);
    put_u64(&mut b, DATA_LEN, 63);
    assert!(matches!(SharedMemory::open(dir.file(&b)).unwrap_err(), ShmError::Corrupt { .. }));
}

#[test]
fn valid_segment_bytes_copied_by_hand_open_with_their_data() {
    // The control case for the tests above: the unmodified bytes open.
    let dir = TempDir::new("control");
    let b = real_shared_memory(&dir, 64);
    let shm = SharedMemory::open(dir.file(&b)).unwrap();
    assert_eq!(shm.len(), 64);
    // SAFETY: only this thread uses the segment.
    assert_eq!(unsafe { shm.as_slice() }[63], 63);
    let b = real_mutex(&dir);
    let m = Mutex::<u32>::open(dir.file(&b)).unwrap();
    assert_eq!(*m.try_lock().unwrap(), 7);
}
