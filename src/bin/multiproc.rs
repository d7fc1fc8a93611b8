//! `multiproc`: see and clean up what lives in shared memory, and measure
//! the crate on this machine.
//!
//! ```text
//! multiproc [--dir DIR] [--json] ls
//! multiproc [--dir DIR] [--json] info NAME
//! multiproc [--dir DIR] [--json] rm NAME...
//! multiproc [--dir DIR] [--json] gc [--dry-run]
//! multiproc [--json] bench [--quick] [--time SECS] [--rounds N]
//! ```
//!
//! `DIR` defaults to [`multiproc::segment::default_dir`] (`$MULTIPROC_DIR`,
//! else `/dev/shm`). The segment subcommands are thin over
//! [`multiproc::segment`]'s `list`, `inspect` and `gc` and
//! [`multiproc::unlink`]; `bench` is in [`bench`](mod@bench). Text output fits a
//! terminal (long names are shortened with `…` when standard output is
//! one); `--json` prints exactly one JSON value on standard output instead.
//! Errors go to standard error. Exit status: 0 success, 1 error, 2 usage
//! error.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[path = "multiproc/args.rs"]
mod args;
#[path = "multiproc/bench.rs"]
mod bench;
#[path = "multiproc/json.rs"]
mod json;
#[path = "multiproc/segments.rs"]
mod segments;
#[path = "multiproc/table.rs"]
mod table;

use std::io::Write;
use std::process::ExitCode;

use args::{Command, USAGE};
use segments::Out;

fn main() -> ExitCode {
    // The bench starts its far ends with `Process` (spawn), which re-executes
    // this binary: in such a child this runs the target and exits.
    multiproc::init();
    let cli = match args::parse(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("multiproc: {e}\n\nUsage: multiproc [--dir DIR] [--json] COMMAND\nSee `multiproc --help`.");
            return ExitCode::from(2);
        }
    };
    let dir = cli.dir.clone().unwrap_or_else(multiproc::segment::default_dir);
    let mut out = Out { json: cli.json, text: String::new() };
    let code = match &cli.command {
        Command::Help => {
            out.text.push_str(USAGE);
            0
        }
        Command::Version => {
            out.line(&format_args!("multiproc {}", env!("CARGO_PKG_VERSION")));
            0
        }
        Command::Ls => segments::ls(&mut out, &dir),
        Command::Info { name } => segments::info(&mut out, &dir, name),
        Command::Rm { names } => segments::rm(&mut out, &dir, names),
        Command::Gc { dry_run } => segments::gc(&mut out, &dir, *dry_run),
        Command::Bench(opts) => match bench::run(*opts, cli.json) {
            Ok(text) => {
                out.text = text;
                0
            }
            Err(e) => {
                eprintln!("multiproc: bench: {e}");
                segments::FAILED
            }
        },
        Command::Peer(mode) => match bench::peer(*mode) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("multiproc __peer: {e}");
                segments::FAILED
            }
        },
    };
    // A reader that went away (`multiproc ls | head -1`) is not an error.
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("multiproc: writing output: {e}");
            ExitCode::from(segments::FAILED)
        }
        _ => ExitCode::from(code),
    }
}
