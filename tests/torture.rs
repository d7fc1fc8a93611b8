//! Crash torture: for N iterations, picks a scenario and a kill moment from a
//! seeded PRNG, `SIGKILL`s a real process in the middle of it — a queue
//! producer or consumer, a mutex or value holder, a condition, barrier or
//! semaphore party, a pool worker, a pipe peer — and checks what the
//! survivors see:
//!
//! - every surviving operation finishes within a bound (a wait that runs out
//!   is a **hang**);
//! - no message is duplicated, reordered, truncated or altered (a
//!   **corruption**), and counts reconcile: what was sent is what was
//!   received, give or take one message in flight per killed process;
//! - locks report their dead owner (with the guard), the data they protect
//!   is in a state the dead owner's partial update explains, and everything
//!   keeps working afterwards.
//!
//! # Scenarios
//!
//! Each block of ten iterations runs every scenario once, in an order
//! shuffled by the seed; sizes, counts, victims and kill moments come from
//! the seed too.
//!
//! | scenario | victim | survivors must see |
//! |---|---|---|
//! | queue producer killed | 1–2 of 2–3 producers, mid-stream (one message in 20 is streamed: up to 3 rings long) | per producer 0..k, k = puts returned or one more; nothing twice, nothing altered |
//! | queue consumer killed | 1–2 of 2–3 consumers, asleep in `get` on an empty queue or mid-stream | every message once, but at most one per killed consumer |
//! | mutex / value holder killed | 1 of 2–4 parties doing multi-step updates | `OwnerDied` with the guard if the victim held the lock, data a partial update explains (repaired), all other parties' updates |
//! | condition waiter killed | 1 of 2–4 waiters acknowledging notified generations | every later generation acknowledged within the bound; at most one `OwnerDied` |
//! | barrier waiter killed | 1 of 2–4 parties looping on `wait_timeout` | each survivor's wait ends with `PartyDied`, or `TimedOut` when the victim's round had tripped (the dead counted as arrived); a reset barrier trips again |
//! | semaphore holder killed | 1 of 3–4 parties over 2–3 permits | all survivors finish; never more holders than permits; the count is full, or one short when the victim's mark says it may have held one |
//! | pool worker killed | a worker of a persistent 2-worker pool, during `map` | the right results, or `WorkerDied` within 2 s of the kill; the next `map` right, on a replaced worker |
//! | pipe sender killed | the child sending | its messages intact and in order, then `Disconnected` within 2 s |
//! | pipe receiver killed | the child receiving | sends accepted until the ring is full, then `Disconnected` within 2 s |
//!
//! # Running it
//!
//! `cargo test --test torture` runs a short bounded version (CI).
//! `MULTIPROC_TORTURE_ITERATIONS=1000 cargo test --release --test torture`
//! runs the long one. `MULTIPROC_TORTURE_SEED` sets the run's seed (printed
//! at the start, decimal or `0x` hex); `MULTIPROC_TORTURE_FIRST=i` starts at
//! iteration `i`, so one failed iteration replays alone with
//! `MULTIPROC_TORTURE_SEED=s MULTIPROC_TORTURE_FIRST=i MULTIPROC_TORTURE_ITERATIONS=1`
//! (the failure message prints that command). The kill moments are chosen
//! by the seed; where the victim is at that moment is up to the scheduler.
//!
//! Every object is anonymous (a memfd), so nothing is left in the
//! shared-memory directory, even when the watchdog ends the run. Children
//! die with this process (`PR_SET_PDEATHSIG`); a [`Crew`] kills the ones an
//! iteration started when it ends, whatever happened.
//!
//! The file has its own `main` (`harness = false`): it prints one line per
//! iteration and a summary, and exits non-zero on any failure.

multiproc::test_support!();

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use multiproc::channel::{RecvOnly, RecvTimeoutError, SendOnly, SendTimeoutError, TryRecvError};
use multiproc::{
    Array, Barrier, BrokenCause, Condition, ConditionWaitError, Connection, LockError, LockResult, LockTimeoutError,
    Mutex, MutexGuard, Pipe, Pool, PoolError, Process, Queue, Semaphore, Value,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long a surviving operation may take once its peer was killed.
const BOUND: Duration = Duration::from_secs(5);
/// The timeout of children's own waits, and of joining a child that should
/// finish on its own: generous, since it only has to tell a hang from a
/// slow machine.
const LONG: Duration = Duration::from_secs(20);
/// The most one iteration may take before the watchdog ends the run.
const ITERATION_LIMIT: Duration = Duration::from_secs(90);
/// Iterations of the default (CI) run: well under a minute in a debug build
/// on two cores.
const DEFAULT_ITERATIONS: u32 = 100;
/// The run stops after this many failed iterations.
const MAX_FAILURES: u32 = 5;

// ----- child exit codes -----

/// A child's own bounded wait ran out: a hang.
const EXIT_HANG: i32 = 30;
/// A child saw corrupt, duplicated or reordered data, or a dead owner that
/// was not reported.
const EXIT_CORRUPT: i32 = 40;
/// A child got an error it should not have.
const EXIT_ERROR: i32 = 50;

/// Ends a child with `code` after saying why on stderr.
fn die(code: i32, why: impl fmt::Display) -> ! {
    eprintln!("torture child {}: {why}", std::process::id());
    std::process::exit(code);
}

// ----- PRNG -----

/// xorshift64*: small, fast and good enough to pick scenarios and moments.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A pause of `0..=max_us` microseconds.
    fn pause(&mut self, max_us: u64) -> Duration {
        Duration::from_micros(self.range(0, max_us))
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// SplitMix64's finaliser: derives independent seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Busy work of up to `max` spins (inside critical sections, to widen the
/// window a kill can land in).
fn spin(rng: &mut Rng, max: u64) {
    for _ in 0..rng.below(max + 1) {
        std::hint::spin_loop();
    }
}

// ----- failures -----

/// Why an iteration failed.
#[derive(Debug)]
enum Fail {
    /// An operation did not finish within its bound.
    Hang(String),
    /// Data was duplicated, lost beyond the allowance, reordered, altered,
    /// or a dead owner went unreported.
    Corrupt(String),
    /// Anything else: an unexpected error or exit code, a panic.
    Broken(String),
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Hang(m) => write!(f, "HANG: {m}"),
            Fail::Corrupt(m) => write!(f, "CORRUPTION: {m}"),
            Fail::Broken(m) => write!(f, "FAILURE: {m}"),
        }
    }
}

type Check<T = ()> = Result<T, Fail>;

fn hang(m: impl Into<String>) -> Fail {
    Fail::Hang(m.into())
}

fn corrupt(m: impl Into<String>) -> Fail {
    Fail::Corrupt(m.into())
}

fn broken(m: impl Into<String>) -> Fail {
    Fail::Broken(m.into())
}

/// `Err(corrupt(..))` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $kind:ident, $($fmt:tt)+) => {
        if !$cond {
            return Err($kind(format!($($fmt)+)));
        }
    };
}

/// What a child's exit code means, for the failure message.
fn classify(code: i32, what: &str) -> Fail {
    match code {
        EXIT_HANG => hang(format!("{what}: a bounded wait in the child ran out (exit {code})")),
        EXIT_CORRUPT => corrupt(format!("{what}: the child saw bad data (exit {code})")),
        _ => broken(format!("{what}: unexpected exit code {code}")),
    }
}

// ----- processes -----

/// The processes of one iteration. Dropping it kills and reaps those still
/// running, so a failed iteration leaves nothing behind.
#[derive(Default)]
struct Crew(Vec<(Process, String)>);

