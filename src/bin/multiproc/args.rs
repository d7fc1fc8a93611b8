//! Command-line parsing, by hand (the crate takes no argument-parser
//! dependency for one small tool).
//!
//! Options may come before or after the subcommand (`multiproc --json ls`
//! and `multiproc ls --json` are the same); `--dir DIR` and `--dir=DIR` are
//! both accepted; `--` ends the options, so a segment whose name starts
//! with `-` can still be named. Anything unknown, missing or repeated is a
//! [`UsageError`], which `main` reports with exit code 2.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The text of `multiproc --help`.
pub const USAGE: &str = "\
multiproc: list, inspect and clean up shared-memory segments; benchmark

Usage: multiproc [--dir DIR] [--json] COMMAND

Commands:
  ls               list the segments in DIR: name, kind, size, creator pid,
                   status
  info NAME        one segment: header, type layout, ring occupancy, lock holder
  rm NAME...       remove segments (a process that has one open keeps using it;
                   files that are not multiproc segments are refused)
  gc [--dry-run]   remove the stale segments (--dry-run: only list them)
  bench [--quick] [--time SECS] [--rounds N]
                   measure multiproc against its peers on this machine, in one
                   run, and print one table (10 to 20 s; --quick about 3 s)
  help             show this text

Options:
  --dir DIR        the segment directory (default: $MULTIPROC_DIR, or /dev/shm)
  --json           print one JSON value on stdout instead of text
  --time SECS      bench: time per case, all rounds together (default 1)
  --rounds N       bench: rounds; a case's figure is its median (default 5)
  -h, --help       show this text
  -V, --version    show the version

NAME is a segment's file name in DIR, or a path (/dev/shm/jobs).

Status: attached (a live process has it open), stale (no live process has it
open: gc removes it), persistent (created to outlive its processes: gc keeps
it), foreign (not a multiproc segment, or another user's: gc keeps it).

Exit status: 0 success, 1 error (no such segment, permission denied, ...),
2 usage error.
";

/// The measured time per bench case without `--time` or `--quick`.
pub const DEFAULT_CASE_TIME: Duration = Duration::from_secs(1);
/// The measured time per bench case with `--quick`.
pub const QUICK_CASE_TIME: Duration = Duration::from_millis(250);
/// Rounds of the bench without `--rounds`.
pub const DEFAULT_ROUNDS: usize = 5;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    /// `--dir`, if given.
    pub dir: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// What to do.
    pub command: Command,
}

/// A subcommand and its own arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `help`, `-h`, `--help`.
    Help,
    /// `-V`, `--version`.
    Version,
    /// `ls`.
    Ls,
    /// `info NAME`.
    Info {
        /// The segment.
        name: String,
    },
    /// `rm NAME...`.
    Rm {
        /// The segments, at least one.
        names: Vec<String>,
    },
    /// `gc [--dry-run]`.
    Gc {
        /// Only list what would be removed.
        dry_run: bool,
    },
    /// `bench`.
    Bench(BenchOptions),
    /// `__peer`: the hidden far end of the bench's socket and pipe cases.
    Peer(PeerMode),
}

/// Options of `bench`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchOptions {
    /// Measured time per case, over all rounds.
    pub case_time: Duration,
    /// Rounds; each case's figure is the median over them.
    pub rounds: usize,
}

/// What the hidden `__peer` process does on its standard input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMode {
    /// `__peer echo SIZE`: read `SIZE`-byte messages and write each back,
    /// until end of input.
    Echo {
        /// Bytes per message.
        size: usize,
    },
    /// `__peer produce SIZE COUNT`: write one "ready" byte, read one "go"
    /// byte, then write `COUNT` messages of `SIZE` bytes (≥ 8), each
    /// starting with its sequence number (little-endian `u64`).
    Produce {
        /// Bytes per message.
        size: usize,
        /// Messages to write.
        count: u64,
    },
}

