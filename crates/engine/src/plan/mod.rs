//! The plan: the network as the sequence of secure steps all three roles run.
//!
//! Built deterministically from the public architecture, so the dealer, the
//! provider and the client derive the same plan; its digest (over the public
//! steps only, never weights) is checked before any material is used.
//!
//! Scales. Every value carries its number of fractional bits. Inputs are at
//! `f`; a linear layer adds `f + 4` (weights at `f + 4`, `f + 8` for the
//! layer reading the record); ReLU, Clip and the smooth
//! functions truncate back to `f` inside their own opening (a smooth output
//! is at its table's output scale: `f`, or 36 bits for exp, truncated where
//! a linear layer needs it); max pooling keeps the scale; an average over a
//! power-of-two window is free (the sum is reinterpreted at `+log2` bits);
//! additions and concatenations align scales by exact left shifts. A
//! stand-alone truncation is inserted only where a linear layer would
//! otherwise exceed `f + 8` bits, once per value (its readers share it); a
//! concatenation is rebuilt from its parts, each truncated once, so that a
//! DenseNet's feature map is not truncated again in every later
//! concatenation. The largest scale must leave
//! [`MIN_HEADROOM_BITS`] below `2^62` (checked when a model is compiled);
//! per-channel affine maps (batch norm) right after a dense or convolution
//! layer are folded into it.
//!
//! **Steps without a protocol** (0 online bytes, 0 rounds; `local`):
//! residual add and channel concatenation (after exact left shifts that align
//! the scales), flatten and reshape (no step at all), and average pooling (a
//! local sum, reinterpreted at `+log2(window)` bits for a power-of-two
//! window; otherwise multiplied by the public `round(2^(f+8) / count)`, whose
//! relative error is below `count / 2^(f+9)`: `1.5e-6` for a 7x7 global
//! average at 16 bits; the scale grows by `f + 8`, absorbed by a following
//! ReLU's truncation or by a stand-alone truncation before the next linear
//! layer, 16 bytes per element both ways and 1 round
//! ([`trunc`](cryptmed_protocols::trunc))).

mod fold;
pub(crate) mod local;
mod lower;

use cryptmed_approx::Precision;
use cryptmed_model::Network;
use cryptmed_protocols::linear::Bilinear;
use cryptmed_ring::Elem;
use cryptmed_ring::kernels::Pool2dGeom;
use serde::Serialize;

use crate::EngineError;

/// Bits that the largest scale of a plan must leave below the `2^62` bound
/// of the truncation and comparison protocols: a value at scale `s` holds
/// reals up to `2^(62 - s)`, so 8 bits keep at least `[-256, 256]`
/// representable everywhere. At `f = 16` the largest scale is usually the
/// first layer's `2f + 8 = 40` (22 bits of headroom); at `f = 24` it is 56
/// and the configuration is refused.
pub const MIN_HEADROOM_BITS: u32 = 8;

/// One secure step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The network node it comes from (for reports and errors).
    pub name: String,
    /// What it does.
    pub kind: StepKind,
    /// Values read.
    pub inputs: Vec<usize>,
    /// Value written.
    pub output: usize,
    /// Elements of the output per record.
    pub len: usize,
}

