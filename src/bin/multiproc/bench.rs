//! `multiproc bench`: a quick measurement of multiproc against its peers on
//! this machine, all in one run, printed as one table.
//!
//! The full suites are the criterion benches (`cargo bench --bench channel`,
//! `--bench sync`, a few minutes each, with raw floors and more peers). This
//! is the short version a user runs to see what the crate does on their
//! machine, with only std peers (the tool cannot use dev-dependencies):
//!
//! | case | multiproc | peer |
//! |---|---|---|
//! | 8-byte round trip | duplex `Pipe`, `Plain<u64>` | `UnixStream` pair; two OS pipes |
//! | 8-byte round trip | two `Queue<Plain<u64>>`, one per direction | `UnixStream` pair |
//! | 64-byte one-way stream | one-way `Pipe`, `Plain<[u8; 64]>` | `UnixStream` |
//! | 1 MiB one-way stream | one-way `Pipe`, `reserve`/`commit` and `recv_in_place` | `UnixStream`; `memcpy` |
//! | lock + unlock, uncontended | `Mutex<()>` | `std::sync::Mutex<()>` |
//!
//! # How the far end runs
//!
//! Every channel case has a real second process at the far end. For
//! multiproc's channels it is started with [`Process`] (spawn: a re-exec of
//! this binary, which is why `main` calls [`multiproc::init`] first). For
//! the socket and OS-pipe peers it is this binary again, started with
//! [`std::process::Command`] as `multiproc __peer echo SIZE` or
//! `__peer produce SIZE COUNT`, talking on its standard input and output:
//! the socket end (both), or the two OS pipes `Command` makes. The hidden
//! subcommand keeps the bench free of `fork` and of `unsafe`.
//!
//! Start-up is never timed: a round trip case makes one untimed round trip
//! first, and a producer signals "ready" and waits for "go" before the clock
//! starts. Both sides block when they wait (no busy polling). Receivers
//! check every sequence number, and read every byte of a 1 MiB message (an
//! XOR fold in place, or the copy out of the socket).
//!
//! # Timing
//!
//! Each case is first run briefly to estimate its cost, then gets an
//! iteration count worth `case_time / rounds`. The cases then run in
//! rounds, forward in even rounds and backward in odd ones, so that a change
//! in the machine's speed during the run touches every case alike; a case's
//! figure is its median time per operation over the rounds. The ratio of a
//! row is the peer's time over multiproc's: above 1, multiproc is faster.
//! Only ratios from one run mean anything; absolute figures vary with the
//! machine and its load.

