//! [`StarFn`]: the functions [`Pool::starmap`](crate::Pool::starmap) calls with a
//! tuple of arguments, and their runners.
#![allow(unsafe_code)]

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::worker::{self, Failed, Reply, Runner};

mod private {
    /// Seals [`StarFn`](super::StarFn) and holds what the pool needs of it.
    pub trait Sealed<Args, R>: Copy + Send + Sync + 'static {
        /// The function's address.
        fn addr(self) -> *const ();
        /// The function at `addr`.
        ///
        /// # Safety
        ///
        /// `addr` must be the address of a function of type `Self`.
        unsafe fn from_addr(addr: *const ()) -> Self;
        /// Calls the function with the tuple's fields as its arguments.
        fn call(self, args: Args) -> R;
    }
}

/// A plain function that [`Pool::starmap`](crate::Pool::starmap) and
/// [`Pool::starmap_async`](crate::Pool::starmap_async) can call with a tuple
/// of arguments: a function pointer `fn(A) -> R`, `fn(A, B) -> R`, up to six
/// arguments, called with `(a,)`, `(a, b)`, and so on. Sealed.
///
/// A function item (the name of a `fn`) becomes such a pointer with `as`:
/// Rust turns a function item into a pointer on its own only where the
/// pointer type is written in the signature, and one method for every arity
/// cannot write it. Write the pointer type out (`power as fn(u64, u32) ->
/// u64`): with placeholders (`fn(_, _) -> _`) bare integer literals in the
/// tuples default to `i32` before the cast is checked.
///
/// # Examples
///
/// ```
/// multiproc::test_support!();
/// use multiproc::Pool;
///
/// fn volume(x: u32, y: u32, z: u32) -> u32 {
///     x * y * z
/// }
///
/// let mut pool = Pool::new(2)?;
/// let boxes = [(1, 2, 3), (2, 2, 2)];
/// assert_eq!(pool.starmap(volume as fn(u32, u32, u32) -> u32, boxes)?, vec![6, 8]);
/// # Ok::<(), multiproc::PoolError>(())
/// ```
pub trait StarFn<Args, R>: private::Sealed<Args, R> {}

/// The tag that pairs [`run_star`] with its target's type.
pub(super) fn tag_of<F>() -> &'static str {
    std::any::type_name::<F>()
}

/// The address of `run_star::<F, Args, R>`.
pub(super) fn runner_of<F, Args, R>() -> *const ()
where
    F: StarFn<Args, R>,
    Args: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    run_star::<F, Args, R> as Runner as *const ()
}

/// The address of `f`.
pub(super) fn addr_of<F: StarFn<Args, R>, Args, R>(f: F) -> *const () {
    f.addr()
}

/// As `worker::run`, for a target `F` called with tuples.
fn run_star<F, Args, R>(target: *const (), tag: &str, args: &[u8], out: &mut Reply<'_>) -> Result<(), Failed>
where
    F: StarFn<Args, R>,
    Args: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    worker::check_tag(tag, tag_of::<F>())?;
    let args: Vec<Args> = worker::decode_args(args)?;
    // SAFETY: as in `worker::run`: the pool measured the target's offset
    // from its own `f: F` with `code_offset` (which checked that it lies in
    // the executable's image) and this runner's from `run_star::<F, Args, R>`
    // for the same `F`; this worker runs the same executable file, so
    // `target` is that function, of type `F`; the tags were compared above.
    let f = unsafe { F::from_addr(target) };
    worker::call_each(args.into_iter(), |a| f.call(a), out)
}

macro_rules! star_fn {
    ($($arg:ident),+) => {
        impl<$($arg,)+ R: 'static> private::Sealed<($($arg,)+), R> for fn($($arg),+) -> R
        where
            $($arg: 'static,)+
        {
            fn addr(self) -> *const () {
                self as *const ()
            }

            unsafe fn from_addr(addr: *const ()) -> Self {
                // SAFETY: the caller promises that `addr` is the address of a
                // function of this type; `*const ()` to `fn` pointer is the
                // transmute std documents for that.
                unsafe { std::mem::transmute::<*const (), Self>(addr) }
            }

            #[allow(non_snake_case, reason = "the tuple's fields are named after their types")]
            fn call(self, ($($arg,)+): ($($arg,)+)) -> R {
                self($($arg),+)
            }
        }

        impl<$($arg,)+ R: 'static> StarFn<($($arg,)+), R> for fn($($arg),+) -> R where $($arg: 'static,)+ {}
    };
}

star_fn!(A);
star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, G);