impl Crew {
    /// Starts `target(arg)` and returns its index.
    fn start<A: Serialize + DeserializeOwned + Send + 'static>(
        &mut self,
        what: impl Into<String>,
        target: fn(A),
        arg: A,
    ) -> Check<usize> {
        let what = what.into();
        let mut p = Process::new(target, arg);
        p.start().map_err(|e| broken(format!("starting {what}: {e}")))?;
        self.0.push((p, what));
        Ok(self.0.len() - 1)
    }

    /// Waits `bound` for process `i` to end; its exit code.
    fn join(&mut self, i: usize, bound: Duration) -> Check<i32> {
        let (p, what) = &mut self.0[i];
        match p.join_timeout(bound) {
            Ok(Some(code)) => Ok(code),
            Ok(None) => Err(hang(format!("{what} still running after {bound:?}"))),
            Err(e) => Err(broken(format!("joining {what}: {e}"))),
        }
    }

    /// Waits for process `i` to end on its own, with exit code 0.
    fn finish(&mut self, i: usize) -> Check {
        match self.join(i, LONG)? {
            0 => Ok(()),
            code => Err(classify(code, &self.0[i].1)),
        }
    }

    /// Kills process `i` with `SIGKILL` and checks it died of it.
    fn kill(&mut self, i: usize) -> Check {
        let (p, what) = &mut self.0[i];
        p.kill().map_err(|e| broken(format!("killing {what}: {e}")))?;
        match self.join(i, BOUND)? {
            -9 => Ok(()),
            code => Err(classify(code, &format!("{} (ended before the kill)", self.0[i].1))),
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        for (p, _) in &mut self.0 {
            if p.is_alive() {
                let _ = p.kill();
                let _ = p.join_timeout(Duration::from_secs(2));
            }
        }
    }
}

/// Polls `done` every millisecond until it holds; a hang after `bound`.
fn wait_until(bound: Duration, what: impl Fn() -> String, mut done: impl FnMut() -> Check<bool>) -> Check {
    let start = Instant::now();
    while !done()? {
        if start.elapsed() > bound {
            return Err(hang(format!("{} (waited {bound:?})", what())));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

// ----- shared counters -----

/// Locks an array of counters, taking over a lock whose owner died (the
/// counters are single-word stores, never half-written).
fn counters(a: &Array<u64>) -> MutexGuard<'_, [u64]> {
    match a.lock_timeout(LONG) {
        Ok(g) => g,
        Err(LockTimeoutError::OwnerDied(g)) => g,
        Err(e) => die(if matches!(e, LockTimeoutError::Timeout) { EXIT_HANG } else { EXIT_ERROR }, e),
    }
}

fn read(a: &Array<u64>) -> Vec<u64> {
    counters(a).to_vec()
}

fn store(a: &Array<u64>, i: usize, v: u64) {
    counters(a)[i] = v;
}

fn bump(a: &Array<u64>, i: usize) {
    counters(a)[i] += 1;
}

fn new_counters(len: usize) -> Check<Array<u64>> {
    Array::filled(0u64, len).map_err(|e| broken(format!("creating counters: {e}")))
}

// ----- messages -----

/// The payload of message `seq` of producer `id`: its length and bytes
/// follow from (salt, id, seq), so a receiver rebuilds and compares the
/// whole message. One in twenty is up to three rings long, so it is
/// streamed through the ring in parts.
fn payload(salt: u64, id: u32, seq: u32, ring: usize) -> Vec<u8> {
    let h = splitmix(salt ^ (u64::from(id) << 32) ^ u64::from(seq));
    let len = if h % 20 == 0 { (h >> 16) as usize % (3 * ring) } else { (h >> 16) as usize % 300 };
    (0..len).map(|i| (h as u8).wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8).collect()
}

/// A queue message: (producer, seq, payload).
type Msg = (u32, u32, Vec<u8>);
/// The producer id of a stop marker.
const STOP: u32 = u32::MAX;

/// What consumers report to the parent, one record per message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Report {
    /// Consumer got message (producer, seq), intact and in order.
    Got(u32, u32),
    /// The consumer took its stop marker and is leaving.
    Done(u32),
    /// Warm-up record (registers the parent as a writer).
    Hello,
}

/// Puts and takes back one message, so that this process counts as a
/// writer of `q` from now on: a get on an empty queue whose writers are all
/// gone reports `Disconnected`, and the parent outlives every child.
fn register<T: multiproc::channel::Message + Clone + PartialEq + fmt::Debug>(q: &Queue<T>, warm: T) -> Check {
    q.put_timeout(warm.clone(), BOUND).map_err(|e| broken(format!("warm-up put: {e}")))?;
    let back = q.get_timeout(BOUND).map_err(|e| broken(format!("warm-up get: {e}")))?;
    ensure!(back == warm, corrupt, "warm-up message came back as {back:?}");
    Ok(())
}

// ----- scenarios -----

/// The scenarios, in the order of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    QueueProducer,
    QueueConsumer,
    MutexHolder,
    ValueHolder,
    ConditionWaiter,
    BarrierWaiter,
    SemaphoreHolder,
    PoolWorker,
    PipeSender,
    PipeReceiver,
}

const SCENARIOS: [Scenario; 10] = [
    Scenario::QueueProducer,
    Scenario::QueueConsumer,
    Scenario::MutexHolder,
    Scenario::ValueHolder,
    Scenario::ConditionWaiter,
    Scenario::BarrierWaiter,
    Scenario::SemaphoreHolder,
    Scenario::PoolWorker,
    Scenario::PipeSender,
    Scenario::PipeReceiver,
];

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::QueueProducer => "queue producer killed",
            Scenario::QueueConsumer => "queue consumer killed",
            Scenario::MutexHolder => "mutex holder killed",
            Scenario::ValueHolder => "value holder killed",
            Scenario::ConditionWaiter => "condition waiter killed",
            Scenario::BarrierWaiter => "barrier waiter killed",
            Scenario::SemaphoreHolder => "semaphore holder killed",
            Scenario::PoolWorker => "pool worker killed",
            Scenario::PipeSender => "pipe sender killed",
            Scenario::PipeReceiver => "pipe receiver killed",
        }
    }

    fn index(self) -> usize {
        SCENARIOS.iter().position(|&s| s == self).unwrap()
    }
}

/// Figures of the whole run.
#[derive(Default)]
struct Stats {
    runs: [u32; SCENARIOS.len()],
    kills: [u32; SCENARIOS.len()],
    /// Messages whose send or put returned (queues and pipes).
    sent: u64,
    /// Messages received intact.
    received: u64,
    /// Killed senders whose message in flight arrived all the same.
    in_flight_delivered: u64,
    /// Killed senders whose message in flight (if any) was lost.
    in_flight_lost: u64,
    /// Messages taken by a consumer that was killed before reporting them.
    taken_by_killed: u64,
    /// Messages a pipe accepted for a receiver that was dead or dying (lost
    /// with it, as in an OS pipe's buffer).
    accepted_for_dead: u64,
    /// `OwnerDied` reports (mutex, value, condition locks).
    owner_died: u64,
    /// Partial updates found behind an `OwnerDied` and repaired.
    repaired: u64,
    /// Barrier parties that got `PartyDied` / `TimedOut` after a kill.
    barrier_party_died: u64,
    barrier_timed_out: u64,
    /// Semaphore permits lost with a killed holder.
    permits_lost: u64,
    /// Pool calls that reported `WorkerDied` / finished despite the kill.
    pool_worker_died: u64,
    pool_unaffected: u64,
    /// Slowest recovery: kill to the survivors' wait ending.
    slowest_recovery: Duration,
    hangs: u32,
    corruptions: u32,
    failures: u32,
}

impl Stats {
    fn recovered(&mut self, t: Duration) {
        self.slowest_recovery = self.slowest_recovery.max(t);
    }
}

/// What one iteration gets.
struct Ctx<'a> {
    rng: Rng,
    stats: &'a mut Stats,
    scenario: Scenario,
    /// The run's pool, kept across iterations (its workers get killed and
    /// replaced again and again).
    pool: &'a mut Option<Pool>,
}

// ----- (a), (b): queues -----

