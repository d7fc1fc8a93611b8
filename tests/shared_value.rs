//! `Value<T>` across real processes: locked increments, owner death on each
//! accessor, type checks, raw access.

multiproc::test_support!();

mod common;

use std::time::Duration;

use common::{join, unique, wait_for_flag};
use multiproc::{LockError, Process, ShmError, Value};

fn add_a_million(counter: Value<u64>) {
    for _ in 0..1_000_000 {
        *counter.lock().unwrap() += 1;
    }
}

#[test]
fn value_two_processes_a_million_locked_increments_each() {
    let counter = Value::new(0u64).unwrap();
    let mut kids: Vec<Process> = (0..2).map(|_| Process::new(add_a_million, counter.clone())).collect();
    for k in &mut kids {
        k.start().unwrap();
    }
    for k in &mut kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(counter.get().unwrap(), 2_000_000);
}

fn hold_and_die(arg: (Value<u64>, Value<u32>)) {
    let (v, flag) = arg;
    let mut g = v.lock().unwrap();
    *g = 99;
    flag.set(1).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A value whose lock is held by a child that was then SIGKILLed.
fn value_with_dead_owner() -> Value<u64> {
    let v = Value::new(0u64).unwrap();
    let flag = Value::new(0u32).unwrap();
    let mut child = Process::new(hold_and_die, (v.clone(), flag.clone()));
    child.start().unwrap();
    wait_for_flag(&flag, 1);
    child.kill().unwrap();
    assert_eq!(join(&mut child), -9);
    v
}

#[test]
fn value_lock_owner_died() {
    let v = value_with_dead_owner();
    let g = v.lock().unwrap_err().into_guard().expect("guard handed over");
    assert_eq!(*g, 99);
    drop(g);
    assert_eq!(*v.lock().unwrap(), 99);
}

#[test]
fn value_get_owner_died() {
    let v = value_with_dead_owner();
    match v.get() {
        Err(LockError::OwnerDied(x)) => assert_eq!(x, 99),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(v.get().unwrap(), 99);
}

#[test]
fn value_set_owner_died() {
    let v = value_with_dead_owner();
    assert!(v.set(7).unwrap_err().is_owner_died());
    assert_eq!(v.get().unwrap(), 7, "the write happened despite the report");
}

#[test]
fn value_try_lock_owner_died() {
    let v = value_with_dead_owner();
    assert!(v.try_lock().unwrap_err().is_owner_died());
    assert!(v.try_lock().is_ok());
}

#[test]
fn value_lock_timeout_owner_died() {
    let v = value_with_dead_owner();
    assert!(v.lock_timeout(Duration::from_secs(1)).unwrap_err().is_owner_died());
    assert!(v.lock_timeout(Duration::from_secs(1)).is_ok());
}

#[test]
fn value_opened_as_another_type_names_both() {
    let (name, _cleanup) = unique("value-type");
    let _v = Value::create(name.as_str(), 1u32).unwrap();
    let err = Value::<u64>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, ShmError::Mismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("u32") && text.contains("u64"), "{text}");
    let err = Value::<f32>::open(name.as_str()).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");
    assert_eq!(Value::<u32>::open(name.as_str()).unwrap().get().unwrap(), 1);
}

#[test]
fn value_open_or_create_shares_one_value() {
    let (name, _cleanup) = unique("value-ooc");
    let a = Value::open_or_create(name.as_str(), 5i16).unwrap();
    let b = Value::open_or_create(name.as_str(), 9i16).unwrap();
    assert_eq!(b.get().unwrap(), 5, "the second call opened the first value");
    b.set(6).unwrap();
    assert_eq!(a.get().unwrap(), 6);
    a.unlink().unwrap();
    assert!(matches!(b.unlink(), Err(ShmError::NotFound { .. })));
}

#[test]
fn value_raw_access_reads_and_writes_without_the_lock() {
    let v = Value::new([1u8, 2, 3]).unwrap();
    let _held = v.lock().unwrap();
    // SAFETY: this thread holds the lock, so nobody else touches the value.
    unsafe {
        assert_eq!(v.get_unlocked(), [1, 2, 3]);
        v.set_unlocked([4, 5, 6]);
        assert_eq!(v.get_unlocked(), [4, 5, 6]);
    }
}
