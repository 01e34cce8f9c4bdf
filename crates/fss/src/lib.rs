//! Function secret sharing for CryptMed: distributed comparison functions
//! (DCF) with a fixed-key AES-128 PRG.
//!
//! A DCF key pair for a secret point `alpha` and payload `beta` lets two
//! parties, each holding one key, compute additive shares of
//! `f(x) = beta * [x < alpha]` at any public `x`, without interaction, while
//! each key alone reveals nothing about `alpha` or `beta`. The construction
//! is Boyle, Chandran, Gilboa, Gupta, Ishai, Kohli and Kolobov, "Function
//! Secret Sharing for Mixed-Mode and Fixed-Point Secure Computation"
//! (Eurocrypt 2021, figure 1), the one LLAMA (PETS 2022), Orca and SIGMA
//! build on: a GGM tree over the bits of `x` in which the two parties' seeds
//! agree off the path of `alpha` and a payload correction per level adds
//! `beta` exactly where `x` leaves the path to the left.
//!
//! **What a key holds.** Each party's key is its root seed and the
//! *correction words* both keys share. The root seeds come from each party's
//! own PRG (the dealer mirrors it), so only the correction words travel:
//! [`key_bytes`] of them per key, `16 n + ceil(b w (n + 1) / 8)` bytes for
//! `n`-bit inputs and `w`-element payloads of `b`-bit elements — per level a
//! 16-byte seed correction carrying both control-bit corrections in its two
//! low bits, and a payload correction per level and at the leaf. For the
//! 63-bit comparisons of the protocols: 1,016 bytes with a one-bit payload,
//! 2,032 / 2,544 bytes with two / three ring elements.
//!
//! **PRG.** Seeds are 128-bit blocks with the two low bits cleared (126 bits
//! of entropy); a level expands a seed with `AES_k(s ^ j) ^ s ^ j` for a
//! public fixed key `k` and block indices `j`. Block 0 gives
//! the left child (seed, control bit, and for one-bit payloads the payload bit
//! in its spare bit), block 1 the right child, and ring payloads take
//! `ceil(w/2)` more blocks per side. Evaluation expands only the side `x`
//! takes.
//!
//! **Batching.** [`Dcf::keygen`] and [`Dcf::eval`] take whole layers: many keys,
//! and per key many points (one key of a mask serves every threshold, since
//! `[x - t < alpha]` is the same function at a shifted point). Both walk
//! the tree level by level over chunks of keys so that each level is one AES
//! call over thousands of blocks (AES-NI's eight-block pipeline stays full),
//! and split large batches over the machine's cores. Before walking a
//! chunk, evaluation reads its keys front to back once, so that the walk's
//! scattered word per key and level hits the cache (keys that have just
//! arrived from the dealer are not cached: this halves their evaluation
//! time), and payload widths 1 to 4 have their own compiled walks.
//!
//! Early termination (cutting the last `v` levels into a leaf table of
//! `2^v` payloads) does not pay for a DCF with ring payloads: the table costs
//! `2^v w 8` bytes where the levels cost `v (16 + 8 w)`; for one-bit
//! payloads it would save about 100 bytes of 1,016 at the price of a second
//! code path, so it is not used.

mod dcf;
pub mod group;
mod prg;
mod speed;

pub use dcf::{Dcf, key_bytes};
pub use group::{Group, Ring, Xor};
pub use speed::Speed;