/// Producer `id`: puts `count` messages (`u32::MAX`: until killed) and
/// records in `progress[id]` how many puts returned.
fn produce(arg: (Queue<Msg>, u32, u32, Array<u64>, u64)) {
    let (q, id, count, progress, salt) = arg;
    let ring = q.capacity();
    for seq in 0..count {
        if let Err(e) = q.put_timeout((id, seq, payload(salt, id, seq, ring)), LONG) {
            die(if e.is_timeout() { EXIT_HANG } else { EXIT_ERROR }, format!("producer {id}: put: {e}"));
        }
        store(&progress, id as usize, u64::from(seq) + 1);
    }
}

/// Consumer `me`: takes messages until a stop marker, checks each one
/// (contents, and order per producer) and reports it on `reports`, then
/// records in `progress[me]` how many it reported.
fn consume(arg: (Queue<Msg>, Queue<Report>, u32, Array<u64>, u64)) {
    let (q, reports, me, progress, salt) = arg;
    let ring = q.capacity();
    let mut last: HashMap<u32, u32> = HashMap::new();
    let mut n = 0;
    loop {
        let (id, seq, bytes) = match q.get_timeout(LONG) {
            Ok(m) => m,
            Err(e) => die(if e.is_timeout() { EXIT_HANG } else { EXIT_ERROR }, format!("consumer {me}: get: {e}")),
        };
        if id == STOP {
            if let Err(e) = reports.put_timeout(Report::Done(me), LONG) {
                die(EXIT_ERROR, format!("consumer {me}: report: {e}"));
            }
            return;
        }
        if bytes != payload(salt, id, seq, ring) {
            die(EXIT_CORRUPT, format!("consumer {me}: producer {id} seq {seq}: {} bytes, not as sent", bytes.len()));
        }
        if let Some(prev) = last.insert(id, seq) {
            if seq <= prev {
                die(EXIT_CORRUPT, format!("consumer {me}: producer {id}: seq {seq} after {prev}"));
            }
        }
        if let Err(e) = reports.put_timeout(Report::Got(id, seq), LONG) {
            die(EXIT_ERROR, format!("consumer {me}: report: {e}"));
        }
        n += 1;
        store(&progress, me as usize, n);
    }
}

/// Producers and consumers on one queue; `kill_producers` kills one or two
/// producers mid-stream, otherwise one or two consumers are killed, blocked
/// in `get` on an empty queue or while messages flow.
fn queue_scenario(cx: &mut Ctx, kill_producers: bool) -> Check<String> {
    let rng = &mut cx.rng;
    let ring = rng.pick(&[4096usize, 16 << 10, 64 << 10]);
    let salt = rng.next();
    let (producers, consumers) = if kill_producers {
        (rng.range(2, 3) as u32, rng.range(1, 2) as u32)
    } else {
        (rng.range(1, 2) as u32, rng.range(2, 3) as u32)
    };
    let victims = rng.range(1, u64::from(if kill_producers { producers } else { consumers }) - 1).min(2) as u32;
    let count = rng.range(50, 300) as u32;
    // Kill producers 0..victims, or consumers 0..victims.
    let is_victim_producer = |id: u32| kill_producers && id < victims;
    let idle_kill = !kill_producers && rng.chance(25);

    let q: Queue<Msg> = Queue::new(ring).map_err(|e| broken(format!("queue: {e}")))?;
    let reports: Queue<Report> = Queue::new(1 << 20).map_err(|e| broken(format!("report queue: {e}")))?;
    register(&q, (STOP - 1, 0, vec![1, 2, 3]))?;
    register(&reports, Report::Hello)?;
    let sent = new_counters(producers as usize)?;
    let taken = new_counters(consumers as usize)?;
    let mut crew = Crew::default();

    let cons: Vec<usize> = (0..consumers)
        .map(|me| crew.start(format!("consumer {me}"), consume, (q.clone(), reports.clone(), me, taken.clone(), salt)))
        .collect::<Check<_>>()?;
    let mut kill_times = Vec::new();
    if idle_kill {
        // Every consumer asleep in get on an empty queue.
        std::thread::sleep(Duration::from_millis(rng.range(30, 100)));
        for &c in &cons[..victims as usize] {
            crew.kill(c)?;
            kill_times.push("blocked in get on an empty queue".to_string());
        }
    }
    let prods: Vec<usize> = (0..producers)
        .map(|id| {
            let n = if is_victim_producer(id) { u32::MAX } else { count };
            crew.start(format!("producer {id}"), produce, (q.clone(), id, n, sent.clone(), salt))
        })
        .collect::<Check<_>>()?;
    let steady_total = u64::from(count) * u64::from(producers - if kill_producers { victims } else { 0 });
    if !idle_kill {
        for v in 0..victims as usize {
            let threshold = rng.below(u64::from(count) / 2 + 1);
            let (arr, idx) = if kill_producers { (&sent, v) } else { (&taken, v) };
            wait_until(
                LONG,
                || {
                    let taken = read(&taken).iter().sum::<u64>();
                    format!("victim {v} never reached {threshold} messages ({taken} of {steady_total} taken in all)")
                },
                || {
                    let reached = read(arr)[idx] >= threshold;
                    // A consumer may find nothing left to take: kill it idle.
                    // Everything sent and the queue empty says so even when
                    // a consumer killed earlier took a message it never
                    // counted (then `taken` stays short of the total for
                    // good: a 20 s "hang" of this check, not of the queue,
                    // seen with the code of sessions 8 and 9 alike).
                    let all_sent = read(&sent).iter().sum::<u64>() >= steady_total;
                    let drained = !kill_producers
                        && (read(&taken).iter().sum::<u64>() >= steady_total || (all_sent && q.is_empty()));
                    Ok(reached || drained)
                },
            )?;
            std::thread::sleep(rng.pause(2_000));
            crew.kill(if kill_producers { prods[v] } else { cons[v] })?;
            kill_times.push(format!("after {} messages", read(arr)[idx]));
        }
    }
    cx.stats.kills[cx.scenario.index()] += victims;

    // The steady producers finish; every surviving consumer gets a stop.
    for id in 0..producers {
        if !is_victim_producer(id) {
            crew.finish(prods[id as usize])?;
        }
    }
    let survivors: Vec<u32> = (0..consumers).filter(|&c| kill_producers || c >= victims).collect();
    for _ in &survivors {
        q.put_timeout((STOP, 0, Vec::new()), BOUND).map_err(|e| hang(format!("putting a stop marker: {e}")))?;
    }
    let mut got: Vec<(u32, u32)> = Vec::new();
    let mut done = HashSet::new();
    while done.len() < survivors.len() {
        match reports.get_timeout(BOUND) {
            Ok(Report::Got(id, seq)) => got.push((id, seq)),
            Ok(Report::Done(c)) => {
                done.insert(c);
            }
            Ok(Report::Hello) => return Err(corrupt("a second warm-up record in the reports")),
            Err(RecvTimeoutError::Timeout) => {
                // Say which consumer is stuck, or how it ended.
                for &c in &survivors {
                    if !done.contains(&c) {
                        let code = crew.join(cons[c as usize], Duration::ZERO);
                        return match code {
                            Ok(code) => Err(classify(code, &format!("consumer {c}"))),
                            Err(_) => Err(hang(format!("consumer {c} did not finish within {BOUND:?} of its stop"))),
                        };
                    }
                }
            }
            Err(e) => return Err(broken(format!("reading reports: {e}"))),
        }
    }
    for &c in &survivors {
        crew.finish(cons[c as usize])?;
    }
    // Reports of the killed consumers that were queued before they died.
    loop {
        match reports.try_get() {
            Ok(Report::Got(id, seq)) => got.push((id, seq)),
            Ok(other) => return Err(corrupt(format!("unexpected report {other:?}"))),
            Err(TryRecvError::Empty) => break,
            Err(e) => return Err(broken(format!("reading reports: {e}"))),
        }
    }

    // No duplicates; per producer, what arrived is 0..k.
    let mut by_producer: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(id, seq) in &got {
        by_producer.entry(id).or_default().push(seq);
    }
    let sent_now = read(&sent);
    let mut delivered = 0u64;
    let mut expected_total = 0u64;
    for id in 0..producers {
        let mut seqs = by_producer.remove(&id).unwrap_or_default();
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        ensure!(seqs.len() == n, corrupt, "producer {id}: {} messages delivered twice", n - seqs.len());
        let k = seqs.len() as u64;
        delivered += k;
        let put = sent_now[id as usize];
        if is_victim_producer(id) {
            ensure!(
                seqs.iter().copied().eq(0..k as u32),
                corrupt,
                "killed producer {id}: a gap in what arrived ({k} messages, not 0..{k})"
            );
            ensure!(
                k == put || k == put + 1,
                corrupt,
                "killed producer {id}: {put} puts returned but {k} messages arrived (at most one in flight)"
            );
            if k == put + 1 {
                cx.stats.in_flight_delivered += 1;
            } else {
                cx.stats.in_flight_lost += 1;
            }
            cx.stats.sent += put;
            expected_total += k;
        } else if kill_producers {
            ensure!(seqs.iter().copied().eq(0..count), corrupt, "producer {id}: {k} of its {count} messages arrived");
            cx.stats.sent += u64::from(count);
            expected_total += u64::from(count);
        } else {
            // Killed consumers may have taken a message each and died
            // before reporting it.
            ensure!(seqs.iter().all(|&s| s < count), corrupt, "producer {id}: a seq beyond {count}");
            cx.stats.sent += u64::from(count);
            expected_total += u64::from(count);
        }
    }
    ensure!(by_producer.is_empty(), corrupt, "messages from unknown producers {:?}", by_producer.keys());
    cx.stats.received += delivered;
    if !kill_producers {
        let lost = expected_total - delivered;
        ensure!(
            lost <= u64::from(victims),
            corrupt,
            "{lost} messages missing, but only {victims} consumers were killed (at most one each)"
        );
        cx.stats.taken_by_killed += lost;
    }

    // Nothing left over, and the queue still works.
    match q.try_get() {
        Err(TryRecvError::Empty) => {}
        Ok(m) => return Err(corrupt(format!("a message left over after the stops: producer {} seq {}", m.0, m.1))),
        Err(e) => return Err(broken(format!("try_get after the run: {e}"))),
    }
    // The probe may be larger than the ring (streamed), so it is taken on
    // another thread while this one puts it.
    let probe = (7, 7, payload(salt, 7, 7, ring));
    let (put, back) = std::thread::scope(|s| {
        let getter = s.spawn(|| q.get_timeout(BOUND));
        (q.put_timeout(probe.clone(), BOUND), getter.join())
    });
    put.map_err(|e| hang(format!("put after the kills: {e}")))?;
    let back = back.map_err(|_| broken("the probe getter panicked"))?;
    let back = back.map_err(|e| hang(format!("get after the kills: {e}")))?;
    ensure!(back == probe, corrupt, "the probe message came back altered");

    Ok(format!(
        "ring {ring}, {producers} producers, {consumers} consumers, killed {victims} {} ({}), {delivered} delivered",
        if kill_producers { "producers" } else { "consumers" },
        kill_times.join(", ")
    ))
}

