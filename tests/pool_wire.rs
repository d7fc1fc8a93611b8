//! `Pool` and its wire format: primitive numbers as raw bytes, other serde
//! types through postcard, exactly sized input streamed, one error slot per
//! chunk; and `starmap` at every arity.

multiproc::test_support!();

mod common;

use std::time::Duration;

use common::{WATCH, sigkill_after, watchdog};
use multiproc::{Pool, PoolError};

fn half(x: f64) -> f64 {
    x / 2.0
}

fn wide(x: u128) -> i8 {
    (x % 200) as i8
}

fn negate(x: i64) -> i64 {
    -x
}

fn label(x: u32) -> String {
    format!("#{x}")
}

fn len_of(s: String) -> usize {
    s.len()
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn panic_on_7_and_9(x: u64) -> u64 {
    assert!(x != 7 && x != 9, "bad {x}");
    x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn map_of_raw_and_serde_types_matches_serial() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let floats: Vec<f64> = (0..10_000).map(|i| i as f64 * 0.75 - 3.0).collect();
    let serial: Vec<f64> = floats.iter().copied().map(half).collect();
    assert_eq!(pool.map(half, floats.clone()).unwrap(), serial);
    let wides: Vec<u128> = (0..5_000).map(|i| u128::MAX - i).collect();
    assert_eq!(pool.map(wide, wides.clone()).unwrap(), wides.into_iter().map(wide).collect::<Vec<_>>());
    // Raw arguments, serde results, and the other way round.
    assert_eq!(pool.map(label, 0..1_000).unwrap(), (0..1_000).map(label).collect::<Vec<_>>());
    let words: Vec<String> = (0..1_000).map(label).collect();
    assert_eq!(
        pool.map_chunksize(len_of, words.clone(), 7).unwrap(),
        words.iter().map(String::len).collect::<Vec<_>>()
    );
    // An input whose length is not known up front (collected first).
    let odd: Vec<i64> = (0..20_000).filter(|x| x % 2 == 1).collect();
    assert_eq!(
        pool.map(negate, (0..20_000).filter(|x| x % 2 == 1)).unwrap(),
        odd.iter().map(|&x| -x).collect::<Vec<_>>()
    );
}

#[test]
fn map_with_a_chunk_larger_than_half_the_queue_is_split_and_correct() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    // 1,200,000 u64 are 9.6 MB, more than the 8 MiB task queue: one chunk
    // of all of them cannot be written in place, so it is split.
    let n = 1_200_000u64;
    let got = pool.map_chunksize(square, 0..n, n as usize).unwrap();
    assert_eq!(got.len(), n as usize);
    assert!(got.iter().enumerate().all(|(i, &v)| v == square(i as u64)));
    let got = pool.map(square, 0..n).unwrap();
    assert!(got.iter().enumerate().all(|(i, &v)| v == square(i as u64)));
}

/// An iterator that announces more items than it yields.
struct Liar(u64);

impl Iterator for Liar {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        (self.0 < 10).then(|| {
            self.0 += 1;
            self.0
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (100, Some(100))
    }
}

#[test]
fn map_over_an_input_shorter_than_its_size_hint_is_an_input_error() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    match pool.map_chunksize(square, Liar(0), 4) {
        Err(PoolError::Input(m)) => assert!(m.contains("10 of the 100"), "{m}"),
        other => panic!("expected an input error, got {other:?}"),
    }
    assert_eq!(pool.map(square, 0..10).unwrap(), (0..10).map(square).collect::<Vec<_>>());
}

/// Leaves a file named after its argument in the directory, then fails on
/// 7 and 9.
fn touch_and_check(x: (u64, String)) -> u64 {
    std::fs::write(format!("{}/{}", x.1, x.0), b"").unwrap();
    panic_on_7_and_9(x.0)
}

#[test]
fn a_chunk_reports_its_first_panic_and_every_task_of_it_still_runs() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    for chunksize in [1, 4, 100] {
        match pool.map_chunksize(panic_on_7_and_9, 0..40, chunksize) {
            Err(PoolError::Task { index: 7, message }) => assert!(message.contains("bad 7"), "{message}"),
            other => panic!("chunksize {chunksize}: expected task 7's error, got {other:?}"),
        }
    }
    let dir = std::env::temp_dir().join(format!("multiproc-pool-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let items: Vec<(u64, String)> = (0..12).map(|i| (i, dir.display().to_string())).collect();
    let got = pool.map_chunksize(touch_and_check, items, 12);
    let ran = std::fs::read_dir(&dir).unwrap().count();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(got, Err(PoolError::Task { index: 7, .. })), "{got:?}");
    assert_eq!(ran, 12, "the tasks after the panic did not all run");
    assert_eq!(pool.map(square, 0..100).unwrap(), (0..100).map(square).collect::<Vec<_>>());
}

