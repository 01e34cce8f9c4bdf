//! Secure two-party protocols on additive and XOR shares.
//!
//! Every protocol module has the same four parts, side by side so that their
//! order cannot drift:
//! - `deal`: the dealer's half (calls [`Dealer`](cryptmed_prep::Dealer) methods),
//! - `take`: the party's half (the mirrored calls on any
//!   [`PrepSource`](cryptmed_prep::PrepSource)),
//! - `eval`: the online protocol for one party over a [`Ctx`],
//! - `trace`: the exact communication of `eval` ([`cost::Trace`]), from which
//!   bytes and rounds follow; tests assert the measured traffic equals it.
//!
//! Values are fixed-point at a *scale* (fractional bits) the engine tracks;
//! protocols take the truncation amount explicitly.

pub mod and;
pub mod argmax;
pub mod bitmul;
pub mod clip;
pub mod compare;
pub mod cost;
mod ctx;
pub mod fss;
pub mod linear;
pub mod mask;
pub mod mul;
pub mod pool;
pub mod relu;
pub mod reveal;
pub mod select;
pub mod smooth;
pub mod softmax;
pub mod symmetric;
pub mod testing;
pub mod trunc;

pub use compare::{Comparison, Ppa, Selected, Selection, Selector};
pub use cost::{Event, Trace};
/// This machine's measured speed of the function-secret-sharing code (latency predictions).
pub use cryptmed_fss::Speed;
pub use ctx::{Ctx, ProtocolError};
pub use fss::Fss;

use cryptmed_ring::Elem;

/// `-1` in the ring, as the coefficient of a subtracted term.
pub(crate) const MINUS_ONE: Elem = Elem::MAX;