// ----- (c): mutex and value holders -----

/// The protected data: `[before, count0..count3, repairs, holder, after]`.
/// A critical section adds one to `before`, its own count and `after`, in
/// that order; `holder` is the party inside plus one (0 outside), written
/// first and cleared last. A state is consistent when
/// `before == sum(counts) == after` and `holder == 0`.
type Data = [u64; 8];
const BEFORE: usize = 0;
const REPAIRS: usize = 5;
const HOLDER: usize = 6;
const AFTER: usize = 7;

fn count_sum(d: &Data) -> u64 {
    d[1..5].iter().sum()
}

fn consistent(d: &Data) -> bool {
    d[BEFORE] == d[AFTER] && count_sum(d) == d[AFTER] && d[HOLDER] == 0
}

/// Checks that a state found behind `OwnerDied` is one a critical section
/// cut short leaves, and completes it (the dead party's own count is the
/// truth). `Err` says what is wrong.
fn repair(d: &mut Data, me: u32) -> Result<(), String> {
    let (before, sum, after) = (d[BEFORE], count_sum(d), d[AFTER]);
    if !(after <= sum && sum <= before && before <= after + 1) {
        return Err(format!("owner died, and its partial update is impossible: {d:?}"));
    }
    if d[HOLDER] == u64::from(me) + 1 {
        return Err(format!("owner died, but the holder mark is mine: {d:?}"));
    }
    d[BEFORE] = sum;
    d[AFTER] = sum;
    d[HOLDER] = 0;
    d[REPAIRS] += 1;
    Ok(())
}

/// A `Mutex<Data>` or a `Value<Data>`: both lock the same way.
trait Guarded: Clone + Serialize + DeserializeOwned + Send + 'static {
    fn lock_within(&self, t: Duration) -> Result<MutexGuard<'_, Data>, LockTimeoutError<MutexGuard<'_, Data>>>;
    fn lock_blocking(&self) -> LockResult<MutexGuard<'_, Data>>;
}

impl Guarded for Mutex<Data> {
    fn lock_within(&self, t: Duration) -> Result<MutexGuard<'_, Data>, LockTimeoutError<MutexGuard<'_, Data>>> {
        self.lock_timeout(t)
    }

    fn lock_blocking(&self) -> LockResult<MutexGuard<'_, Data>> {
        self.lock()
    }
}

impl Guarded for Value<Data> {
    fn lock_within(&self, t: Duration) -> Result<MutexGuard<'_, Data>, LockTimeoutError<MutexGuard<'_, Data>>> {
        self.lock_timeout(t)
    }

    fn lock_blocking(&self) -> LockResult<MutexGuard<'_, Data>> {
        self.lock()
    }
}

/// Locks (with `lock()` when `t` is `None`, with `lock_timeout` otherwise),
/// checking the state: consistent after a plain lock, repairable after
/// `OwnerDied` (then repaired). Returns the guard and whether the owner had
/// died.
fn lock_checked<L: Guarded>(
    l: &L,
    me: u32,
    t: Option<Duration>,
) -> Result<(MutexGuard<'_, Data>, bool), (i32, String)> {
    let locked = match t {
        Some(t) => l.lock_within(t),
        None => l.lock_blocking().map_err(|e| match e {
            LockError::OwnerDied(g) => LockTimeoutError::OwnerDied(g),
            LockError::Unusable(e) => LockTimeoutError::Unusable(e),
        }),
    };
    match locked {
        Ok(g) if consistent(&g) => Ok((g, false)),
        Ok(g) => Err((EXIT_CORRUPT, format!("plain lock, inconsistent state (a dead owner not reported?): {:?}", *g))),
        Err(LockTimeoutError::OwnerDied(mut g)) => match repair(&mut g, me) {
            Ok(()) => Ok((g, true)),
            Err(m) => Err((EXIT_CORRUPT, m)),
        },
        Err(LockTimeoutError::Timeout) => Err((EXIT_HANG, format!("no lock within {t:?}"))),
        Err(e) => Err((EXIT_ERROR, format!("lock: {e}"))),
    }
}

/// Party `me`: `count` critical sections (`u32::MAX`: until killed), each
/// with some spinning between its writes. Locks with `lock()` or
/// `lock_timeout` at random (a blocked `lock()` is bounded by the parent's
/// join).
fn lock_party<L: Guarded>(arg: (L, u32, u32, u64)) {
    let (l, me, count, seed) = arg;
    let mut rng = Rng::new(seed);
    for _ in 0..count {
        let t = if rng.chance(50) { Some(LONG) } else { None };
        let (mut g, _) = lock_checked(&l, me, t).unwrap_or_else(|(code, m)| die(code, format!("party {me}: {m}")));
        g[HOLDER] = u64::from(me) + 1;
        g[BEFORE] += 1;
        spin(&mut rng, 2_000);
        g[1 + me as usize] += 1;
        spin(&mut rng, 2_000);
        g[AFTER] += 1;
        g[HOLDER] = 0;
        drop(g);
        std::thread::yield_now();
    }
}