#[test]
fn raw_map_worker_killed_mid_chunk_is_an_error_and_the_next_map_works() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    let victim = pool.pids()[1];
    let killer = sigkill_after(victim, Duration::from_millis(300));
    let got = pool.map_chunksize(sleep_ms, [1_000u64, 1_000], 1);
    assert!(killer.join().unwrap());
    assert!(matches!(got, Err(PoolError::WorkerDied { exitcode: Some(-9), .. })), "{got:?}");
    assert_eq!(pool.map(square, 0..100_000).unwrap(), (0..100_000).map(square).collect::<Vec<_>>());
}

fn one(a: u8) -> u16 {
    u16::from(a) * 2
}

fn three(a: u32, b: String, c: bool) -> String {
    format!("{a}{b}{c}")
}

fn six(a: u8, b: u16, c: u32, d: u64, e: i8, f: f32) -> f64 {
    f64::from(a) + f64::from(b) + f64::from(c) + d as f64 + f64::from(e) + f64::from(f)
}

fn power(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

fn panics_on_two(a: u32, b: u32) -> u32 {
    assert_ne!(a, 2, "two is out");
    a + b
}

#[test]
fn starmap_takes_one_to_six_arguments() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    assert_eq!(pool.starmap(one as fn(u8) -> u16, [(1,), (2,), (200,)]).unwrap(), vec![2, 4, 400]);
    let triples = vec![(1, "a".to_string(), true), (2, String::new(), false)];
    assert_eq!(
        pool.starmap(three as fn(u32, String, bool) -> String, triples).unwrap(),
        vec!["1atrue".to_string(), "2false".to_string()]
    );
    let sixes: Vec<(u8, u16, u32, u64, i8, f32)> = (0..100).map(|i| (i, 2, 3, 4, -5, 0.5)).collect();
    let serial: Vec<f64> = sixes.iter().map(|&(a, b, c, d, e, f)| six(a, b, c, d, e, f)).collect();
    assert_eq!(pool.starmap(six as fn(u8, u16, u32, u64, i8, f32) -> f64, sixes).unwrap(), serial);
    assert_eq!(pool.starmap(power as fn(u64, u32) -> u64, [(2, 10), (3, 5), (4, 3)]).unwrap(), vec![1024, 243, 64]);
    let empty: Vec<(u8,)> = Vec::new();
    assert_eq!(pool.starmap(one as fn(u8) -> u16, empty).unwrap(), Vec::<u16>::new());
    match pool.starmap(panics_on_two as fn(u32, u32) -> u32, [(1, 1), (2, 2), (3, 3)]) {
        Err(PoolError::Task { index: 1, message }) => assert!(message.contains("two is out"), "{message}"),
        other => panic!("expected task 1's error, got {other:?}"),
    }
    let r = pool.starmap_async(three as fn(u32, String, bool) -> String, [(7, "x".to_string(), true)]);
    assert_eq!(r.get().unwrap(), vec!["7xtrue".to_string()]);
}

#[test]
fn a_chunk_larger_than_the_task_queue_is_an_error_not_a_hang() {
    let _w = watchdog(WATCH);
    let mut pool = Pool::new(2).unwrap();
    // Strings travel through postcard, so such a chunk cannot be split.
    let huge = vec!["x".repeat(1 << 20); 9];
    assert!(matches!(pool.map_chunksize(len_of, huge.clone(), 9), Err(PoolError::Encode(_))));
    assert!(matches!(pool.imap_chunksize(len_of, huge.clone(), 9).next(), Some(Err(PoolError::Encode(_)))));
    assert!(matches!(pool.map_async_chunksize(len_of, huge.clone(), 9).get(), Err(PoolError::Encode(_))));
    // In smaller chunks it goes through.
    assert_eq!(pool.map_chunksize(len_of, huge, 1).unwrap(), vec![1 << 20; 9]);
}
