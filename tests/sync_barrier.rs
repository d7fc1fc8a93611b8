//! `Barrier`: indices, rounds, timeouts, abort/reset, and dead parties,
//! between threads and real processes.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, join, unique, watchdog};
use multiproc::{Barrier, BrokenCause, Process, ShmError};

const LONG: Duration = Duration::from_secs(20);

/// Polls until `n` parties wait, failing after 20 s.
fn wait_for_waiting(b: &Barrier, n: usize) {
    let start = Instant::now();
    while b.n_waiting() != n {
        assert!(start.elapsed() < LONG, "{} parties waiting, not {n}", b.n_waiting());
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn barrier_of_zero_parties_is_an_error() {
    assert!(matches!(Barrier::new(0), Err(ShmError::InvalidSize { .. })));
    let (name, _cleanup) = unique("barrier-zero");
    assert!(matches!(Barrier::create(name.as_str(), 0), Err(ShmError::InvalidSize { .. })));
    assert!(matches!(Barrier::open(name.as_str()), Err(ShmError::NotFound { .. })), "nothing was created");
}

#[test]
fn barrier_of_one_party_trips_at_once() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(1).unwrap();
    assert_eq!(b.parties(), 1);
    for _ in 0..3 {
        assert_eq!(b.wait().unwrap(), 0);
    }
    assert_eq!(b.wait_timeout(Duration::ZERO).unwrap(), 0);
}

#[test]
fn barrier_indices_are_distinct_over_many_rounds_between_threads() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(4).unwrap();
    let rounds = 200;
    let per_thread: Vec<Vec<usize>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..rounds).map(|_| b.wait_timeout(LONG).unwrap()).collect::<Vec<_>>()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in 0..rounds {
        let mut got: Vec<usize> = per_thread.iter().map(|v| v[r]).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3], "round {r}");
    }
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
}

#[test]
fn barrier_timeout_breaks_it_for_everyone() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let patient = s.spawn(|| b.wait_timeout(LONG));
        wait_for_waiting(&b, 1);
        let start = Instant::now();
        let err = b.wait_timeout(Duration::from_millis(200)).unwrap_err();
        let took = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "took {took:?}");
        let other = patient.join().unwrap().unwrap_err();
        assert_eq!(other.cause(), BrokenCause::TimedOut);
    });
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    assert_eq!(b.wait().unwrap_err().cause(), BrokenCause::TimedOut, "stays broken");
    b.reset();
    assert!(!b.is_broken());
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| b.wait_timeout(LONG))).collect();
        for h in hs {
            h.join().unwrap().expect("works after reset");
        }
    });
}

#[test]
fn barrier_abort_wakes_waiters_and_refuses_newcomers_until_reset() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(3).unwrap();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..2).map(|_| s.spawn(|| b.wait_timeout(LONG))).collect();
        wait_for_waiting(&b, 2);
        let start = Instant::now();
        b.abort();
        for h in hs {
            assert_eq!(h.join().unwrap().unwrap_err().cause(), BrokenCause::Aborted);
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    });
    assert!(b.is_broken());
    let err = b.wait().unwrap_err();
    assert_eq!(err.cause(), BrokenCause::Aborted);
    assert_eq!(err.to_string(), "barrier is broken: it was aborted");
    b.reset();
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
}

#[test]
fn barrier_reset_while_waiting_breaks_that_round_only() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(2).unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(LONG));
        wait_for_waiting(&b, 1);
        b.reset();
        assert_eq!(h.join().unwrap().unwrap_err().cause(), BrokenCause::Reset);
    });
    assert!(!b.is_broken(), "a reset leaves it ready");
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(LONG));
        let mine = b.wait_timeout(LONG).unwrap();
        let theirs = h.join().unwrap().unwrap();
        assert_eq!(mine + theirs, 1);
    });
}

#[test]
fn barrier_named_create_open() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("barrier-named");
    let a = Barrier::create(name.as_str(), 2).unwrap();
    let b = Barrier::open(name.as_str()).unwrap();
    let c = Barrier::open_or_create(name.as_str(), 9).unwrap();
    assert_eq!(c.parties(), 2, "open_or_create of an existing one ignores the count");
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(LONG).unwrap());
        let mine = a.wait_timeout(LONG).unwrap();
        assert_eq!(mine + h.join().unwrap(), 1);
    });
    assert!(matches!(multiproc::Event::open(name.as_str()), Err(ShmError::Mismatch { .. })));
}

// --- Across processes ---

/// Waits `rounds` times; exits with 10 + the first round's index, or 2 if
/// any wait failed.
fn party(arg: (Barrier, u32)) {
    let (b, rounds) = arg;
    let first = b.wait_timeout(LONG);
    for _ in 1..rounds {
        if b.wait_timeout(LONG).is_err() {
            std::process::exit(2);
        }
    }
    std::process::exit(match first {
        Ok(i) => 10 + i as i32,
        Err(_) => 2,
    });
}

