//! Open a file of arbitrary bytes as every kind of named object the crate
//! has, and use whatever opens.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/open_segment.rs`) and by
//! the corpus replay on stable Rust (`tests/fuzz_corpus.rs`), both of which
//! include this file with `#[path]`.
//!
//! Contract under test: whatever the bytes, opening ends in a
//! [`ShmError`] or in a handle whose sizes fit the file, and using that
//! handle (with non-blocking or briefly timed locks) returns. A panic here
//! is a finding: the `assert!`s below check that a handle never promises
//! more memory than the file has.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use multiproc::{
    Array, Barrier, BoundedSemaphore, Condition, ConditionWaitError, Event, JoinableQueue, LockTimeoutError, Mutex,
    MutexGuard, Name, Queue, RLock, Semaphore, SharedMemory, ShmError, SimpleQueue, TryLockError, Value,
};

/// The file name every input is written to, inside its private directory.
pub const FILE: &str = "x";

/// Size of the segment header; the data follows it.
const HEADER: u64 = 128;

/// The longest a timed lock may wait. A garbage lock word may look held by
/// some other thread, so `lock()` (no timeout) is never called.
const LOCK_WAIT: Duration = Duration::from_millis(1);

/// One way to open the file, and what to do with the handle.
pub struct Kind {
    /// What is opened, for messages.
    pub name: &'static str,
    /// Opens `name` (whose file has `file_len` bytes) and exercises it,
    /// taking its lock only when `lock` is set. `Ok` describes what was
    /// found.
    pub run: fn(&Name, u64, bool) -> Result<String, ShmError>,
}

/// Every kind of object the public API can open by name.
pub const KINDS: &[Kind] = &[
    Kind { name: "SharedMemory", run: shared_memory },
    Kind { name: "Mutex<u32>", run: mutex::<u32> },
    Kind { name: "Mutex<u64>", run: mutex::<u64> },
    Kind { name: "Mutex<f32>", run: mutex::<f32> },
    Kind { name: "Lock", run: mutex::<()> },
    Kind { name: "Value<u32>", run: value::<u32> },
    Kind { name: "Value<f64>", run: value::<f64> },
    Kind { name: "Array<u8>", run: array::<u8> },
    Kind { name: "Array<u32>", run: array::<u32> },
    Kind { name: "Array<u64>", run: array::<u64> },
    Kind { name: "RLock", run: rlock },
    Kind { name: "Semaphore", run: semaphore },
    Kind { name: "BoundedSemaphore", run: bounded_semaphore },
    Kind { name: "Event", run: event },
    Kind { name: "Condition", run: condition },
    Kind { name: "Barrier", run: barrier },
    Kind { name: "Queue", run: queue },
    Kind { name: "SimpleQueue", run: simple_queue },
    Kind { name: "JoinableQueue", run: joinable_queue },
];

