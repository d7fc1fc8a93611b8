//! One side of a ring — its producers, or its consumers — and who may act
//! for it: one thread at a time.
//!
//! # Why a side can be biased
//!
//! The obvious guard is a robust mutex per side, taken for every message.
//! Between two processes that costs far more than the mutex's own
//! instructions: a locked instruction waits until the stores before it —
//! the record just written, whose cache lines the other core is reading —
//! have left the store buffer (perf on the 64-byte `Pipe` benchmark:
//! `pthread_mutex_unlock` and `trylock` were a third of the samples, and the
//! pipe ran at a fifteenth of a bare ring's rate). Most sides are used by
//! one thread for their whole life: a `Pipe` end, a queue with one producer.
//! So a side that the same thread has entered [`BIAS_AFTER`] times in a row
//! through the mutex is *biased* to that thread, and from then on that
//! thread enters with plain loads and stores:
//!
//! ```text
//! owner thread                      another thread (holding the mutex)
//! busy = 1                          revoke = 1
//! compiler fence                    membarrier (a full barrier on every
//! if revoke == 0 && owner == me:      running thread of every process
//!     (operate) ; busy = 0            that registered, `sync::wait`)
//! else: busy = 0, take the mutex    wait until busy == 0 (or owner dead)
//!                                   owner = 0 ; revoke = 0
//! ```
//!
//! This is the asymmetric Dekker pattern the channels' wake-ups use (see
//! "Asymmetric fences" in [`crate::sync::wait`]): either the owner's look
//! at `revoke` comes after the barrier and sees it, or its `busy = 1` came
//! before the barrier and the revoker sees it and waits. A process that
//! could not register fences fully ([`wait::WakerFence`]); a revoker whose
//! barrier call fails waits [`QUIESCE`] instead, far longer than any store
//! takes to become visible.
//!
//! # Who owns the bias, and dead owners
//!
//! `owner` is a thread *token*: its id and the low bits of its start time,
//! so a thread that later gets a dead owner's id is not taken for it. When
//! a revoker finds the owner busy for a while, it asks `/proc` whether that
//! thread (same id, same start time) still runs; a dead owner — killed
//! inside an operation, `busy` left at 1 — is taken over, and the caller is
//! told, as when the mutex reports a dead owner (the send side then
//! repairs the ring's tail). A thread in another pid namespace cannot be
//! judged and is waited for.
//!
//! A revoked owner may still be between its look at `owner` and its look
//! at `revoke`, about to store `busy = 1` and `busy = 0`: a new owner's
//! `busy` would be overwritten. So a revoked owner is remembered in `prev`
//! until it comes through the mutex (it has stopped writing `busy` by
//! then), gives up its handle, or is found dead; no new bias is granted
//! before.
//!
//!
//! # When bias is a loss
//!
//! A side that several threads use in turn (a queue with several producers)
//! would pay a revocation — a `membarrier`, an interrupt to every core
//! running a registered process — every few dozen messages. Each revocation
//! doubles the run of entries a thread needs before the side is biased
//! again, so a contended side soon stays with the mutex.
//!
//! # Limits
//!
//! A revoked owner that stays alive and never enters the side again (nor
//! drops its handle) keeps the side on the mutex: correct, just not biased.
//! A busy owner in another pid namespace that dies is not noticed (as for
//! a robust mutex across namespaces, whose kernel clean-up cannot name it).
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ring::{Line, Stop};
use crate::sync::raw::RawMutex;
use crate::sync::wait;
use crate::sys::process::{self, cached_thread_token, current_tid, thread_token, token_parts};
use crate::sys::pthread::Locked;

/// Entries in a row through the mutex, by one thread, before the side is
/// biased to it.
pub(crate) const BIAS_AFTER: u32 = 64;
/// The most the run needed for a bias grows to after revocations.
const MAX_BIAS_AFTER: u32 = 1 << 24;
/// How long a revoker whose `membarrier` call failed waits before it trusts
/// that the owner's stores are visible.
const QUIESCE: Duration = Duration::from_millis(10);
/// How many looks a `try_` revoker makes at a busy owner before giving up.
const TRY_LOOKS: u32 = 40;
/// After how many looks at a busy owner a revoker starts asking `/proc`
/// whether it lives (spins and yields come first), and how many looks
/// apart (about 32 ms, at the 1 ms sleeps of [`backoff`]).
const FIRST_PROBE: u32 = 128;
const LOOKS_PER_PROBE: u32 = 32;

