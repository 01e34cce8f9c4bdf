//! The clear network: its description ([`ir`]) and the one check every
//! network passes before use ([`mod@validate`]), the benchmark networks built
//! in code ([`zoo`]), ONNX import, record loaders and the plaintext reference.
//!
//! No cryptography here: this crate must stay fast to build and test.

pub mod input;
pub mod ir;
pub mod onnx;
pub mod reference;
pub mod validate;
pub mod zoo;

pub use ir::{Activation, Network, Node, Op, Tensor, TensorSizeError, ValueId};
pub use validate::{InvalidNetwork, Problem, validate};
