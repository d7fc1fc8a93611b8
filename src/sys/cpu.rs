//! CPU hints that `std` does not offer.
//!
//! `std::arch`'s `_mm_prefetch` can ask for a line to write
//! (`_MM_HINT_ET0`) only in code compiled for a CPU with `PREFETCHW`; for
//! the baseline x86-64 target it emits a read prefetch, which brings the
//! line in shared and leaves the store to ask again for ownership. So the
//! instruction is written here, used only where the CPU says it has it.

#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not looked up yet; 1: the CPU has `PREFETCHW`; 2: it has not.
#[cfg(target_arch = "x86_64")]
static PREFETCHW: AtomicU8 = AtomicU8::new(0);

/// Asks for the cache line holding `p` in a state this core may write,
/// ahead of the stores that will fill it, so that they do not each wait
/// for it to be taken from the core that last read it. Only a hint: it
/// reads and writes nothing, and does nothing on a CPU without
/// `PREFETCHW` or outside x86-64.
#[inline(always)]
pub(crate) fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        // SAFETY: `PREFETCHW` is a hint: it never faults (not even for an
        // unmapped address), changes no register, flag or byte of memory,
        // and this CPU has it (`has_prefetchw`).
        unsafe { std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly)) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_prefetchw() -> bool {
    match PREFETCHW.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => detect_prefetchw(),
    }
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn detect_prefetchw() -> bool {
    use std::arch::x86_64::__cpuid;
    // `__cpuid` became a safe function after this crate's minimum Rust.
    #[allow(unused_unsafe)]
    // SAFETY: every x86-64 CPU has `CPUID`; leaf 0x8000_0001 is read only
    // when the highest extended leaf says it exists.
    let has = unsafe { __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & 1 << 8 != 0 };
    PREFETCHW.store(if has { 1 } else { 2 }, Ordering::Relaxed);
    has
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux lists `PREFETCHW` as `3dnowprefetch` in /proc/cpuinfo.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn detection_agrees_with_the_kernel() {
        let info = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
        let flags = info.lines().find(|l| l.starts_with("flags")).expect("a flags line");
        let listed = flags.split_whitespace().any(|f| f == "3dnowprefetch");
        assert_eq!(detect_prefetchw(), listed);
        assert_eq!(has_prefetchw(), listed);
    }

    #[test]
    fn a_prefetch_of_any_address_is_harmless() {
        let mut line = [7u8; 64];
        prefetch_write(line.as_ptr());
        prefetch_write(std::ptr::null());
        prefetch_write(usize::MAX as *const u8);
        line[0] += 1;
        assert_eq!(line[..2], [8, 7]);
    }
}
