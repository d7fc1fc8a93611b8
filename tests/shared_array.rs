//! `Array<T>` across real processes.

multiproc::test_support!();

mod common;

use std::time::Duration;

use common::{join, unique, wait_for_flag};
use multiproc::{Array, LockError, Process, ShmError, Value};

fn double_all(arr: Array<i64>) {
    for x in arr.lock().unwrap().iter_mut() {
        *x *= 2;
    }
}

#[test]
fn array_changes_made_by_a_child_are_seen() {
    let arr = Array::new(&[1i64, 2, 3, 4]).unwrap();
    let mut child = Process::new(double_all, arr.clone());
    child.start().unwrap();
    assert_eq!(join(&mut child), 0);
    assert_eq!(arr.to_vec().unwrap(), vec![2, 4, 6, 8]);
}

#[test]
fn array_filled_len_get_set() {
    let arr = Array::filled(7u16, 5).unwrap();
    assert_eq!(arr.len(), 5);
    assert!(!arr.is_empty());
    arr.set(4, 9).unwrap();
    assert_eq!(arr.get(4).unwrap(), 9);
    assert_eq!(arr.get(0).unwrap(), 7);
    assert_eq!(&arr.lock().unwrap()[3..], &[7, 9]);
    assert!(Array::<u8>::new(&[]).unwrap().is_empty());
}

#[test]
#[should_panic(expected = "out of bounds")]
fn array_get_out_of_bounds_panics_like_a_slice() {
    let arr = Array::filled(0u8, 3).unwrap();
    let _ = arr.get(3);
}

#[test]
fn array_named_open_takes_the_length_from_the_segment() {
    let (name, _cleanup) = unique("array-named");
    let a = Array::create(name.as_str(), &[1.5f64, 2.5]).unwrap();
    let b = Array::<f64>::open(name.as_str()).unwrap();
    assert_eq!(b.len(), 2);
    b.set(0, 3.5).unwrap();
    assert_eq!(a.get(0).unwrap(), 3.5);
    assert!(matches!(Array::<f32>::open(name.as_str()), Err(ShmError::Mismatch { .. })));
    assert!(matches!(Value::<f64>::open(name.as_str()), Err(ShmError::Mismatch { .. })));
    assert!(matches!(Array::open_or_create(name.as_str(), &[0.0f64; 3]), Err(ShmError::Mismatch { .. })));
}

fn hold_and_die(arg: (Array<u32>, Value<u32>)) {
    let (arr, flag) = arg;
    let mut g = arr.lock().unwrap();
    g[0] = 11;
    flag.set(1).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn array_with_dead_owner() -> Array<u32> {
    let arr = Array::filled(0u32, 4).unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(hold_and_die, (arr.clone(), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    child.kill().unwrap();
    assert_eq!(join(&mut child), -9);
    arr
}

#[test]
fn array_lock_owner_died() {
    let arr = array_with_dead_owner();
    let g = arr.lock().unwrap_err().into_guard().unwrap();
    assert_eq!(g[0], 11);
}

#[test]
fn array_get_owner_died() {
    let arr = array_with_dead_owner();
    assert!(matches!(arr.get(0), Err(LockError::OwnerDied(11))));
    assert_eq!(arr.get(0).unwrap(), 11);
}

#[test]
fn array_set_owner_died() {
    let arr = array_with_dead_owner();
    assert!(arr.set(1, 5).unwrap_err().is_owner_died());
    assert_eq!(arr.to_vec().unwrap(), vec![11, 5, 0, 0]);
}

#[test]
fn array_to_vec_owner_died() {
    let arr = array_with_dead_owner();
    match arr.to_vec() {
        Err(LockError::OwnerDied(v)) => assert_eq!(v, vec![11, 0, 0, 0]),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
}

#[test]
fn array_raw_slices() {
    let arr = Array::new(&[1u8, 2, 3]).unwrap();
    let _held = arr.lock().unwrap();
    // SAFETY: this thread holds the lock; no other handle exists elsewhere.
    unsafe {
        arr.as_mut_slice_unlocked()[0] = 10;
        assert_eq!(arr.as_slice_unlocked(), &[10, 2, 3]);
    }
}
