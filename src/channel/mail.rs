//! A pipe's mailbox: one slot per direction for a small message, both
//! slots on one cache line.
//!
//! # Why
//!
//! A ping-pong over two rings moves at least two lines per hop: the sender
//! takes its record's line back from the receiver that last read it, then
//! the receiver fetches it (benches: `rtt_8B/raw_two_lines` against
//! `raw_cacheline`). When both directions signal through the *same* line, a
//! hop is one fetch: the line a receiver reads from the core that wrote it
//! arrives ready to be written, so its reply costs nothing more. So a
//! duplex pipe's small messages (at most [`MAIL_MAX`] bytes) go through
//! this line when the ring they would otherwise take is empty — the
//! request/reply case — and a stream, which keeps the ring busy, never
//! touches it. A one-way pipe has the line too and uses its first slot
//! the same way (a receive looks at it, as at the ring); measured, dropping
//! it there cut a receive from 170 to 152 instructions but did not move the
//! 64-byte stream (30.8–33.6 ns against 30.2–34.6 ns a message, alternated
//! builds, session 7), so one-way pipes keep it and behave as duplex ones.
//!
//! # Order
//!
//! A message goes into the mailbox only when the producer knows the ring is
//! empty (every record up to `tail` was taken: a consumer said so in
//! [`Mailbox`]'s `idle`, a word on a line of its own) and the slot is free. So a message in the slot is
//! older than every record in the ring, and a consumer that looks at the
//! ring header at `head` first (acquire) and then at the slot delivers the
//! slot first: anything published before the record it saw is visible by
//! then. Both sides touch the slot only inside their side of the ring
//! (`send_lock`, `recv_lock`), as with the ring; each word of the line has
//! writers of one kind only, so none needs more than a store.
//!
//! # Acks
//!
//! Taking a message writes nothing to the line: a consumer records the
//! message's header in its own line (`taken`, beside `head`), and a slot
//! whose header is taken is free. (The header and not just the sequence
//! number in it: a slot is then free, or already taken, when its header
//! *equals* one of two words, with no check of what it holds; only a header
//! that is new to consumers is checked, once, as it is delivered. Measured:
//! see [`Mailbox::usable`].) Were the consumer to clear the
//! header instead, that write would take the line back from a peer spinning
//! on it, and the reply would take it back once more: three transfers a hop
//! instead of one. Nor does anyone clear it later: the producer of the
//! *other* direction copies `taken` into its own slot's `ack` as it writes
//! its message (the reply, in a ping-pong), and the producer here reads it
//! there, on the line it fetched the reply with. (A clearing write by the
//! replier would have to be a compare-and-swap, as it races with the next
//! message; measured, its cost showed in every round trip.) A slot whose
//! message the other side has not acked, because it sends nothing or
//! sends through its ring, is found free by reading `taken` itself.
//!
//! A sequence number is 52 bits and never reused before it wraps, so an
//! `ack` or `taken` that holds a header names that one message. A consumer
//! records only headers it checked, so a slot holding anything else is
//! never free to a producer.
//!
//! # Crashes and hostile peers
//!
//! The payload is written before the header (release), so a producer killed
//! mid-write left nothing visible, and the next producer writes over it. A
//! consumer killed before it recorded the message as taken left it in
//! place: the next consumer takes it (it was never delivered). Producers
//! record a message's number before it is visible, so a producer killed
//! after that only skips a number. The slot is all atomics read and written
//! whole, so a peer that writes anything there causes a [`Stop::Broken`] (a
//! header that is not one), a lost or repeated message (a wrong `taken`,
//! `ack` or sequence number) or a wrong one (payload), never undefined
//! behaviour. A wrong `idle` only misorders messages.
use std::sync::atomic::{AtomicU64, Ordering};

use super::ring::Stop;

/// The largest message that goes through the mailbox, in bytes.
pub(crate) const MAIL_MAX: usize = 16;

/// Bits 8..12 of a header; bits 12..64 are the message's sequence number
/// (one more each message, never zero), bits 0..8 its length.
const TAG: u64 = 0xa << 8;
const TAG_MASK: u64 = 0xf << 8;
const SEQ_BITS: u32 = 52;

/// One direction's slot. Written only by the producers of its direction,
/// inside their side of the ring.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Mail {
    /// Zero before the first message, then the header of the last message
    /// put here, whether consumers have taken it or not: it is never
    /// cleared, as that would be a write to the line (see "Acks").
    header: AtomicU64,
    /// The header of the last message consumers had taken from the *other*
    /// direction's slot when a producer last wrote here.
    ack: AtomicU64,
    /// The message's bytes, as [`pack`] lays them out.
    payload: [AtomicU64; 2],
}

/// A pipe's two slots, one per ring: one cache line.
pub(crate) type MailLine = [Mail; 2];