fn lock_scenario<L: Guarded>(cx: &mut Ctx, lock: L) -> Check<String> {
    let rng = &mut cx.rng;
    let parties = rng.range(2, 4) as u32;
    let victim = rng.below(u64::from(parties)) as u32;
    let count = rng.range(100, 400) as u32;
    let mut crew = Crew::default();
    let procs: Vec<usize> = (0..parties)
        .map(|me| {
            let n = if me == victim { u32::MAX } else { count };
            crew.start(format!("lock party {me}"), lock_party::<L>, (lock.clone(), me, n, rng.next()))
        })
        .collect::<Check<_>>()?;
    let threshold = rng.below(100);
    wait_until(
        LONG,
        || format!("the victim never did {threshold} critical sections"),
        || {
            let (g, died) = lock_checked(&lock, 9, Some(LONG)).map_err(|(_, m)| corrupt(m))?;
            // Nobody has been killed yet.
            ensure!(!died, corrupt, "OwnerDied before any kill");
            Ok(g[1 + victim as usize] >= threshold)
        },
    )?;
    std::thread::sleep(rng.pause(3_000));
    crew.kill(procs[victim as usize])?;
    cx.stats.kills[cx.scenario.index()] += 1;
    for me in 0..parties {
        if me != victim {
            crew.finish(procs[me as usize])?;
        }
    }
    // The survivors' locks (or this one) met the dead owner; the state
    // must be consistent now, with every survivor's count complete.
    let start = Instant::now();
    // A repair made here is counted in the data, as the survivors' are.
    let (g, _) = lock_checked(&lock, 9, Some(BOUND)).map_err(|(code, m)| {
        if code == EXIT_HANG { hang(format!("parent: {m}")) } else { corrupt(format!("parent: {m}")) }
    })?;
    cx.stats.recovered(start.elapsed());
    let d = *g;
    drop(g);
    for me in 0..parties {
        if me != victim {
            ensure!(
                d[1 + me as usize] == u64::from(count),
                corrupt,
                "party {me} did {} of {count}: {d:?}",
                d[1 + me as usize]
            );
        }
    }
    ensure!(d[REPAIRS] <= 1, corrupt, "{} repairs for one killed owner: {d:?}", d[REPAIRS]);
    cx.stats.owner_died += d[REPAIRS];
    cx.stats.repaired += d[REPAIRS];
    // And the lock keeps working.
    let (mut g, died) =
        lock_checked(&lock, 9, Some(BOUND)).map_err(|(_, m)| broken(format!("lock after recovery: {m}")))?;
    ensure!(!died, corrupt, "OwnerDied reported twice for one death");
    g[1] += 1;
    g[BEFORE] += 1;
    g[AFTER] += 1;
    drop(g);
    Ok(format!(
        "{parties} parties x {count}, killed party {victim} after {} sections, owner died reported {} time(s)",
        d[1 + victim as usize],
        d[REPAIRS]
    ))
}

// ----- (d): condition, barrier, semaphore -----

/// Condition state, guarded by the condition's lock by convention:
/// `[generation, stop, ack0..ack3, owner_died]`.
const GEN: usize = 0;
const CSTOP: usize = 1;
const ACK: usize = 2;
const COND_DIED: usize = 6;

/// Waiter `me`: for every new generation, acknowledges it (holding the
/// lock a little while); leaves at `stop`.
fn cond_waiter(arg: (Condition, Array<u64>, u32, u64)) {
    let (cond, state, me, seed) = arg;
    let mut rng = Rng::new(seed);
    let mut seen = 0;
    let lock = || match cond.lock_timeout(LONG) {
        Ok(g) => g,
        Err(LockTimeoutError::OwnerDied(g)) => {
            bump(&state, COND_DIED);
            g
        }
        Err(LockTimeoutError::Timeout) => die(EXIT_HANG, format!("waiter {me}: no lock within {LONG:?}")),
        Err(e) => die(EXIT_ERROR, format!("waiter {me}: lock: {e}")),
    };
    let mut g = lock();
    loop {
        let s = read(&state);
        if s[CSTOP] != 0 {
            return;
        }
        if s[GEN] > seen {
            seen = s[GEN];
            store(&state, ACK + me as usize, seen);
            spin(&mut rng, 3_000);
            drop(g);
            std::thread::yield_now();
            g = lock();
            continue;
        }
        g = match cond.wait_timeout(g, LONG) {
            Ok((g, r)) if r.timed_out() => {
                let s = read(&state);
                if s[GEN] <= seen && s[CSTOP] == 0 {
                    die(EXIT_HANG, format!("waiter {me}: no notify within {LONG:?} (generation {seen})"));
                }
                g
            }
            Ok((g, _)) => g,
            Err(ConditionWaitError::OwnerDied((g, _))) => {
                bump(&state, COND_DIED);
                g
            }
            Err(e) => die(EXIT_ERROR, format!("waiter {me}: wait: {e}")),
        };
    }
}

fn condition_scenario(cx: &mut Ctx) -> Check<String> {
    let rng = &mut cx.rng;
    let waiters = rng.range(2, 4) as u32;
    let victim = rng.below(u64::from(waiters)) as usize;
    let rounds = rng.range(10, 40);
    let kill_round = rng.range(1, rounds);
    let cond = Condition::new().map_err(|e| broken(format!("condition: {e}")))?;
    let state = new_counters(8)?;
    let mut crew = Crew::default();
    let procs: Vec<usize> = (0..waiters)
        .map(|me| crew.start(format!("waiter {me}"), cond_waiter, (cond.clone(), state.clone(), me, rng.next())))
        .collect::<Check<_>>()?;
    let mut alive: Vec<usize> = (0..waiters as usize).collect();
    let mut parent_died = 0;
    let mut recovery = Duration::ZERO;
    let lock = |parent_died: &mut u64| match cond.lock_timeout(BOUND) {
        Ok(g) => Ok(g),
        Err(LockTimeoutError::OwnerDied(g)) => {
            *parent_died += 1;
            Ok(g)
        }
        Err(e) => Err(hang(format!("parent: condition lock: {e}"))),
    };
    let mut kill_at = None;
    for round in 1..=rounds {
        let g = lock(&mut parent_died)?;
        store(&state, GEN, round);
        cond.notify_all().map_err(|e| broken(format!("notify_all: {e}")))?;
        drop(g);
        if round == kill_round {
            std::thread::sleep(rng.pause(3_000));
            crew.kill(procs[victim])?;
            kill_at = Some(Instant::now());
            alive.retain(|&w| w != victim);
        }
        let start = Instant::now();
        wait_until(
            if round == 1 { LONG } else { BOUND },
            || format!("round {round}: waiters {alive:?} did not acknowledge (acks {:?})", &read(&state)[ACK..ACK + 4]),
            || {
                let s = read(&state);
                Ok(alive.iter().all(|&w| s[ACK + w] >= round))
            },
        )?;
        if kill_at.is_some() && round == kill_round {
            recovery = start.elapsed();
        }
    }
    cx.stats.kills[cx.scenario.index()] += 1;
    cx.stats.recovered(recovery);
    let g = lock(&mut parent_died)?;
    store(&state, CSTOP, 1);
    cond.notify_all().map_err(|e| broken(format!("notify_all: {e}")))?;
    drop(g);
    for &w in &alive {
        crew.finish(procs[w])?;
    }
    let died = read(&state)[COND_DIED] + parent_died;
    ensure!(died <= 1, corrupt, "OwnerDied reported {died} times for one killed waiter");
    cx.stats.owner_died += died;
    Ok(format!(
        "{waiters} waiters, {rounds} rounds, killed waiter {victim} in round {kill_round}, owner died reported {died} time(s)"
    ))
}

/// Exit codes of a barrier party for each way its wait ended.
fn barrier_code(cause: BrokenCause) -> i32 {
    match cause {
        BrokenCause::PartyDied => 4,
        BrokenCause::TimedOut => 5,
        _ => 6,
    }
}

