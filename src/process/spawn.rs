//! The spawn start method: the program re-executes itself, and the copy runs
//! the target instead of `main`.
//!
//! # Protocol
//!
//! 1. The parent checks that the target `fn(A)` and the [`trampoline`] that
//!    decodes `A` live in the same loaded object as [`anchor`], a function of
//!    this crate (so: in the executable). A re-executed copy of the same file
//!    loads that object at another address (ASLR) but with the same layout,
//!    so each function's *offset from the anchor* names it in the child too.
//! 2. It serialises the argument with postcard inside
//!    [`transfer::collect_outgoing`], which lists the descriptors of the
//!    anonymous objects in it, and writes the *payload* into a memfd named
//!    `multiproc-spawn`: [`MAGIC`], [`VERSION`], a "started" byte, the length
//!    of the [`Meta`] record, the record (identity of the executable, the two
//!    offsets, the argument's type name, the inherited descriptors), then the
//!    encoded argument.
//! 3. It runs `/proc/self/exe` — not `current_exe()`: cargo (or an upgrade)
//!    may have replaced the file at that path since we started, while
//!    `/proc/self/exe` is the very inode we run — with `argv[0]` kept,
//!    stdio inherited, the environment variable [`ENV`] set to the payload's
//!    descriptor number, and, between fork and exec, the payload and the
//!    anonymous objects' descriptors made inheritable (and
//!    `PR_SET_PDEATHSIG` set, if asked).
//! 4. In the child, [`init`](crate::init) calls [`entry`], which checks that
//!    the number names an open memfd called `multiproc-spawn` whose payload
//!    starts with [`MAGIC`] — a grandchild that merely inherited the variable
//!    fails this and runs its `main` as usual — sets the started byte (so the
//!    parent can tell a child that never reached its entry point), closes the
//!    payload, decodes the argument inside [`transfer::with_incoming`], runs
//!    the target under `catch_unwind`, and exits: 0 when the target returns,
//!    1 when it panics (the panic hook has printed the message already) or
//!    when the payload cannot be decoded (with a message on stderr).
//!
//! # Safety
//!
//! The unsafe steps are the two transmutes that turn code addresses found in
//! the child back into function pointers: the trampoline's in `run_child`,
//! the target's in [`trampoline`]. Each rests on the checks of the protocol
//! above (same executable file, both functions in its image, type names
//! equal); their `SAFETY` comments spell it out.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Job, ProcessError};
use crate::segment::transfer;
use crate::sys::{self, Pid, memfd};

/// The environment variable that tells a re-executed program which
/// descriptor holds its payload.
pub(crate) const ENV: &str = "MULTIPROC_SPAWN";

/// The program the parent re-executes, and the file whose identity the child
/// checks.
const EXE: &str = "/proc/self/exe";

/// Name of the payload memfd, and what `/proc/self/fd/N` shows for it.
const MEMFD_NAME: &CStr = c"multiproc-spawn";
const MEMFD_TARGET: &str = "/memfd:multiproc-spawn (deleted)";

/// First bytes of a payload.
const MAGIC: [u8; 8] = *b"MPSPAWN\0";
/// Layout version of the payload; a child refuses any other.
const VERSION: u32 = 1;
/// Offset of the byte the child sets to 1 when it reaches its entry point.
const STARTED_OFFSET: u64 = 12;
/// Magic (8), version (4), started byte (1), padding (3), length of the
/// [`Meta`] record (4).
const HEADER_LEN: usize = 20;

/// What the child needs besides the argument bytes.
#[derive(Serialize, Deserialize)]
struct Meta {
    /// Device and inode of the parent's executable: the child runs only a
    /// payload made by the same file, for which the offsets are valid.
    exe_dev: u64,
    exe_ino: u64,
    /// Offset of the monomorphised [`trampoline`] from [`anchor`].
    trampoline: isize,
    /// Offset of the target `fn(A)` from [`anchor`].
    target: isize,
    /// `type_name::<A>()`, checked by the trampoline (a second line of
    /// defence: the parent pairs them by construction).
    type_name: String,
    /// Descriptors of the anonymous objects in the argument, in slot order.
    fds: Vec<RawFd>,
}

/// The signature shared by every instance of [`trampoline`]: the target's
/// address, the expected type name, the encoded argument, the inherited
/// descriptors. `Err` carries a message for stderr.
type Trampoline = fn(*const (), &str, &[u8], Vec<OwnedFd>) -> Result<(), String>;

/// The fixed point from which code offsets are measured. Any function of this
/// crate would do; this one exists only to be pointed at.
#[inline(never)]
fn anchor() {}

fn anchor_ptr() -> *const () {
    anchor as fn() as *const ()
}