/// The bias of one side. Every field is an atomic: any bit pattern a peer
/// writes is a valid value, and a wrong one costs correctness of that
/// peer's messages, never memory safety here.
#[repr(C)]
struct Bias {
    /// The token of the thread the side is biased to; 0 when none.
    owner: AtomicU64,
    /// A revoked owner that may still write `busy` (see the module docs).
    prev: AtomicU64,
    /// The pid namespaces of the two (low 32 bits of the inode).
    owner_ns: AtomicU32,
    prev_ns: AtomicU32,
    /// Set by the owner while it operates.
    busy: AtomicU32,
    /// Set by a thread that wants the owner to give the bias up.
    revoke: AtomicU32,
    /// The last thread that entered through the mutex, and how many times
    /// in a row (written under the mutex only).
    last: AtomicU32,
    streak: AtomicU32,
    /// The streak that earns a bias (0: [`BIAS_AFTER`]).
    after: AtomicU32,
    /// Revocations so far, for `multiproc info`.
    revocations: AtomicU32,
}

/// One side of a ring in shared memory.
#[repr(C)]
pub(crate) struct Side {
    lock: Line<RawMutex>,
    bias: Line<Bias>,
}

/// Inside a side: through its mutex, or as its biased owner. Leaves on drop.
/// Not `Send`: a pthread mutex must be unlocked by the thread that took it.
pub(crate) struct Entered<'a> {
    side: &'a Side,
    biased: bool,
    _thread: PhantomData<*const ()>,
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.biased {
            self.side.bias.0.busy.store(0, Ordering::Release);
        } else {
            self.side.unlock();
        }
    }
}

/// A thread that is inside a side (it holds a slot or a view) entered it
/// again: an error, as the error-checking mutex reports it, never a second
/// operation under the first.
fn nested() -> Stop {
    Stop::Broken(
        "this thread is already inside this channel (a WriteSlot or ReadView of it is still alive)".to_string(),
    )
}

/// Whether the thread of `token` in namespace `ns` still runs; what cannot
/// be a thread's token (a peer's write) is not.
fn token_alive(token: u64, ns: u32) -> bool {
    let (tid, start) = token_parts(token);
    if tid == 0 || tid > i32::MAX as u32 || start == 0 {
        return false;
    }
    process::task_alive(tid, ns, process::own_pid_ns(), |now| now as u32 == start)
}

impl Side {
    #[cold]
    fn unlock(&self) {
        let _ = self.lock.0.unlock();
    }

    /// Initialises a zeroed side.
    pub(crate) fn init(this: *mut Side) -> io::Result<()> {
        // SAFETY: `this` points to a zeroed, not yet shared side; `&raw mut`
        // projects to the field without creating a reference.
        let lock = unsafe { &raw mut (*this).lock };
        RawMutex::init(lock.cast(), false)
    }

    /// Enters the side; the flag says whether a thread died inside it since
    /// the last entry (its operation may be half done).
    #[inline]
    pub(crate) fn enter(&self, deadline: Option<Instant>, try_only: bool) -> Result<(Entered<'_>, bool), Stop> {
        match self.enter_biased() {
            Ok(Some(inside)) => Ok((inside, false)),
            Ok(None) => self.enter_slow(deadline, try_only),
            Err(e) => Err(e),
        }
    }