/// A ring's view of its pipe's mailbox.
#[derive(Clone, Copy)]
pub(crate) struct Mailbox<'a> {
    /// This ring's slot.
    mine: &'a Mail,
    /// The other direction's slot, which carries the acks of ours.
    other: &'a Mail,
    /// A `head` at which a consumer found nothing to take (written only
    /// when it changes; on a line of its own, as it changes when the ring
    /// is in use and the slots' line should not). `head` only grows and
    /// never passes `tail`, so when this equals `tail` the ring is empty
    /// now: the producer learns that without reading the consumers' line,
    /// and a pipe returns to the mailbox as soon as a burst through the ring
    /// has drained and its receiver has looked once more. (Not the
    /// producer's own cached `head`: a consumer that is waiting always says
    /// so here, and one rule is one the model in
    /// `fuzz/common/channel_model.rs` can follow exactly.)
    idle: &'a AtomicU64,
}

/// The sequence number after `last`: never zero (zero marks a word that
/// is not a header, see [`is_header`]), and wrapping after 2^52 messages,
/// which at a hundred million a second takes over a year.
#[inline]
pub(crate) fn next_seq(last: u64) -> u64 {
    match last.wrapping_add(1) & ((1 << SEQ_BITS) - 1) {
        0 => 1,
        s => s,
    }
}

/// Whether `header` is one at all: tagged, with a sequence number that
/// [`next_seq`] gives and a length that fits.
#[inline]
fn is_header(header: u64) -> bool {
    header & TAG_MASK == TAG && header >> 12 != 0 && (header & 0xff) as usize <= MAIL_MAX
}

impl<'a> Mailbox<'a> {
    /// Ring `i`'s view of `line`, with its `idle` word.
    pub(crate) fn new(line: &'a MailLine, i: usize, idle: &'a AtomicU64) -> Mailbox<'a> {
        Mailbox { mine: &line[i & 1], other: &line[(i & 1) ^ 1], idle }
    }

    /// Whether a message that consumers have not taken waits in the slot (a
    /// hint; [`take`](Self::take) checks it). `taken` is the ring's
    /// consumers' record of the header of the last message they took.
    #[inline]
    pub(crate) fn pending(self, taken: &AtomicU64) -> bool {
        let header = self.mine.header.load(Ordering::Acquire);
        header != 0 && header != taken.load(Ordering::Acquire)
    }

    /// Whether a producer at `tail` may use the slot: a consumer found the
    /// ring empty at `tail`, and consumers have taken the slot's message.
    /// The other direction's producer says so in its slot's `ack`, on this
    /// line, the reply's line; `taken` is read (on the consumers' line)
    /// only when it has not. A slot that holds something other than a
    /// header stays in use, so that consumers report it: consumers record
    /// only headers they checked, so such a word equals neither. Comparing
    /// whole headers, rather than checking the header and then comparing
    /// its sequence number, took a one-thread round trip through a duplex
    /// pipe (two sends, two `try_recv`s of a `Plain<u64>`) from 506 to 470
    /// instructions (callgrind); between two processes the spinning round
    /// trip went from 122 to 118 ns (medians of 20 rounds, builds
    /// alternated, session 10), within the noise.
    ///
    /// This, [`put`](Self::put) and [`pack`] are always inlined: with
    /// `#[inline]` the compiler left all three as calls on every small
    /// send, with the `Mailbox` built on the stack for them. Inlined, one
    /// thread's round trip through a duplex pipe (two sends, two
    /// `try_recv`s of a `Plain<u64>`) went from 583 to 493 instructions and
    /// 38.4–40.5 to 30.6–31.5 ns, and the benchmark's 8-byte round trip in
    /// the fast cross-core state from 0.173–0.198 to 0.139–0.156 µs
    /// spinning and 0.134–0.180 to 0.117–0.135 µs blocking (binaries run
    /// in alternation, session 9).
    #[inline(always)]
    pub(crate) fn usable(self, tail: u64, taken: &AtomicU64) -> bool {
        if self.idle.load(Ordering::Acquire) != tail {
            return false;
        }
        let header = self.mine.header.load(Ordering::Acquire);
        // Acquire, all: the consumer's reads of the message happen before
        // our writes over it, through its release of `taken`, which the
        // acker (acquire) passed on in `ack` (release).
        header == 0 || header == self.other.ack.load(Ordering::Acquire) || header == taken.load(Ordering::Acquire)
    }

    /// Writes `msg` (at most [`MAIL_MAX`] bytes) into a slot that
    /// [`usable`](Self::usable) said is free and publishes it as message
    /// `seq` (from [`next_seq`], recorded by the caller before). With `ack`,
    /// the other direction's consumers' `taken`, passes that on to the other
    /// direction's producer.
    ///
    /// Everything is computed before the first write to the line, so the
    /// writes follow each other closely: a peer spinning on the line takes
    /// it back between two of them otherwise, and each such steal costs a
    /// transfer (measured: a poll loop that looked more often made the
    /// round trip slower).
    #[inline(always)]
    pub(crate) fn put(self, seq: u64, msg: &[u8], ack: Option<&AtomicU64>) {
        let bytes = pack(msg);
        let header = seq << 12 | TAG | msg.len() as u64;
        let ack = ack.map(|taken| taken.load(Ordering::Acquire));
        if let Some(ack) = ack {
            self.mine.ack.store(ack, Ordering::Release);
        }
        self.mine.payload[0].store(bytes as u64, Ordering::Relaxed);
        self.mine.payload[1].store((bytes >> 64) as u64, Ordering::Relaxed);
        self.mine.header.store(header, Ordering::Release);
    }

    /// Hands the waiting message to `read` and records it as taken, or
    /// `None` when the slot holds none that is not taken. `counted` runs
    /// after `read` and before the record (the caller counts the delivery
    /// there). Nothing is written to the slot's line. A header that is not
    /// one comes back as it is (`Err`), for [`corrupt`] to describe: built
    /// here, the error cost the receive that inlines this registers and
    /// stack spills (see `Side::enter_biased_quick` for what it saved).
    #[inline(always)]
    pub(crate) fn take<R>(
        self,
        taken: &AtomicU64,
        read: impl FnOnce(&[u8]) -> R,
        counted: impl FnOnce(),
    ) -> Result<Option<R>, u64> {
        let header = self.mine.header.load(Ordering::Acquire);
        // Only consumers write `taken`, inside the receive side, as we are.
        if header == taken.load(Ordering::Relaxed) || header == 0 {
            return Ok(None);
        }
        if !is_header(header) {
            return Err(header);
        }
        let len = (header & 0xff) as usize;
        let words = [self.mine.payload[0].load(Ordering::Relaxed), self.mine.payload[1].load(Ordering::Relaxed)];
        let bytes = (u128::from(words[0]) | u128::from(words[1]) << 64).to_le_bytes();
        let r = read(&bytes[..len]);
        counted();
        // Release: our reads of the payload happen before a producer's
        // writes over it (see `usable`).
        taken.store(header, Ordering::Release);
        Ok(Some(r))
    }

    /// A consumer found nothing to take at `head`: tells producers, once.
    #[inline]
    pub(crate) fn mark_idle(self, head: u64) {
        // Release: the records before `head` were read before a producer
        // that acquires this writes over them.
        if self.idle.load(Ordering::Relaxed) != head {
            self.idle.store(head, Ordering::Release);
        }
    }

    /// Writes `header` into the slot as a faulty or hostile peer could
    /// (tests).
    #[cfg(test)]
    pub(crate) fn forge_header(self, header: u64) {
        self.mine.header.store(header, Ordering::Relaxed);
    }
}

