//! `ls`, `info`, `rm` and `gc`: the segment subcommands, on top of
//! [`multiproc::segment`].
//!
//! Each one writes its output into an [`Out`] and returns the exit code;
//! errors go to standard error (and, with `--json`, as an `{"error": …}`
//! object to standard output, so that a script always gets one JSON value).

use std::path::{Path, PathBuf};

use multiproc::segment::{self, Entry, HeaderInfo, Status};
use multiproc::{Name, ShmError};

use crate::json::Json;
use crate::table::{Align, Table, bytes, terminal_width};

/// Exit code of a command that failed.
pub const FAILED: u8 = 1;

/// Where a command's results go: the standard-output text, and whether it
/// is JSON.
pub struct Out {
    /// `--json`.
    pub json: bool,
    /// Text for standard output, written by `main` at the end.
    pub text: String,
}

impl Out {
    /// Reports `err` (with a hint where one helps) on standard error and, in
    /// JSON mode, as an error object on standard output; returns [`FAILED`].
    pub fn fail(&mut self, err: &ShmError, segment: Option<&Name>) -> u8 {
        let msg = message(err, segment);
        eprintln!("multiproc: {msg}");
        if self.json {
            let body = Json::object([("kind", Json::str(error_kind(err))), ("message", Json::str(&msg))]);
            self.line(&Json::object([("error", body)]));
        }
        FAILED
    }

    /// Appends `s` and a newline.
    pub fn line(&mut self, s: &dyn std::fmt::Display) {
        self.text.push_str(&s.to_string());
        self.text.push('\n');
    }
}

/// The message for `err`, with a hint for the errors a user of the tool
/// meets most: a name that is not there (or its directory), a file that
/// is not theirs.
/// `segment` is the segment the command was about, if any: a "not found"
/// for another path is about its directory.
pub fn message(err: &ShmError, segment: Option<&Name>) -> String {
    match err {
        ShmError::NotFound { name } => match segment {
            Some(seg) if *name == seg.path().display().to_string() => {
                format!("no segment {:?} in {}", seg.as_str(), seg.dir().display())
            }
            _ => format!("directory {name} not found"),
        },
        ShmError::PermissionDenied { reason, .. } if !reason.contains("symbolic link") => {
            format!("{err} (is it another user's? only its owner, or root, may change it)")
        }
        _ => err.to_string(),
    }
}

/// The `kind` of `err` in JSON output: `not_found`, `permission_denied`,
/// `invalid_name`, `corrupt`, `mismatch`, `not_ready`, `io` or `other`
/// (`rm` adds `not_a_segment`).
fn error_kind(err: &ShmError) -> &'static str {
    match err {
        ShmError::NotFound { .. } => "not_found",
        ShmError::PermissionDenied { .. } => "permission_denied",
        ShmError::InvalidName { .. } => "invalid_name",
        ShmError::Corrupt { .. } => "corrupt",
        ShmError::Mismatch { .. } => "mismatch",
        ShmError::NotReady { .. } => "not_ready",
        ShmError::Io { .. } => "io",
        _ => "other",
    }
}

/// The kind and message of an error about segment `name`.
fn error_pair(err: &ShmError, name: &Name) -> (&'static str, String) {
    (error_kind(err), message(err, Some(name)))
}

/// The segment an operand names: a file name in `dir`, or a path
/// (anything with a `/`), whose directory then overrides `dir`.
pub fn resolve(arg: &str, dir: &Path) -> Name {
    let path = Path::new(arg);
    if arg.contains('/') {
        if let (Some(parent), Some(file)) = (path.parent(), path.file_name().and_then(|f| f.to_str())) {
            let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
            return Name::new(file).in_dir(parent);
        }
    }
    Name::new(arg).in_dir(dir)
}

/// An entry as JSON: `name`, `path`, `status`, `size`, `uid`, `attached`,
/// `kind` and `creator_pid` (`null` without a header) and the whole
/// `header` (`null` without one).
fn entry_json(e: &Entry) -> Json {
    let h = e.header.as_ref();
    Json::object([
        ("name", Json::str(e.name.as_str())),
        ("path", Json::str(e.name.path().display().to_string())),
        ("status", Json::str(e.status().to_string())),
        ("size", Json::UInt(e.size)),
        ("uid", Json::UInt(e.uid.into())),
        ("attached", Json::Bool(e.attached)),
        ("kind", Json::opt(h, |h| Json::str(&h.kind))),
        ("creator_pid", Json::opt(h, |h| Json::UInt(h.creator_pid.into()))),
        ("header", Json::opt(h, header_json)),
    ])
}

