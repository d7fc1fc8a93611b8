//! [`Barrier`]: a cross-process barrier that notices dead parties.
//!
//! The state (arrivals, generation, broken flag) is guarded by a robust
//! [`RawMutex`]. Waiters sleep on a futex sequence word that changes when
//! the barrier trips, breaks or is reset. A round (generation) ends either
//! by tripping or by a reset; which one is recorded in a 256-bit window of
//! outcomes, so a waiter woken late still learns how its own round ended.
//!
//! Each of the first [`SLOTS`] arrivals of a round records who it is (pid,
//! process start time, pid namespace). A sleeper wakes every
//! [`CHECK_EVERY`] and checks the one arrival before it (in a ring over the
//! recorded ones); as long as one recorded party is alive and asleep, every
//! dead recorded party is checked by someone, at the cost of one `/proc`
//! read per sleeper per period.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{BrokenBarrierError, BrokenCause};
use super::raw::RawMutex;
use super::wait::{self, deadline, expired};
use crate::segment::header::Kind;
use crate::segment::object::{Control, Object, shared_object};
use crate::sys::pthread::Locked;
use crate::sys::{Pid, process};
use crate::{Name, ShmError};

/// Arrivals per round whose liveness is watched.
const SLOTS: usize = 64;

/// How often a sleeping party checks on another.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Rounds whose outcome (tripped or reset) is remembered.
const WINDOW: u32 = 256;

/// Who arrived: enough to tell a live process from a dead one, and from a
/// later process that reused its id.
#[repr(C)]
struct Slot {
    /// Process id; 0 for an empty slot.
    pid: AtomicU32,
    /// Low 32 bits of the inode of its pid namespace (0: unknown).
    ns: AtomicU32,
    /// Start time in clock ticks after boot, from `/proc` (0: unknown).
    start: AtomicU64,
}

/// Control block of a [`Barrier`]. Everything but `lock`, `seq` and
/// `waiters` is changed only with `lock` held.
#[repr(C)]
pub(crate) struct BarrierCtrl {
    lock: RawMutex,
    /// The futex word; one is added on every trip, break and reset.
    seq: AtomicU32,
    /// Sleepers on `seq`.
    waiters: AtomicU32,
    /// Number of parties; written once by the creator.
    parties: AtomicU32,
    /// Arrivals in the current round.
    count: AtomicU32,
    /// The current round; one is added when a round trips or is reset.
    generation: AtomicU32,
    /// 0, or why the current round broke ([`encode`]).
    broken: AtomicU32,
    /// Bit `g % WINDOW`: round `g` ended by a reset (1) or by tripping (0).
    outcomes: [AtomicU64; (WINDOW / 64) as usize],
    slots: [Slot; SLOTS],
}

// SAFETY: `repr(C)`: a pthread mutex (integers in an UnsafeCell) then
// atomics; any bit pattern is valid. Alignment 8.
unsafe impl Control for BarrierCtrl {
    fn describe(&self, _: usize) -> Vec<(&'static str, String)> {
        vec![
            ("parties", self.parties.load(Ordering::Relaxed).to_string()),
            ("waiting", self.count.load(Ordering::Relaxed).to_string()),
            ("round", self.generation.load(Ordering::Relaxed).to_string()),
            ("broken", (self.broken.load(Ordering::Relaxed) != 0).to_string()),
            ("lock", self.lock.holder()),
        ]
    }

    const KIND: Kind = Kind::Barrier;
}

fn encode(cause: BrokenCause) -> u32 {
    match cause {
        BrokenCause::Aborted => 1,
        BrokenCause::Reset => 2,
        BrokenCause::TimedOut => 3,
        BrokenCause::PartyDied => 4,
        BrokenCause::Unusable => 5,
    }
}

fn decode(code: u32) -> Option<BrokenCause> {
    match code {
        0 => None,
        1 => Some(BrokenCause::Aborted),
        2 => Some(BrokenCause::Reset),
        3 => Some(BrokenCause::TimedOut),
        4 => Some(BrokenCause::PartyDied),
        // 5, or anything a hostile peer wrote.
        _ => Some(BrokenCause::Unusable),
    }
}

fn broken(cause: BrokenCause) -> BrokenBarrierError {
    BrokenBarrierError { cause, os_error: None }
}

/// Who the calling process is, for a [`Slot`]: (pid, namespace, start).
fn identity() -> (u32, u32, u64) {
    static CACHE: std::sync::Mutex<Option<(u32, u32, u64)>> = std::sync::Mutex::new(None);
    let pid = Pid::this().as_u32();
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match *cache {
        // A forked child inherits the parent's cache: the pid tells.
        Some(id) if id.0 == pid => id,
        _ => {
            let id = (pid, process::own_pid_ns(), process::proc_stat(pid).map_or(0, |s| s.1));
            *cache = Some(id);
            id
        }
    }
}