use std::fs::File;
use std::hint::black_box;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use multiproc::channel::{Plain, RecvOnly, SendOnly};
use multiproc::{Connection, Event, Mutex, Pipe, Process, Queue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::args::{BenchOptions, PeerMode};
use crate::json::Json;
use crate::table::{Align, Table, duration_ns, sig3};

/// A far end that makes no progress for this long is taken as dead.
const STUCK: Duration = Duration::from_secs(20);
/// One large message.
const MIB: usize = 1 << 20;
/// Ring of the 64-byte stream (as in `benches/channel.rs`).
const RING: usize = 256 << 10;
/// Ring of the 1 MiB stream (a record holds at most half a ring).
const BIG_RING: usize = 4 << 20;

/// What a bench step returns: a value, or what went wrong.
type Res<T> = Result<T, String>;

/// Turns an error into a message that says what was being done.
fn ctx<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

// ----- the cases -----

/// One thing that is timed: `run(n)` does `n` operations and returns the
/// time they took (start-up of the far end not included).
struct Case {
    /// Key used by the rows.
    id: &'static str,
    /// Operations in the estimating run.
    pilot: u64,
    /// Times `n` operations.
    run: fn(u64) -> Res<Duration>,
}

/// Every case, in the order a forward round runs them: each peer right
/// after the multiproc case it is compared with.
const CASES: [Case; 11] = [
    Case { id: "pipe_rtt", pilot: 200, run: pipe_rtt },
    Case { id: "unix_rtt", pilot: 200, run: unix_rtt },
    Case { id: "os_pipe_rtt", pilot: 200, run: os_pipe_rtt },
    Case { id: "queue_rtt", pilot: 200, run: queue_rtt },
    Case { id: "pipe_64", pilot: 5_000, run: pipe_64 },
    Case { id: "unix_64", pilot: 5_000, run: unix_64 },
    Case { id: "pipe_1m", pilot: 8, run: pipe_1m },
    Case { id: "unix_1m", pilot: 8, run: unix_1m },
    Case { id: "memcpy_1m", pilot: 8, run: memcpy_1m },
    Case { id: "mutex", pilot: 20_000, run: mutex },
    Case { id: "std_mutex", pilot: 20_000, run: std_mutex },
];

/// How a row shows a time per operation.
#[derive(Clone, Copy)]
enum Show {
    /// As a time (a round trip, a lock).
    Time,
    /// As millions of messages per second.
    Msgs,
    /// As gigabytes (10⁹ bytes) per second, for operations of this many bytes.
    Bytes(usize),
}

impl Show {
    /// The figure for `ns` nanoseconds per operation.
    fn figure(self, ns: f64) -> String {
        match self {
            Show::Time => duration_ns(ns),
            Show::Msgs => format!("{} M msg/s", sig3(1e3 / ns)),
            Show::Bytes(b) => format!("{} GB/s", sig3(b as f64 / ns)),
        }
    }
}

/// A row of the table: multiproc's case and a peer's, measured in the same
/// rounds.
struct Row {
    /// What is measured.
    case: &'static str,
    /// multiproc's side: label and case id.
    ours: (&'static str, &'static str),
    /// The peer's side: label and case id.
    peer: (&'static str, &'static str),
    /// How both figures are shown.
    show: Show,
}

/// The table, in order.
const ROWS: [Row; 7] = [
    Row { case: "8 B round trip", ours: ("Pipe", "pipe_rtt"), peer: ("UnixStream", "unix_rtt"), show: Show::Time },
    Row { case: "8 B round trip", ours: ("Pipe", "pipe_rtt"), peer: ("OS pipes", "os_pipe_rtt"), show: Show::Time },
    Row { case: "8 B round trip", ours: ("Queue", "queue_rtt"), peer: ("UnixStream", "unix_rtt"), show: Show::Time },
    Row { case: "64 B one-way", ours: ("Pipe", "pipe_64"), peer: ("UnixStream", "unix_64"), show: Show::Msgs },
    Row {
        case: "1 MiB one-way",
        ours: ("Pipe in place", "pipe_1m"),
        peer: ("UnixStream", "unix_1m"),
        show: Show::Bytes(MIB),
    },
    Row {
        case: "1 MiB one-way",
        ours: ("Pipe in place", "pipe_1m"),
        peer: ("memcpy", "memcpy_1m"),
        show: Show::Bytes(MIB),
    },
    Row { case: "lock + unlock", ours: ("Mutex", "mutex"), peer: ("std Mutex", "std_mutex"), show: Show::Time },
];

// ----- running them -----

/// Runs the bench; returns its table (or JSON) for standard output.
///
/// # Errors
///
/// What went wrong in a case that failed (a far end that did not start or
/// died, a message out of sequence).
pub fn run(opts: BenchOptions, json: bool) -> Res<String> {
    let slot = opts.case_time.as_secs_f64() * 1e9 / opts.rounds as f64;
    let chatty = std::io::stderr().is_terminal();
    if chatty {
        let secs = opts.case_time.as_secs_f64() * CASES.len() as f64 * 1.1 + 0.5;
        eprint!("multiproc bench: {} cases, {} rounds, about {secs:.0} s ", CASES.len(), opts.rounds);
    }
    // Estimate each case's cost, and choose its iterations per round.
    let before = Load::sample();
    let mut iters = Vec::with_capacity(CASES.len());
    for c in &CASES {
        let t = (c.run)(c.pilot).map_err(|e| format!("{}: {e}", c.id))?;
        let per_op = (t.as_nanos() as f64 / c.pilot as f64).max(0.1);
        iters.push(((slot / per_op) as u64).clamp(1, 1 << 32));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(opts.rounds); CASES.len()];
    for round in 0..opts.rounds {
        let order: Vec<usize> =
            if round % 2 == 0 { (0..CASES.len()).collect() } else { (0..CASES.len()).rev().collect() };
        for i in order {
            let c = &CASES[i];
            let t = (c.run)(iters[i]).map_err(|e| format!("{}: {e}", c.id))?;
            samples[i].push(t.as_nanos() as f64 / iters[i] as f64);
        }
        if chatty {
            eprint!(".");
        }
    }
    if chatty {
        eprintln!();
    }
    let load = match (before, Load::sample()) {
        (Some(a), Some(b)) => a.others_until(&b),
        _ => None,
    };
    let ns = |id: &str| CASES.iter().position(|c| c.id == id).map(|i| median(&samples[i])).unwrap_or(f64::NAN);

    if json {
        let rows = ROWS.iter().map(|r| {
            let (ours, peer) = (ns(r.ours.1), ns(r.peer.1));
            let side = |(name, _): (&str, &str), t: f64| {
                Json::object([
                    ("name", Json::str(name)),
                    ("ns_per_op", Json::Float(t)),
                    ("figure", Json::str(r.show.figure(t))),
                ])
            };
            Json::object([
                ("case", Json::str(r.case)),
                ("multiproc", side(r.ours, ours)),
                ("peer", side(r.peer, peer)),
                ("ratio", Json::Float(peer / ours)),
            ])
        });
        let out = Json::object([
            ("rounds", Json::UInt(opts.rounds as u64)),
            ("case_time_s", Json::Float(opts.case_time.as_secs_f64())),
            ("cpus", Json::UInt(cpus() as u64)),
            ("other_cpus_busy", Json::opt(load, Json::Float)),
            ("rows", Json::Array(rows.collect())),
        ]);
        return Ok(format!("{out}\n"));
    }

    let mut t = Table::new(&[
        ("CASE", Align::Left),
        ("MULTIPROC", Align::Left),
        ("", Align::Right),
        ("PEER", Align::Left),
        ("", Align::Right),
        ("RATIO", Align::Right),
    ]);
    for r in &ROWS {
        let (ours, peer) = (ns(r.ours.1), ns(r.peer.1));
        t.row(vec![
            r.case.into(),
            r.ours.0.into(),
            r.show.figure(ours),
            r.peer.0.into(),
            r.show.figure(peer),
            format!("{}x", sig3(peer / ours)),
        ]);
    }
    Ok(format!(
        "multiproc bench: median of {} rounds per figure, all measured in this run\n\
         ratio = peer time / multiproc time (above 1: multiproc is faster)\n\n{}\n\
         The far end of every channel is a second process; receivers block, check every\n\
         sequence number and read every byte. Pipe in place: reserve/commit, recv_in_place.\n\
         memcpy: one core copying 1 MiB. Full suites: cargo bench --bench channel / sync.\n{}",
        opts.rounds,
        t.render(None),
        load.map_or(String::new(), |l| format!(
            "Meanwhile other processes kept {l:.1} of this machine's {} CPUs busy; the more, the noisier.\n",
            cpus()
        )),
    ))
}

/// CPUs this process may use.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU time counters at one moment, from `/proc`, in clock ticks (the
/// kernel's `USER_HZ`, 100 on Linux for these files).
struct Load {
    /// When the sample was taken.
    at: Instant,
    /// Busy time of the whole machine (user, nice, system, irq, softirq).
    busy: u64,
    /// This process's and its waited-for children's user and system time.
    own: u64,
}

impl Load {
    /// Ticks per second in `/proc/stat` and `/proc/self/stat`.
    const HZ: f64 = 100.0;

    /// The counters now; `None` where `/proc` cannot be read.
    fn sample() -> Option<Load> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).map_while(|x| x.parse().ok()).collect();
        let busy = cpu.first()? + cpu.get(1)? + cpu.get(2)? + cpu.get(5)? + cpu.get(6)?;
        // Fields after the parenthesised command name (which may hold
        // spaces): utime, stime, cutime, cstime are the 12th to 15th.
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest: Vec<u64> =
            me.rsplit_once(')')?.1.split_whitespace().skip(11).take(4).map_while(|x| x.parse().ok()).collect();
        let own = rest.iter().sum();
        (rest.len() == 4).then_some(Load { at: Instant::now(), busy, own })
    }

    /// CPUs' worth of time other processes used from `self` to `later`.
    fn others_until(&self, later: &Load) -> Option<f64> {
        let wall = (later.at - self.at).as_secs_f64();
        let others = (later.busy.checked_sub(self.busy)? as f64 - later.own.checked_sub(self.own)? as f64).max(0.0);
        (wall > 0.0).then(|| others / Self::HZ / wall)
    }
}