/// What a step computes (public parameters only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StepKind {
    /// Reusable-mask bilinear layer; `layer` indexes the provider's weights.
    Linear {
        /// The operator (shapes only).
        #[serde(serialize_with = "ser_bilinear")]
        op: Bilinear,
        /// Index into the model's linear layers.
        layer: usize,
    },
    /// ReLU after truncating by `shift` bits.
    Relu {
        /// Truncation in bits.
        shift: u32,
    },
    /// `min(max(x, min), max)` after truncating by `shift` bits (ReLU6 and the like).
    Clip {
        /// Truncation in bits.
        shift: u32,
        /// Lower bound, if any (a public constant).
        min: Option<f64>,
        /// Upper bound, if any.
        max: Option<f64>,
    },
    /// A smooth function (or leaky ReLU) by its piecewise table, the input
    /// truncated by `shift` bits inside the step's own opening; the output at
    /// the table's output scale (the input's `f`, or finer for exp).
    Smooth {
        /// Function name (`sigmoid`, `gelu`, `leaky_relu`, ...).
        function: String,
        /// Index into the plan's tables, or into its half tables when `symmetric`.
        table: usize,
        /// Bits of the input above the table's input scale (fused truncation).
        shift: u32,
        /// Evaluated by its symmetry on a half table ([`SmoothMethod::Symmetric`](crate::SmoothMethod)).
        symmetric: bool,
    },
    /// Max over each window of the pooling geometry (padded cells never win).
    MaxPool {
        /// The windows, as a geometry ([`Pool2dGeom::windows`] lists them).
        geom: Pool2dGeom,
    },
    /// Sum over each window, then multiply by a public constant when given.
    SumPool {
        /// The windows, as a geometry.
        geom: Pool2dGeom,
        /// Per output position of a channel (`out_h * out_w` of them), a public
        /// multiplier at scale `f + 8` (non-power-of-two divisors).
        multiplier: Option<Vec<Elem>>,
    },
    /// Truncation by `shift` bits.
    Trunc {
        /// Bits.
        shift: u32,
    },
    /// Element-wise sum; each input first shifted left by its entry.
    Add {
        /// Left shifts aligning the two scales.
        align: [u32; 2],
    },
    /// Concatenation of the inputs along channels; each first shifted left by its entry.
    Concat {
        /// Left shifts aligning the scales, one per input.
        align: Vec<u32>,
    },
    /// Element-wise product (Beaver).
    Mul,
    /// Same data, new shape.
    Alias,
}

fn ser_bilinear<S: serde::Serializer>(op: &Bilinear, s: S) -> Result<S::Ok, S::Error> {
    match op {
        Bilinear::Dense { rows, cols } => s.serialize_str(&format!("dense {rows}x{cols}")),
        Bilinear::Conv(g) => s.serialize_str(&format!("{g:?}")),
        Bilinear::Diagonal { len } => s.serialize_str(&format!("diagonal {len}")),
    }
}

impl StepKind {
    /// Name of the protocol that runs the step.
    pub fn protocol(&self) -> &'static str {
        match self {
            StepKind::Linear { .. } => "reusable-mask linear",
            StepKind::Relu { shift: 0 } => "relu (compare + 1-bit select)",
            StepKind::Relu { .. } => "relu + fused truncation",
            StepKind::Clip { .. } => "clip (two thresholds, one opening) + fused truncation",
            StepKind::Smooth {
                symmetric: true, ..
            } => "symmetric piecewise polynomial (sign, then half table)",
            StepKind::Smooth { shift: 0, .. } => "piecewise polynomial (compare + selects)",
            StepKind::Smooth { .. } => "piecewise polynomial + fused truncation",
            StepKind::MaxPool { .. } => "max tournament (compare)",
            StepKind::SumPool {
                multiplier: None, ..
            } => "local sum (free)",
            StepKind::SumPool { .. } => "local sum x public constant",
            StepKind::Trunc { .. } => "truncation (masked opening)",
            StepKind::Add { .. } => "local add (free)",
            StepKind::Concat { .. } => "concatenation (free)",
            StepKind::Mul => "beaver product",
            StepKind::Alias => "reshape (free)",
        }
    }
}

/// What the client gets at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputSpec {
    /// Value holding the result.
    pub value: usize,
    /// Its scale in fractional bits.
    pub scale: u32,
    /// Number of classes (2 for a binary head).
    pub classes: usize,
    /// Tables (exp, reciprocal) of the secure softmax, for the `probabilities` policy.
    pub softmax: Option<[usize; 2]>,
    /// A single-logit binary head (one output, or one sigmoid): the output
    /// step sees the pair `[0, logit]`, so the label is `[logit >= 0]` (`p >=
    /// 0.5`) and the probabilities `[1 - p, p]`.
    pub binary: bool,
}

/// Encodes a linear layer's weights at their scale; on failure, the index and error.
pub(crate) fn encode_weights(
    fp: cryptmed_ring::FixedPoint,
    l: &LinearParams,
) -> Result<Vec<Elem>, (usize, cryptmed_ring::FixedError)> {
    l.weight
        .iter()
        .enumerate()
        .map(|(i, v)| fp.encode_at(*v, l.weight_scale).map_err(|e| (i, e)))
        .collect()
}