    /// Enters as the biased owner, if the calling thread is it; `Ok(None)`
    /// when it must go through the mutex.
    #[inline]
    pub(crate) fn enter_biased(&self) -> Result<Option<Entered<'_>>, Stop> {
        let b = &self.bias.0;
        let me = cached_thread_token();
        // Only this thread sets `busy` while it owns the bias: it is inside
        // already.
        if me != 0 && b.owner.load(Ordering::Relaxed) == me && b.busy.load(Ordering::Relaxed) != 0 {
            return Err(nested());
        }
        Ok(self.enter_biased_quick(wait::WakerFence::now()))
    }

    /// [`enter_biased`](Self::enter_biased), with the fence the caller
    /// looked up for its whole operation, for the inline common
    /// cases of sends and receives, which go the general way for anything
    /// but `Some`: `None` also when this thread is inside already (the
    /// general way reports that). Building that error inline cost the
    /// paths that inline this registers and stack spills; with this and
    /// [`Mailbox::take`](super::mail::Mailbox::take), a 64-byte
    /// `Plain` receive went from 167 to 154 instructions and 33 to 26
    /// stores (callgrind), and one thread's send + receive from 9.2–11.1 +
    /// 16.4–17.8 ns to 8.1–8.7 + 13.6–14.2 ns (alternated builds, session
    /// 9).
    #[inline(always)]
    pub(crate) fn enter_biased_quick(&self, fence: wait::WakerFence) -> Option<Entered<'_>> {
        let b = &self.bias.0;
        let me = cached_thread_token();
        if me == 0 || b.owner.load(Ordering::Relaxed) != me || b.busy.load(Ordering::Relaxed) != 0 {
            return None;
        }
        b.busy.store(1, Ordering::Relaxed);
        // The owner's half of the pattern in the module docs.
        fence.fence();
        if b.revoke.load(Ordering::Acquire) == 0 && b.owner.load(Ordering::Relaxed) == me {
            return Some(Entered { side: self, biased: true, _thread: PhantomData });
        }
        b.busy.store(0, Ordering::Release);
        None
    }

    #[cold]
    fn enter_slow(&self, deadline: Option<Instant>, try_only: bool) -> Result<(Entered<'_>, bool), Stop> {
        let got = if try_only { self.lock.0.try_lock_briefly() } else { self.lock.0.lock_until(deadline) };
        let mut died = match got {
            Locked::Yes => false,
            Locked::OwnerDied => true,
            Locked::Busy => return Err(Stop::Timeout),
            Locked::Unusable(e) if e.raw_os_error() == Some(libc::EDEADLK) => return Err(nested()),
            Locked::Unusable(e) => return Err(Stop::Broken(format!("channel lock unusable: {e}"))),
        };
        // From here on, leaving (an error included) unlocks.
        let entered = Entered { side: self, biased: false, _thread: PhantomData };
        let b = &self.bias.0;
        let me = cached_thread_token();
        match b.owner.load(Ordering::Acquire) {
            0 => {}
            // Asked to give the bias up by a revoker that stopped waiting;
            // this thread stored its last `busy` before coming here.
            owner if owner == me => {
                b.owner.store(0, Ordering::Relaxed);
                b.revoke.store(0, Ordering::Release);
            }
            _ => died |= self.revoke(deadline, try_only)?,
        }
        if me != 0 && b.prev.load(Ordering::Relaxed) == me {
            // Revoked earlier; past its last `busy` store now.
            b.prev.store(0, Ordering::Relaxed);
        }
        self.count_entry();
        Ok((entered, died))
    }

    /// Takes the bias from its owner (the caller holds the mutex): waits
    /// until the owner is outside any operation, or dead (`Ok(true)`).
    fn revoke(&self, deadline: Option<Instant>, try_only: bool) -> Result<bool, Stop> {
        let b = &self.bias.0;
        let (owner, ns) = (b.owner.load(Ordering::Relaxed), b.owner_ns.load(Ordering::Relaxed));
        b.revoke.store(1, Ordering::Relaxed);
        if !wait::remote_fence() {
            std::thread::sleep(QUIESCE);
        }
        let mut died = false;
        let mut looks = 0u32;
        while b.busy.load(Ordering::Acquire) != 0 {
            let probe = looks >= FIRST_PROBE && (looks - FIRST_PROBE) % LOOKS_PER_PROBE == 0;
            if probe && !token_alive(owner, ns) {
                died = true;
                break;
            }
            // Out of time: `revoke` stays set, and the owner gives the bias
            // up on its next entry.
            if (try_only && looks >= TRY_LOOKS) || (!try_only && wait::expired(deadline)) {
                return Err(Stop::Timeout);
            }
            backoff(looks);
            looks = looks.saturating_add(1);
        }
        // A dead owner writes nothing more; a live one may, until it comes
        // through the mutex.
        let (prev, prev_ns) = if died { (0, 0) } else { (owner, ns) };
        b.prev.store(prev, Ordering::Relaxed);
        b.prev_ns.store(prev_ns, Ordering::Relaxed);
        b.owner.store(0, Ordering::Relaxed);
        if died {
            b.busy.store(0, Ordering::Relaxed);
        }
        b.revoke.store(0, Ordering::Release);
        b.last.store(0, Ordering::Relaxed);
        let after = b.after.load(Ordering::Relaxed).clamp(BIAS_AFTER, MAX_BIAS_AFTER);
        b.after.store(after.saturating_mul(2).min(MAX_BIAS_AFTER), Ordering::Relaxed);
        b.revocations.store(b.revocations.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        Ok(died)
    }

    /// Counts an entry through the mutex (held) and biases the side to the
    /// calling thread after a long enough run.
    fn count_entry(&self) {
        let b = &self.bias.0;
        let tid = current_tid();
        let streak = if b.last.load(Ordering::Relaxed) == tid {
            b.streak.load(Ordering::Relaxed).saturating_add(1)
        } else {
            b.last.store(tid, Ordering::Relaxed);
            1
        };
        b.streak.store(streak, Ordering::Relaxed);
        let after = b.after.load(Ordering::Relaxed).clamp(BIAS_AFTER, MAX_BIAS_AFTER);
        // At the run's length, and every so often after it while a revoked
        // owner is in the way.
        if streak < after || (streak - after) % after != 0 {
            return;
        }
        let prev = b.prev.load(Ordering::Relaxed);
        if prev != 0 {
            if token_alive(prev, b.prev_ns.load(Ordering::Relaxed)) {
                return;
            }
            b.prev.store(0, Ordering::Relaxed);
        }
        let me = thread_token();
        if me == 0 {
            return;
        }
        b.owner_ns.store(process::own_pid_ns(), Ordering::Relaxed);
        b.busy.store(0, Ordering::Relaxed);
        b.owner.store(me, Ordering::Release);
    }

    /// Gives the bias up if the calling thread owns it (a handle is being
    /// dropped), so another thread can earn it.
    pub(crate) fn release_bias(&self) {
        let b = &self.bias.0;
        let me = cached_thread_token();
        if me == 0 {
            return;
        }
        // Outside any operation: this thread writes `busy` no more, whether
        // it still owns the bias or was revoked meanwhile.
        let _ = b.owner.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
        let _ = b.prev.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Whether a live thread is inside the side now (a snapshot): it holds
    /// the mutex, or it is the biased owner and busy. With `probe`, a busy
    /// owner's life is checked with `/proc`; without, it is taken as alive.
    pub(crate) fn in_use(&self, probe: bool) -> bool {
        let b = &self.bias.0;
        if matches!(self.lock.0.owner(), Some((_, false))) {
            return true;
        }
        let owner = b.owner.load(Ordering::Acquire);
        owner != 0
            && b.busy.load(Ordering::Acquire) != 0
            && (!probe || token_alive(owner, b.owner_ns.load(Ordering::Relaxed)))
    }

    /// The thread the side is biased to (0: none).
    #[cfg(test)]
    pub(crate) fn biased_to(&self) -> u32 {
        token_parts(self.bias.0.owner.load(Ordering::Relaxed)).0
    }

    /// A line for `multiproc info`.
    pub(crate) fn describe(&self) -> String {
        let b = &self.bias.0;
        let revoked = match b.revocations.load(Ordering::Relaxed) {
            0 => String::new(),
            n => format!("; bias revoked {n} times"),
        };
        match token_parts(b.owner.load(Ordering::Relaxed)).0 {
            0 => format!("lock {}{revoked}", self.lock.0.holder()),
            tid => {
                let busy = if b.busy.load(Ordering::Relaxed) != 0 { "inside" } else { "idle" };
                format!("biased to thread {tid} ({busy}){revoked}")
            }
        }
    }
}

/// Between looks at a busy owner: spin, then yield, then sleep up to 1 ms.
fn backoff(looks: u32) {
    match looks {
        0..64 => std::hint::spin_loop(),
        64..128 => std::thread::yield_now(),
        n => std::thread::sleep(Duration::from_micros(u64::from(n - 127).min(1000))),
    }
}
