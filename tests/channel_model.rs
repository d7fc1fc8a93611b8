//! A property test: random sequences of operations on one `Queue<Vec<u8>>`
//! or one `Pipe`, in this process, checked against a model.
//!
//! The model is the one the `channel_model` fuzz target checks against
//! (`fuzz/common/channel_model.rs`, included here with `#[path]`): per ring,
//! a `VecDeque` of the messages in it plus the ring's byte accounting, as
//! the ring's module docs describe it — a record is an 8-byte header and its
//! payload rounded up to 8; a record that does not fit before the end of the
//! buffer is preceded by a padding record up to the end; a message larger
//! than half the ring minus a header is streamed in chunks of that size; a
//! stream cut short by a `_timeout` send stays in the ring as garbage until
//! a receive skips it. With one thread and a small ring (4 KiB), the model
//! predicts exactly which sends fit, so `Full` and `Timeout` are checked
//! exactly, and blocking calls are made only where the model says they
//! cannot block (a hang is a failure, caught by a watchdog). The fuzzer
//! decodes its programs from bytes; this test makes them with proptest,
//! which shrinks a failure (the model panics at the first difference) to a
//! short program.

mod common;

use std::time::Duration;

use common::{WATCH, watchdog};
use multiproc::Queue;
use multiproc::channel::TrySendError;
use proptest::prelude::*;

#[path = "../fuzz/common/bytes.rs"]
#[allow(dead_code)]
mod bytes;
#[path = "../fuzz/common/channel_model.rs"]
#[allow(dead_code)] // the byte format is for the fuzz target
mod channel_model;
#[path = "../fuzz/common/private_dir.rs"]
#[allow(dead_code)] // `run_dir` is for the fuzz targets
mod private_dir;

use channel_model::{Chan, Op, Program, len_code};
use private_dir::PrivateDir;

/// The capacity of every channel here: small, so that it is often full.
const CAP: usize = 4096;

/// A payload length, as the length code that means it.
fn len() -> impl Strategy<Value = u16> {
    prop_oneof![
        2 => Just(0usize),
        4 => 1..64usize,
        4 => 64..1500usize,
        // Around the largest record: 2038 encodes to 2040 bytes, one record;
        // 2039 encodes to 2041, streamed.
        3 => 2030..2050usize,
        3 => 2050..10_000usize,
    ]
    .prop_map(len_code)
}

/// One step. `side` picks the sending end of a duplex pipe; a queue ignores
/// it. A queue has no `try_` or `_timeout` raw calls and no
/// `recv_bytes_into`: those ops fall back to its nearest call.
fn op() -> impl Strategy<Value = Op> {
    let send = || (any::<bool>(), len(), any::<u8>());
    let side = any::<bool>;
    prop_oneof![
        12 => send().prop_map(|(side, len, seed)| Op::Send { side, len, seed }),
        15 => send().prop_map(|(side, len, seed)| Op::TrySend { side, len, seed }),
        12 => send().prop_map(|(side, len, seed)| Op::SendTimeout { side, len, seed }),
        10 => send().prop_map(|(side, len, seed)| Op::SendBytes { side, len, seed }),
        5 => send().prop_map(|(side, len, seed)| Op::TrySendBytes { side, len, seed }),
        5 => send().prop_map(|(side, len, seed)| Op::SendBytesTimeout { side, len, seed }),
        10 => (send(), any::<bool>())
            .prop_map(|((side, len, seed), commit)| Op::Reserve { side, len, seed, commit }),
        10 => side().prop_map(|side| Op::Recv { side }),
        15 => side().prop_map(|side| Op::TryRecv { side }),
        10 => side().prop_map(|side| Op::RecvTimeout { side }),
        10 => side().prop_map(|side| Op::RecvBytes { side }),
        5 => side().prop_map(|side| Op::TryRecvBytes { side }),
        5 => side().prop_map(|side| Op::RecvBytesTimeout { side }),
        5 => (side(), any::<u16>()).prop_map(|(side, buf)| Op::RecvInto { side, buf }),
        10 => side().prop_map(|side| Op::RecvInPlace { side }),
        // Queue: `close()`. Pipe: drops one end.
        1 => side().prop_map(|side| Op::Close { side }),
    ]
}

/// Up to 200 ops on one of `chans`, with a ring of [`CAP`] bytes.
fn program(chans: &'static [Chan]) -> impl Strategy<Value = Program> {
    (proptest::sample::select(chans), proptest::collection::vec(op(), 1..200)).prop_map(|(chan, ops)| Program {
        chan,
        big: false,
        default: false,
        ops,
    })
}

proptest! {
    // No regression file: a failure prints its minimal case. 64 programs
    // each, or `PROPTEST_CASES` for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn queue_matches_a_vecdeque_model(p in program(&[Chan::Queue, Chan::NamedQueue])) {
        let _watchdog = watchdog(WATCH);
        let dir = PrivateDir::new("channel-model");
        channel_model::run_program(dir.path(), &p);
    }

    #[test]
    fn pipe_matches_a_vecdeque_model(p in program(&[Chan::Pipe, Chan::OneWay])) {
        let _watchdog = watchdog(WATCH);
        let dir = PrivateDir::new("channel-model");
        channel_model::run_program(dir.path(), &p);
    }
}

/// A `try_put` of a streamed message that would need padding at the end of
/// the buffer must report `Full`, not start the stream and wait half-way.
#[test]
fn queue_try_put_of_a_streamed_message_never_waits() {
    let _watchdog = watchdog(Duration::from_secs(20));
    let q: Queue<Vec<u8>> = Queue::new(CAP).unwrap();
    // Move the ring's position to 2600 of 4096.
    for n in [1500, 1080] {
        q.put_bytes(&vec![1; n]).unwrap();
        assert_eq!(q.get_bytes().unwrap().len(), n);
    }
    // 3000 bytes: padding of 1496 and a first chunk of 2048 fit, the
    // second chunk of 968 does not.
    assert!(q.try_put(vec![2; 2998]).unwrap_err().is_full());
    assert!(q.is_empty(), "nothing of the refused message was published");
    q.close();
    assert!(matches!(q.try_put(vec![3; 5000]), Err(TrySendError::Closed(_))), "closed comes before full");
}