/// Barrier timeout of the parties after the first round (which waits
/// [`LONG`], for every party to start).
const BARRIER_TIMEOUT: Duration = Duration::from_millis(1500);

/// Party `me`: waits `rounds` times (0: until the barrier breaks), counting
/// rounds in `rounds_done[me]`, with up to 150 ms of work between rounds
/// half the time; exits with [`barrier_code`] when it breaks.
///
/// The work matters: a party killed while it waits is noticed (by a
/// sleeping party, within about 100 ms) only if the round has not tripped
/// first, with the dead party counted as arrived. Without work between
/// rounds the others arrive at once, the round trips, and the next one can
/// only time out.
fn barrier_party(arg: (Barrier, Array<u64>, u32, u32, u64)) {
    let (b, rounds_done, me, rounds, seed) = arg;
    let mut rng = Rng::new(seed);
    let mut r = 0;
    while rounds == 0 || r < rounds {
        match b.wait_timeout(if r == 0 { LONG } else { BARRIER_TIMEOUT }) {
            Ok(_) => {
                r += 1;
                store(&rounds_done, me as usize, u64::from(r));
            }
            Err(e) => std::process::exit(barrier_code(e.cause())),
        }
        if rng.chance(50) {
            std::thread::sleep(rng.pause(150_000));
        }
    }
}

fn barrier_scenario(cx: &mut Ctx) -> Check<String> {
    let rng = &mut cx.rng;
    let parties = rng.range(2, 4) as u32;
    let victim = rng.below(u64::from(parties)) as usize;
    let b = Barrier::new(parties as usize).map_err(|e| broken(format!("barrier: {e}")))?;
    let done = new_counters(parties as usize)?;
    let mut crew = Crew::default();
    let procs: Vec<usize> = (0..parties)
        .map(|me| {
            crew.start(format!("barrier party {me}"), barrier_party, (b.clone(), done.clone(), me, 0, rng.next()))
        })
        .collect::<Check<_>>()?;
    let threshold = rng.range(1, 10);
    wait_until(
        LONG,
        || format!("the parties never did {threshold} rounds: {:?}", read(&done)),
        || Ok(read(&done)[victim] >= threshold),
    )?;
    std::thread::sleep(rng.pause(100_000));
    crew.kill(procs[victim])?;
    cx.stats.kills[cx.scenario.index()] += 1;
    let killed = Instant::now();
    let victim_rounds = read(&done)[victim];
    let mut outcomes = Vec::new();
    for (me, &p) in procs.iter().enumerate() {
        if me == victim {
            continue;
        }
        let code = crew.join(p, BARRIER_TIMEOUT + BOUND)?;
        match code {
            4 => cx.stats.barrier_party_died += 1,
            5 => cx.stats.barrier_timed_out += 1,
            _ => return Err(classify(code, &format!("barrier party {me} (expected PartyDied or TimedOut)"))),
        }
        outcomes.push(if code == 4 { "party died" } else { "timed out" });
    }
    cx.stats.recovered(killed.elapsed());
    ensure!(b.is_broken(), broken, "the barrier is not broken after a party died");
    // Repaired by a reset, it trips again.
    b.reset();
    let fresh: Vec<usize> = (0..parties)
        .map(|me| crew.start(format!("fresh party {me}"), barrier_party, (b.clone(), done.clone(), me, 3, me.into())))
        .collect::<Check<_>>()?;
    for p in fresh {
        crew.finish(p)?;
    }
    Ok(format!(
        "{parties} parties, killed party {victim} after {victim_rounds} rounds; survivors: {}",
        outcomes.join(", ")
    ))
}

/// Semaphore bookkeeping: `[mark0..mark3, done0..done3, inside]`; a
/// party's mark is 1 from before its acquire until after its release, and
/// `inside` counts the parties between acquire and release (raised after
/// the acquire, lowered before the release, so a killed party can only
/// leave it too low).
const MARK: usize = 0;
const SDONE: usize = 4;
const INSIDE: usize = 8;

fn sem_party(arg: (Semaphore, Array<u64>, u32, u32, u32, u64)) {
    let (sem, book, me, count, permits, seed) = arg;
    let mut rng = Rng::new(seed);
    for i in 0..count {
        store(&book, MARK + me as usize, 1);
        if !sem.acquire_timeout(LONG) {
            die(EXIT_HANG, format!("party {me}: no permit within {LONG:?}"));
        }
        let inside = {
            let mut c = counters(&book);
            c[INSIDE] += 1;
            c[INSIDE]
        };
        if inside > u64::from(permits) {
            die(EXIT_CORRUPT, format!("party {me}: {inside} parties hold a permit"));
        }
        spin(&mut rng, 3_000);
        counters(&book)[INSIDE] -= 1;
        if let Err(e) = sem.release() {
            die(EXIT_ERROR, format!("party {me}: release: {e}"));
        }
        store(&book, MARK + me as usize, 0);
        store(&book, SDONE + me as usize, u64::from(i) + 1);
        std::thread::yield_now();
    }
}

fn semaphore_scenario(cx: &mut Ctx) -> Check<String> {
    let rng = &mut cx.rng;
    let permits = rng.range(2, 3) as u32;
    let parties = permits + 1;
    let victim = rng.below(u64::from(parties)) as usize;
    let count = rng.range(100, 300) as u32;
    let sem = Semaphore::new(permits).map_err(|e| broken(format!("semaphore: {e}")))?;
    let book = new_counters(9)?;
    let mut crew = Crew::default();
    let procs: Vec<usize> = (0..parties)
        .map(|me| {
            let n = if me as usize == victim { u32::MAX } else { count };
            let arg = (sem.clone(), book.clone(), me, n, permits, rng.next());
            crew.start(format!("semaphore party {me}"), sem_party, arg)
        })
        .collect::<Check<_>>()?;
    let threshold = rng.below(100);
    wait_until(
        LONG,
        || format!("the victim never did {threshold} acquires"),
        || Ok(read(&book)[SDONE + victim] >= threshold),
    )?;
    std::thread::sleep(rng.pause(2_000));
    crew.kill(procs[victim])?;
    cx.stats.kills[cx.scenario.index()] += 1;
    for (me, &p) in procs.iter().enumerate() {
        if me != victim {
            crew.finish(p)?;
        }
    }
    let value = sem.value();
    let mark = read(&book)[MARK + victim];
    ensure!(
        value == permits || (value + 1 == permits && mark == 1),
        corrupt,
        "{value} of {permits} permits left; the victim's mark is {mark} (a lost permit needs the mark)"
    );
    let lost = permits - value;
    cx.stats.permits_lost += u64::from(lost);
    // The permits left still work.
    for _ in 0..value {
        ensure!(sem.acquire_timeout(BOUND), hang, "a free permit could not be taken");
    }
    ensure!(!sem.try_acquire(), corrupt, "more permits than counted");
    for _ in 0..value {
        sem.release().map_err(|e| broken(format!("release: {e}")))?;
    }
    Ok(format!("{permits} permits, {parties} parties, killed party {victim}, {lost} permit(s) lost with it"))
}

// ----- (e): pool workers -----

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms * 3 + 1
}

fn square(x: u64) -> u64 {
    x * x
}

/// Whether process `pid` has ended (a zombie, or gone).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

