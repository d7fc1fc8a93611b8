//! A test binary *without* `multiproc::test_support!()`: a spawned child
//! cannot reach its entry point, and the parent is told so.

use std::time::Duration;

use multiproc::{Process, ProcessError};

fn nothing(_: ()) {}

#[test]
fn process_spawn_without_entry_point_is_reported() {
    let mut p = Process::new(nothing, ());
    if std::env::var_os("MULTIPROC_SPAWN").is_some() {
        // The spawned copy of this binary runs libtest's `main` from the
        // start, and so this very test: its own spawn is refused, instead
        // of copies spawning copies without end.
        let r = p.start();
        assert!(matches!(r, Err(ProcessError::EntryNotCalled)), "{r:?}");
        return;
    }
    p.start().unwrap();
    let r = p.join_timeout(Duration::from_secs(20));
    assert!(matches!(r, Err(ProcessError::EntryNotCalled)), "{r:?}");
    // The exit code of the stray `main` is still there to see: 0, as the
    // test it ran passed (its spawn was refused).
    assert_eq!(p.exitcode(), Some(0));
    assert!(r.unwrap_err().to_string().contains("multiproc::test_support!"));
}
