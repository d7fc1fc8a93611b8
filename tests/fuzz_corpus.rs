//! Replays the fuzz corpora on stable Rust.
//!
//! For each fuzz target (`open_segment`, `ring_reader`, `channel_model`),
//! the committed seeds in `fuzz/corpus/<target>/seed-*` and the inputs that
//! once crashed or hung it, kept once fixed as
//! `fuzz/artifacts/<target>/regression-*`, go through the same code as the
//! fuzz target (`fuzz/common/<target>.rs`): each must end in an error or in
//! valid data, never a panic or a hang. (A local fuzzing run adds
//! hash-named files to `corpus/` and `crash-*`/`timeout-*` files to
//! `artifacts/`; git ignores them and this test does not read them —
//! `cargo +nightly fuzz run <target> fuzz/corpus/<target> -- -runs=0`
//! replays those.)
//!
//! The `regression-mutex-kind-*` artifacts are the fuzzer's first finding: a
//! mutex whose glibc `__kind` word was rewritten sent `try_lock` down
//! glibc's elision or priority-inheritance paths (SIGILL, abort). The lock
//! functions now refuse a kind they did not create (`src/sys/pthread.rs`).
//! The others are named for what they found; the commits that fixed them
//! say how.
//!
//! The seeds are made by the library itself (`open_segment`) or encoded
//! from operation lists (the other two); after a format change, regenerate
//! them with
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

#[path = "../fuzz/common/bytes.rs"]
#[allow(dead_code)]
mod bytes;
#[path = "../fuzz/common/channel_model.rs"]
mod channel_model;
#[path = "../fuzz/common/open_segment.rs"]
#[allow(dead_code)]
mod open_segment;
#[path = "../fuzz/common/private_dir.rs"]
#[allow(dead_code)] // `run_dir` is for the fuzz targets
mod private_dir;
#[path = "../fuzz/common/ring_reader.rs"]
mod ring_reader;

use open_segment::KINDS;
use private_dir::PrivateDir;

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

/// The files of `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect()
}

/// The committed seeds of `target`.
fn seeds_of(target: &str) -> Vec<PathBuf> {
    named(&fuzz_dir().join("corpus").join(target), "seed-")
}

/// The regression inputs of `target`.
fn regressions_of(target: &str) -> Vec<PathBuf> {
    named(&fuzz_dir().join("artifacts").join(target), "regression-")
}

fn corpus() -> Vec<PathBuf> {
    seeds_of("open_segment")
}

fn artifacts() -> Vec<PathBuf> {
    regressions_of("open_segment")
}

/// The longest one input may take in a replay: far more than any of them
/// needs (the slowest wait 1 s for a lock or a creator a few times), so
/// reaching it means a hang.
const INPUT_LIMIT: Duration = Duration::from_secs(15);

/// Runs `run` on each file, all at once, each on its own thread in its own
/// private directory; fails, naming the files, when one panics or takes
/// longer than [`INPUT_LIMIT`]. Returns how many files ran.
fn replay_each(target: &str, files: &[PathBuf], run: fn(&Path, &[u8])) -> usize {
    let (tx, rx) = std::sync::mpsc::channel();
    for path in files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (tx, path, target) = (tx.clone(), path.clone(), target.to_string());
        // Detached: a hung input is reported below, not waited for.
        std::thread::spawn(move || {
            let dir = PrivateDir::new(&target);
            let start = Instant::now();
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(dir.path(), &data))).is_ok();
            let _ = tx.send((path, ok, start.elapsed()));
        });
    }
    drop(tx);
    let deadline = Instant::now() + INPUT_LIMIT;
    let mut pending: std::collections::BTreeSet<PathBuf> = files.iter().cloned().collect();
    let mut failed = Vec::new();
    while !pending.is_empty() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((path, ok, took)) => {
                println!("{target}: {} in {took:?}", path.display());
                if !ok {
                    failed.push(path.clone());
                }
                pending.remove(&path);
            }
            Err(_) => panic!("{target}: still running after {INPUT_LIMIT:?} (a hang): {pending:?}"),
        }
    }
    assert!(failed.is_empty(), "{target}: panicked (see above): {failed:?}");
    files.len()
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