/// A header as JSON, every field under its Rust name.
fn header_json(h: &HeaderInfo) -> Json {
    Json::object([
        ("kind", Json::str(&h.kind)),
        ("version", Json::UInt(h.version.into())),
        ("ready", Json::Bool(h.ready)),
        ("creator_pid", Json::UInt(h.creator_pid.into())),
        ("persistent", Json::Bool(h.persistent)),
        ("element_type", Json::str(&h.element_type)),
        ("element_size", Json::UInt(h.element_size.into())),
        ("element_align", Json::UInt(h.element_align.into())),
        ("count", Json::UInt(h.count)),
        ("data_len", Json::UInt(h.data_len)),
    ])
}

/// A table of entries: NAME, KIND, SIZE, PID (the creator's), STATUS.
fn entry_table(entries: &[Entry]) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("KIND", Align::Left),
        ("SIZE", Align::Right),
        ("PID", Align::Right),
        ("STATUS", Align::Left),
    ])
    .shrink_column(0);
    for e in entries {
        let h = e.header.as_ref();
        t.row(vec![
            e.name.as_str().to_string(),
            h.map_or("-".into(), |h| h.kind.clone()),
            bytes(e.size),
            h.map_or("-".into(), |h| h.creator_pid.to_string()),
            e.status().to_string(),
        ]);
    }
    t.render(terminal_width())
}

/// "segment" or "segments", for `n` of them.
fn noun(n: usize) -> &'static str {
    if n == 1 { "segment" } else { "segments" }
}

