//! The `multiproc` command-line tool, run as a program on private segment
//! directories: `ls`, `info`, `rm`, `gc`, `--json`, errors and exit codes,
//! `bench` (a smoke run), and stale segments left by a killed creator.

multiproc::test_support!();

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{WATCH, watchdog};
use multiproc::{Event, Mutex, Name, Process, Queue};

/// A directory of its own for one test, removed with all it holds when
/// dropped (also when the test fails). Under `/dev/shm` when there is one,
/// as segments usually are.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let dir = base.join(format!("mp-cli-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create test directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod test directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn name(&self, name: &str) -> Name {
        Name::new(name).in_dir(&self.0)
    }

    fn has(&self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the tool gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn tool() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_multiproc"));
    c.env_remove("MULTIPROC_DIR").env_remove("COLUMNS");
    c
}

/// Runs the tool as `c` says; an error if it could not be started.
fn try_run(mut c: Command) -> std::io::Result<Run> {
    let out = c.output()?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    })
}

fn run_cmd(c: Command) -> Run {
    try_run(c).expect("run multiproc")
}

/// Runs `multiproc --dir DIR ARGS`.
fn run(dir: &TempDir, args: &[&str]) -> Run {
    let mut c = tool();
    c.arg("--dir").arg(dir.path()).args(args);
    run_cmd(c)
}

/// Runs it and checks that it succeeded.
fn ok(dir: &TempDir, args: &[&str]) -> Run {
    let r = run(dir, args);
    assert_eq!(r.code, 0, "multiproc {args:?}: {r:?}");
    r
}

/// The line of a `ls`-style table about segment `name`.
fn row<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines().find(|l| l.split_whitespace().next() == Some(name))
}

/// The JSON object about segment `name` in a list of entries (the writer
/// puts `name` first, and objects of the list never nest another entry).
fn json_entry<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.split(r#"{"name":"#).find(|chunk| chunk.starts_with(&format!("\"{name}\"")))
}