/// A provider linear layer's clear parameters (encoded by the engine).
#[derive(Clone)]
pub(crate) struct LinearParams {
    pub(crate) op: Bilinear,
    pub(crate) weight: Vec<f64>,
    pub(crate) bias: Option<Vec<f64>>,
    pub(crate) bias_scale: u32,
    pub(crate) weight_scale: u32,
    pub(crate) node: String,
}

/// Shapes and scales only, never the weights.
impl std::fmt::Debug for LinearParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearParams")
            .field("node", &self.node)
            .field("op", &self.op)
            .field("weights", &self.weight.len())
            .field("biases", &self.bias.as_ref().map(Vec::len))
            .field("weight_scale", &self.weight_scale)
            .field("bias_scale", &self.bias_scale)
            .finish_non_exhaustive()
    }
}

/// The plan plus the provider's clear parameters per linear layer.
#[derive(Clone, Serialize)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Per-record length of every value.
    pub value_len: Vec<usize>,
    /// Scale of every value.
    pub value_scale: Vec<u32>,
    /// The result.
    pub output: OutputSpec,
    /// Fractional bits of the input.
    pub frac_bits: u32,
    /// Per record column, the fractional bits it is encoded with beyond
    /// `frac_bits` (its value times `2^e_j` at scale `frac_bits`; negative
    /// for columns of large values); the first dense layer's
    /// column `j` is multiplied by `2^-e_j` to match (exact). Empty when
    /// every column is encoded at `frac_bits` (no schema ranges, or a step
    /// other than a dense layer reads the record). See [`fold::input_precision`].
    pub input_exponents: Vec<i32>,
    /// Tables of the smooth steps (public; in the digest).
    pub tables: Vec<cryptmed_approx::Piecewise>,
    /// Half tables of the symmetric smooth steps (public; in the digest).
    pub half_tables: Vec<cryptmed_approx::Symmetric>,
    #[serde(skip)]
    pub(crate) linear: Vec<LinearParams>,
}

/// Public structure only: step names and protocols, value count, the largest
/// scale and the output; the linear layers by shape (never their weights).
impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{}: {}", s.name, s.kind.protocol()))
            .collect();
        f.debug_struct("Plan")
            .field("steps", &steps)
            .field("values", &self.value_len.len())
            .field("max_scale", &self.value_scale.iter().max())
            .field("output", &self.output)
            .field("frac_bits", &self.frac_bits)
            .field("tables", &self.tables.len())
            .field("linear", &self.linear)
            .finish()
    }
}

/// Refuses a plan whose largest scale leaves fewer than
/// [`MIN_HEADROOM_BITS`] bits below `2^62` (too many fractional bits for
/// this architecture), naming the step that reaches it.
pub(crate) fn check_headroom(plan: &Plan) -> Result<(), EngineError> {
    let limit = 62 - MIN_HEADROOM_BITS;
    let worst = plan
        .steps
        .iter()
        .map(|s| (plan.value_scale[s.output], s.name.as_str()))
        .max_by_key(|(scale, _)| *scale);
    match worst {
        Some((scale, name)) if scale > limit => Err(EngineError::Unsupported(format!(
            "{} fractional bits leave no headroom: step {name} works at scale {scale} \
             (values must stay below 2^62 with at least {MIN_HEADROOM_BITS} bits to spare, \
             so scales up to {limit}); use fewer fractional bits",
            plan.frac_bits
        ))),
        _ => Ok(()),
    }
}

/// Builds the plan for `net` with `f` fractional bits.
///
/// The one gate: every network is validated here before anything is built
/// or allocated from it ([`cryptmed_model::validate()`]: value ids, shapes,
/// geometry, parameter lengths, size limits). A plan is the only way to a
/// [`crate::Model`], and every party's session takes a model, so no network
/// from a file or a peer reaches the protocols unchecked.
pub(crate) fn build(
    net: &Network,
    f: u32,
    precision: Precision,
    method: crate::SmoothMethod,
    reveal: crate::Reveal,
) -> Result<Plan, EngineError> {
    cryptmed_model::validate(net)?;
    let folded = fold::affine_into_linear(net);
    let mut b = lower::Builder::new(&folded, f, precision, method);
    b.lower_nodes();
    let mut plan = b.finish(reveal)?;
    if let Some(schema) = &net.schema {
        fold::input_precision(&mut plan, &schema.input_exponents());
    }
    Ok(plan)
}