/// `multiproc ls`.
pub fn ls(out: &mut Out, dir: &Path) -> u8 {
    let entries = match segment::list(dir) {
        Ok(e) => e,
        Err(e) => return out.fail(&e, None),
    };
    if out.json {
        let list = Json::Array(entries.iter().map(entry_json).collect());
        out.line(&Json::object([("dir", Json::str(dir.display().to_string())), ("segments", list)]));
        return 0;
    }
    if entries.is_empty() {
        out.line(&format_args!("no segments in {}", dir.display()));
        return 0;
    }
    out.text.push_str(&entry_table(&entries));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in &entries {
        let s = e.status().to_string();
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    out.line(&format_args!("{} {} in {}: {}", entries.len(), noun(entries.len()), dir.display(), parts.join(", ")));
    0
}

/// `multiproc info NAME`.
pub fn info(out: &mut Out, dir: &Path, arg: &str) -> u8 {
    let name = resolve(arg, dir);
    let d = match segment::inspect(name.clone()) {
        Ok(d) => d,
        Err(e) => return out.fail(&e, Some(&name)),
    };
    let e = &d.entry;
    if out.json {
        let mut obj = match entry_json(e) {
            Json::Object(pairs) => pairs,
            _ => unreachable!("entry_json makes an object"),
        };
        let fields = d.fields.iter().map(|(k, v)| (k.clone(), Json::str(v)));
        obj.push(("fields".into(), Json::Object(fields.collect())));
        out.line(&Json::Object(obj));
        return 0;
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut lines: Vec<(String, String)> = vec![
        ("name".into(), e.name.as_str().into()),
        ("path".into(), e.name.path().display().to_string()),
        ("status".into(), status_line(e)),
        ("size".into(), if e.size < 1024 { bytes(e.size) } else { format!("{} bytes ({})", e.size, bytes(e.size)) }),
        ("owner uid".into(), e.uid.to_string()),
    ];
    if let Some(h) = &e.header {
        lines.extend([
            ("kind".into(), h.kind.clone()),
            ("format version".into(), h.version.to_string()),
            ("ready".into(), yes_no(h.ready)),
            ("creator pid".into(), creator(h.creator_pid)),
            ("persistent".into(), yes_no(h.persistent)),
            ("element type".into(), h.element_type.clone()),
            ("element layout".into(), format!("size {}, align {}", h.element_size, h.element_align)),
            ("count".into(), h.count.to_string()),
            ("data".into(), format!("{} bytes after the 128-byte header", h.data_len)),
        ]);
    }
    lines.extend(d.fields.iter().cloned());
    let width = lines.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in lines {
        out.line(&format_args!("{k:<width$}  {v}"));
    }
    0
}

/// The status with what it means.
fn status_line(e: &Entry) -> String {
    let s = e.status();
    let why = match s {
        Status::Attached => "a live process has it open",
        Status::Stale => "no live process has it open; `multiproc gc` removes it",
        Status::Persistent => "made to outlive its processes; gc keeps it",
        Status::Foreign => "not a multiproc segment of this user; gc keeps it",
        _ => "",
    };
    if why.is_empty() { s.to_string() } else { format!("{s} ({why})") }
}

/// A creator pid, and whether a process of that pid runs now (which may
/// be another process that reused the pid).
fn creator(pid: u32) -> String {
    let alive = Path::new("/proc").join(pid.to_string()).exists();
    format!("{pid} ({})", if alive { "a process with this pid is running" } else { "exited" })
}

/// `multiproc rm NAME...`: removes each named segment. A file without a
/// multiproc header is refused (it may be another program's; `rm(1)` is
/// there for it); a segment that live processes have open is removed all
/// the same, as `unlink` does (they keep their mappings), and the output
/// says so. Goes on after a failure; fails if any did.
pub fn rm(out: &mut Out, dir: &Path, args: &[String]) -> u8 {
    let mut code = 0;
    let (mut removed, mut errors) = (Vec::new(), Vec::new());
    for arg in args {
        let name = resolve(arg, dir);
        let outcome = match segment::inspect(name.clone()) {
            Ok(d) => match d.entry.header.as_ref().map_or_else(|| not_ours(&name.path()), |_| None) {
                Some(why) => Err((
                    "not_a_segment",
                    format!("{name}: {why}, so it was not removed (use rm(1) if it really should go)"),
                )),
                None => multiproc::unlink(name.clone()).map(|()| d.entry).map_err(|e| error_pair(&e, &name)),
            },
            Err(e) => Err(error_pair(&e, &name)),
        };
        match outcome {
            Ok(e) => {
                if !out.json {
                    let note = if e.attached { " (still open in a live process, which keeps its mapping)" } else { "" };
                    out.line(&format_args!("removed {}{note}", e.name));
                }
                removed.push(entry_json(&e));
            }
            Err((kind, msg)) => {
                eprintln!("multiproc: {msg}");
                let error = Json::object([("kind", Json::str(kind)), ("message", Json::str(msg))]);
                errors.push(Json::object([("name", Json::str(arg)), ("error", error)]));
                code = FAILED;
            }
        }
    }
    if out.json {
        out.line(&Json::object([("removed", Json::Array(removed)), ("errors", Json::Array(errors))]));
    }
    code
}

/// Why a file without a multiproc header is not removed by `rm`: it is not
/// a regular file, or we could read it and it is not a segment. `None` when
/// it cannot be read (another user's, say): then `unlink` is tried, and the
/// OS says whether this user may remove it.
fn not_ours(path: &Path) -> Option<&'static str> {
    let regular = std::fs::symlink_metadata(path).map(|m| m.file_type().is_file());
    match regular {
        Ok(false) => Some("not a regular file"),
        Ok(true) if std::fs::File::open(path).is_ok() => Some("not a multiproc segment (no header)"),
        _ => None,
    }
}

/// `multiproc gc [--dry-run]`.
pub fn gc(out: &mut Out, dir: &Path, dry_run: bool) -> u8 {
    let gone = match segment::gc(dir, dry_run) {
        Ok(g) => g,
        Err(e) => return out.fail(&e, None),
    };
    if out.json {
        out.line(&Json::object([
            ("dir", Json::str(dir.display().to_string())),
            ("dry_run", Json::Bool(dry_run)),
            ("removed", Json::Array(gone.iter().map(entry_json).collect())),
        ]));
        return 0;
    }
    if gone.is_empty() {
        out.line(&format_args!("no stale segments in {}", dir.display()));
        return 0;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    out.line(&format_args!("{verb} {} stale {} from {}:", gone.len(), noun(gone.len()), dir.display()));
    out.text.push_str(&entry_table(&gone));
    0
}
