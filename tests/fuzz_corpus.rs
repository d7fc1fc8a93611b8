//! Replays the fuzz corpus on stable Rust.
//!
//! Every file in `fuzz/corpus/open_segment/` (the committed seeds, named
//! `seed-*`; a local fuzzing run adds hash-named files, which git ignores)
//! and in `fuzz/artifacts/open_segment/` (inputs that once crashed the fuzz
//! target, kept as `regression-*` once fixed; git ignores other names there)
//! goes through the same open-and-exercise logic as the fuzz target,
//! `fuzz/common/open_segment.rs`: it must end in an error or in a working
//! handle, never a panic or a hang.
//!
//! The `regression-mutex-kind-*` artifacts are the fuzzer's first finding: a
//! mutex whose glibc `__kind` word was rewritten sent `try_lock` down
//! glibc's elision or priority-inheritance paths (SIGILL, abort). The lock
//! functions now refuse a kind they did not create (`src/sys/pthread.rs`).
//!
//! The seeds are made by the library itself; after a format change,
//! regenerate them with
//!
//! ```text
//! cargo test --test fuzz_corpus -- --ignored write_seed_corpus
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multiproc::{
    Array, Barrier, BoundedSemaphore, Condition, Event, JoinableQueue, Mutex, Name, Queue, RLock, Semaphore,
    SharedMemory, ShmError, SimpleQueue, Value,
};

#[path = "../fuzz/common/open_segment.rs"]
#[allow(dead_code)]
mod open_segment;

use open_segment::{KINDS, PrivateDir};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn corpus() -> Vec<PathBuf> {
    files_in(&fuzz_dir().join("corpus/open_segment"))
}

fn artifacts() -> Vec<PathBuf> {
    files_in(&fuzz_dir().join("artifacts/open_segment"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
        .collect()
}

/// Runs every kind on every file, each pair on its own thread in its own
/// directory (a blank input makes each open wait a second). Returns, per
/// file, the outcome of each kind.
fn replay(files: &[PathBuf]) -> Vec<(PathBuf, Vec<Result<String, String>>)> {
    let inputs: Vec<(PathBuf, Vec<u8>)> = files.iter().map(|f| (f.clone(), std::fs::read(f).unwrap())).collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = inputs
            .iter()
            .map(|(path, data)| {
                let per_kind: Vec<_> = KINDS
                    .iter()
                    .map(|kind| {
                        s.spawn(move || {
                            let dir = PrivateDir::new("corpus");
                            let start = Instant::now();
                            let r = open_segment::open_as(dir.path(), data, kind).map_err(|e| e.to_string());
                            let took = start.elapsed();
                            assert!(
                                took < Duration::from_secs(10),
                                "{} as {}: took {took:?}",
                                path.display(),
                                kind.name
                            );
                            r
                        })
                    })
                    .collect();
                (path, per_kind)
            })
            .collect();
        runs.into_iter()
            .map(|(path, per_kind)| {
                let outcomes = per_kind
                    .into_iter()
                    .zip(KINDS)
                    .map(|(h, kind)| {
                        h.join().unwrap_or_else(|_| panic!("{} as {} panicked", path.display(), kind.name))
                    })
                    .collect();
                (path.clone(), outcomes)
            })
            .collect()
    })
}

#[test]
fn fuzz_corpus_replays_without_panic() {
    let files = corpus();
    assert!(files.len() >= 10, "the seed corpus is missing: {} files", files.len());
    for (path, outcomes) in replay(&files) {
        for (kind, r) in KINDS.iter().zip(outcomes) {
            println!("{} as {}: {r:?}", path.file_name().unwrap().to_string_lossy(), kind.name);
        }
    }
}

#[test]
fn fuzz_artifacts_replay_without_panic() {
    // Regressions: inputs that crashed the fuzz target before a fix.
    for (path, outcomes) in replay(&artifacts()) {
        for (kind, r) in KINDS.iter().zip(outcomes) {
            println!("{} as {}: {r:?}", path.file_name().unwrap().to_string_lossy(), kind.name);
        }
    }
}

