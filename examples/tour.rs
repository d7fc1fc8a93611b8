//! The tour: runs every example in turn and says what each one shows.
//!
//! Each example is also its own program (`cargo run --release --example
//! NAME`); here they are compiled in as modules, so children started by any
//! of them re-execute this binary, whose first act is `multiproc::init()`.

#[path = "batch_images.rs"]
mod batch_images;
#[path = "hello_process.rs"]
mod hello_process;
#[path = "lock_printer.rs"]
mod lock_printer;
#[path = "pipe_echo.rs"]
mod pipe_echo;
#[path = "pool_cube.rs"]
mod pool_cube;
#[path = "pool_factorial.rs"]
mod pool_factorial;
#[path = "pool_map.rs"]
mod pool_map;
#[path = "pool_sleep.rs"]
mod pool_sleep;
#[path = "pool_tour.rs"]
mod pool_tour;
#[path = "primes_speedup.rs"]
mod primes_speedup;
#[path = "process_basics.rs"]
mod process_basics;
#[path = "process_square.rs"]
mod process_square;
#[path = "process_squares.rs"]
mod process_squares;
#[path = "producer_consumers.rs"]
mod producer_consumers;
#[path = "queue_hello.rs"]
mod queue_hello;
#[path = "queue_result.rs"]
mod queue_result;
#[path = "queue_squares.rs"]
mod queue_squares;
#[path = "shared_array.rs"]
mod shared_array;
#[path = "shared_counter.rs"]
mod shared_counter;
#[path = "shared_memory_sum.rs"]
mod shared_memory_sum;
#[path = "value_counter.rs"]
mod value_counter;

type Example = (&'static str, &'static str, fn());

const EXAMPLES: &[Example] = &[
    ("process_square", "a child process runs a plain fn with an argument", process_square::main),
    ("hello_process", "children run in turn; the parent waits for each with join()", hello_process::main),
    ("process_squares", "four children at once; their output may come in any order", process_squares::main),
    ("process_basics", "children have their own pids; exit codes follow Python (0 = success)", process_basics::main),
    ("value_counter", "a Value<i32> shared by ten processes, incremented under its lock", value_counter::main),
    ("lock_printer", "one Lock keeps four processes' lines from interleaving", lock_printer::main),
    ("shared_counter", "4 processes x 1,000 locked increments lose none", shared_counter::main),
    ("shared_array", "an Array<i32> split between two processes", shared_array::main),
    (
        "shared_memory_sum",
        "a named SharedMemory block viewed as [i32], filled by a child, opened by name",
        shared_memory_sum::main,
    ),
    ("queue_hello", "a producer process hands a greeting to a consumer process through a Queue", queue_hello::main),
    (
        "queue_result",
        "a child sends the result of a long computation back to its parent on a Queue",
        queue_result::main,
    ),
    (
        "producer_consumers",
        "one producer, two consumers on one Queue; each item is taken once; stop markers end the consumers",
        producer_consumers::main,
    ),
    ("queue_squares", "five processes put their results on one Queue; the parent collects them", queue_squares::main),
    ("pipe_echo", "a duplex Pipe carries a request to a worker and its reply back", pipe_echo::main),
    ("pool_map", "a Pool of five worker processes squares 1..=5; map keeps the input order", pool_map::main),
    ("pool_cube", "a Pool of three workers cubes 1..6", pool_cube::main),
    ("pool_factorial", "a Pool with one worker per core computes factorials", pool_factorial::main),
    ("pool_tour", "map, map_async with a 10 s timeout, imap in chunks of 3, and starmap on one Pool", pool_tour::main),
    ("pool_sleep", "five 1 s tasks on a Pool of five finish in about 1 s, not 5", pool_sleep::main),
    ("batch_images", "20 jobs of 0.1 s each: one after the other, then four at a time on a Pool", batch_images::main),
    (
        "primes_speedup",
        "a CPU-bound prime count, sequential and on 2 workers: about 2x on 2 cores",
        primes_speedup::main,
    ),
];

fn main() {
    multiproc::init();
    println!("multiproc tour: {} examples\n", EXAMPLES.len());
    for (name, shows, run) in EXAMPLES {
        println!("--- {name}: {shows}");
        run();
        println!();
    }
    println!("tour finished: every example ran");
}
