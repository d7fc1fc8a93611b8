multiproc::test_support!();
// `Pipe` and `Connection` across real processes.

mod common;

use std::time::{Duration, Instant};

use common::join;
use multiproc::Process;
use multiproc::channel::{
    Connection, Failure, Pipe, Plain, RecvError, RecvIntoError, RecvOnly, RecvTimeoutError, SendError, SendOnly,
    SendTimeoutError, TryRecvError, TrySendError,
};

/// The bound on every blocking call of the parent.
const LIMIT: Duration = Duration::from_secs(20);

const BIG: usize = 16 << 20;

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

fn recv<T: multiproc::channel::Message>(c: &Connection) -> T {
    c.recv_timeout(LIMIT).expect("message within the limit")
}

/// Adds one to every number until the stream ends.
fn add_one(conn: Connection) {
    while let Ok(n) = conn.recv::<u64>() {
        conn.send(&(n + 1)).unwrap();
    }
}

#[test]
fn pipe_ping_pong_with_a_child() {
    let (here, there) = Pipe::new().unwrap();
    let mut p = Process::new(add_one, there);
    p.start().unwrap();
    for n in 0..2_000u64 {
        here.send(&n).unwrap();
        assert_eq!(recv::<u64>(&here), n + 1);
    }
    drop(here);
    assert_eq!(join(&mut p), 0, "the child's recv ended when the parent's end was dropped");
}

/// Receives a big message, checks it, and sends another back.
fn big_echo(conn: Connection) {
    let got = conn.recv_bytes().unwrap();
    assert_eq!(got.len(), BIG);
    assert!(got == pattern(BIG, 1), "the parent's 16 MiB arrived intact");
    conn.send_bytes(&pattern(BIG, 2)).unwrap();
    let _ = conn.recv::<()>(); // until the parent is done
}

#[test]
fn pipe_carries_16_mib_messages_through_a_64_kib_ring_both_ways() {
    let (here, there) = Pipe::with_capacity(64 * 1024).unwrap();
    assert_eq!(here.capacity(), 64 * 1024);
    let mut p = Process::new(big_echo, there);
    p.start().unwrap();
    here.send_bytes(&pattern(BIG, 1)).unwrap();
    let back = here.recv_bytes_timeout(LIMIT).unwrap();
    assert_eq!(back.len(), BIG);
    assert!(back == pattern(BIG, 2), "the child's 16 MiB arrived intact");
    drop(here);
    assert_eq!(join(&mut p), 0);
}

/// Sizes around the record limit of a 4 KiB ring (2040 bytes of payload).
const SIZES: [usize; 12] = [0, 1, 0, 7, 8, 2039, 2040, 2041, 0, 4096, 10_000, 0];

fn send_sizes(tx: Connection<SendOnly>) {
    for (i, &len) in SIZES.iter().enumerate() {
        tx.send_bytes(&pattern(len, i as u32)).unwrap();
    }
}