/// Whether the process recorded in a slot still runs (a zombie does not).
/// Errs towards "alive" when it cannot tell.
fn alive(pid: u32, ns: u32, start: u64, me: (u32, u32, u64)) -> bool {
    // Not a process id (a hostile peer's write): nothing to watch.
    let not_an_id = pid == 0 || pid > i32::MAX as u32;
    pid == me.0 || not_an_id || process::task_alive(pid, ns, me.1, |now| start == 0 || now == start)
}

/// The barrier's lock, held; unlocks when dropped.
struct Held<'a>(&'a BarrierCtrl);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Cannot fail: this thread holds it.
        let _ = self.0.lock.unlock();
    }
}

/// How long [`Barrier::abort`] and [`Barrier::reset`] wait for the
/// barrier's lock. Parties hold it for a few instructions; one held longer
/// belongs to a stopped process or is corrupt memory (a lock word a hostile
/// peer wrote, naming a thread that will never let go), and those calls then
/// break the barrier without the lock instead of waiting forever. (Found by
/// the `open_segment` fuzz target, which runs with a grace of 2 ms so that
/// such inputs are not a second each; the path is the same.)
const HOLD_GRACE: Duration = if cfg!(fuzzing) { Duration::from_millis(2) } else { Duration::from_secs(1) };

impl BarrierCtrl {
    /// Locks the state, waiting until `deadline` at most (`None`: forever);
    /// the flag says its previous owner died holding it.
    fn hold(&self, deadline: Option<Instant>) -> Result<(Held<'_>, bool), BrokenBarrierError> {
        match self.lock.lock_until(deadline) {
            Locked::Yes => Ok((Held(self), false)),
            Locked::OwnerDied => Ok((Held(self), true)),
            Locked::Busy => Err(BrokenBarrierError { cause: BrokenCause::Unusable, os_error: Some(libc::EBUSY) }),
            Locked::Unusable(e) => Err(BrokenBarrierError { cause: BrokenCause::Unusable, os_error: e.raw_os_error() }),
        }
    }

    fn cause(&self) -> Option<BrokenCause> {
        decode(self.broken.load(Ordering::Relaxed))
    }

    fn outcome_bit(&self, generation: u32) -> (usize, u64) {
        let g = generation % WINDOW;
        ((g / 64) as usize, 1u64 << (g % 64))
    }