/// The median of `v` (NaN if empty).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

// ----- far ends -----

/// A child started with [`Process`]; killed if dropped before
/// [`finish`](Self::finish), so a failed case leaves nothing running.
struct Kid(Option<Process>);

impl Kid {
    /// Starts `target(arg)` in a spawned child.
    fn start<A: Serialize + DeserializeOwned + Send + 'static>(target: fn(A), arg: A) -> Res<Kid> {
        let mut p = Process::new(target, arg);
        p.start().map_err(ctx("start child"))?;
        Ok(Kid(Some(p)))
    }

    /// Waits (bounded) for the child to exit, and checks that it succeeded.
    fn finish(mut self) -> Res<()> {
        let mut p = self.0.take().expect("finished once");
        match p.join_timeout(STUCK).map_err(ctx("join child"))? {
            Some(0) => Ok(()),
            Some(code) => Err(format!("child exited with {code}")),
            None => {
                let _ = p.kill();
                let _ = p.join();
                Err(format!("child still running after {STUCK:?}"))
            }
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(p) = &mut self.0 {
            let _ = p.kill();
            let _ = p.join_timeout(STUCK);
        }
    }
}

/// This binary started as `__peer ARGS`; killed if dropped before
/// [`finish`](Self::finish).
struct PeerKid(Option<Child>);