/// Child target: creates a named `Mutex` in `dir`, says so, and sleeps
/// until it is killed.
fn create_and_sleep((dir, created): (PathBuf, Event)) {
    let _m = Mutex::<u32>::create(Name::new("left-by-killed").in_dir(dir), 7).expect("create in child");
    created.set();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn cli_segment_of_killed_creator_is_stale_and_collected_live_one_kept() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("killed");
    let created = Event::new().unwrap();
    let mut child = Process::new(create_and_sleep, (dir.path().to_path_buf(), created.clone()));
    child.start().unwrap();
    assert!(created.wait_timeout(Duration::from_secs(20)), "child never created its segment");
    let pid = child.pid().unwrap();

    // While the creator lives, its segment is attached, with its pid.
    let r = ok(&dir, &["ls"]);
    let line = row(&r.stdout, "left-by-killed").unwrap_or_else(|| panic!("not listed: {r:?}"));
    assert!(line.ends_with("attached"), "{line}");
    assert!(line.split_whitespace().any(|w| w == pid.to_string()), "creator pid {pid} not shown: {line}");

    // SIGKILL: no destructor, no unlink.
    assert!(common::sigkill(pid));
    assert_eq!(common::join(&mut child), -9);
    assert!(dir.has("left-by-killed"), "the killed creator's file stays behind");

    // A segment this test holds open.
    let live = Mutex::<u32>::create(dir.name("held-by-test"), 1).unwrap();

    let r = ok(&dir, &["ls"]);
    let stale = row(&r.stdout, "left-by-killed").unwrap_or_else(|| panic!("not listed: {r:?}"));
    assert!(stale.ends_with("stale"), "{r:?}");
    assert!(stale.contains("Mutex"), "{r:?}");
    assert!(row(&r.stdout, "held-by-test").is_some_and(|l| l.ends_with("attached")), "{r:?}");
    assert!(r.stdout.contains("2 segments in"), "{r:?}");

    let r = ok(&dir, &["--json", "ls"]);
    let e = json_entry(&r.stdout, "left-by-killed").unwrap_or_else(|| panic!("{r:?}"));
    assert!(e.contains(r#""status":"stale""#) && e.contains(&format!(r#""creator_pid":{pid}"#)), "{r:?}");
    assert!(json_entry(&r.stdout, "held-by-test").is_some_and(|e| e.contains(r#""status":"attached""#)), "{r:?}");

    // A dry run names it and removes nothing.
    let r = ok(&dir, &["gc", "--dry-run"]);
    assert!(r.stdout.starts_with("would remove 1 stale segment from"), "{r:?}");
    assert!(row(&r.stdout, "left-by-killed").is_some() && row(&r.stdout, "held-by-test").is_none(), "{r:?}");
    assert!(dir.has("left-by-killed"));

    // The real thing removes the stale one only.
    let r = ok(&dir, &["--json", "gc"]);
    assert!(r.stdout.contains(r#""dry_run":false"#), "{r:?}");
    assert!(
        json_entry(&r.stdout, "left-by-killed").is_some() && json_entry(&r.stdout, "held-by-test").is_none(),
        "{r:?}"
    );
    assert!(!dir.has("left-by-killed"), "gc left the stale segment");
    assert!(dir.has("held-by-test"), "gc removed a live segment");

    let r = ok(&dir, &["ls"]);
    assert!(row(&r.stdout, "left-by-killed").is_none(), "{r:?}");
    assert!(row(&r.stdout, "held-by-test").is_some_and(|l| l.ends_with("attached")), "{r:?}");
    let r = ok(&dir, &["gc"]);
    assert!(r.stdout.starts_with("no stale segments in"), "{r:?}");

    // The live segment still works.
    *live.lock().unwrap() += 1;
    assert_eq!(*live.lock().unwrap(), 2);
}

#[test]
fn cli_info_shows_header_layout_and_lock_holder() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("info");
    let m = Mutex::<u32>::create(dir.name("counter"), 5).unwrap();
    let guard = m.lock().unwrap();
    let r = ok(&dir, &["info", "counter"]);
    let me = std::process::id().to_string();
    for (key, value) in [
        ("name", "counter"),
        ("status", "attached"),
        ("kind", "Mutex"),
        ("ready", "yes"),
        ("persistent", "no"),
        ("element type", "u32"),
        ("element layout", "size 4, align 4"),
        ("count", "1"),
        ("creator pid", &me),
        ("lock", "held by thread"),
    ] {
        let line = r.stdout.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with("  "));
        assert!(line.is_some_and(|l| l.contains(value)), "{key}: {value} not in {r:?}");
    }
    drop(guard);
    assert!(ok(&dir, &["info", "counter"]).stdout.lines().any(|l| l.starts_with("lock ") && l.ends_with("free")));

    // A path works as well as a name.
    let path = dir.path().join("counter");
    let r = ok(&dir, &["--json", "info", path.to_str().unwrap()]);
    for part in [r#""kind":"Mutex""#, r#""status":"attached""#, r#""element_type":"u32""#, r#""lock":"free""#] {
        assert!(r.stdout.contains(part), "{part} not in {r:?}");
    }
    assert_eq!(r.stdout.lines().count(), 1, "one JSON value: {r:?}");
    m.unlink().unwrap();
}

#[test]
fn cli_info_shows_ring_occupancy_of_a_queue() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("queue");
    let q = Queue::<String>::create(dir.name("jobs"), 4096).unwrap();
    q.put("one".to_string()).unwrap();
    q.put("two".to_string()).unwrap();
    let r = ok(&dir, &["info", "jobs"]);
    assert!(r.stdout.lines().any(|l| l.starts_with("kind") && l.ends_with("Queue")), "{r:?}");
    assert!(r.stdout.lines().any(|l| l.starts_with("ring") && l.contains("of 4096 bytes used")), "{r:?}");
    assert!(r.stdout.lines().any(|l| l.starts_with("messages waiting") && l.ends_with(" 2")), "{r:?}");
    let r = ok(&dir, &["ls"]);
    assert!(row(&r.stdout, "jobs").is_some_and(|l| l.contains("Queue") && l.ends_with("attached")), "{r:?}");
    q.unlink().unwrap();
}

#[test]
fn cli_missing_names_and_directories_are_clear_errors() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("missing");
    for args in [&["info", "nope"][..], &["rm", "nope"]] {
        let r = run(&dir, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(r#"no segment "nope" in "#), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
    }
    let r = run(&dir, &["--json", "info", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with(r#"{"error":{"kind":"not_found","message":"no segment \"nope\""#), "{r:?}");
    let r = run(&dir, &["--json", "rm", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with(r#"{"removed":[],"errors":[{"name":"nope","error":{"kind":"not_found""#), "{r:?}");

    let gone = dir.path().join("no-such-dir");
    for args in [&["ls"][..], &["gc"], &["info", "x"]] {
        let mut c = tool();
        c.arg("--dir").arg(&gone).args(args);
        let r = run_cmd(c);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(&format!("directory {} not found", gone.display())), "{args:?}: {r:?}");
    }
    let r = run(&dir, &["info", "bad\u{1}name"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("invalid name"), "{r:?}");
}

#[test]
fn cli_bad_arguments_print_usage_and_exit_2() {
    let _w = watchdog(WATCH);
    for (args, says) in [
        (&[][..], "no command given"),
        (&["frob"], "unknown command"),
        (&["ls", "--frob"], "unknown option --frob"),
        (&["info"], "needs a segment NAME"),
        (&["info", "a", "b"], "takes one NAME"),
        (&["rm"], "at least one"),
        (&["ls", "x"], "unexpected argument"),
        (&["ls", "--dry-run"], "does not apply to `ls`"),
        (&["bench", "--time", "soon"], "expected seconds"),
        (&["--dir"], "--dir needs a value"),
    ] {
        let mut c = tool();
        c.args(args);
        let r = run_cmd(c);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says) && r.stderr.contains("Usage: multiproc"), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
    }
    let mut c = tool();
    c.arg("--help");
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{r:?}");
    for word in ["Usage: multiproc", "ls", "info NAME", "rm NAME...", "gc [--dry-run]", "bench", "--json", "--dir DIR"]
    {
        assert!(r.stdout.contains(word), "{word} not in help: {r:?}");
    }
    let mut c = tool();
    c.arg("-V");
    assert!(run_cmd(c).stdout.starts_with("multiproc "));
}

#[test]
fn cli_ls_of_an_empty_directory() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("empty");
    assert_eq!(ok(&dir, &["ls"]).stdout, format!("no segments in {}\n", dir.path().display()));
    assert_eq!(
        ok(&dir, &["ls", "--json"]).stdout,
        format!("{{\"dir\":\"{}\",\"segments\":[]}}\n", dir.path().display())
    );
    assert_eq!(ok(&dir, &["--json", "gc"]).stdout.matches(r#""removed":[]"#).count(), 1);
}

#[test]
fn cli_rm_removes_segments_and_refuses_other_files() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("rm");
    drop(Mutex::<u64>::create(dir.name("old"), 0).unwrap());
    let held = Mutex::<u64>::create(dir.name("held"), 0).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();

    let r = ok(&dir, &["rm", "old", "held"]);
    assert!(r.stdout.lines().any(|l| l.starts_with("removed ") && l.ends_with("/old")), "{r:?}");
    assert!(r.stdout.lines().any(|l| l.contains("/held (still open in a live process")), "{r:?}");
    assert!(!dir.has("old") && !dir.has("held"));
    // The handle still works after its name is gone.
    *held.lock().unwrap() += 1;

    let r = run(&dir, &["rm", "notes.txt"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a multiproc segment"), "{r:?}");
    assert!(dir.has("notes.txt"), "rm removed a file that is not a segment");
}

#[test]
fn cli_foreign_and_persistent_files_are_listed_and_kept_by_gc() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("kept");
    std::fs::write(dir.path().join("someone-elses"), b"\x00\x01junk").unwrap();
    drop(Mutex::<u32>::create(dir.name("config").persistent(), 3).unwrap());
    drop(Mutex::<u32>::create(dir.name("leftover"), 3).unwrap());

    let r = ok(&dir, &["ls"]);
    assert!(row(&r.stdout, "someone-elses").is_some_and(|l| l.ends_with("foreign")), "{r:?}");
    assert!(row(&r.stdout, "config").is_some_and(|l| l.ends_with("persistent")), "{r:?}");
    assert!(row(&r.stdout, "leftover").is_some_and(|l| l.ends_with("stale")), "{r:?}");
    assert!(r.stdout.contains("3 segments in"), "{r:?}");

    let r = ok(&dir, &["gc"]);
    assert!(row(&r.stdout, "leftover").is_some(), "{r:?}");
    assert!(dir.has("someone-elses") && dir.has("config") && !dir.has("leftover"));

    let r = ok(&dir, &["info", "someone-elses"]);
    assert!(r.stdout.lines().any(|l| l.starts_with("status") && l.contains("foreign")), "{r:?}");
    assert!(r.stdout.contains("no multiproc header"), "{r:?}");
}

#[test]
fn cli_multiproc_dir_is_the_default_directory() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("env");
    let m = Mutex::<u32>::create(dir.name("via-env"), 0).unwrap();
    let mut c = tool();
    c.env("MULTIPROC_DIR", dir.path()).arg("ls");
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(row(&r.stdout, "via-env").is_some(), "{r:?}");
    m.unlink().unwrap();
}

#[test]
fn cli_permission_problems_are_clear_errors() {
    let _w = watchdog(WATCH);
    let dir = TempDir::new("perm");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let mut c = tool();
    if root {
        // Root reads any directory: ask as nobody instead.
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        c.uid(65534).gid(65534);
    } else {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    c.arg("--dir").arg(&locked).arg("ls");
    let r = match try_run(c) {
        Ok(r) => r,
        // Not allowed to switch users here (a container without
        // CAP_SETUID), or nobody cannot reach the binary.
        Err(e) if root => return eprintln!("skipped: cannot run multiproc as user nobody: {e}"),
        Err(e) => panic!("run multiproc: {e}"),
    };
    let _ = std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("permission denied"), "{r:?}");

    if root {
        // Root's segment, as seen by nobody: listed as foreign, kept by gc,
        // and `rm` is refused by the OS with a clear message.
        drop(Mutex::<u32>::create(dir.name("roots"), 0).unwrap());
        let as_nobody = |args: &[&str]| {
            let mut c = tool();
            c.uid(65534).gid(65534).arg("--dir").arg(dir.path()).args(args);
            run_cmd(c)
        };
        let r = as_nobody(&["ls"]);
        assert!(row(&r.stdout, "roots").is_some_and(|l| l.ends_with("foreign")), "{r:?}");
        let r = as_nobody(&["gc"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(dir.has("roots"));
        let r = as_nobody(&["rm", "roots"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("permission denied"), "{r:?}");
        assert!(dir.has("roots"));
    }
}

#[test]
fn cli_bench_prints_one_table_with_every_row() {
    let _w = watchdog(Duration::from_secs(120));
    let mut c = tool();
    c.args(["bench", "--time", "0.05", "--rounds", "1"]);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{r:?}");
    let rows = [
        ("8 B round trip", "Pipe", "UnixStream"),
        ("8 B round trip", "Pipe", "OS pipes"),
        ("8 B round trip", "Queue", "UnixStream"),
        ("64 B one-way", "Pipe", "UnixStream"),
        ("1 MiB one-way", "Pipe in place", "UnixStream"),
        ("1 MiB one-way", "Pipe in place", "memcpy"),
        ("lock + unlock", "Mutex", "std Mutex"),
    ];
    let table: Vec<&str> =
        r.stdout.lines().skip_while(|l| !l.starts_with("CASE")).skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(table.len(), rows.len(), "{r:?}");
    for (line, (case, ours, peer)) in table.iter().zip(rows) {
        assert!(line.starts_with(case) && line.contains(ours) && line.contains(peer), "{line}: {r:?}");
        assert!(line.ends_with('x'), "a ratio ends the row: {line}");
    }

    let mut c = tool();
    c.args(["--json", "bench", "--time", "0.05", "--rounds", "1"]);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with(r#"{"rounds":1,"case_time_s":0.05,"cpus":"#), "{r:?}");
    assert!(r.stdout.contains(r#""rows":[{"case":"8 B round trip","multiproc":{"name":"Pipe","#), "{r:?}");
    assert_eq!(r.stdout.matches(r#""ratio":"#).count(), rows.len(), "{r:?}");
    assert_eq!(r.stdout.matches(r#""ns_per_op":"#).count(), 2 * rows.len(), "{r:?}");
}