/// A command line that cannot be run; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A [`UsageError`] saying `msg`.
fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A [`UsageError`] naming the first problem: an unknown subcommand or
/// option, an option of another subcommand, a missing or extra operand, a
/// bad number, an argument that is not UTF-8.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, UsageError> {
    let mut dir = None;
    let mut json = false;
    let mut dry_run = false;
    let mut quick = false;
    let mut time: Option<Duration> = None;
    let mut rounds: Option<usize> = None;
    let mut help = false;
    let mut version = false;
    let mut words: Vec<String> = Vec::new();
    // Options that belong to one subcommand, as given, to reject elsewhere.
    let mut specific: Vec<&'static str> = Vec::new();

    let mut args = args.into_iter();
    let mut only_operands = false;
    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|a| usage(format!("argument {a:?} is not valid UTF-8")))?;
        if only_operands || !arg.starts_with('-') || arg == "-" {
            words.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| usage(format!("{name} needs a value")))?
                    .into_string()
                    .map_err(|a| usage(format!("{name}: {a:?} is not valid UTF-8"))),
            }
        };
        match flag.as_str() {
            "--" => only_operands = true,
            "--dir" => {
                let v = value("--dir")?;
                if v.is_empty() {
                    return Err(usage("--dir needs a directory"));
                }
                if dir.replace(PathBuf::from(v)).is_some() {
                    return Err(usage("--dir given twice"));
                }
            }
            "--time" => {
                let v = value("--time")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                    .ok_or_else(|| usage(format!("--time {v}: expected seconds, more than 0 and at most 3600")))?;
                time = Some(Duration::from_secs_f64(secs));
                specific.push("--time");
            }
            "--rounds" => {
                let v = value("--rounds")?;
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=101).contains(n))
                    .ok_or_else(|| usage(format!("--rounds {v}: expected a whole number from 1 to 101")))?;
                rounds = Some(n);
                specific.push("--rounds");
            }
            _ if inline.is_some() => return Err(usage(format!("option {flag} takes no value"))),
            "--json" => json = true,
            "--dry-run" | "-n" => {
                dry_run = true;
                specific.push("--dry-run");
            }
            "--quick" => {
                quick = true;
                specific.push("--quick");
            }
            "-h" | "--help" => help = true,
            "-V" | "--version" => version = true,
            _ => return Err(usage(format!("unknown option {flag}"))),
        }
    }

    let command = if help {
        Command::Help
    } else if version {
        Command::Version
    } else {
        let Some(sub) = words.first() else {
            return Err(usage("no command given"));
        };
        let operands = &words[1..];
        let allowed: &[&str] = match sub.as_str() {
            "gc" => &["--dry-run"],
            "bench" => &["--quick", "--time", "--rounds"],
            _ => &[],
        };
        if let Some(bad) = specific.iter().find(|o| !allowed.contains(o)) {
            return Err(usage(format!("option {bad} does not apply to `{sub}`")));
        }
        let none = |cmd: Command| {
            if let Some(extra) = operands.first() {
                Err(usage(format!("unexpected argument {extra:?} after `{sub}`")))
            } else {
                Ok(cmd)
            }
        };
        match sub.as_str() {
            "help" => none(Command::Help)?,
            "ls" | "list" => none(Command::Ls)?,
            "gc" => none(Command::Gc { dry_run })?,
            "info" => match operands {
                [name] => Command::Info { name: name.clone() },
                [] => return Err(usage("`info` needs a segment NAME")),
                [_, extra, ..] => return Err(usage(format!("`info` takes one NAME; unexpected {extra:?}"))),
            },
            "rm" => {
                if operands.is_empty() {
                    return Err(usage("`rm` needs at least one segment NAME"));
                }
                Command::Rm { names: operands.to_vec() }
            }
            "bench" => {
                if quick && time.is_some() {
                    return Err(usage("give --quick or --time, not both"));
                }
                let case_time = time.unwrap_or(if quick { QUICK_CASE_TIME } else { DEFAULT_CASE_TIME });
                none(Command::Bench(BenchOptions { case_time, rounds: rounds.unwrap_or(DEFAULT_ROUNDS) }))?
            }
            "__peer" => Command::Peer(peer(operands)?),
            other => return Err(usage(format!("unknown command {other:?}"))),
        }
    };
    Ok(Cli { dir, json, command })
}