/// Seeds named `seed-valid-<kind>...` open as that kind, and only as that
/// kind: the harness does reach the code past validation.
#[test]
fn fuzz_corpus_valid_seeds_open_as_their_kind() {
    let valid: Vec<PathBuf> =
        corpus().into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seed-valid-")).collect();
    assert!(valid.len() >= KINDS.len(), "expected a valid seed per kind, found {}", valid.len());
    let mut opened_kinds = std::collections::BTreeSet::new();
    for (path, outcomes) in replay(&valid) {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let kind_of_file = seed_kind(&file).unwrap_or_else(|| panic!("{file}: no kind in its name"));
        for (kind, r) in KINDS.iter().zip(outcomes) {
            if kind.name == kind_of_file {
                assert!(r.is_ok(), "{file} does not open as {}: {r:?}", kind.name);
                opened_kinds.insert(kind.name);
            } else {
                assert!(r.is_err(), "{file} opened as {} too: {r:?}", kind.name);
            }
        }
    }
    let all: std::collections::BTreeSet<_> = KINDS.iter().map(|k| k.name).collect();
    assert_eq!(opened_kinds, all, "every kind has a valid seed");
}

/// The kind a seed file was made as, from its name (`seed-valid-<slug>[-…]`).
fn seed_kind(file: &str) -> Option<&'static str> {
    let rest = file.strip_prefix("seed-valid-")?;
    SEEDS.iter().find(|(slug, _)| rest == *slug || rest.starts_with(&format!("{slug}-"))).map(|&(_, kind)| kind)
}

/// File-name slug of each kind's valid seed.
const SEEDS: &[(&str, &str)] = &[
    ("shared-memory", "SharedMemory"),
    ("mutex-u32", "Mutex<u32>"),
    ("mutex-u64", "Mutex<u64>"),
    ("mutex-f32", "Mutex<f32>"),
    ("lock", "Lock"),
    ("value-u32", "Value<u32>"),
    ("value-f64", "Value<f64>"),
    ("array-u8", "Array<u8>"),
    ("array-u32", "Array<u32>"),
    ("array-u64", "Array<u64>"),
    ("rlock", "RLock"),
    ("semaphore", "Semaphore"),
    ("bounded-semaphore", "BoundedSemaphore"),
    ("event", "Event"),
    ("condition", "Condition"),
    ("barrier", "Barrier"),
    ("queue", "Queue"),
    ("simple-queue", "SimpleQueue"),
    ("joinable-queue", "JoinableQueue"),
];

// ---------------------------------------------------------------------------
// Seed generation