fn pool_scenario(cx: &mut Ctx) -> Check<String> {
    if cx.pool.is_none() {
        *cx.pool = Some(Pool::new(2).map_err(|e| broken(format!("pool: {e}")))?);
    }
    let pool = cx.pool.as_mut().unwrap();
    let rng = &mut cx.rng;
    let tasks: Vec<u64> = (0..rng.range(2, 8)).map(|_| rng.range(20, 120)).collect();
    let chunksize = rng.range(1, 2) as usize;
    let total: u64 = tasks.iter().sum();
    let pids = pool.pids();
    ensure!(pids.len() == 2, broken, "the pool has {} workers, not 2", pids.len());
    let victim = pids[rng.below(2) as usize];
    // Somewhere in the call's run time (about half the total with two workers).
    let delay = Duration::from_millis(rng.below(total / 2 + 30));
    let killer = common::sigkill_after(victim, delay);
    let start = Instant::now();
    let result = pool.map_chunksize(sleep_ms, tasks.clone(), chunksize);
    let took = start.elapsed();
    let kill_worked = killer.join().map_err(|_| broken("the killer thread panicked"))?;
    ensure!(kill_worked, broken, "could not kill worker {victim}");
    cx.stats.kills[cx.scenario.index()] += 1;
    let expected: Vec<u64> = tasks.iter().map(|&ms| ms * 3 + 1).collect();
    let outcome = match result {
        Ok(v) => {
            ensure!(v == expected, corrupt, "map returned {v:?}, not {expected:?}");
            cx.stats.pool_unaffected += 1;
            "all results (the worker held no task)".to_string()
        }
        Err(PoolError::WorkerDied { index, exitcode }) => {
            ensure!(exitcode.is_none_or(|c| c == -9), broken, "WorkerDied with exit code {exitcode:?}, not -9");
            // Within 2 s of the kill (the call may have started later).
            let since_kill = took.saturating_sub(delay);
            ensure!(since_kill < Duration::from_secs(2), hang, "WorkerDied came {since_kill:?} after the kill");
            cx.stats.pool_worker_died += 1;
            cx.stats.recovered(since_kill);
            format!("WorkerDied (chunk at {index}) {} ms after the kill", since_kill.as_millis())
        }
        Err(e) => return Err(broken(format!("map: {e}"))),
    };
    // Once the victim is dead (SIGKILL is delivered, not yet acted on, when
    // `kill` returns), the next map replaces it, and succeeds.
    wait_until(BOUND, || format!("worker {victim} still alive after SIGKILL"), || Ok(is_dead(victim)))?;
    let serial: Vec<u64> = (0..50).map(square).collect();
    let again = pool.map(square, 0..50).map_err(|e| broken(format!("map after the kill: {e}")))?;
    ensure!(again == serial, corrupt, "map after the kill returned wrong results");
    let now = pool.pids();
    ensure!(now.len() == 2 && !now.contains(&victim), broken, "workers after the kill: {now:?} (victim {victim})");
    Ok(format!("{} tasks of {total} ms in all, worker killed at {} ms: {outcome}", tasks.len(), delay.as_millis()))
}

// ----- (f): pipes -----

/// A pipe message: (seq, payload of producer 0).
type PipeMsg = (u32, Vec<u8>);

/// Sends messages until killed; `progress[0]` counts the sends that
/// returned.
fn pipe_sender(arg: (Connection<SendOnly>, Array<u64>, u64)) {
    let (tx, progress, salt) = arg;
    let ring = tx.capacity();
    for seq in 0.. {
        if let Err(e) = tx.send_timeout(&(seq, payload(salt, 0, seq, ring)), LONG) {
            die(if e.is_timeout() { EXIT_HANG } else { EXIT_ERROR }, format!("pipe sender: {e}"));
        }
        store(&progress, 0, u64::from(seq) + 1);
    }
}

/// Receives and checks messages until killed; `progress[0]` counts them.
fn pipe_receiver(arg: (Connection<RecvOnly>, Array<u64>, u64)) {
    let (rx, progress, salt) = arg;
    let ring = rx.capacity();
    for seq in 0.. {
        match rx.recv_timeout::<PipeMsg>(LONG) {
            Ok((s, bytes)) if s == seq && bytes == payload(salt, 0, seq, ring) => {}
            Ok((s, bytes)) => {
                die(EXIT_CORRUPT, format!("pipe receiver: got seq {s} ({} bytes), expected {seq}", bytes.len()))
            }
            Err(e) => die(if e.is_timeout() { EXIT_HANG } else { EXIT_ERROR }, format!("pipe receiver: {e}")),
        }
        store(&progress, 0, u64::from(seq) + 1);
    }
}

/// The child sends; killed mid-stream, the parent gets its messages intact
/// and in order, then `Disconnected`, within the bound.
fn pipe_sender_scenario(cx: &mut Ctx) -> Check<String> {
    let rng = &mut cx.rng;
    let ring = rng.pick(&[4096usize, 16 << 10, 64 << 10]);
    let salt = rng.next();
    let (rx, tx) = Pipe::one_way_with_capacity(ring).map_err(|e| broken(format!("pipe: {e}")))?;
    let ring = rx.capacity();
    let progress = new_counters(1)?;
    let mut crew = Crew::default();
    let sender = crew.start("pipe sender", pipe_sender, (tx, progress.clone(), salt))?;
    let threshold = rng.below(300) as u32;
    let mut next = 0u32;
    let mut killed_at = None;
    loop {
        if killed_at.is_none() && next >= threshold {
            std::thread::sleep(rng.pause(3_000));
            crew.kill(sender)?;
            cx.stats.kills[cx.scenario.index()] += 1;
            killed_at = Some(Instant::now());
        }
        match rx.recv_timeout::<PipeMsg>(BOUND) {
            Ok((seq, bytes)) => {
                ensure!(seq == next, corrupt, "got seq {seq}, expected {next}");
                ensure!(bytes == payload(salt, 0, seq, ring), corrupt, "seq {seq}: {} bytes, not as sent", bytes.len());
                next += 1;
            }
            Err(RecvTimeoutError::Disconnected) => {
                ensure!(killed_at.is_some(), broken, "Disconnected before the kill");
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(hang(format!("recv: nothing within {BOUND:?} (killed: {})", killed_at.is_some())));
            }
            Err(e) => return Err(broken(format!("recv: {e}"))),
        }
    }
    let after = killed_at.unwrap().elapsed();
    ensure!(after < Duration::from_secs(2), hang, "Disconnected came {after:?} after the kill");
    cx.stats.recovered(after);
    let put = read(&progress)[0];
    let k = u64::from(next);
    ensure!(k == put || k == put + 1, corrupt, "{put} sends returned but {k} messages arrived");
    if k == put + 1 {
        cx.stats.in_flight_delivered += 1;
    } else {
        cx.stats.in_flight_lost += 1;
    }
    cx.stats.sent += put;
    cx.stats.received += k;
    Ok(format!(
        "ring {ring}, sender killed after {put} sends, {k} received, Disconnected {} ms after",
        after.as_millis()
    ))
}

/// The child receives; killed, the parent's sends fail with `Disconnected`
/// once the ring is full, within the bound.
fn pipe_receiver_scenario(cx: &mut Ctx) -> Check<String> {
    let rng = &mut cx.rng;
    let ring = rng.pick(&[4096usize, 16 << 10, 64 << 10]);
    let salt = rng.next();
    let (rx, tx) = Pipe::one_way_with_capacity(ring).map_err(|e| broken(format!("pipe: {e}")))?;
    let ring = rx.capacity();
    let progress = new_counters(1)?;
    let mut crew = Crew::default();
    let receiver = crew.start("pipe receiver", pipe_receiver, (rx, progress.clone(), salt))?;
    let threshold = rng.below(300) as u32;
    let mut killed_at = None;
    let mut sent = 0u32;
    for seq in 0.. {
        if killed_at.is_none() && seq >= threshold {
            std::thread::sleep(rng.pause(3_000));
            crew.kill(receiver)?;
            cx.stats.kills[cx.scenario.index()] += 1;
            killed_at = Some(Instant::now());
        }
        match tx.send_timeout(&(seq, payload(salt, 0, seq, ring)), BOUND) {
            Ok(()) => sent += 1,
            Err(SendTimeoutError::Disconnected(_)) => {
                ensure!(killed_at.is_some(), broken, "Disconnected before the kill");
                break;
            }
            Err(SendTimeoutError::Timeout(_)) => {
                return Err(hang(format!("send: no room within {BOUND:?} (killed: {})", killed_at.is_some())));
            }
            Err(e) => return Err(broken(format!("send: {e}"))),
        }
    }
    let after = killed_at.unwrap().elapsed();
    ensure!(after < Duration::from_secs(2), hang, "Disconnected came {after:?} after the kill");
    cx.stats.recovered(after);
    let got = read(&progress)[0];
    ensure!(got <= u64::from(sent), corrupt, "the receiver counted {got} messages of {sent} sent");
    cx.stats.sent += u64::from(sent);
    cx.stats.received += got;
    cx.stats.accepted_for_dead += u64::from(sent) - got;
    Ok(format!("ring {ring}, receiver killed after {got} of {sent}, sends Disconnected {} ms after", after.as_millis()))
}