#[test]
fn barrier_indices_are_distinct_across_three_processes() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(3).unwrap();
    let rounds = 100;
    let mut kids: Vec<Process> = (0..2).map(|_| Process::new(party, (b.clone(), rounds))).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    let mine = b.wait_timeout(LONG).unwrap();
    for _ in 1..rounds {
        b.wait_timeout(LONG).unwrap();
    }
    let mut got: Vec<usize> = kids.iter_mut().map(join).map(|c| usize::try_from(c - 10).unwrap()).collect();
    got.push(mine);
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2]);
}

/// Waits once (20 s at most) and exits with a code for the outcome:
/// 0 tripped, 4 broken by a dead party, 5 timed out, 6 another cause.
fn wait_and_report(b: Barrier) {
    std::process::exit(match b.wait_timeout(LONG) {
        Ok(_) => 0,
        Err(e) => match e.cause() {
            BrokenCause::PartyDied => 4,
            BrokenCause::TimedOut => 5,
            _ => 6,
        },
    });
}

/// Waits until killed.
fn wait_forever(b: Barrier) {
    let _ = b.wait();
    std::process::exit(3);
}

#[test]
fn barrier_child_killed_while_waiting_breaks_it_instead_of_hanging() {
    let _w = watchdog(WATCH);
    // Four parties: the victim, a child that waits, the parent, and one that
    // never comes, so the round cannot trip and must break.
    let b = Barrier::new(4).unwrap();
    let mut victim = Process::new(wait_forever, b.clone());
    victim.start().unwrap();
    wait_for_waiting(&b, 1);
    let mut other = Process::new(wait_and_report, b.clone());
    other.start().unwrap();
    wait_for_waiting(&b, 2);
    std::thread::sleep(Duration::from_millis(50));
    victim.kill().unwrap();
    assert_eq!(join(&mut victim), -9);

    let start = Instant::now();
    let err = b.wait_timeout(LONG).unwrap_err();
    assert_eq!(err.cause(), BrokenCause::PartyDied, "{err}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert_eq!(join(&mut other), 4, "the other waiting child got PartyDied too");
    assert!(b.is_broken());
    assert_eq!(b.wait().unwrap_err().cause(), BrokenCause::PartyDied, "stays broken");

    // After a reset the survivors carry on.
    b.reset();
    let mut kids: Vec<Process> = (0..3).map(|_| Process::new(wait_and_report, b.clone())).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    b.wait_timeout(LONG).expect("a full round after reset");
    for k in &mut kids {
        assert_eq!(join(k), 0);
    }
}

#[test]
fn barrier_party_killed_and_not_yet_reaped_counts_as_dead() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(3).unwrap();
    let mut victim = Process::new(wait_forever, b.clone());
    victim.start().unwrap();
    wait_for_waiting(&b, 1);
    std::thread::sleep(Duration::from_millis(50));
    // Killed, but left a zombie while we wait: still dead to the barrier.
    victim.kill().unwrap();
    let start = Instant::now();
    let err = b.wait_timeout(LONG).unwrap_err();
    assert_eq!(err.cause(), BrokenCause::PartyDied, "{err}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert_eq!(join(&mut victim), -9);
}

#[test]
fn barrier_timeout_in_a_child_breaks_it_for_the_parent() {
    let _w = watchdog(WATCH);
    let b = Barrier::new(3).unwrap();
    let mut impatient = Process::new(wait_briefly, b.clone());
    impatient.start().unwrap();
    let start = Instant::now();
    let err = b.wait_timeout(LONG).unwrap_err();
    assert_eq!(err.cause(), BrokenCause::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_eq!(join(&mut impatient), 5);
}

/// Waits 300 ms at most; exits 5 on a timeout.
fn wait_briefly(b: Barrier) {
    std::process::exit(match b.wait_timeout(Duration::from_millis(300)) {
        Ok(_) => 0,
        Err(e) if e.is_timeout() => 5,
        Err(_) => 6,
    });
}

fn abort_by_name(name: String) {
    Barrier::open(name.as_str()).unwrap().abort();
}

#[test]
fn barrier_abort_from_another_process_wakes_the_parent() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("barrier-abort");
    let b = Barrier::create(name.as_str(), 2).unwrap();
    let mut child = Process::new(abort_by_name, name.clone());
    child.start().unwrap();
    let err = b.wait_timeout(LONG).unwrap_err();
    assert_eq!(err.cause(), BrokenCause::Aborted);
    assert_eq!(join(&mut child), 0);
}