/// Writes `data` as the file [`FILE`] in `dir` (replacing any previous one)
/// and returns its name.
pub fn write_segment(dir: &Path, data: &[u8]) -> Name {
    let path = dir.join(FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", path.display()),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data).expect("write the input");
    Name::new(FILE).in_dir(dir)
}

/// Writes `data` into `dir` and runs `kind` on it, taking its lock.
pub fn open_as(dir: &Path, data: &[u8], kind: &Kind) -> Result<String, ShmError> {
    let name = write_segment(dir, data);
    (kind.run)(&name, data.len() as u64, true)
}

/// Writes `data` into `dir` and runs every kind on it, in order.
pub fn open_all(dir: &Path, data: &[u8]) -> Vec<Result<String, ShmError>> {
    KINDS.iter().map(|k| open_as(dir, data, k)).collect()
}

/// Checks that `len` elements of `T` after a control block of `ctrl` bytes
/// fit in a file of `file_len` bytes.
fn assert_fits<T>(what: &str, ctrl: u64, len: usize, file_len: u64) {
    let need = (len as u128) * (std::mem::size_of::<T>() as u128) + u128::from(HEADER) + u128::from(ctrl);
    assert!(
        need <= u128::from(file_len),
        "{what}: opened with {len} elements needing {need} bytes, but the file has {file_len}"
    );
}

fn shared_memory(name: &Name, file_len: u64, _lock: bool) -> Result<String, ShmError> {
    let shm = SharedMemory::open(name)?;
    let len = shm.len();
    assert!(len > 0, "SharedMemory opened with length 0");
    assert_fits::<u8>("SharedMemory", 0, len, file_len);
    assert_eq!(shm.name(), Some(FILE));
    assert_eq!(shm.as_ptr() as usize % 128, 0, "data not 128-byte aligned");
    // SAFETY: the file lives in a private directory; no other thread or
    // process maps it, so nothing writes while we hold these slices.
    let sum = unsafe { shm.as_slice() }.iter().fold(0u64, |s, &b| s.wrapping_add(u64::from(b)));
    // SAFETY: as above.
    let bytes = unsafe { shm.as_mut_slice() };
    bytes[0] = bytes[0].wrapping_add(1);
    bytes[len - 1] = bytes[len - 1].wrapping_add(1);
    Ok(format!("SharedMemory of {len} bytes (sum {sum})"))
}

/// What a non-blocking attempt on a lock found, for the summary.
fn describe_try<G>(r: &Result<G, TryLockError<G>>) -> &'static str {
    match r {
        Ok(_) => "locked",
        Err(TryLockError::WouldBlock) => "busy",
        Err(TryLockError::OwnerDied(_)) => "owner died",
        Err(TryLockError::Unusable(_)) => "unusable",
    }
}

fn describe_timed<G>(r: &Result<G, LockTimeoutError<G>>) -> &'static str {
    match r {
        Ok(_) => "locked",
        Err(LockTimeoutError::Timeout) => "timed out",
        Err(LockTimeoutError::OwnerDied(_)) => "owner died",
        Err(LockTimeoutError::Unusable(_)) => "unusable",
    }
}

/// Reads (and rewrites) the data behind a guard, however it was acquired.
fn touch<T: bytemuck::Pod>(g: &mut MutexGuard<'_, T>) {
    let bytes = bytemuck::bytes_of_mut(&mut **g);
    let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if let Some(first) = bytes.first_mut() {
        *first = first.wrapping_add(1);
    }
    std::hint::black_box(sum);
}

fn touch_slice<T: bytemuck::Pod>(g: &mut MutexGuard<'_, [T]>) {
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut g[..]);
    if let Some(last) = bytes.last_mut() {
        *last = last.wrapping_add(1);
    }
    let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    std::hint::black_box(sum);
}

fn try_guard<G>(r: Result<G, TryLockError<G>>) -> Option<G> {
    match r {
        Ok(g) | Err(TryLockError::OwnerDied(g)) => Some(g),
        Err(_) => None,
    }
}

fn timed_guard<G>(r: Result<G, LockTimeoutError<G>>) -> Option<G> {
    match r {
        Ok(g) | Err(LockTimeoutError::OwnerDied(g)) => Some(g),
        Err(_) => None,
    }
}

fn mutex<T: bytemuck::Pod>(name: &Name, _file_len: u64, lock: bool) -> Result<String, ShmError> {
    let m = Mutex::<T>::open(name)?;
    assert_eq!(m.name(), Some(FILE));
    if !lock {
        return Ok("Mutex: not locked (known finding)".into());
    }
    let first = m.try_lock();
    let tried = describe_try(&first);
    if let Some(mut g) = try_guard(first) {
        touch(&mut g);
    }
    let second = m.lock_timeout(LOCK_WAIT);
    let timed = describe_timed(&second);
    if let Some(mut g) = timed_guard(second) {
        touch(&mut g);
    }
    Ok(format!("Mutex: try_lock {tried}, lock_timeout {timed}"))
}

fn value<T: bytemuck::Pod>(name: &Name, _file_len: u64, lock: bool) -> Result<String, ShmError> {
    let v = Value::<T>::open(name)?;
    assert_eq!(v.name(), Some(FILE));
    if !lock {
        return Ok("Value: not locked (known finding)".into());
    }
    let first = v.try_lock();
    let tried = describe_try(&first);
    if let Some(mut g) = try_guard(first) {
        touch(&mut g);
    }
    let second = v.lock_timeout(LOCK_WAIT);
    let timed = describe_timed(&second);
    if let Some(mut g) = timed_guard(second) {
        touch(&mut g);
    }
    Ok(format!("Value: try_lock {tried}, lock_timeout {timed}"))
}

