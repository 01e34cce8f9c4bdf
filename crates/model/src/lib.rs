//! The clear network: its description ([`ir`], with its inputs' public
//! columns and preprocessing, [`meta`]) and the one check every network passes before
//! use ([`mod@validate`]), the benchmark networks built in code ([`zoo`]),
//! ONNX import and the plaintext reference. Records are read by
//! `cryptmed-input`, the client's input pipeline.
//!
//! No cryptography here: this crate must stay fast to build and test.

pub mod ir;
pub mod meta;
pub mod onnx;
pub mod reference;
pub mod validate;
pub mod zoo;

pub use ir::{Activation, Network, Node, Op, Tensor, TensorSizeError, ValueId};
pub use meta::{
    Color, Feature, FeatureSchema, ImagePreprocessing, Preprocessing, Resize, SchemaFile,
};
pub use validate::{InvalidNetwork, Problem, validate};
