//! `Event`: set/clear/wait between threads and real processes.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, join, unique, wait_for_flag, watchdog};
use multiproc::{Event, Process, ShmError, Value};

#[test]
fn event_set_clear_is_set() {
    let ev = Event::new().unwrap();
    assert!(!ev.is_set());
    ev.set();
    assert!(ev.is_set());
    ev.set();
    assert!(ev.is_set());
    ev.clear();
    assert!(!ev.is_set());
    ev.clear();
    assert!(!ev.is_set());
}

#[test]
fn event_wait_returns_at_once_when_set() {
    let _w = watchdog(WATCH);
    let ev = Event::new().unwrap();
    ev.set();
    ev.wait();
    assert!(ev.wait_timeout(Duration::ZERO));
}

#[test]
fn event_wait_timeout_gives_up_in_time() {
    let _w = watchdog(WATCH);
    let ev = Event::new().unwrap();
    let start = Instant::now();
    assert!(!ev.wait_timeout(Duration::from_millis(200)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "took {took:?}");
    assert!(!ev.wait_timeout(Duration::ZERO));
}

#[test]
fn event_set_wakes_every_waiting_thread() {
    let _w = watchdog(WATCH);
    let ev = Event::new().unwrap();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..6).map(|_| s.spawn(|| ev.wait_timeout(Duration::from_secs(20)))).collect();
        std::thread::sleep(Duration::from_millis(100));
        ev.set();
        for h in hs {
            assert!(h.join().unwrap());
        }
    });
}

#[test]
fn event_set_then_clear_still_releases_waiters() {
    let _w = watchdog(WATCH);
    let ev = Event::new().unwrap();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| ev.wait_timeout(Duration::from_secs(20)))).collect();
        std::thread::sleep(Duration::from_millis(200));
        ev.set();
        ev.clear();
        for h in hs {
            assert!(h.join().unwrap(), "a waiter missed a set that was cleared at once");
        }
    });
    assert!(!ev.is_set());
}

#[test]
fn event_named_create_open() {
    let (name, _cleanup) = unique("event-named");
    let a = Event::create(name.as_str()).unwrap();
    let b = Event::open(name.as_str()).unwrap();
    let c = Event::open_or_create(name.as_str()).unwrap();
    a.set();
    assert!(b.is_set() && c.is_set());
    assert!(matches!(multiproc::Semaphore::open(name.as_str()), Err(ShmError::Mismatch { .. })));
}

// --- Across processes ---

fn set_after(arg: (Event, u64)) {
    let (ev, ms) = arg;
    std::thread::sleep(Duration::from_millis(ms));
    ev.set();
}

#[test]
fn event_set_in_a_child_wakes_the_parent() {
    let _w = watchdog(WATCH);
    let ev = Event::new().unwrap();
    let mut child = Process::new(set_after, (ev.clone(), 200));
    child.start().unwrap();
    let start = Instant::now();
    assert!(ev.wait_timeout(Duration::from_secs(20)), "the child's set did not wake the parent");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(join(&mut child), 0);
    assert!(ev.is_set());
}

fn set_by_name(name: String) {
    Event::open(name.as_str()).unwrap().set();
}

#[test]
fn event_named_set_in_a_child_that_opens_it() {
    let _w = watchdog(WATCH);
    let (name, _cleanup) = unique("event-child");
    let ev = Event::create(name.as_str()).unwrap();
    let mut child = Process::new(set_by_name, name.clone());
    child.start().unwrap();
    assert!(ev.wait_timeout(Duration::from_secs(20)));
    assert_eq!(join(&mut child), 0);
}

/// Exits 0 if the event is set within 20 s.
fn wait_in_child(arg: (Event, Value<u32>)) {
    let (ev, flag) = arg;
    flag.set(1).unwrap();
    std::process::exit(if ev.wait_timeout(Duration::from_secs(20)) { 0 } else { 2 });
}

fn wait_forever(arg: (Event, Value<u32>)) {
    let (ev, flag) = arg;
    flag.set(1).unwrap();
    ev.wait();
    std::process::exit(3);
}

#[test]
fn event_set_in_the_parent_wakes_children_despite_a_killed_waiter() {
    let _w = watchdog(WATCH);
    let ev = Event::new().unwrap();
    let flags: Vec<Value<u32>> = (0..3).map(|_| Value::new(0u32).unwrap()).collect();
    let mut victim = Process::new(wait_forever, (ev.clone(), flags[0].clone()));
    victim.start().unwrap();
    let mut kids: Vec<Process> =
        flags[1..].iter().map(|f| Process::new(wait_in_child, (ev.clone(), f.clone()))).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    for f in &flags {
        wait_for_flag(f, 1);
    }
    std::thread::sleep(Duration::from_millis(200));
    victim.kill().unwrap();
    assert_eq!(join(&mut victim), -9);
    ev.set();
    for k in &mut kids {
        assert_eq!(join(k), 0);
    }
}