fn array<T: bytemuck::Pod>(name: &Name, file_len: u64, lock: bool) -> Result<String, ShmError> {
    let a = Array::<T>::open(name)?;
    assert_eq!(a.name(), Some(FILE));
    let len = a.len();
    assert_eq!(a.is_empty(), len == 0);
    // A lower bound: the control block (a pthread mutex) comes first too.
    assert_fits::<T>("Array", 0, len, file_len);
    if !lock {
        return Ok(format!("Array of {len}: not locked (known finding)"));
    }
    let first = a.try_lock();
    let tried = describe_try(&first);
    if let Some(mut g) = try_guard(first) {
        assert_eq!(g.len(), len, "guard length differs from len()");
        touch_slice(&mut g);
    }
    let second = a.lock_timeout(LOCK_WAIT);
    let timed = describe_timed(&second);
    if let Some(mut g) = timed_guard(second) {
        touch_slice(&mut g);
    }
    Ok(format!("Array of {len}: try_lock {tried}, lock_timeout {timed}"))
}

fn rlock(name: &Name, _file_len: u64, _lock: bool) -> Result<String, ShmError> {
    let r = RLock::open(name)?;
    // Twice: the second acquire is recursive when the first one took it.
    let first = r.try_acquire();
    let tried = describe_try(&first);
    let got_first = matches!(first, Ok(()) | Err(TryLockError::OwnerDied(())));
    let second = r.acquire_timeout(LOCK_WAIT);
    let timed = describe_timed(&second);
    let got_second = matches!(second, Ok(()) | Err(LockTimeoutError::OwnerDied(())));
    let mut released = 0;
    for got in [got_first, got_second] {
        if got {
            r.release().unwrap_or_else(|e| panic!("RLock: release after a successful acquire: {e}"));
            released += 1;
        }
    }
    // One release more than was acquired: an error, unless the bytes said
    // this very thread held it already (wrong data, which is allowed).
    let extra = r.release();
    if let Some(g) = try_guard(r.try_lock()) {
        drop(g);
    }
    Ok(format!("RLock: try_acquire {tried}, acquire_timeout {timed}, {released} releases, then {extra:?}"))
}

macro_rules! semaphore_fn {
    ($f:ident, $ty:ident) => {
        fn $f(name: &Name, _file_len: u64, _lock: bool) -> Result<String, ShmError> {
            let s = $ty::open(name)?;
            let (value, limit) = (s.value(), s.limit());
            let took = s.try_acquire();
            let timed = s.acquire_timeout(LOCK_WAIT);
            let released = s.release();
            let again = s.release();
            Ok(format!(
                "{}: value {value}, limit {limit}, try_acquire {took}, acquire_timeout {timed}, \
                 release {released:?} then {again:?}, now {}",
                stringify!($ty),
                s.value()
            ))
        }
    };
}
semaphore_fn!(semaphore, Semaphore);
semaphore_fn!(bounded_semaphore, BoundedSemaphore);

fn event(name: &Name, _file_len: u64, _lock: bool) -> Result<String, ShmError> {
    let e = Event::open(name)?;
    let was = e.is_set();
    let waited = e.wait_timeout(LOCK_WAIT);
    e.set();
    assert!(e.is_set(), "Event: not set after set()");
    assert!(e.wait_timeout(LOCK_WAIT), "Event: wait_timeout on a set event timed out");
    e.clear();
    assert!(!e.is_set(), "Event: set after clear()");
    let after = e.wait_timeout(LOCK_WAIT);
    assert!(!after, "Event: wait_timeout on a cleared event succeeded");
    Ok(format!("Event: was set {was}, first wait {waited}"))
}

