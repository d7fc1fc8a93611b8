//! Both sides of a request/reply exchange sleep on every message (each
//! works longer than any receiver spins before it answers): the receivers
//! of each queue ask their wakers to fence fully and then sleep without a
//! barrier, and no wake-up is lost (see "Sides that sleep on every
//! message" in the crate's `sync::wait`), whether they receive with `get`
//! or with `channel::wait`. Alone in its binary, and its tests one at a
//! time, so that no other test's processes take the cores and turn sleeps
//! into spins.

multiproc::test_support!();

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{WATCH, unique, watchdog};
use multiproc::channel::wait;
use multiproc::{Process, Queue, segment};

const ROUNDS: u32 = 200;
/// Each side's work before it sends.
const WORK: Duration = Duration::from_millis(1);

fn busy(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Child target: answers every request after working; with `select`, it
/// waits for each with `channel::wait` and then takes it with `try_get`.
fn reply_after_work((requests, replies, select): (Queue<u32>, Queue<u32>, bool)) {
    for _ in 0..ROUNDS {
        let n = take(&requests, select);
        busy(WORK);
        replies.put(n + 1).expect("put in child");
    }
}

/// The next message of `q`: `get`, or `wait` and then `try_get`.
fn take(q: &Queue<u32>, select: bool) -> u32 {
    if !select {
        return q.get().expect("get");
    }
    assert_eq!(wait(&[q], None), [0]);
    q.try_get().expect("wait said a message is there")
}

/// The numbers of a queue's "receivers asleep" line: sleepers now, sleeps,
/// sleeps found late, epoch.
fn receivers_asleep(name: &str) -> (String, Vec<u64>) {
    let d = segment::inspect(name).expect("inspect");
    let line = d.fields.iter().find(|(k, _)| k == "receivers asleep").map(|(_, v)| v.clone());
    let line = line.unwrap_or_else(|| panic!("no receivers line: {d:?}"));
    let numbers =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    (line, numbers)
}

/// Both sides exchange `ROUNDS` messages, each working before it sends,
/// and receive with `get` or (`select`) with `wait` and `try_get`; then
/// each queue's receivers must have slept on nearly every message, with
/// few barriers, and no sleep may have ended its slice to find its message.
fn sleep_on_every_message(tag: &str, select: bool) {
    // One exchange at a time: two at once would share the two cores, and
    // their sleeps would turn into spins.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _w = watchdog(WATCH);
    let (req_name, _u1) = unique(&format!("{tag}-requests"));
    let (rep_name, _u2) = unique(&format!("{tag}-replies"));
    let requests = Queue::<u32>::create(req_name.as_str(), 4096).unwrap();
    let replies = Queue::<u32>::create(rep_name.as_str(), 4096).unwrap();
    let mut child = Process::new(reply_after_work, (requests.clone(), replies.clone(), select));
    child.start().unwrap();
    for n in 0..ROUNDS {
        busy(WORK);
        requests.put(n).unwrap();
        assert_eq!(take(&replies, select), n + 1);
    }
    assert_eq!(common::join(&mut child), 0);
    for name in [&req_name, &rep_name] {
        let (line, numbers) = receivers_asleep(name);
        let [now, sleeps, late, epoch] = numbers[..] else { panic!("unexpected line: {line}") };
        assert_eq!(now, 0, "{line}");
        assert!(sleeps >= u64::from(ROUNDS) * 3 / 4, "nearly every receive slept: {line}");
        assert_eq!(late, 0, "no wake-up was lost: {line}");
        assert!(epoch >= 1 && epoch * 4 <= sleeps, "few sleeps needed a barrier: {line}");
    }
}

#[test]
fn receivers_that_sleep_on_every_message_sleep_without_a_barrier_and_none_wakes_late() {
    sleep_on_every_message("sleep", false);
}

#[test]
fn a_wait_over_channels_that_sleeps_on_every_message_arms_its_rings_once() {
    sleep_on_every_message("sleep-wait", true);
}