impl PeerKid {
    /// Starts `multiproc __peer ARGS` with the given standard input and output.
    fn start(args: &[String], stdin: Stdio, stdout: Stdio) -> Res<PeerKid> {
        let exe = std::env::current_exe().map_err(ctx("find this program"))?;
        let child = Command::new(exe)
            .arg("__peer")
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(ctx("start peer process"))?;
        Ok(PeerKid(Some(child)))
    }

    /// The OS pipes of a child started with piped input and output.
    fn pipes(&mut self) -> Res<(ChildStdin, ChildStdout)> {
        let c = self.0.as_mut().expect("running");
        Ok((c.stdin.take().ok_or("no stdin pipe")?, c.stdout.take().ok_or("no stdout pipe")?))
    }

    /// Waits (bounded) for the peer to exit, and checks that it succeeded.
    /// Drop the parent's ends first, where the peer reads until end of input.
    fn finish(mut self) -> Res<()> {
        let mut c = self.0.take().expect("finished once");
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().map_err(ctx("wait for peer"))? {
                return if status.success() { Ok(()) } else { Err(format!("peer process failed: {status}")) };
            }
            if start.elapsed() > STUCK {
                let _ = c.kill();
                let _ = c.wait();
                return Err(format!("peer process still running after {STUCK:?}"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for PeerKid {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A connected socket pair: ours, and the peer's end as its standard input
/// and output.
fn socket_peer(args: &[String]) -> Res<(UnixStream, PeerKid)> {
    let (ours, theirs) = UnixStream::pair().map_err(ctx("socketpair"))?;
    let theirs_too = theirs.try_clone().map_err(ctx("dup socket"))?;
    let kid = PeerKid::start(args, Stdio::from(OwnedFd::from(theirs)), Stdio::from(OwnedFd::from(theirs_too)))?;
    Ok((ours, kid))
}

/// The hidden `__peer` subcommand: the far end of the socket and OS-pipe
/// cases, on standard input and output (unbuffered).
///
/// # Errors
///
/// An I/O error, or input that ends inside a message.
pub fn peer(mode: PeerMode) -> Res<()> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(File::from).map_err(ctx("dup"));
    let mut input = dup(std::io::stdin().as_fd())?;
    let mut output = dup(std::io::stdout().as_fd())?;
    match mode {
        PeerMode::Echo { size } => {
            let mut m = vec![0u8; size];
            while read_message(&mut input, &mut m)? {
                output.write_all(&m).map_err(ctx("write"))?;
            }
            Ok(())
        }
        PeerMode::Produce { size, count } => {
            let mut m = vec![0x5au8; size];
            output.write_all(&[1]).map_err(ctx("write ready"))?;
            input.read_exact(&mut [0u8]).map_err(ctx("read go"))?;
            for s in 0..count {
                m[..8].copy_from_slice(&s.to_le_bytes());
                output.write_all(&m).map_err(ctx("write"))?;
            }
            Ok(())
        }
    }
}

/// Fills `buf` from `r`: `false` at a clean end of input (before the
/// message's first byte), an error if the input ends inside it.
fn read_message(r: &mut impl Read, buf: &mut [u8]) -> Res<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err("input ended inside a message".into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(true)
}

// ----- round trips, 8 bytes -----

/// One untimed round trip, then `n` timed ones, of `rtt(sequence)`.
fn time_round_trips(n: u64, mut rtt: impl FnMut(u64) -> Res<()>) -> Res<Duration> {
    rtt(u64::MAX)?;
    let start = Instant::now();
    for i in 0..n {
        rtt(i)?;
    }
    Ok(start.elapsed())
}

/// An error unless the message that came back is the one sent.
fn check_seq(got: u64, want: u64) -> Res<()> {
    if got == want { Ok(()) } else { Err(format!("message {got} came back, {want} expected")) }
}

/// `Pipe` round trips: one duplex pipe, `Plain<u64>` messages, echoed by a
/// spawned child.
fn pipe_rtt(n: u64) -> Res<Duration> {
    let (here, there) = Pipe::new().map_err(ctx("Pipe::new"))?;
    let kid = Kid::start(pipe_echo, (there, n + 1))?;
    let t = time_round_trips(n, |i| {
        here.send(&Plain(i)).map_err(ctx("send"))?;
        let Plain(v): Plain<u64> = here.recv().map_err(ctx("recv"))?;
        check_seq(v, i)
    })?;
    kid.finish()?;
    Ok(t)
}

/// Child of [`pipe_rtt`]: echoes `n` messages.
fn pipe_echo((conn, n): (Connection, u64)) {
    for _ in 0..n {
        let v: Plain<u64> = conn.recv().expect("recv");
        conn.send(&v).expect("send");
    }
}

/// `Queue` round trips: one queue each way, `Plain<u64>` messages, echoed
/// by a spawned child.
fn queue_rtt(n: u64) -> Res<Duration> {
    let req = Queue::<Plain<u64>>::new(64 << 10).map_err(ctx("Queue::new"))?;
    let rep = Queue::<Plain<u64>>::new(64 << 10).map_err(ctx("Queue::new"))?;
    let kid = Kid::start(queue_echo, (req.clone(), rep.clone(), n + 1))?;
    let t = time_round_trips(n, |i| {
        req.put(Plain(i)).map_err(ctx("put"))?;
        let Plain(v) = rep.get().map_err(ctx("get"))?;
        check_seq(v, i)
    })?;
    kid.finish()?;
    Ok(t)
}

/// Child of [`queue_rtt`]: echoes `n` messages from one queue to the other.
fn queue_echo((req, rep, n): (Queue<Plain<u64>>, Queue<Plain<u64>>, u64)) {
    for _ in 0..n {
        let v = req.get().expect("get");
        rep.put(v).expect("put");
    }
}

/// Round trips over byte streams to a `__peer echo 8`.
fn stream_rtt(n: u64, mut tx: impl Write, mut rx: impl Read) -> Res<Duration> {
    let mut m = [0u8; 8];
    time_round_trips(n, |i| {
        tx.write_all(&i.to_le_bytes()).map_err(ctx("write"))?;
        rx.read_exact(&mut m).map_err(ctx("read"))?;
        check_seq(u64::from_le_bytes(m), i)
    })
}

/// `UnixStream` round trips to a `__peer echo 8` on the socket's other end.
fn unix_rtt(n: u64) -> Res<Duration> {
    let (sock, kid) = socket_peer(&["echo".into(), "8".into()])?;
    let t = stream_rtt(n, &sock, &sock)?;
    drop(sock);
    kid.finish()?;
    Ok(t)
}

/// Round trips over two OS pipes (the peer's stdin and stdout) to a
/// `__peer echo 8`.
fn os_pipe_rtt(n: u64) -> Res<Duration> {
    let mut kid = PeerKid::start(&["echo".into(), "8".into()], Stdio::piped(), Stdio::piped())?;
    let (tx, rx) = kid.pipes()?;
    let t = stream_rtt(n, &tx, rx)?;
    drop(tx);
    kid.finish()?;
    Ok(t)
}

// ----- one-way streams -----

/// A 64-byte message carrying its sequence number.
fn msg64(seq: u64) -> [u8; 64] {
    let mut m = [0x5a; 64];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

/// The sequence number at the start of a message.
fn seq_of(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("at least 8 bytes"))
}

/// Sum of the sequence numbers `0..n`: what a receiver must have seen.
fn seq_sum(n: u64) -> u64 {
    n.wrapping_mul(n.saturating_sub(1)) / 2
}

/// An error unless `sum` is that of the sequence numbers `0..n`.
fn check_sum(sum: u64, n: u64) -> Res<()> {
    if sum == seq_sum(n) { Ok(()) } else { Err("messages lost, repeated or corrupted".into()) }
}

/// Waits for a child's "ready", says "go", and times `receive`.
fn time_stream(ready: &Event, go: &Event, receive: impl FnOnce() -> Res<()>) -> Res<Duration> {
    if !ready.wait_timeout(STUCK) {
        return Err(format!("the sending child was not ready within {STUCK:?}"));
    }
    go.set();
    let start = Instant::now();
    receive()?;
    Ok(start.elapsed())
}

/// A one-way `Pipe` stream of 64-byte `Plain` messages from a spawned child.
fn pipe_64(n: u64) -> Res<Duration> {
    let (rx, tx) = Pipe::one_way_with_capacity(RING).map_err(ctx("Pipe::one_way"))?;
    let (ready, go) = (Event::new().map_err(ctx("Event"))?, Event::new().map_err(ctx("Event"))?);
    let kid = Kid::start(pipe_produce_64, (tx, ready.clone(), go.clone(), n))?;
    let t = time_stream(&ready, &go, || {
        let mut sum = 0u64;
        for _ in 0..n {
            let Plain(m): Plain<[u8; 64]> = rx.recv().map_err(ctx("recv"))?;
            sum = sum.wrapping_add(seq_of(black_box(&m)));
        }
        check_sum(sum, n)
    })?;
    kid.finish()?;
    Ok(t)
}

/// Child of [`pipe_64`]: sends `n` messages once told to go.
fn pipe_produce_64((tx, ready, go, n): (Connection<SendOnly>, Event, Event, u64)) {
    ready.set();
    go.wait();
    for s in 0..n {
        tx.send(&Plain(msg64(s))).expect("send");
    }
}

/// Receives `n` messages of `size` bytes from a `__peer produce` on a socket.
fn unix_stream(n: u64, size: usize) -> Res<Duration> {
    let (mut sock, kid) = socket_peer(&["produce".into(), size.to_string(), n.to_string()])?;
    let mut m = vec![0u8; size];
    sock.read_exact(&mut m[..1]).map_err(ctx("read ready"))?;
    sock.write_all(&[1]).map_err(ctx("write go"))?;
    let start = Instant::now();
    let mut sum = 0u64;
    for _ in 0..n {
        sock.read_exact(&mut m).map_err(ctx("read"))?;
        sum = sum.wrapping_add(seq_of(black_box(&m)));
    }
    let t = start.elapsed();
    check_sum(sum, n)?;
    drop(sock);
    kid.finish()?;
    Ok(t)
}

/// A `UnixStream` stream of 64-byte messages from a `__peer produce`.
fn unix_64(n: u64) -> Res<Duration> {
    unix_stream(n, 64)
}

// ----- 1 MiB messages -----

/// Reads every byte of `bytes` (an XOR fold), as a receiver that uses a
/// message in place would.
fn fold(bytes: &[u8]) -> u64 {
    let mut acc = [0u64; 4];
    let chunks = bytes.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        for (k, a) in acc.iter_mut().enumerate() {
            *a ^= u64::from_ne_bytes(c[8 * k..8 * k + 8].try_into().expect("8 bytes"));
        }
    }
    rest.iter().fold(acc[0] ^ acc[1] ^ acc[2] ^ acc[3], |a, &b| a ^ u64::from(b))
}

/// A one-way `Pipe` stream of 1 MiB messages written in place
/// (`reserve`/`commit`) by a spawned child and read in place
/// (`recv_in_place`, every byte folded).
fn pipe_1m(n: u64) -> Res<Duration> {
    let (rx, tx): (Connection<RecvOnly>, _) = Pipe::one_way_with_capacity(BIG_RING).map_err(ctx("Pipe::one_way"))?;
    let (ready, go) = (Event::new().map_err(ctx("Event"))?, Event::new().map_err(ctx("Event"))?);
    let kid = Kid::start(pipe_produce_1m, (tx, ready.clone(), go.clone(), n))?;
    let t = time_stream(&ready, &go, || {
        let (mut sum, mut acc) = (0u64, 0u64);
        for _ in 0..n {
            let v = rx.recv_in_place().map_err(ctx("recv_in_place"))?;
            if v.len() != MIB {
                return Err(format!("a message of {} bytes, 1 MiB expected", v.len()));
            }
            acc ^= fold(&v);
            sum = sum.wrapping_add(seq_of(&v));
        }
        black_box(acc);
        check_sum(sum, n)
    })?;
    kid.finish()?;
    Ok(t)
}

/// Child of [`pipe_1m`]: writes `n` messages of 1 MiB in place once told to go.
fn pipe_produce_1m((tx, ready, go, n): (Connection<SendOnly>, Event, Event, u64)) {
    let mut src = vec![0x5au8; MIB];
    ready.set();
    go.wait();
    for s in 0..n {
        src[..8].copy_from_slice(&s.to_le_bytes());
        let mut slot = tx.reserve(MIB).expect("reserve");
        slot.copy_from_slice(&src);
        slot.commit();
    }
}

/// A `UnixStream` stream of 1 MiB messages from a `__peer produce`, read
/// into a buffer.
fn unix_1m(n: u64) -> Res<Duration> {
    unix_stream(n, MIB)
}

/// One core copying 1 MiB from one buffer to another: the floor of any
/// 1 MiB message.
fn memcpy_1m(n: u64) -> Res<Duration> {
    let src = vec![0x5au8; MIB];
    let mut dst = vec![0u8; MIB];
    dst.copy_from_slice(&src); // fault the pages in before the clock starts
    let start = Instant::now();
    for _ in 0..n {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    Ok(start.elapsed())
}

// ----- locks -----

/// Uncontended lock and unlock of a `multiproc::Mutex<()>`.
fn mutex(n: u64) -> Res<Duration> {
    let m = Mutex::new(()).map_err(ctx("Mutex::new"))?;
    let start = Instant::now();
    for _ in 0..n {
        drop(black_box(m.lock().map_err(ctx("lock"))?));
    }
    Ok(start.elapsed())
}

/// Uncontended lock and unlock of a `std::sync::Mutex<()>`.
fn std_mutex(n: u64) -> Res<Duration> {
    let m = std::sync::Mutex::new(());
    let start = Instant::now();
    for _ in 0..n {
        drop(black_box(m.lock().map_err(ctx("lock"))?));
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_every_row_names_a_case() {
        for r in &ROWS {
            for id in [r.ours.1, r.peer.1] {
                assert!(CASES.iter().any(|c| c.id == id), "{id}");
            }
        }
    }

    #[test]
    fn bench_median_and_sums() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(seq_sum(4), 6);
        assert_eq!(seq_sum(0), 0);
    }

    #[test]
    fn bench_read_message_tells_clean_end_from_torn() {
        let mut buf = [0u8; 4];
        assert_eq!(read_message(&mut &[1u8, 2, 3, 4][..], &mut buf), Ok(true));
        assert_eq!(read_message(&mut &[][..], &mut buf), Ok(false));
        assert!(read_message(&mut &[1u8, 2][..], &mut buf).is_err());
    }

    #[test]
    fn bench_figures() {
        assert_eq!(Show::Time.figure(6210.0), "6.21 µs");
        assert_eq!(Show::Msgs.figure(80.0), "12.5 M msg/s");
        assert_eq!(Show::Bytes(MIB).figure(104857.6), "10.0 GB/s");
    }
}