fn condition(name: &Name, _file_len: u64, _lock: bool) -> Result<String, ShmError> {
    let c = Condition::open(name)?;
    // Without the lock, notify must refuse.
    let unowned = c.notify(1);
    let first = c.try_lock();
    let tried = describe_try(&first);
    let mut waited = "no lock";
    if let Some(g) = try_guard(first) {
        c.notify(1).expect("Condition: notify with the lock held");
        waited = match c.wait_timeout(g, LOCK_WAIT) {
            Ok((g, r)) => {
                c.notify_all().expect("Condition: notify_all with the lock held");
                drop(g);
                if r.timed_out() { "timed out" } else { "woken" }
            }
            Err(ConditionWaitError::OwnerDied(_)) => "owner died",
            Err(ConditionWaitError::ForeignGuard(_)) => panic!("Condition: its own guard called foreign"),
            Err(ConditionWaitError::Unusable(_)) => "unusable",
        };
    }
    let timed = describe_timed(&c.lock_timeout(LOCK_WAIT));
    Ok(format!("Condition: notify unlocked {unowned:?}, try_lock {tried}, wait {waited}, lock_timeout {timed}"))
}

fn barrier(name: &Name, _file_len: u64, _lock: bool) -> Result<String, ShmError> {
    let b = Barrier::open(name)?;
    let (parties, waiting, broken) = (b.parties(), b.n_waiting(), b.is_broken());
    let first = b.wait_timeout(LOCK_WAIT);
    b.reset();
    let after_reset = b.wait_timeout(LOCK_WAIT);
    b.abort();
    assert!(b.is_broken(), "Barrier: not broken after abort()");
    let aborted = b.wait_timeout(LOCK_WAIT);
    assert!(aborted.is_err(), "Barrier: wait on an aborted barrier succeeded");
    b.reset();
    Ok(format!(
        "Barrier: {parties} parties, {waiting} waiting, broken {broken}; wait {first:?}, after reset {after_reset:?}"
    ))
}

/// Exercises a queue opened from hostile bytes with calls that cannot wait
/// long: `try_` and 1 ms timeouts only.
macro_rules! queue_fn {
    ($f:ident, $ty:ident, $extra:expr) => {
        fn $f(name: &Name, _file_len: u64, _lock: bool) -> Result<String, ShmError> {
            let q: $ty<Vec<u8>> = $ty::open(name)?;
            let cap = q.capacity();
            assert!(cap.is_power_of_two() && cap >= 4096, "{}: capacity {cap}", stringify!($ty));
            let (len, empty, full, closed) = (q.len(), q.is_empty(), q.is_full(), q.is_closed());
            let got = q.try_get().map(|v| v.len());
            let put = q.try_put(vec![7; 3]).map_err(|e| e.to_string());
            let timed = q.get_timeout(LOCK_WAIT).map(|v| v.len());
            let put_big = q.put_timeout(vec![1; cap], LOCK_WAIT).map_err(|e| e.to_string());
            let drained = q.try_iter().take(4).count();
            #[allow(clippy::redundant_closure_call)]
            let extra: String = ($extra)(&q);
            q.close();
            assert!(q.is_closed(), "{}: open after close()", stringify!($ty));
            let after = q.try_put(Vec::new());
            assert!(after.is_err(), "{}: try_put after close() succeeded", stringify!($ty));
            let last = q.get_timeout(LOCK_WAIT).map(|v| v.len());
            Ok(format!(
                "{} of {cap}: len {len}, empty {empty}, full {full}, closed {closed}; try_get {got:?}, \
                 try_put {put:?}, get_timeout {timed:?}, put_timeout(big) {put_big:?}, drained {drained}{extra}; \
                 after close {last:?}",
                stringify!($ty)
            ))
        }
    };
}
queue_fn!(queue, Queue, |_: &Queue<Vec<u8>>| String::new());
queue_fn!(simple_queue, SimpleQueue, |_: &SimpleQueue<Vec<u8>>| String::new());
queue_fn!(joinable_queue, JoinableQueue, |q: &JoinableQueue<Vec<u8>>| {
    let done = q.task_done().is_ok();
    let joined = q.join_timeout(LOCK_WAIT);
    format!(", task_done {done}, join {joined}")
});