// ----- the run -----

fn run_one(cx: &mut Ctx) -> Check<String> {
    match cx.scenario {
        Scenario::QueueProducer => queue_scenario(cx, true),
        Scenario::QueueConsumer => queue_scenario(cx, false),
        Scenario::MutexHolder => {
            let m = Mutex::new([0u64; 8]).map_err(|e| broken(format!("mutex: {e}")))?;
            lock_scenario(cx, m)
        }
        Scenario::ValueHolder => {
            let v = Value::new([0u64; 8]).map_err(|e| broken(format!("value: {e}")))?;
            lock_scenario(cx, v)
        }
        Scenario::ConditionWaiter => condition_scenario(cx),
        Scenario::BarrierWaiter => barrier_scenario(cx),
        Scenario::SemaphoreHolder => semaphore_scenario(cx),
        Scenario::PoolWorker => pool_scenario(cx),
        Scenario::PipeSender => pipe_sender_scenario(cx),
        Scenario::PipeReceiver => pipe_receiver_scenario(cx),
    }
}

/// The scenario of iteration `i`: each block of ten iterations runs every
/// scenario once, in an order shuffled by the seed.
fn scenario_of(seed: u64, i: u32) -> Scenario {
    let block = u64::from(i) / SCENARIOS.len() as u64;
    let mut rng = Rng::new(seed ^ splitmix(block.wrapping_add(0x5ce9)));
    let mut order = SCENARIOS;
    for k in (1..order.len()).rev() {
        order.swap(k, rng.below(k as u64 + 1) as usize);
    }
    order[i as usize % SCENARIOS.len()]
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// What the watchdog watches: the iteration running and its deadline.
static CURRENT: StdMutex<Option<(Instant, String)>> = StdMutex::new(None);

/// Ends the run (children die with it) when an iteration overruns
/// [`ITERATION_LIMIT`]: a hang in a call without a timeout.
fn start_watchdog() {
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let current = CURRENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((deadline, what)) = &*current {
                if Instant::now() > *deadline {
                    eprintln!(
                        "torture: HANG: {what} still running after {ITERATION_LIMIT:?}; the watchdog ends the run"
                    );
                    std::process::exit(2);
                }
            }
        }
    });
}

fn main() {
    // `--list` (cargo nextest): one test, this file.
    if std::env::args().any(|a| a == "--list") {
        println!("torture: test");
        return;
    }
    let seed = env_u64("MULTIPROC_TORTURE_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        splitmix(t.as_nanos() as u64 ^ u64::from(std::process::id()))
    });
    let iterations = env_u64("MULTIPROC_TORTURE_ITERATIONS").map_or(DEFAULT_ITERATIONS, |n| n as u32);
    let first = env_u64("MULTIPROC_TORTURE_FIRST").unwrap_or(0) as u32;
    println!("torture: seed {seed:#x}, iterations {first}..{}", first + iterations);
    start_watchdog();
    let mut stats = Stats::default();
    let mut pool: Option<Pool> = None;
    let run_start = Instant::now();
    for i in first..first + iterations {
        let scenario = scenario_of(seed, i);
        let label = format!("iteration {i} ({})", scenario.name());
        *CURRENT.lock().unwrap() = Some((Instant::now() + ITERATION_LIMIT, label.clone()));
        let t = Instant::now();
        let mut cx = Ctx { rng: Rng::new(seed ^ splitmix(u64::from(i))), stats: &mut stats, scenario, pool: &mut pool };
        // A panic in this process is the iteration's failure, not the run's end.
        let outcome = catch_unwind(AssertUnwindSafe(|| run_one(&mut cx))).unwrap_or_else(|panic| {
            let m = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(broken(format!("panicked: {m}")))
        });
        stats.runs[scenario.index()] += 1;
        match outcome {
            Ok(what) => println!("{label}: ok in {:.2} s: {what}", t.elapsed().as_secs_f64()),
            Err(fail) => {
                match fail {
                    Fail::Hang(_) => stats.hangs += 1,
                    Fail::Corrupt(_) => stats.corruptions += 1,
                    Fail::Broken(_) => stats.failures += 1,
                }
                println!("{label}: {fail}");
                println!(
                    "  replay: MULTIPROC_TORTURE_SEED={seed:#x} MULTIPROC_TORTURE_FIRST={i} \
                     MULTIPROC_TORTURE_ITERATIONS=1 cargo test --test torture"
                );
                if scenario == Scenario::PoolWorker {
                    // Start the next pool iteration from a fresh pool.
                    if let Some(mut p) = pool.take() {
                        p.terminate();
                    }
                }
                if stats.hangs + stats.corruptions + stats.failures >= MAX_FAILURES {
                    println!("torture: {MAX_FAILURES} failures, stopping");
                    break;
                }
            }
        }
    }
    *CURRENT.lock().unwrap() = None;
    if let Some(mut p) = pool.take() {
        p.terminate();
    }
    let failed = stats.hangs + stats.corruptions + stats.failures > 0;
    let reconciled = summary(&stats, seed, run_start.elapsed());
    // Failed iterations may have counted half their messages.
    if failed || !reconciled {
        std::process::exit(1);
    }
}

/// Prints the summary; whether the message counts reconcile.
fn summary(s: &Stats, seed: u64, took: Duration) -> bool {
    println!();
    println!("torture summary (seed {seed:#x}, {:.1} s)", took.as_secs_f64());
    println!("  {:<26} {:>10} {:>6}", "scenario", "iterations", "kills");
    for sc in SCENARIOS {
        println!("  {:<26} {:>10} {:>6}", sc.name(), s.runs[sc.index()], s.kills[sc.index()]);
    }
    println!("  {:<26} {:>10} {:>6}", "total", s.runs.iter().sum::<u32>(), s.kills.iter().sum::<u32>());
    println!(
        "  messages: {} sent (sends that returned), {} received intact; killed senders' message in flight: \
         {} delivered, {} lost or never started",
        s.sent, s.received, s.in_flight_delivered, s.in_flight_lost
    );
    println!(
        "  locks: {} OwnerDied reports, {} partial updates repaired; semaphore permits lost with a holder: {}",
        s.owner_died, s.repaired, s.permits_lost
    );
    println!(
        "  barrier survivors: {} PartyDied, {} TimedOut; pool calls: {} WorkerDied, {} unaffected",
        s.barrier_party_died, s.barrier_timed_out, s.pool_worker_died, s.pool_unaffected
    );
    println!("  slowest recovery after a kill: {} ms", s.slowest_recovery.as_millis());
    println!("  hangs: {}, corruptions: {}, other failures: {}", s.hangs, s.corruptions, s.failures);
    // Every message that arrived was sent, or was a killed sender's message
    // in flight; every sent one arrived, or went down with a killed
    // consumer or receiver.
    let expected = (s.sent + s.in_flight_delivered).checked_sub(s.taken_by_killed + s.accepted_for_dead);
    let ok = expected == Some(s.received);
    println!(
        "  reconciliation: {} sent + {} in flight delivered - {} taken by killed consumers - {} accepted for dead \
         pipe receivers = {} received: {}",
        s.sent,
        s.in_flight_delivered,
        s.taken_by_killed,
        s.accepted_for_dead,
        s.received,
        if ok { "ok" } else { "MISMATCH" }
    );
    ok
}