/// `msg` (at most [`MAIL_MAX`] bytes) as a little-endian number: byte `i`
/// of the message is byte `i` of the number. Read as whole words that
/// overlap rather than byte by byte or through `memcpy`: this is on every
/// small message's path.
#[inline(always)]
fn pack(msg: &[u8]) -> u128 {
    let n = msg.len();
    let le64 = |at: usize| msg.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let le32 = |at: usize| msg.get(at..at + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
    match n {
        // The two words overlap where `n < 16`; the overlap holds the same
        // bytes in both.
        8..=MAIL_MAX => u128::from(le64(0)) | u128::from(le64(n - 8)) << (8 * (n - 8)),
        4..=7 => u128::from(u64::from(le32(0)) | u64::from(le32(n - 4)) << (8 * (n - 4))),
        1..=3 => u128::from(msg[0]) | u128::from(msg[n / 2]) << (8 * (n / 2)) | u128::from(msg[n - 1]) << (8 * (n - 1)),
        _ => 0,
    }
}

/// The error for a mail header that is not one.
#[cold]
pub(crate) fn corrupt(header: u64) -> Stop {
    Stop::Broken(format!("corrupt mailbox header {header:#018x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duplex pipe's mailbox: both slots, both `idle` words, both
    /// consumers' `taken`.
    #[derive(Default)]
    struct Pair {
        line: MailLine,
        idle: [AtomicU64; 2],
        taken: [AtomicU64; 2],
        seq: [std::cell::Cell<u64>; 2],
    }

    impl Pair {
        fn slot(&self, i: usize) -> Mailbox<'_> {
            Mailbox::new(&self.line, i, &self.idle[i])
        }

        fn usable(&self, i: usize) -> bool {
            self.slot(i).usable(0, &self.taken[i])
        }

        /// Puts `msg` in slot `i`, acking the other slot's takes if `ack`.
        fn put(&self, i: usize, msg: &[u8], ack: bool) {
            assert!(self.usable(i), "slot {i} free");
            self.seq[i].set(next_seq(self.seq[i].get()));
            self.slot(i).put(self.seq[i].get(), msg, ack.then_some(&self.taken[1 - i]));
        }

        fn take(&self, i: usize) -> Result<Option<Vec<u8>>, Stop> {
            self.slot(i).take(&self.taken[i], <[u8]>::to_vec, || {}).map_err(corrupt)
        }
    }

    #[test]
    fn pack_keeps_every_length_byte_for_byte() {
        for n in 0..=MAIL_MAX {
            let msg: Vec<u8> = (1..=n as u8).map(|b| b.wrapping_mul(37)).collect();
            let bytes = pack(&msg).to_le_bytes();
            assert_eq!(&bytes[..n], &msg[..], "length {n}");
            assert!(bytes[n..].iter().all(|&b| b == 0), "length {n}: zeros after the message");
        }
    }

    #[test]
    fn every_length_goes_through_whole_empty_included() {
        let pair = Pair::default();
        for n in 0..=MAIL_MAX {
            let msg: Vec<u8> = (0..n as u8).map(|b| b ^ 0xa5).collect();
            pair.put(0, &msg, false);
            assert_eq!(pair.take(0).unwrap(), Some(msg), "length {n}");
        }
    }

    /// Taking writes nothing to the line; the message is not taken twice,
    /// and the slot is free for its producer, which reads `taken` to learn
    /// so when nobody acked.
    #[test]
    fn a_taken_message_frees_the_slot_without_a_write_to_the_line() {
        let pair = Pair::default();
        pair.put(0, b"hello", false);
        assert!(pair.slot(0).pending(&pair.taken[0]));
        assert!(!pair.usable(0), "full");
        let line = |p: &Pair| p.line[0].header.load(Ordering::Relaxed);
        let before = line(&pair);
        assert_eq!(pair.take(0).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(line(&pair), before, "the header stays");
        assert!(!pair.slot(0).pending(&pair.taken[0]));
        assert_eq!(pair.take(0).unwrap(), None, "delivered once");
        pair.put(0, b"again", false);
        assert_eq!(pair.take(0).unwrap().as_deref(), Some(&b"again"[..]));
    }

    /// The other direction's put carries the ack, and only of what was
    /// taken: the producer then finds its slot free from the line alone.
    #[test]
    fn a_reply_acks_what_was_taken_and_nothing_else() {
        let pair = Pair::default();
        pair.put(0, b"request", false);
        pair.put(1, b"early", true);
        assert!(!pair.usable(0), "not taken, so not acked");
        assert_eq!(pair.take(0).unwrap().as_deref(), Some(&b"request"[..]));
        assert_eq!(pair.take(1).unwrap().as_deref(), Some(&b"early"[..]));
        pair.put(1, b"reply", true);
        let request = pair.line[0].header.load(Ordering::Relaxed);
        assert_eq!(pair.line[1].ack.load(Ordering::Relaxed), request, "acked in the reply's slot");
        // Without `taken`, which the consumers could have moved anywhere.
        pair.taken[0].store(u64::MAX, Ordering::Relaxed);
        assert!(pair.usable(0), "free from the ack alone");
    }

    #[test]
    fn sequence_numbers_skip_zero_when_they_wrap() {
        assert_eq!(next_seq(0), 1);
        assert_eq!(next_seq((1 << SEQ_BITS) - 2), (1 << SEQ_BITS) - 1);
        assert_eq!(next_seq((1 << SEQ_BITS) - 1), 1);
    }

    #[test]
    fn the_slot_is_usable_only_where_a_consumer_found_the_ring_empty() {
        let pair = Pair::default();
        let slot = pair.slot(0);
        assert!(!slot.usable(64, &pair.taken[0]), "records up to 64 may wait in the ring");
        slot.mark_idle(64);
        assert!(slot.usable(64, &pair.taken[0]));
        assert!(!slot.usable(72, &pair.taken[0]));
    }

    /// Whatever a peer writes into the header is an error for consumers and
    /// never lets a producer write over it.
    #[test]
    fn a_corrupt_header_is_an_error_not_a_message() {
        for bad in [1, TAG | 17, 0xdead_beef << 12 | 3, u64::MAX] {
            let pair = Pair::default();
            pair.slot(0).forge_header(bad);
            match pair.take(0) {
                Err(Stop::Broken(why)) => assert!(why.contains("corrupt mailbox header"), "{why}"),
                other => panic!("{bad:#x}: {other:?}"),
            }
            assert!(!pair.usable(0), "{bad:#x}: not free");
            assert!(pair.slot(0).pending(&pair.taken[0]), "{bad:#x}: receivers look, and report it");
        }
    }
}