#[test]
fn pipe_keeps_boundaries_and_empty_messages() {
    let (rx, tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let mut p = Process::new(send_sizes, tx);
    p.start().unwrap();
    for (i, &len) in SIZES.iter().enumerate() {
        let got = rx.recv_bytes_timeout(LIMIT).unwrap();
        assert_eq!(got.len(), len, "message {i}");
        assert_eq!(got, pattern(len, i as u32), "message {i}");
    }
    assert_eq!(rx.recv_bytes_timeout(LIMIT), Err(RecvTimeoutError::Disconnected));
    assert_eq!(join(&mut p), 0);
}

#[test]
fn pipe_recv_bytes_into_a_short_buffer_hands_over_the_whole_message() {
    let (a, b) = Pipe::with_capacity(4096).unwrap();
    let streamed = pattern(100_000, 9); // 25 times the ring: streamed in parts
    let sent = streamed.clone();
    let sender = std::thread::spawn(move || {
        a.send_bytes(b"hello world").unwrap();
        a.send_bytes(b"next").unwrap();
        a.send_bytes(&sent).unwrap();
        a.send_bytes(b"last").unwrap();
        a.send_bytes(b"").unwrap();
    });
    let mut buf = [0xAAu8; 4];
    assert_eq!(b.recv_bytes_into(&mut buf), Err(RecvIntoError::BufferTooShort(b"hello world".to_vec())));
    assert_eq!(buf, [0xAA; 4], "the buffer is untouched");
    assert_eq!(b.recv_bytes_into(&mut buf), Ok(4), "the long message was consumed");
    assert_eq!(&buf, b"next");
    let err = b.recv_bytes_into(&mut buf).unwrap_err();
    assert!(err.is_buffer_too_short());
    assert!(err.into_message().unwrap() == streamed, "a streamed message is handed over whole too");
    let mut exact = [0u8; 4];
    assert_eq!(b.recv_bytes_into(&mut exact), Ok(4));
    assert_eq!(&exact, b"last");
    assert_eq!(b.recv_bytes_into(&mut []), Ok(0), "an empty message fits an empty buffer");
    sender.join().unwrap();
    assert_eq!(b.recv_bytes_into(&mut buf), Err(RecvIntoError::Disconnected));
}

fn send_three(tx: Connection<SendOnly>) {
    for i in 0..3u32 {
        tx.send(&i).unwrap();
    }
}

#[test]
fn pipe_one_way_ends_carry_messages_one_way() {
    let (rx, tx): (Connection<RecvOnly>, Connection<SendOnly>) = Pipe::one_way().unwrap();
    assert!(format!("{rx:?}").contains("RecvOnly"));
    assert!(format!("{tx:?}").contains("SendOnly"));
    // Using an end the wrong way does not compile (see the `compile_fail`
    // examples of `Pipe::one_way`); what remains to check is that the ends
    // work across processes and end their stream.
    let mut p = Process::new(send_three, tx);
    p.start().unwrap();
    for i in 0..3u32 {
        assert_eq!(rx.recv_timeout::<u32>(LIMIT), Ok(i));
    }
    assert_eq!(rx.recv_timeout::<u32>(LIMIT), Err(RecvTimeoutError::Disconnected));
    assert_eq!(join(&mut p), 0);
}

fn receive_one_way(rx: Connection<RecvOnly>) {
    assert_eq!(rx.recv::<String>().unwrap(), "to the child");
    assert_eq!(rx.recv::<String>(), Err(RecvError::Disconnected));
}

#[test]
fn pipe_one_way_receiving_end_works_in_a_child() {
    let (rx, tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let mut p = Process::new(receive_one_way, rx);
    p.start().unwrap();
    tx.send(&"to the child".to_string()).unwrap();
    drop(tx);
    assert_eq!(join(&mut p), 0);
}

fn ready_then_hang(conn: Connection) {
    conn.send(&"ready".to_string()).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `wait` while another thread SIGKILLs `p` 250 ms in (off the 100
/// ms slice grid of a blocked call, so the time to notice is measured, not
/// a lucky alignment); checks that `wait` returned within 1.5 s of the
/// kill, and returns what it returned.
fn while_killed<R>(mut p: Process, wait: impl FnOnce() -> R) -> R {
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(250));
        let killed = Instant::now();
        p.kill().unwrap();
        (killed, join(&mut p))
    });
    let outcome = wait();
    let noticed = Instant::now();
    let (killed, code) = killer.join().unwrap();
    assert_eq!(code, -9);
    let after = noticed.saturating_duration_since(killed);
    assert!(after < Duration::from_millis(1500), "noticed {after:?} after the kill");
    outcome
}

#[test]
fn pipe_blocked_recv_returns_disconnected_within_a_second_of_the_child_being_killed() {
    let (here, there) = Pipe::new().unwrap();
    let mut p = Process::new(ready_then_hang, there);
    p.start().unwrap();
    assert_eq!(recv::<String>(&here), "ready");
    let outcome = while_killed(p, || here.recv_timeout::<String>(LIMIT));
    assert_eq!(outcome, Err(RecvTimeoutError::Disconnected));
    assert!(here.send(&1u8).unwrap_err().is_disconnected(), "a send to a dead peer's end fails once noticed");
}

/// Sends `n` numbers, then hangs until killed.
fn count_then_hang((conn, n): (Connection, u64)) {
    for i in 0..n {
        conn.send(&Plain(i)).unwrap();
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A receiver that polls with `try_recv` after enough messages for its
/// side to be biased to it answers "empty" on the inline path; that path
/// too must notice a killed peer within a second.
#[test]
fn pipe_try_recv_loop_of_a_busy_receiver_notices_a_killed_child_within_a_second() {
    const N: u64 = 1_000;
    let (here, there) = Pipe::new().unwrap();
    let mut p = Process::new(count_then_hang, (there, N));
    p.start().unwrap();
    let poll = |conn: &Connection| {
        let start = Instant::now();
        loop {
            match conn.try_recv::<Plain<u64>>() {
                Err(TryRecvError::Empty) if start.elapsed() < LIMIT => std::hint::spin_loop(),
                other => break other,
            }
        }
    };
    for i in 0..N {
        assert_eq!(poll(&here), Ok(Plain(i)));
    }
    assert_eq!(here.try_recv::<Plain<u64>>(), Err(TryRecvError::Empty), "all taken, the child alive");
    assert_eq!(while_killed(p, || poll(&here)), Err(TryRecvError::Disconnected));
}

#[test]
fn pipe_blocked_send_returns_disconnected_within_a_second_of_the_child_being_killed() {
    let (here, there) = Pipe::with_capacity(4096).unwrap();
    let mut p = Process::new(ready_then_hang, there);
    p.start().unwrap();
    assert_eq!(recv::<String>(&here), "ready");
    let kib = [0u8; 1000];
    while here.try_send_bytes(&kib).is_ok() {}
    let outcome = while_killed(p, || here.send_bytes_timeout(&kib, LIMIT));
    assert!(outcome.is_err_and(|e| disconnected(&e)));
}

/// Whether a deadline send failed because the other end is gone.
fn disconnected(e: &SendTimeoutError<()>) -> bool {
    matches!(e, SendTimeoutError::Disconnected(()))
}

fn three_then_exit(tx: Connection) {
    for word in ["one", "two", "three"] {
        tx.send(&word.to_string()).unwrap();
    }
}

#[test]
fn pipe_child_exits_after_three_messages_then_disconnected() {
    let (here, there) = Pipe::new().unwrap();
    let mut p = Process::new(three_then_exit, there);
    p.start().unwrap();
    assert_eq!(join(&mut p), 0, "the messages outlive their sender");
    for word in ["one", "two", "three"] {
        assert_eq!(recv::<String>(&here), word);
    }
    let start = Instant::now();
    assert_eq!(here.recv_timeout::<String>(LIMIT), Err(RecvTimeoutError::Disconnected));
    assert_eq!(here.try_recv::<String>(), Err(TryRecvError::Disconnected));
    assert!(start.elapsed() < Duration::from_millis(500), "an end dropped by its holder is noticed at once");
    assert!(matches!(here.send(&1u8), Err(SendError::Disconnected(()))));
    assert!(matches!(here.try_send(&1u8), Err(TrySendError::Disconnected(()))));
    assert!(here.poll(Duration::ZERO), "the end of the stream counts as something to receive");
}

/// Sends two messages, closes its end, then stays alive until told to go.
fn send_two_close_and_linger(arg: (Connection, Connection<RecvOnly>)) {
    let (conn, quit) = arg;
    conn.send(&1u32).unwrap();
    conn.send(&2u32).unwrap();
    conn.close();
    let _ = quit.recv::<()>();
}

#[test]
fn pipe_peer_close_fails_sends_and_ends_recv_after_the_drain() {
    let (here, there) = Pipe::new().unwrap();
    let (quit_rx, quit_tx) = Pipe::one_way_with_capacity(4096).unwrap();
    let mut p = Process::new(send_two_close_and_linger, (there, quit_rx));
    p.start().unwrap();
    assert_eq!(recv::<u32>(&here), 1);
    assert_eq!(recv::<u32>(&here), 2);
    let start = Instant::now();
    assert_eq!(here.recv_timeout::<u32>(LIMIT), Err(RecvTimeoutError::Disconnected));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(p.is_alive(), "the child closed its end but is still running");
    assert!(here.send(&3u32).unwrap_err().is_disconnected());
    assert!(here.send_bytes(b"x").unwrap_err().is_disconnected());
    assert!(matches!(here.reserve(8), Err(SendError::Disconnected(()))));
    quit_tx.send(&()).unwrap();
    assert_eq!(join(&mut p), 0);
}

#[test]
fn pipe_close_wakes_a_blocked_sender_and_a_blocked_receiver() {
    let (a, b) = Pipe::with_capacity(4096).unwrap();
    let kib = [0u8; 1000];
    while a.try_send_bytes(&kib).is_ok() {}
    let (c, d) = Pipe::new().unwrap();
    let blocked = std::thread::spawn(move || {
        let start = Instant::now();
        let sent = a.send_bytes_timeout(&kib, LIMIT);
        let got = d.recv_timeout::<u8>(LIMIT);
        (sent.is_err_and(|e| disconnected(&e)), got, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    b.close();
    c.close();
    let (send_failed, got, took) = blocked.join().unwrap();
    assert!(send_failed, "the blocked send saw the receiver go");
    assert_eq!(got, Err(RecvTimeoutError::Disconnected));
    assert!(took < Duration::from_secs(1), "woken at once, took {took:?}");
}

fn reply_after(arg: (Connection, u64)) {
    let (conn, ms) = arg;
    std::thread::sleep(Duration::from_millis(ms));
    conn.send(&"late".to_string()).unwrap();
    let _ = conn.recv::<()>();
}

#[test]
fn pipe_poll_waits_at_most_its_timeout() {
    let (here, there) = Pipe::new().unwrap();
    let mut p = Process::new(reply_after, (there, 300));
    p.start().unwrap();
    assert!(!here.poll(Duration::ZERO));
    let start = Instant::now();
    assert!(!here.poll(Duration::from_millis(50)), "nothing within 50 ms");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(2), "{waited:?}");
    let start = Instant::now();
    assert!(here.poll(LIMIT), "the reply comes");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(here.poll(Duration::ZERO), "poll does not consume");
    assert_eq!(recv::<String>(&here), "late");
    assert!(!here.poll(Duration::ZERO));
    drop(here);
    assert_eq!(join(&mut p), 0);
}

#[test]
fn pipe_sends_to_a_dropped_end_fail() {
    let (a, b) = Pipe::new().unwrap();
    let b2 = b.clone();
    drop(b);
    a.send(&1u8).unwrap(); // a clone still holds the end
    drop(b2);
    assert!(matches!(a.send(&2u8), Err(SendError::Disconnected(()))));
    assert!(matches!(a.try_send_bytes(b"x"), Err(TrySendError::Disconnected(()))));
    assert!(a.send_timeout(&3u8, Duration::from_secs(1)).is_err_and(|e| disconnected(&e)));
    assert!(matches!(a.reserve(1), Err(SendError::Disconnected(()))));

    let (rx, tx) = Pipe::one_way().unwrap();
    drop(rx);
    assert!(tx.send(&1u8).unwrap_err().is_disconnected());
}

#[test]
fn pipe_in_place_write_and_read() {
    let (a, b) = Pipe::with_capacity(8192).unwrap();
    let mut slot = a.reserve(100).unwrap();
    slot.copy_from_slice(&[5; 100]);
    slot.commit();
    drop(a.reserve(3).unwrap()); // dropped uncommitted: nothing sent
    a.send_bytes(b"after").unwrap();
    {
        let view = b.recv_in_place().unwrap();
        assert!(view.is_in_place());
        assert_eq!(&*view, &[5; 100][..]);
    }
    assert_eq!(b.recv_bytes().unwrap(), b"after");
    match a.reserve(8192) {
        Err(SendError::Failed((), Failure::TooLarge { len: 8192, max })) => assert_eq!(max, 4096 - 8),
        _ => panic!("an in-place message larger than one record is refused"),
    }
}

#[test]
fn pipe_wrong_message_type_is_a_decode_error_and_is_consumed() {
    let (a, b) = Pipe::new().unwrap();
    a.send(&"not a number".to_string()).unwrap();
    a.send(&7u16).unwrap();
    assert!(matches!(b.recv::<Plain<u64>>(), Err(RecvError::Failed(_))));
    assert_eq!(b.recv::<u16>(), Ok(7));
}

/// The message `i` of the fixed-size stream below, or the odd-sized one
/// that takes its place.
fn fixed_or_odd(i: u64) -> Result<[u64; 8], Vec<u8>> {
    match i % 1000 {
        17 => Err(vec![3; 72]),
        420 => Err(vec![4; 56]),
        911 => Err(Vec::new()),
        _ => Ok([i, !i, i ^ 0x5a5a, i.rotate_left(17), i * 3, i + 7, i << 3, i >> 3]),
    }
}

fn send_fixed_stream((tx, n): (Connection<SendOnly>, u64)) {
    for i in 0..n {
        match fixed_or_odd(i) {
            Ok(v) => tx.send(&Plain(v)).unwrap(),
            Err(bytes) => tx.send_bytes(&bytes).unwrap(),
        }
    }
}

/// A typed receive of a fixed-size type checks a record's header against
/// the one a message of that size has: a stream from another process, many
/// laps of a small ring, arrives whole and in order, and messages of other
/// sizes in it (longer, shorter, empty) arrive as decode errors in their
/// place, also once the receive side takes its inline path.
#[test]
fn pipe_fixed_size_stream_from_a_child_reports_other_sizes_in_order() {
    const N: u64 = 200_000;
    let (rx, tx) = Pipe::one_way_with_capacity(16 * 1024).unwrap();
    let mut p = Process::new(send_fixed_stream, (tx, N));
    p.start().unwrap();
    for i in 0..N {
        match (rx.recv_timeout::<Plain<[u64; 8]>>(LIMIT), fixed_or_odd(i)) {
            (Ok(Plain(got)), Ok(want)) => assert_eq!(got, want, "message {i}"),
            (Err(RecvTimeoutError::Failed(Failure::Decode(_))), Err(_)) => {}
            (got, want) => panic!("message {i}: got {got:?}, sent {want:?}"),
        }
    }
    assert_eq!(join(&mut p), 0);
    assert_eq!(rx.try_recv::<Plain<[u64; 8]>>(), Err(TryRecvError::Disconnected));
}

/// Sends a huge message; the parent kills it in the middle.
fn stream_forever(conn: Connection) {
    conn.send(&"start".to_string()).unwrap();
    let chunk = vec![1u8; 64 << 20];
    loop {
        let _ = conn.send_bytes(&chunk);
    }
}

#[test]
fn pipe_sender_killed_mid_stream_loses_the_message_whole() {
    let (here, there) = Pipe::with_capacity(4096).unwrap();
    let mut p = Process::new(stream_forever, there);
    p.start().unwrap();
    assert_eq!(recv::<String>(&here), "start");
    // Take a first part of the 64 MiB stream, then kill the sender.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        p.kill().unwrap();
        join(&mut p)
    });
    let start = Instant::now();
    let mut whole = 0;
    loop {
        match here.recv_bytes_timeout(LIMIT) {
            Ok(msg) => {
                assert_eq!(msg.len(), 64 << 20, "only whole messages are delivered");
                whole += 1;
            }
            Err(e) => {
                assert_eq!(e, RecvTimeoutError::Disconnected);
                break;
            }
        }
        assert!(start.elapsed() < LIMIT);
    }
    assert_eq!(killer.join().unwrap(), -9);
    assert!(whole < 1000);
}

/// Echoes every message as bytes until the stream ends.
fn echo_bytes(conn: Connection) {
    while let Ok(msg) = conn.recv_bytes() {
        conn.send_bytes(&msg).unwrap();
    }
}

/// Small messages go through the pipe's mailbox when the ring is drained
/// and through the ring behind a burst: in bursts of every length from 1
/// to 6, sizes around the mailbox's 16 bytes mixed with larger ones, both
/// ways, every message comes back whole and in order.
#[test]
fn pipe_bursts_of_small_and_large_messages_keep_their_order_both_ways() {
    let (here, there) = Pipe::with_capacity(64 * 1024).unwrap();
    let mut p = Process::new(echo_bytes, there);
    p.start().unwrap();
    let sizes = [0, 1, 7, 8, 15, 16, 17, 24, 3000, 16, 0, 9];
    let mut seed = 0u32;
    for round in 0..200 {
        let burst = 1 + round % 6;
        let sent: Vec<Vec<u8>> = (0..burst)
            .map(|i| {
                seed += 1;
                pattern(sizes[(round + i * 5) % sizes.len()], seed)
            })
            .collect();
        for msg in &sent {
            here.send_bytes(msg).unwrap();
        }
        for (i, want) in sent.iter().enumerate() {
            let got = here.recv_bytes_timeout(LIMIT).expect("echo within the limit");
            assert!(&got == want, "round {round}, message {i}: {} bytes back for {}", got.len(), want.len());
        }
        assert_eq!(here.try_recv_bytes(), Err(TryRecvError::Empty), "round {round}: nothing more");
    }
    drop(here);
    assert_eq!(join(&mut p), 0);
}

/// Sends 0, 1, 2, … as fast as it can until it is killed.
fn count_forever(conn: Connection) {
    for n in 0u64.. {
        conn.send(&Plain(n)).unwrap();
    }
}

/// A sender SIGKILLed while it sends small messages as fast as it can
/// (through the mailbox when the receiver keeps up, the ring when not):
/// what arrives is 0, 1, 2, … with no gap or repeat, then the end of the
/// stream.
#[test]
fn pipe_small_message_sender_killed_mid_send_leaves_a_gapless_stream() {
    let (here, there) = Pipe::with_capacity(4096).unwrap();
    let mut child = Process::new(count_forever, there);
    child.start().unwrap();
    let mut child = Some(child);
    let mut next = 0u64;
    let mut killer = None;
    loop {
        match here.recv_timeout::<Plain<u64>>(LIMIT) {
            Ok(Plain(n)) => {
                assert_eq!(n, next, "message {next}");
                next += 1;
            }
            Err(e) => {
                assert_eq!(e, RecvTimeoutError::Disconnected);
                break;
            }
        }
        if next == 50_000 {
            killer = child.take().map(|mut p| {
                std::thread::spawn(move || {
                    p.kill().unwrap();
                    join(&mut p)
                })
            });
        }
    }
    assert_eq!(killer.expect("killed after 50,000 messages").join().unwrap(), -9);
    assert!(next >= 50_000);
}

/// Bytes that are no message of the type asked for: an error of each
/// receive's own type, the message consumed, and the next one delivered.
/// Both ways a typed receive decodes: a serde type (the inline path hands
/// the bytes to postcard) and a `Plain` type (a record of another size goes
/// the general way), in the mailbox (16 bytes or less) and in the ring.
#[test]
fn pipe_undecodable_messages_are_errors_of_each_receive_form_and_consumed() {
    let (rx, tx) = Pipe::one_way().unwrap();
    let bad_varint = [0xffu8; 11];
    let decode_failed = |e: &Failure| matches!(e, Failure::Decode(_));
    for bad in [&bad_varint[..], &[0xff; 40][..]] {
        tx.send_bytes(bad).unwrap();
        tx.send(&7u64).unwrap();
        assert!(matches!(rx.recv::<u64>(), Err(RecvError::Failed(f)) if decode_failed(&f)), "{} bytes", bad.len());
        assert_eq!(rx.recv::<u64>(), Ok(7));
        tx.send_bytes(bad).unwrap();
        assert!(matches!(rx.try_recv::<u64>(), Err(TryRecvError::Failed(f)) if decode_failed(&f)));
        assert_eq!(rx.try_recv::<u64>(), Err(TryRecvError::Empty));
        tx.send_bytes(bad).unwrap();
        tx.send(&Plain(9u64)).unwrap();
        assert!(matches!(rx.recv_timeout::<Plain<u64>>(LIMIT), Err(RecvTimeoutError::Failed(f)) if decode_failed(&f)));
        assert_eq!(rx.recv_timeout::<Plain<u64>>(LIMIT), Ok(Plain(9)));
        tx.send_bytes(bad).unwrap();
        assert!(matches!(rx.recv::<Plain<u64>>(), Err(RecvError::Failed(f)) if decode_failed(&f)));
    }
}