/// The bytes of the segment `make` creates in a scratch directory.
fn made(make: impl FnOnce(Name) -> Result<Box<dyn std::any::Any>, ShmError>) -> Vec<u8> {
    let dir = PrivateDir::new("seed");
    let name = Name::new("seed").in_dir(dir.path());
    let keep = make(name.clone()).unwrap();
    let bytes = std::fs::read(name.path()).unwrap();
    drop(keep);
    bytes
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn xorshift_bytes(mut x: u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every seed, by file name (without the `seed-` prefix).
fn seeds() -> Vec<(String, Vec<u8>)> {
    fn b<T: 'static>(r: Result<T, ShmError>) -> Result<Box<dyn std::any::Any>, ShmError> {
        r.map(|x| Box::new(x) as Box<dyn std::any::Any>)
    }
    let shm_small = made(|n| {
        let s = SharedMemory::create(n, 1)?;
        b(Ok(s))
    });
    let shm = made(|n| {
        let s = SharedMemory::create(n, 300)?;
        // SAFETY: only this thread uses the new segment.
        for (i, x) in unsafe { s.as_mut_slice() }.iter_mut().enumerate() {
            *x = i as u8;
        }
        b(Ok(s))
    });
    let mutex_u32 = made(|n| b(Mutex::create(n, 0xDEAD_BEEFu32)));
    let mutex_held = {
        // Copied while locked: the lock word names a thread of a process
        // that is gone when the seed is used.
        let dir = PrivateDir::new("seed");
        let name = Name::new("seed").in_dir(dir.path());
        let m = Mutex::create(&name, 1u32).unwrap();
        let g = m.lock().unwrap();
        let bytes = std::fs::read(name.path()).unwrap();
        drop(g);
        bytes
    };
    let mut seeds = vec![
        ("valid-shared-memory-1".to_string(), shm_small),
        ("valid-shared-memory-300".to_string(), shm.clone()),
        ("valid-mutex-u32".to_string(), mutex_u32.clone()),
        ("valid-mutex-u32-held".to_string(), mutex_held.clone()),
        ("valid-mutex-u64".to_string(), made(|n| b(Mutex::create(n, u64::MAX)))),
        ("valid-mutex-f32".to_string(), made(|n| b(Mutex::create(n, 1.5f32)))),
        ("valid-lock".to_string(), made(|n| b(Mutex::create(n, ())))),
        ("valid-value-u32".to_string(), made(|n| b(Value::create(n, 42u32)))),
        ("valid-value-f64".to_string(), made(|n| b(Value::create(n, -0.5f64)))),
        ("valid-array-u8-5".to_string(), made(|n| b(Array::create(n, &[1u8, 2, 3, 4, 5])))),
        ("valid-array-u32-3".to_string(), made(|n| b(Array::create(n, &[7u32, 8, 9])))),
        ("valid-array-u64-0".to_string(), made(|n| b(Array::<u64>::create(n, &[])))),
        ("valid-array-u64-4".to_string(), made(|n| b(Array::create(n, &[1u64, 2, 3, 4])))),
    ];
    let rlock_held = {
        // Copied while held twice by this thread (a count of 2).
        let dir = PrivateDir::new("seed");
        let name = Name::new("seed").in_dir(dir.path());
        let r = RLock::create(&name).unwrap();
        r.acquire().unwrap();
        r.acquire().unwrap();
        let bytes = std::fs::read(name.path()).unwrap();
        r.release().unwrap();
        r.release().unwrap();
        bytes
    };
    let queue_with = made(|n| {
        let q: Queue<Vec<u8>> = Queue::create(n, 4096)?;
        q.try_put(vec![1, 2, 3]).unwrap();
        q.try_put(Vec::new()).unwrap();
        q.try_put(vec![9; 100]).unwrap();
        b(Ok(q))
    });
    let queue_wrapped = made(|n| {
        // Records across the end of the buffer (a padding record), and a
        // message streamed in two chunks.
        // (`try_` calls: a mistake here fails instead of waiting forever.)
        let q: Queue<Vec<u8>> = Queue::create(n, 4096)?;
        for len in [1500, 1500, 1200] {
            q.try_put(vec![1; len]).unwrap();
            q.try_get().unwrap();
        }
        q.try_put(vec![4; 2100]).unwrap();
        q.try_put(vec![5; 100]).unwrap();
        b(Ok(q))
    });
    seeds.extend([
        ("valid-rlock".to_string(), made(|n| b(RLock::create(n)))),
        ("valid-rlock-held".to_string(), rlock_held),
        ("valid-semaphore-3".to_string(), made(|n| b(Semaphore::create(n, 3)))),
        ("valid-semaphore-0".to_string(), made(|n| b(Semaphore::create(n, 0)))),
        ("valid-bounded-semaphore-2".to_string(), made(|n| b(BoundedSemaphore::create(n, 2)))),
        ("valid-event".to_string(), made(|n| b(Event::create(n)))),
        (
            "valid-event-set".to_string(),
            made(|n| {
                let e = Event::create(n)?;
                e.set();
                b(Ok(e))
            }),
        ),
        ("valid-condition".to_string(), made(|n| b(Condition::create(n)))),
        ("valid-barrier-1".to_string(), made(|n| b(Barrier::create(n, 1)))),
        ("valid-barrier-3".to_string(), made(|n| b(Barrier::create(n, 3)))),
        ("valid-queue-empty".to_string(), made(|n| b(Queue::<Vec<u8>>::create(n, 4096)))),
        ("valid-queue-messages".to_string(), queue_with),
        ("valid-queue-wrapped".to_string(), queue_wrapped),
        ("valid-simple-queue".to_string(), made(|n| b(SimpleQueue::<u32>::create(n, 4096)))),
        (
            "valid-joinable-queue".to_string(),
            made(|n| {
                let q: JoinableQueue<Vec<u8>> = JoinableQueue::create(n, 8192)?;
                q.try_put(vec![5; 20]).unwrap();
                q.try_put(vec![6; 20]).unwrap();
                q.try_get().unwrap();
                q.task_done().unwrap();
                b(Ok(q))
            }),
        ),
    ]);

    // The previous owner died holding it (glibc: FUTEX_OWNER_DIED in the
    // lock word, the first word of the mutex).
    let mut died = mutex_held.clone();
    let word = u32::from_le_bytes(died[128..132].try_into().unwrap());
    put_u32(&mut died, 128, word | 0x4000_0000);
    seeds.push(("valid-mutex-u32-owner-died".into(), died));

    // Truncated.
    seeds.push(("truncated-10".into(), mutex_u32[..10].to_vec()));
    seeds.push(("truncated-header-only".into(), mutex_u32[..128].to_vec()));
    seeds.push(("truncated-one-short".into(), shm[..shm.len() - 1].to_vec()));
    // Garbage.
    seeds.push(("garbage-256".into(), xorshift_bytes(0x9E37_79B9_7F4A_7C15, 256)));
    let mut magic = xorshift_bytes(0x0123_4567_89AB_CDEF, 300);
    magic[..8].copy_from_slice(b"MPROCSEG");
    seeds.push(("garbage-after-magic".into(), magic));
    let mut mutex_garbage = mutex_u32.clone();
    mutex_garbage[128..].copy_from_slice(&xorshift_bytes(42, mutex_u32.len() - 128));
    seeds.push(("garbage-mutex-body".into(), mutex_garbage));
    // Blank: a creator at work (waits, then NotReady).
    seeds.push(("blank-256".into(), vec![0; 256]));
    // Lying headers.
    let mut creating = mutex_u32.clone();
    put_u32(&mut creating, 12, 0);
    seeds.push(("header-state-creating".into(), creating));
    let mut state = mutex_u32.clone();
    put_u32(&mut state, 12, 7);
    seeds.push(("header-state-7".into(), state));
    let mut version = shm.clone();
    put_u32(&mut version, 8, 2);
    seeds.push(("header-version-2".into(), version));
    let mut kind = mutex_u32.clone();
    put_u32(&mut kind, 16, 99);
    seeds.push(("header-kind-99".into(), kind));
    let mut count = shm.clone();
    put_u64(&mut count, 32, u64::MAX);
    put_u64(&mut count, 40, u64::MAX);
    seeds.push(("header-count-max".into(), count));
    let mut count0 = shm;
    put_u64(&mut count0, 32, 0);
    put_u64(&mut count0, 40, 0);
    seeds.push(("header-count-0".into(), count0));
    seeds
}

/// Writes the seed corpus (run by hand; see the module docs).
#[test]
#[ignore = "writes fuzz/corpus/open_segment; run by hand after a format change"]
fn write_seed_corpus() {
    let dir = fuzz_dir().join("corpus/open_segment");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

/// The committed seeds are the ones the generator makes, up to what differs
/// between runs and machines (creator pid, platform tag, lock owner).
#[test]
fn fuzz_corpus_has_every_generated_seed() {
    let dir = fuzz_dir().join("corpus/open_segment");
    for (name, bytes) in seeds() {
        let path = dir.join(format!("seed-{name}"));
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(committed.len(), bytes.len(), "{name}: regenerate the corpus");
        if name.starts_with("valid-") || name.starts_with("header-") {
            assert_eq!(committed[..8], bytes[..8], "{name}: magic");
            assert_eq!(committed[16..20], bytes[16..20], "{name}: kind");
            assert_eq!(committed[24..48], bytes[24..48], "{name}: element layout and count");
        }
    }
}