    /// Ends the current round (`reset`: by a reset, else by tripping) and
    /// starts the next. Lock held.
    fn next_round(&self, reset: bool) {
        let g = self.generation.load(Ordering::Relaxed);
        let (word, bit) = self.outcome_bit(g);
        if reset {
            self.outcomes[word].fetch_or(bit, Ordering::Relaxed);
        } else {
            self.outcomes[word].fetch_and(!bit, Ordering::Relaxed);
        }
        let used = (self.count.load(Ordering::Relaxed) as usize).min(SLOTS);
        for s in &self.slots[..used] {
            s.pid.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.broken.store(0, Ordering::Relaxed);
        self.generation.store(g.wrapping_add(1), Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Breaks the current round, unless it is broken already. Lock held.
    fn break_with(&self, cause: BrokenCause) -> BrokenCause {
        if let Some(already) = self.cause() {
            return already;
        }
        self.broken.store(encode(cause), Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::SeqCst);
        cause
    }

    fn wake_all(&self) {
        wait::wake(&self.seq, &self.waiters, u32::MAX);
    }

    /// Whether the recorded arrival before `index` (in a ring over the
    /// recorded ones) has died. Lock held.
    fn predecessor_died(&self, index: u32, me: (u32, u32, u64)) -> bool {
        let n = (self.count.load(Ordering::Relaxed) as usize).min(SLOTS);
        let i = index as usize;
        if i >= n || n < 2 {
            return false;
        }
        let s = &self.slots[if i == 0 { n - 1 } else { i - 1 }];
        !alive(s.pid.load(Ordering::Relaxed), s.ns.load(Ordering::Relaxed), s.start.load(Ordering::Relaxed), me)
    }

    /// Breaks the barrier, unless it is broken already, without holding its
    /// lock (which is unusable, or was not had in time), so that the other
    /// parties see it too.
    fn break_unlocked(&self, cause: BrokenCause) {
        let _ = self.broken.compare_exchange(0, encode(cause), Ordering::Relaxed, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.wake_all();
    }

    /// [`hold`](Self::hold) for a waiting party: a lock still busy at
    /// `deadline` is the party's timeout, which breaks the barrier (as a
    /// timeout does once the lock is had) instead of waiting past it.
    fn hold_for_wait(&self, deadline: Option<Instant>) -> Result<(Held<'_>, bool), BrokenBarrierError> {
        match self.hold(deadline) {
            // `lock_until` is busy only once the deadline has passed.
            Err(e) if e.os_error == Some(libc::EBUSY) => {
                self.break_unlocked(BrokenCause::TimedOut);
                Err(broken(BrokenCause::TimedOut))
            }
            other => other,
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrierError> {
        let me = identity();
        let (held, died) = self.hold_for_wait(deadline)?;
        if let Some(cause) = self.cause() {
            return Err(broken(cause));
        }
        if died {
            let cause = self.break_with(BrokenCause::PartyDied);
            drop(held);
            self.wake_all();
            return Err(broken(cause));
        }
        let parties = self.parties.load(Ordering::Relaxed);
        if parties == 0 {
            let cause = self.break_with(BrokenCause::Unusable);
            drop(held);
            self.wake_all();
            return Err(broken(cause));
        }
        let index = self.count.load(Ordering::Relaxed);
        if index >= parties - 1 {
            // The last to arrive (or a count a hostile peer raised): trip.
            self.next_round(false);
            drop(held);
            self.wake_all();
            return Ok((parties - 1) as usize);
        }
        self.count.store(index + 1, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(index as usize) {
            slot.pid.store(me.0, Ordering::Relaxed);
            slot.ns.store(me.1, Ordering::Relaxed);
            slot.start.store(me.2, Ordering::Relaxed);
        }
        let round = self.generation.load(Ordering::Relaxed);
        let mut seen = self.seq.load(Ordering::SeqCst);
        drop(held);
        loop {
            let check = Instant::now().checked_add(CHECK_EVERY);
            let until = match (deadline, check) {
                (Some(d), Some(c)) => Some(d.min(c)),
                (d, c) => d.or(c),
            };
            let woken = wait::wait(&self.seq, seen, &self.waiters, until);
            let (held, died) = self.hold_for_wait(deadline)?;
            let now = self.generation.load(Ordering::Relaxed);
            if now != round {
                if now.wrapping_sub(round) > WINDOW {
                    // Slept through more rounds than are remembered.
                    return Err(broken(BrokenCause::Unusable));
                }
                let (word, bit) = self.outcome_bit(round);
                return if self.outcomes[word].load(Ordering::Relaxed) & bit != 0 {
                    Err(broken(BrokenCause::Reset))
                } else {
                    Ok(index as usize)
                };
            }
            if let Some(cause) = self.cause() {
                return Err(broken(cause));
            }
            let cause = if died {
                Some(BrokenCause::PartyDied)
            } else if expired(deadline) {
                Some(BrokenCause::TimedOut)
            } else if !woken && self.predecessor_died(index, me) {
                Some(BrokenCause::PartyDied)
            } else {
                None
            };
            if let Some(cause) = cause {
                let cause = self.break_with(cause);
                drop(held);
                self.wake_all();
                return Err(broken(cause));
            }
            seen = self.seq.load(Ordering::SeqCst);
        }
    }
}

/// A cross-process barrier for a fixed number of parties: Python's
/// `multiprocessing.Barrier`.
///
/// Each party calls [`wait`](Self::wait); all block until the last one
/// arrives, then all return together (the barrier *trips*), each with a
/// distinct index from `0` to `parties - 1`: its arrival order. The barrier
/// is then ready for the next round.
///
/// A barrier can be *broken*: by [`abort`](Self::abort), by a party's
/// [`wait_timeout`](Self::wait_timeout) expiring, or by a dead party. Then
/// every waiting party, and every later one, gets [`BrokenBarrierError`]
/// (whose [`cause`](BrokenBarrierError::cause) says why) until
/// [`reset`](Self::reset). A reset while parties wait breaks their round
/// too ([`BrokenCause::Reset`]).
///
/// # Dead parties
///
/// As in Python, where an interrupted waiter breaks the barrier, a party
/// that dies while waiting breaks it: the others get
/// [`BrokenCause::PartyDied`] instead of hanging. Sleeping parties check on
/// one another every 100 ms (each reads one `/proc/<pid>/stat`), so the
/// others learn of a death within about that time. Details:
///
/// - A death is noticed only if it happens before the round trips: if the
///   other parties all arrive first, the round trips normally, with the dead
///   party counted as arrived.
/// - The first 64 arrivals of a round are watched (64 = the size of the
///   table in shared memory). With more than 64 parties, a death among the
///   later arrivals is not noticed, and the others wait until their timeout
///   (or for ever, with `wait`); and watching needs at least one of the
///   first 64 alive and asleep.
/// - A party is identified by its process id and start time, so a new
///   process that reuses the id is not taken for the dead one; a zombie
///   (dead, not yet reaped) counts as dead. A party in another pid
///   namespace cannot be checked and is taken to be alive.
/// - A process that dies while holding the barrier's internal lock (inside
///   any barrier call, for microseconds) breaks it too.
/// - A party that sleeps through more than 256 rounds (possible only with
///   more threads than parties, or repeated resets) cannot learn how its
///   round ended and gets [`BrokenCause::Unusable`].
///
/// # Examples
///
/// ```
/// use multiproc::Barrier;
///
/// let barrier = Barrier::new(3)?;
/// let mut indices: Vec<usize> = std::thread::scope(|s| {
///     let hs: Vec<_> = (0..3).map(|_| s.spawn(|| barrier.wait().unwrap())).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
///
/// barrier.abort();
/// assert!(barrier.wait().is_err());
/// barrier.reset();
/// assert!(!barrier.is_broken());
/// # Ok::<(), multiproc::ShmError>(())
/// ```
pub struct Barrier {
    obj: Object<BarrierCtrl>,
}

shared_object!(Barrier);

fn init(parties: usize) -> Result<impl Fn(*mut BarrierCtrl, *mut ()) -> std::io::Result<()>, ShmError> {
    let parties = u32::try_from(parties).ok().filter(|&p| p > 0).ok_or_else(|| ShmError::InvalidSize {
        reason: format!("a barrier needs 1 to {} parties, not {parties}", u32::MAX),
    })?;
    Ok(move |ctrl: *mut BarrierCtrl, _: *mut ()| {
        // SAFETY: `ctrl` points to the zeroed, aligned control block of a
        // segment nobody else can see yet; atomics may be written through `&`.
        unsafe { &*ctrl }.parties.store(parties, Ordering::Relaxed);
        // The raw mutex is the first field.
        RawMutex::init(ctrl.cast(), false)
    })
}

impl Barrier {
    /// Creates a named barrier for `parties` parties.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidSize`] when `parties` is 0 or above `u32::MAX`;
    /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`] and OS errors.
    pub fn create(name: impl Into<Name>, parties: usize) -> Result<Barrier, ShmError> {
        Ok(Barrier { obj: Object::create(Some(name.into()), 1, init(parties)?)? })
    }

    /// Opens a named barrier.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`]; [`ShmError::Mismatch`] when the name holds
    /// another kind of object; [`ShmError::Corrupt`].
    pub fn open(name: impl Into<Name>) -> Result<Barrier, ShmError> {
        Ok(Barrier { obj: Object::open(name.into(), Some(1))? })
    }

    /// Opens the named barrier, or creates it for `parties` parties (which
    /// is ignored when it already exists).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: impl Into<Name>, parties: usize) -> Result<Barrier, ShmError> {
        Ok(Barrier { obj: Object::open_or_create(name.into(), 1, init(parties)?)? })
    }

    /// Creates an anonymous barrier for `parties` parties, to share with
    /// children.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidSize`] when `parties` is 0 or above `u32::MAX`;
    /// OS errors.
    pub fn new(parties: usize) -> Result<Barrier, ShmError> {
        Ok(Barrier { obj: Object::create(None, 1, init(parties)?)? })
    }

    /// Blocks until all parties have called `wait`, and returns this party's
    /// arrival index (`0..parties`).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] when the barrier is broken on arrival or
    /// breaks while waiting (aborted, reset, another party's timeout, a
    /// dead party; see the type's docs).
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.obj.ctrl().wait_until(None)
    }

    /// As [`wait`](Self::wait), but if `timeout` passes before the barrier
    /// trips, breaks it (for every party, as in Python) and returns an error.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] with [`BrokenCause::TimedOut`] on timeout;
    /// otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.obj.ctrl().wait_until(deadline(timeout))
    }

    /// Breaks the barrier: waiting parties, and later ones, get
    /// [`BrokenBarrierError`] ([`BrokenCause::Aborted`]) until
    /// [`reset`](Self::reset). Does nothing if it is broken already.
    pub fn abort(&self) {
        let c = self.obj.ctrl();
        match c.hold(deadline(HOLD_GRACE)) {
            Ok((held, _)) => {
                c.break_with(BrokenCause::Aborted);
                drop(held);
                c.wake_all();
            }
            // The lock is unusable (or held past HOLD_GRACE): break it
            // without the lock.
            Err(_) => c.break_unlocked(BrokenCause::Unusable),
        }
    }

    /// Returns the barrier to its initial state: not broken, nobody
    /// waiting. Parties waiting in the current round get
    /// [`BrokenBarrierError`] ([`BrokenCause::Reset`]). This also repairs a
    /// barrier broken by a dead party.
    ///
    /// If the barrier's lock is unusable (corrupt memory), nothing can be
    /// reset; the barrier stays broken.
    pub fn reset(&self) {
        let c = self.obj.ctrl();
        // A dead previous owner is what a reset repairs: go on regardless.
        // A lock unusable or held past HOLD_GRACE cannot be reset.
        let Ok((held, _)) = c.hold(deadline(HOLD_GRACE)) else {
            c.break_unlocked(BrokenCause::Unusable);
            return;
        };
        if c.count.load(Ordering::Relaxed) != 0 || c.cause().is_some() {
            c.next_round(true);
        }
        drop(held);
        c.wake_all();
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.obj.ctrl().cause().is_some()
    }

    /// The number of parties needed to trip it.
    pub fn parties(&self) -> usize {
        self.obj.ctrl().parties.load(Ordering::Relaxed) as usize
    }

    /// The number of parties waiting now (0 when broken). Dead parties
    /// that have not been noticed yet are counted.
    pub fn n_waiting(&self) -> usize {
        let c = self.obj.ctrl();
        if c.cause().is_some() { 0 } else { c.count.load(Ordering::Relaxed) as usize }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_reads_this_process() {
        let (state, start) = process::proc_stat(std::process::id()).unwrap();
        assert!(matches!(state, 'R' | 'S' | 'D'), "{state}");
        assert!(start > 0);
        assert_eq!(identity().2, start);
    }

    #[test]
    fn alive_tells_a_reaped_process_and_a_reused_id_from_a_live_one() {
        let me = identity();
        assert!(alive(me.0, me.1, me.2, me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process::proc_stat(pid).map_or(0, |s| s.1);
        child.wait().unwrap();
        assert!(!alive(pid, me.1, start, me), "a reaped child is dead");
        // The parent (the test runner's process) lives, but not with a start
        // time of 1 tick: that would be another process with the same id.
        let parent = std::os::unix::process::parent_id();
        assert!(alive(parent, me.1, 0, me));
        assert!(!alive(parent, me.1, 1, me));
        // Another pid namespace cannot be judged: taken to be alive.
        assert!(alive(pid, me.1.wrapping_add(1), start, me));
    }

    #[test]
    fn hostile_state_gives_errors_not_panics() {
        let b = Barrier::new(2).unwrap();
        let c = b.obj.ctrl();
        // A count beyond the parties trips at once.
        c.count.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(b.wait().unwrap(), 1);
        // Nonsense in the broken field is a broken barrier.
        c.broken.store(77, Ordering::Relaxed);
        assert_eq!(b.wait().unwrap_err().cause(), BrokenCause::Unusable);
        b.reset();
        // Zero parties.
        c.parties.store(0, Ordering::Relaxed);
        assert_eq!(b.wait().unwrap_err().cause(), BrokenCause::Unusable);
        b.reset();
        c.parties.store(3, Ordering::Relaxed);
        // A slot naming no process is not taken for a dead party.
        c.slots[0].pid.store(u32::MAX, Ordering::Relaxed);
        c.slots[0].ns.store(identity().1, Ordering::Relaxed);
        c.count.store(1, Ordering::Relaxed);
        let err = b.wait_timeout(Duration::from_millis(250)).unwrap_err();
        assert_eq!(err.cause(), BrokenCause::TimedOut);
    }

    #[test]
    fn a_waiter_woken_late_learns_how_its_round_ended() {
        let b = Barrier::new(2).unwrap();
        let c = b.obj.ctrl();
        // Round 0 tripped, 1 was reset; a waiter of round 1 that wakes in
        // round 3 still sees "reset", one of round 0 "tripped".
        c.next_round(false);
        c.next_round(true);
        c.next_round(false);
        let (w, bit) = c.outcome_bit(0);
        assert_eq!(c.outcomes[w].load(Ordering::Relaxed) & bit, 0);
        let (w, bit) = c.outcome_bit(1);
        assert_ne!(c.outcomes[w].load(Ordering::Relaxed) & bit, 0);
        assert_eq!(c.generation.load(Ordering::Relaxed), 3);
    }
}