/// Parses the operands of the hidden `__peer` subcommand.
fn peer(operands: &[String]) -> Result<PeerMode, UsageError> {
    let num = |s: &String| s.parse::<u64>().map_err(|_| usage(format!("__peer: bad number {s:?}")));
    let size = |s: &String| {
        num(s).and_then(|n| {
            usize::try_from(n).ok().filter(|&n| (8..=1 << 30).contains(&n)).ok_or_else(|| usage("__peer: bad size"))
        })
    };
    match operands {
        [mode, s] if mode == "echo" => Ok(PeerMode::Echo { size: size(s)? }),
        [mode, s, n] if mode == "produce" => Ok(PeerMode::Produce { size: size(s)?, count: num(n)? }),
        _ => Err(usage("__peer: expected `echo SIZE` or `produce SIZE COUNT`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn cmd(args: &[&str]) -> Command {
        p(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).command
    }

    fn err(args: &[&str]) -> String {
        p(args).expect_err("a usage error").0
    }

    #[test]
    fn args_subcommands_parse() {
        assert_eq!(cmd(&["ls"]), Command::Ls);
        assert_eq!(cmd(&["info", "jobs"]), Command::Info { name: "jobs".into() });
        assert_eq!(cmd(&["rm", "a", "b"]), Command::Rm { names: vec!["a".into(), "b".into()] });
        assert_eq!(cmd(&["gc"]), Command::Gc { dry_run: false });
        assert_eq!(cmd(&["gc", "--dry-run"]), Command::Gc { dry_run: true });
        assert_eq!(cmd(&["help"]), Command::Help);
        assert_eq!(cmd(&["ls", "-h"]), Command::Help);
        assert_eq!(cmd(&["--version"]), Command::Version);
        assert_eq!(cmd(&["__peer", "echo", "8"]), Command::Peer(PeerMode::Echo { size: 8 }));
        assert_eq!(cmd(&["__peer", "produce", "64", "10"]), Command::Peer(PeerMode::Produce { size: 64, count: 10 }));
    }

    #[test]
    fn args_global_options_go_anywhere() {
        let a = p(&["--json", "--dir", "/tmp/x", "ls"]).unwrap();
        let b = p(&["ls", "--dir=/tmp/x", "--json"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.dir, Some(PathBuf::from("/tmp/x")));
        assert!(a.json);
        assert_eq!(p(&["ls"]).unwrap().dir, None);
        // `--` ends the options.
        assert_eq!(cmd(&["rm", "--", "-odd"]), Command::Rm { names: vec!["-odd".into()] });
    }

    #[test]
    fn args_bench_options() {
        let b = |args: &[&str]| match cmd(args) {
            Command::Bench(o) => o,
            c => panic!("{c:?}"),
        };
        assert_eq!(b(&["bench"]), BenchOptions { case_time: DEFAULT_CASE_TIME, rounds: DEFAULT_ROUNDS });
        assert_eq!(b(&["bench", "--quick"]).case_time, QUICK_CASE_TIME);
        assert_eq!(
            b(&["bench", "--time", "0.5", "--rounds", "3"]),
            BenchOptions { case_time: Duration::from_millis(500), rounds: 3 }
        );
        assert_eq!(b(&["bench", "--time=2"]).case_time, Duration::from_secs(2));
    }

    #[test]
    fn args_mistakes_are_usage_errors() {
        assert_eq!(err(&[]), "no command given");
        assert!(err(&["frob"]).contains("unknown command \"frob\""));
        assert!(err(&["ls", "--frob"]).contains("unknown option --frob"));
        assert!(err(&["info"]).contains("needs a segment NAME"));
        assert!(err(&["info", "a", "b"]).contains("takes one NAME"));
        assert!(err(&["rm"]).contains("at least one"));
        assert!(err(&["ls", "extra"]).contains("unexpected argument"));
        assert!(err(&["ls", "--dry-run"]).contains("does not apply to `ls`"));
        assert!(err(&["gc", "--quick"]).contains("does not apply to `gc`"));
        assert!(err(&["ls", "--dir"]).contains("--dir needs a value"));
        assert!(err(&["ls", "--dir="]).contains("needs a directory"));
        assert!(err(&["ls", "--dir", "a", "--dir", "b"]).contains("twice"));
        assert!(err(&["ls", "--json=yes"]).contains("takes no value"));
        assert!(err(&["bench", "--time", "0"]).contains("expected seconds"));
        assert!(err(&["bench", "--time", "fast"]).contains("expected seconds"));
        assert!(err(&["bench", "--rounds", "0"]).contains("from 1 to 101"));
        assert!(err(&["bench", "--quick", "--time", "1"]).contains("not both"));
        assert!(err(&["__peer", "echo"]).contains("__peer"));
    }
}