/// Offset of a code address from [`anchor`].
fn offset_of(addr: *const ()) -> isize {
    (addr as isize).wrapping_sub(anchor_ptr() as isize)
}

/// Offset from the anchor of a function of this executable, which names it
/// in any process running the same executable file (the pool's workers);
/// `None` when the function lies outside the executable's image.
pub(crate) fn code_offset(addr: *const ()) -> Option<isize> {
    sys::process::same_object(addr as usize, anchor_ptr() as usize).then(|| offset_of(addr))
}

/// The code address at `offset` from the anchor: the inverse of
/// [`code_offset`] in a process running the same executable file.
pub(crate) fn code_at(offset: isize) -> *const () {
    anchor_ptr().wrapping_byte_offset(offset)
}

/// The address of `trampoline::<A>`, for [`Job::trampoline_addr`].
pub(super) fn trampoline_of<A: DeserializeOwned>() -> *const () {
    trampoline::<A> as Trampoline as *const ()
}

/// Decodes the argument and calls the target. Instantiated in the parent for
/// the target's `A`; found in the child by its offset.
fn trampoline<A: DeserializeOwned>(
    target: *const (),
    type_name: &str,
    arg: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<(), String> {
    if type_name != std::any::type_name::<A>() {
        return Err(format!(
            "argument type mismatch: the parent sent `{type_name}`, this decoder is for `{}`",
            std::any::type_name::<A>()
        ));
    }
    let arg: A = transfer::with_incoming(fds, || postcard::from_bytes(arg))
        .map_err(|e| format!("cannot decode the argument: {e}"))?;
    // SAFETY: `target` is the anchor's address plus the offset that the
    // parent measured from its own `target as fn(A)`. The child runs the same
    // executable file (device and inode checked in `run_child`) and the parent
    // checked that both the target and the anchor lie in that executable's
    // image, which the loader relocates as one block; so `target` is the
    // address of that same function here. It has type `fn(A)` for this very
    // `A`: the parent recorded this trampoline's offset from the same
    // `Typed<A>` as the target's, and the type names were compared above.
    // `*const ()` to `fn` pointer is the transmute std documents for turning
    // a code address into a callable function pointer; the pointer keeps the
    // anchor's provenance (`wrapping_byte_offset`).
    let target = unsafe { std::mem::transmute::<*const (), fn(A)>(target) };
    target(arg);
    Ok(())
}

/// A started spawn child.
pub(super) struct Spawned {
    pub(super) pid: Pid,
    /// The payload memfd; the child sets its started byte.
    pub(super) payload: File,
}

/// Whether this process is a spawned child that never called
/// [`init`](crate::init): set to `false` by [`entry`], otherwise decided by
/// the first [`start`], before this process has made payloads of its own
/// (one of which could have the number the inherited variable names).
static STRAY: OnceLock<bool> = OnceLock::new();

/// Starts `job` in a re-executed copy of this program.
///
/// A spawned child that never called [`init`](crate::init) runs `main`
/// from the start, which may well start the very child that started it:
/// such a process (its payload inherited and never taken) is refused with
/// [`ProcessError::EntryNotCalled`], so that a missing `init` ends in an
/// error instead of copies of the program spawning copies without end.
pub(super) fn start(job: &dyn Job, die_with_parent: bool) -> Result<Spawned, ProcessError> {
    if *STRAY.get_or_init(|| inherited_payload().is_some()) {
        return Err(ProcessError::EntryNotCalled);
    }
    let base = anchor_ptr() as usize;
    let (target, trampoline) = (job.target_addr(), job.trampoline_addr());
    if !sys::process::same_object(target as usize, base) || !sys::process::same_object(trampoline as usize, base) {
        return Err(ProcessError::TargetNotInExecutable);
    }
    // `out.fds` borrow descriptors owned by objects inside `job`'s argument,
    // which lives until after `spawn` below has returned (the exec is done),
    // or by `out.owned`, which is dropped after `spawn` too.
    let (arg, out) = job.encode();
    let fds = &out.fds;
    let arg = arg.map_err(ProcessError::Encode)?;
    let exe = std::fs::metadata(EXE)?;
    let meta = Meta {
        exe_dev: exe.dev(),
        exe_ino: exe.ino(),
        trampoline: offset_of(trampoline),
        target: offset_of(target),
        type_name: job.type_name().to_string(),
        fds: fds.clone(),
    };
    let meta = postcard::to_allocvec(&meta).map_err(|e| ProcessError::Encode(e.to_string()))?;
    let meta_len = u32::try_from(meta.len()).map_err(|_| ProcessError::Encode("too many descriptors".into()))?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + meta.len() + arg.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&meta_len.to_le_bytes());
    bytes.extend_from_slice(&meta);
    bytes.extend_from_slice(&arg);

    let mut payload = File::from(memfd::create(MEMFD_NAME)?);
    payload.write_all(&bytes)?;

    let mut cmd = Command::new(EXE);
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.env(ENV, payload.as_raw_fd().to_string());
    let mut keep = fds.clone();
    keep.push(payload.as_raw_fd());
    sys::process::prepare_spawn(&mut cmd, keep, die_with_parent.then(Pid::this));
    // The std `Child` is dropped at once: dropping it neither waits nor
    // kills, and the `Process` waits by pid itself.
    let child = cmd.spawn()?;
    drop(out);
    Ok(Spawned { pid: Pid::from_u32(child.id()), payload })
}