/// Writes the seed corpora (run by hand; see the module docs).
#[test]
#[ignore = "writes fuzz/corpus/*; run by hand after a format change"]
fn write_seed_corpus() {
    for (target, seeds) in
        [("open_segment", seeds()), ("ring_reader", ring_reader_seeds()), ("channel_model", channel_model_seeds())]
    {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
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

// ---------------------------------------------------------------------------
// ring_reader

#[test]
fn ring_reader_corpus_replays_without_panic_or_hang() {
    let seeds = seeds_of("ring_reader");
    assert!(seeds.len() >= 10, "the ring_reader seed corpus is missing: {} files", seeds.len());
    let files: Vec<PathBuf> = seeds.into_iter().chain(regressions_of("ring_reader")).collect();
    replay_each("ring_reader", &files, ring_reader::run);
}

/// The seeds are encoded operation lists: the committed ones are exactly
/// what the generator makes.
#[test]
fn ring_reader_corpus_has_every_generated_seed() {
    let dir = fuzz_dir().join("corpus/ring_reader");
    for (name, bytes) in ring_reader_seeds() {
        let path = dir.join(format!("seed-{name}"));
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(committed == bytes, "{name}: regenerate the corpus");
    }
}

/// Legal traffic first (each of these alone must match the FIFO model),
/// then one kind of hostile write per seed, for the fuzzer to combine.
fn ring_reader_seeds() -> Vec<(String, Vec<u8>)> {
    use ring_reader::{FIELDS, Op, Poke, Program};
    let field = |off: usize| off as u8;
    let (tail, cached_head, published, head, closed, others_seen, send_lock) =
        (field(0), field(1), field(2), field(3), field(9), field(11), field(16));
    let (send_owner, send_ns, send_busy, recv_owner, recv_ns, recv_busy) =
        (field(18), field(20), field(21), field(24), field(26), field(27));
    assert_eq!(FIELDS.len(), 30, "the field indices below are out of date");
    // Both sides biased to a thread busy inside: id 12345 (no such thread,
    // most likely), start time 1, in pid namespace `ns` if given.
    let busy_owner = |ns: Option<u64>| {
        let sides = [(send_owner, send_busy, send_ns), (recv_owner, recv_busy, recv_ns)];
        let set = |field, v| Op::Poke { field, how: Poke::Set(v) };
        let pokes = sides
            .map(|(owner, busy, at)| [Some(set(owner, 12345 | 1 << 32)), Some(set(busy, 1)), ns.map(|n| set(at, n))]);
        pokes.into_iter().flatten().flatten().collect::<Vec<_>>()
    };
    let prog = |flavor: u8, big: bool, ops: Vec<Op>| Program { flavor, big, ops }.encode();
    let put = |len: u16, seed: u8| Op::TryPut { len, seed };
    let traffic = vec![
        put(0, 1),
        put(10, 2),
        // 2040 bytes encode to 2042: streamed in two records.
        put(2040, 3),
        Op::PutBytes { len: 100, seed: 4 },
        Op::Reserve { len: 50, seed: 5, commit: true },
        Op::Reserve { len: 60, seed: 6, commit: false },
        Op::Inspect,
        Op::TryGet,
        Op::GetTimeout,
        Op::GetInPlace,
        Op::TryIter,
        // Larger than the ring: times out half-way, dropped whole.
        Op::PutTimeout { len: 9000, seed: 7 },
        Op::TryGet,
        put(30, 8),
        Op::Close,
        Op::GetBytes,
        Op::GetInPlace,
        Op::Inspect,
    ];
    let mut wrap = Vec::new();
    for i in 0..6 {
        wrap.extend([put(1500, i), Op::TryGet]);
    }
    wrap.extend([Op::PutBytes { len: 2000, seed: 9 }, Op::GetBytes, put(3000, 10), Op::Close, Op::GetBytes]);
    vec![
        ("clean-queue".into(), prog(0, false, traffic.clone())),
        ("clean-simple-queue-wrapping".into(), prog(1, false, wrap)),
        (
            "clean-joinable-queue".into(),
            prog(
                2,
                true,
                vec![
                    put(5, 1),
                    put(6000, 2),
                    put(7, 3),
                    Op::TryGet,
                    Op::TaskDone,
                    Op::TaskDone,
                    Op::TaskDone,
                    Op::Reopen,
                    Op::Close,
                    Op::TryIter,
                    Op::TaskDone,
                ],
            ),
        ),
        (
            "tail-past-capacity".into(),
            prog(0, false, vec![put(10, 1), Op::Poke { field: tail, how: Poke::Add(127) }, Op::TryGet, put(20, 2)]),
        ),
        (
            "head-misaligned".into(),
            prog(
                0,
                false,
                vec![put(10, 1), Op::Poke { field: head, how: Poke::Set(3) }, Op::Inspect, Op::TryGet, put(9, 2)],
            ),
        ),
        (
            "forged-record-too-long".into(),
            prog(
                0,
                false,
                vec![
                    Op::Forge { at_tail: false, skip: 0, kind: 1, len: 60000, bad_lap: false },
                    Op::TryGet,
                    Op::GetTimeout,
                ],
            ),
        ),
        (
            "forged-padding-short".into(),
            prog(1, false, vec![Op::Forge { at_tail: false, skip: 0, kind: 5, len: 100, bad_lap: false }, Op::TryGet]),
        ),
        (
            "forged-stream-start".into(),
            prog(
                0,
                false,
                vec![
                    Op::Forge { at_tail: false, skip: 0, kind: 2, len: 16, bad_lap: false },
                    Op::TryGet,
                    put(5, 1),
                    Op::GetTimeout,
                ],
            ),
        ),
        (
            "forged-wrong-lap".into(),
            prog(
                0,
                false,
                vec![put(8, 1), Op::Forge { at_tail: true, skip: 0, kind: 1, len: 8, bad_lap: true }, Op::TryIter],
            ),
        ),
        (
            "send-lock-held".into(),
            prog(
                0,
                false,
                vec![
                    put(8, 1),
                    Op::Poke { field: send_lock, how: Poke::Set(12345) },
                    put(9, 2),
                    Op::PutTimeout { len: 3, seed: 3 },
                    Op::TryGet,
                    Op::GetTimeout,
                ],
            ),
        ),
        (
            // A bias owner busy inside each side that no longer runs: taken
            // for dead, and the sides taken over.
            "bias-owner-busy-dead".into(),
            prog(0, false, [vec![put(8, 1)], busy_owner(None), vec![put(9, 2), Op::TryGet, Op::GetTimeout]].concat()),
        ),
        (
            // The same owner in another pid namespace, where its life cannot
            // be judged: every call waits for it, bounded by its deadline.
            "bias-owner-busy-elsewhere".into(),
            prog(
                0,
                false,
                [
                    vec![put(8, 1)],
                    busy_owner(Some(7)),
                    vec![put(9, 2), Op::PutTimeout { len: 3, seed: 3 }, Op::TryGet, Op::GetTimeout, Op::Inspect],
                ]
                .concat(),
            ),
        ),
        (
            "closed-garbage".into(),
            prog(
                0,
                false,
                vec![
                    put(8, 1),
                    Op::Poke { field: closed, how: Poke::Set(0xdead) },
                    put(9, 2),
                    Op::GetBytes,
                    Op::GetBytes,
                    Op::Poke { field: closed, how: Poke::Set(0) },
                    Op::TryGet,
                ],
            ),
        ),
        (
            "others-seen".into(),
            prog(0, false, vec![Op::Poke { field: others_seen, how: Poke::Set(1) }, Op::GetTimeout, Op::TryGet]),
        ),
        (
            "published-huge".into(),
            prog(
                2,
                false,
                vec![
                    put(1, 1),
                    Op::Poke { field: published, how: Poke::Set(u64::MAX) },
                    Op::Inspect,
                    Op::TaskDone,
                    Op::TaskDone,
                ],
            ),
        ),
        (
            "cached-head-lies".into(),
            prog(
                0,
                false,
                vec![
                    put(1500, 1),
                    put(1500, 2),
                    Op::Poke { field: cached_head, how: Poke::Copy(tail) },
                    Op::PutBytes { len: 1500, seed: 3 },
                    Op::TryIter,
                ],
            ),
        ),
        (
            "raw-writes".into(),
            prog(
                0,
                false,
                vec![
                    put(200, 1),
                    Op::Write { offset: 576, bytes: vec![0xff; 64] },
                    Op::TryGet,
                    Op::Write { offset: 0, bytes: vec![0xaa; 40] },
                    put(3, 2),
                    Op::GetTimeout,
                ],
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------
// channel_model

#[test]
fn channel_model_corpus_replays_without_panic_or_hang() {
    let seeds = seeds_of("channel_model");
    assert!(seeds.len() >= 6, "the channel_model seed corpus is missing: {} files", seeds.len());
    let files: Vec<PathBuf> = seeds.into_iter().chain(regressions_of("channel_model")).collect();
    replay_each("channel_model", &files, channel_model::run);
}

#[test]
fn channel_model_corpus_has_every_generated_seed() {
    let dir = fuzz_dir().join("corpus/channel_model");
    for (name, bytes) in channel_model_seeds() {
        let path = dir.join(format!("seed-{name}"));
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(committed == bytes, "{name}: regenerate the corpus");
    }
}

/// One seed per channel, each with every kind of call, the edges of the
/// ring (full, wrapping, streamed and boundary-sized messages, abandoned
/// streams) and the end of the channel (close, a dropped pipe end).
fn channel_model_seeds() -> Vec<(String, Vec<u8>)> {
    use channel_model::{Chan, Op, Program, len_code};
    let prog = |chan, big, default, ops: Vec<Op>| Program { chan, big, default, ops }.encode();
    let l = len_code;
    // Around the largest record of a 4 KiB ring (2040 bytes): a typed
    // Vec<u8> of 2038 bytes encodes to 2040, one of 2039 to 2041.
    let boundary = |v: u16| 0x8000 | v;
    let queue_ops = |side: bool| {
        vec![
            Op::Send { side, len: l(0), seed: 1 },
            Op::Send { side, len: l(10), seed: 2 },
            Op::Send { side, len: boundary(14), seed: 3 },
            Op::Send { side, len: boundary(15), seed: 4 },
            Op::TrySend { side, len: l(5000), seed: 5 },
            Op::Recv { side },
            Op::TryRecv { side },
            Op::RecvTimeout { side },
            Op::RecvInPlace { side },
            Op::SendBytes { side, len: l(100), seed: 6 },
            Op::Reserve { side, len: l(50), seed: 7, commit: true },
            Op::Reserve { side, len: l(60), seed: 8, commit: false },
            Op::Reserve { side, len: l(3000), seed: 9, commit: true },
            Op::RecvBytes { side },
            Op::RecvInto { side, buf: 10 },
            Op::RecvInto { side, buf: 100 },
            Op::TrySend { side, len: l(1500), seed: 10 },
            Op::TrySend { side, len: l(1500), seed: 11 },
            Op::TrySend { side, len: l(1500), seed: 12 },
            Op::SendTimeout { side, len: l(9000), seed: 13 },
            Op::TryRecvBytes { side },
            Op::RecvBytesTimeout { side },
            Op::TryRecv { side },
            Op::TrySendBytes { side, len: l(2040), seed: 14 },
            Op::SendBytesTimeout { side, len: l(12000), seed: 15 },
            Op::RecvInPlace { side },
            Op::TryRecv { side },
        ]
    };
    let mut queue = queue_ops(false);
    queue.extend([
        Op::Send { side: false, len: l(7), seed: 16 },
        Op::Close { side: false },
        Op::Send { side: false, len: l(1), seed: 17 },
    ]);
    queue.extend([Op::Recv { side: false }, Op::Recv { side: false }, Op::RecvBytes { side: false }]);
    let mut wrap = Vec::new();
    for i in 0..8 {
        wrap.extend([Op::TrySend { side: false, len: l(1300 + 100 * i), seed: i as u8 }, Op::TryRecv { side: false }]);
    }
    let mut duplex = queue_ops(false);
    duplex.extend(queue_ops(true));
    duplex.extend([
        Op::Send { side: false, len: l(20), seed: 20 },
        Op::Send { side: true, len: l(21), seed: 21 },
        Op::Close { side: false },
        Op::TrySend { side: true, len: l(3), seed: 22 },
        Op::Reserve { side: true, len: l(3), seed: 23, commit: true },
        Op::Recv { side: false },
        Op::TryRecv { side: false },
        Op::RecvBytes { side: false },
    ]);
    let one_way = vec![
        Op::Send { side: true, len: l(1), seed: 1 },
        Op::SendBytesTimeout { side: true, len: l(9000), seed: 2 },
        Op::Send { side: true, len: l(2), seed: 3 },
        Op::Close { side: true },
        Op::Recv { side: false },
        Op::TryRecv { side: false },
        Op::Recv { side: false },
        Op::RecvTimeout { side: false },
    ];
    let one_way_receiver_gone = vec![
        Op::Send { side: true, len: l(1), seed: 1 },
        Op::Close { side: false },
        Op::TrySend { side: true, len: l(1), seed: 2 },
        Op::Send { side: true, len: l(1), seed: 3 },
        Op::Reserve { side: true, len: l(4000), seed: 4, commit: true },
    ];
    let big = vec![
        Op::Send { side: false, len: l(16383), seed: 1 },
        Op::SendBytes { side: true, len: l(16000), seed: 2 },
        Op::RecvBytes { side: true },
        Op::RecvInPlace { side: false },
        Op::RecvInto { side: false, buf: 16 },
    ];
    vec![
        ("queue".into(), prog(Chan::Queue, false, false, queue)),
        ("queue-8k-wrapping".into(), prog(Chan::Queue, true, false, wrap.clone())),
        ("named-queue".into(), prog(Chan::NamedQueue, false, false, queue_ops(false))),
        ("pipe".into(), prog(Chan::Pipe, false, false, duplex)),
        ("pipe-wrapping".into(), prog(Chan::Pipe, false, false, wrap)),
        ("pipe-default-capacity".into(), prog(Chan::Pipe, false, true, big.clone())),
        ("one-way".into(), prog(Chan::OneWay, false, false, one_way)),
        ("one-way-receiver-gone".into(), prog(Chan::OneWay, true, false, one_way_receiver_gone)),
        ("one-way-default-capacity".into(), prog(Chan::OneWay, false, true, big)),
    ]
}
