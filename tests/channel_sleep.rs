//! Both sides of a request/reply exchange sleep on every message (each
//! works longer than any receiver spins before it answers): the receivers
//! of each queue ask their wakers to fence fully and then sleep without a
//! barrier, and no wake-up is lost (see "Sides that sleep on every
//! message" in the crate's `sync::wait`). Alone in its binary, so that no
//! other test's processes take the cores and turn sleeps into spins.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{WATCH, unique, watchdog};
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

/// Child target: answers every request after working.
fn reply_after_work((requests, replies): (Queue<u32>, Queue<u32>)) {
    for _ in 0..ROUNDS {
        let n = requests.get().expect("get in child");
        busy(WORK);
        replies.put(n + 1).expect("put in child");
    }
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

#[test]
fn receivers_that_sleep_on_every_message_sleep_without_a_barrier_and_none_wakes_late() {
    let _w = watchdog(WATCH);
    let (req_name, _u1) = unique("sleep-requests");
    let (rep_name, _u2) = unique("sleep-replies");
    let requests = Queue::<u32>::create(req_name.as_str(), 4096).unwrap();
    let replies = Queue::<u32>::create(rep_name.as_str(), 4096).unwrap();
    let mut child = Process::new(reply_after_work, (requests.clone(), replies.clone()));
    child.start().unwrap();
    for n in 0..ROUNDS {
        busy(WORK);
        requests.put(n).unwrap();
        assert_eq!(replies.get().unwrap(), n + 1);
    }
    assert_eq!(common::join(&mut child), 0);
    for name in [&req_name, &rep_name] {
        let (line, numbers) = receivers_asleep(name);
        let [now, sleeps, late, epoch] = numbers[..] else { panic!("unexpected line: {line}") };
        assert_eq!(now, 0, "{line}");
        assert!(sleeps >= u64::from(ROUNDS) * 3 / 4, "nearly every get slept: {line}");
        assert_eq!(late, 0, "no wake-up was lost: {line}");
        assert!(epoch >= 1 && epoch * 4 <= sleeps, "few sleeps needed a barrier: {line}");
    }
}