/// Whether the child reached its entry point (set the started byte). A
/// payload that cannot be read counts as reached: no error is invented.
pub(super) fn entry_reached(payload: &File) -> bool {
    let mut b = [0u8];
    payload.read_exact_at(&mut b, STARTED_OFFSET).map_or(true, |()| b[0] != 0)
}

/// The child side, called by [`init`](crate::init): returns at once unless
/// this process is a spawned child, in which case it runs the target and
/// exits.
pub(super) fn entry() {
    let _ = STRAY.set(false);
    let Some(fd) = inherited_payload() else { return };
    // Closed (dropped) at the end of this block, marked close-on-exec before.
    let Ok(payload) = sys::process::adopt_fd(fd).map(File::from) else { return };
    let Ok(bytes) = read_all(&payload) else { return };
    if bytes.len() < HEADER_LEN || bytes[..MAGIC.len()] != MAGIC {
        return;
    }
    // From here on this process is a spawned child: it never returns to main.
    let _ = payload.write_at(&[1], STARTED_OFFSET);
    drop(payload);
    let code = run_child(&bytes).unwrap_or_else(|msg| {
        eprintln!("multiproc: the spawned child cannot run its target: {msg}");
        1
    });
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(code);
}

/// The descriptor [`ENV`] names, if it is a spawn payload: in a process
/// that merely inherited the variable, the number may be someone else's
/// descriptor, so what it points at is checked before anything owns it.
fn inherited_payload() -> Option<RawFd> {
    let value = std::env::var_os(ENV)?;
    let fd = value.to_str().and_then(|s| s.parse::<RawFd>().ok()).filter(|&fd| fd >= 0)?;
    sys::process::raw_fd_target(fd).is_ok_and(|p| p == Path::new(MEMFD_TARGET)).then_some(fd)
}

fn read_all(file: &File) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// Decodes the payload and runs the target: the exit code, or why the
/// payload is unusable.
fn run_child(bytes: &[u8]) -> Result<i32, String> {
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("payload version {version}, expected {VERSION}"));
    }
    let meta_len = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
    let meta_end = HEADER_LEN.checked_add(meta_len).filter(|&end| end <= bytes.len()).ok_or("truncated payload")?;
    let meta: Meta = postcard::from_bytes(&bytes[HEADER_LEN..meta_end]).map_err(|e| format!("corrupt payload: {e}"))?;
    let exe = std::fs::metadata(EXE).map_err(|e| format!("cannot stat {EXE}: {e}"))?;
    if (exe.dev(), exe.ino()) != (meta.exe_dev, meta.exe_ino) {
        return Err("the payload was made by another executable".into());
    }
    let fds = meta
        .fds
        .iter()
        .map(|&fd| sys::process::adopt_fd(fd).map_err(|e| format!("inherited descriptor {fd}: {e}")))
        .collect::<Result<Vec<OwnedFd>, String>>()?;
    let base = anchor_ptr();
    // SAFETY: the address is the anchor's plus the offset the parent measured
    // from its own `trampoline::<A>`, which it checked lies in the executable
    // image together with the anchor. This process runs the same file
    // (device and inode compared just above; the payload came through a
    // `multiproc-spawn` memfd that the parent kept open across the exec on
    // purpose), whose image the loader relocates as one block, so the
    // address is that function here. Every `trampoline::<A>` has the type
    // `Trampoline`, since `A` appears only in its body.
    let trampoline =
        unsafe { std::mem::transmute::<*const (), Trampoline>(base.wrapping_byte_offset(meta.trampoline)) };
    let target = base.wrapping_byte_offset(meta.target);
    let arg = &bytes[meta_end..];
    match catch_unwind(AssertUnwindSafe(|| trampoline(target, &meta.type_name, arg, fds))) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(msg)) => Err(msg),
        // The panic hook has printed the message.
        Err(_) => Ok(1),
    }
}
