//! The network description every other layer works from: an ordered list of
//! nodes (a DAG in topological order) over CHW tensors without a batch axis.
//!
//! Value ids: `0` is the network input; node `i` produces value `i + 1`. The
//! network output is the last node's value. Shapes are public (both parties
//! know them); weights live in the ops and only the provider has real ones.

use cryptmed_ring::kernels::{Conv2dGeom, Pool2dGeom};
use serde::{Deserialize, Serialize};

/// Identifies a tensor in the network: `0` is the input, `i + 1` is node `i`'s output.
pub type ValueId = usize;

/// A dense tensor of reals, row-major. Its `Debug` shows the shape only:
/// weights are the provider's secret and must never reach a log.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f64>,
}

/// A tensor whose data does not fill its shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tensor of shape {shape:?} needs {} values; {got} were given", .expected.map_or("more than 2^64".to_string(), |n| n.to_string()))]
pub struct TensorSizeError {
    /// The shape asked for.
    pub shape: Vec<usize>,
    /// Its number of elements (`None` when that overflows).
    pub expected: Option<usize>,
    /// The number of values given.
    pub got: usize,
}

/// Private parameters as `Debug` shows them: their count only.
struct Redacted(usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} values redacted>", self.0)
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("data", &Redacted(self.data.len()))
            .finish()
    }
}

impl Tensor {
    /// A tensor from its shape and data; refuses data that does not fill the shape exactly.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Result<Self, TensorSizeError> {
        let expected = crate::validate::elements(&shape);
        if expected != Some(data.len()) {
            return Err(TensorSizeError {
                shape,
                expected,
                got: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Element-wise activation functions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` if positive, else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f64,
    },
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `ln(1 + e^x)` (PyTorch's default beta 1; its threshold is exact in our approximation).
    Softplus,
    /// `x` if positive, else `alpha * (e^x - 1)`.
    Elu {
        /// Scale of the negative branch.
        alpha: f64,
    },
    /// Scaled ELU with the standard constants.
    Selu,
    /// `x * sigmoid(x)`.
    Silu,
    /// `x * Phi(x)` with the exact (erf) normal CDF.
    GeluErf,
    /// GELU with the tanh approximation.
    GeluTanh,
    /// The error function.
    Erf,
    /// `e^x`.
    Exp,
    /// `min(max(x, min), max)` with constant bounds (either may be absent):
    /// ReLU6 is `min = 0, max = 6`, hardtanh `-1, 1`.
    Clip {
        /// Lower bound, if any.
        min: Option<f64>,
        /// Upper bound, if any.
        max: Option<f64>,
    },
}

impl Activation {
    /// Short lower-case name (`relu`, `sigmoid`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Elu { .. } => "elu",
            Activation::Selu => "selu",
            Activation::Silu => "silu",
            Activation::GeluErf => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Erf => "erf",
            Activation::Exp => "exp",
            Activation::Clip { .. } => "clip",
        }
    }

    /// True when every output is `>= 0` exactly, in the secure engine too
    /// (ReLU, and a clip with a lower bound of at least 0): a max pool may
    /// then pad such a value with zeros as with negative infinity.
    pub fn is_non_negative(&self) -> bool {
        match self {
            Activation::Relu => true,
            Activation::Clip { min, .. } => min.is_some_and(|m| m >= 0.0),
            _ => false,
        }
    }
}

/// What a node computes. Its `Debug` shows the public structure only
/// (weights, biases and affine parameters are redacted).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `y = W x + b`, `W` of shape `[out, in]`; the input is read flat.
    Dense {
        /// Weights `[out, in]`.
        weight: Tensor,
        /// Bias of length `out`.
        bias: Option<Vec<f64>>,
    },
    /// 2-D convolution; weights `[out_ch, in_ch/groups, kh, kw]`.
    Conv2d {
        /// Shapes and hyper-parameters.
        geom: Conv2dGeom,
        /// Weights.
        weight: Tensor,
        /// Bias of length `out_ch`.
        bias: Option<Vec<f64>>,
    },
    /// Average pooling; the divisor is the window size, or the count of
    /// non-padded cells when `count_include_pad` is false.
    AvgPool {
        /// Window geometry.
        geom: Pool2dGeom,
        /// Whether padded cells count in the divisor.
        count_include_pad: bool,
    },
    /// Mean over each channel's spatial extent: `[C, H, W] -> [C]`.
    GlobalAvgPool,
    /// Max pooling (padded cells never win).
    MaxPool {
        /// Window geometry.
        geom: Pool2dGeom,
    },
    /// `y = scale * x + shift` per channel (axis 0); a length-1 vector broadcasts.
    /// Batch norm that cannot be folded and in-graph standardisation land here.
    Affine {
        /// Multiplier per channel.
        scale: Vec<f64>,
        /// Offset per channel.
        shift: Vec<f64>,
    },
    /// An element-wise activation.
    Act(Activation),
    /// Changes the shape only (flatten, reshape); data order is unchanged.
    Reshape,
    /// Element-wise sum of two values of the same shape (residual connections).
    Add,
    /// Element-wise product of two values of the same shape.
    Mul,
    /// Concatenation along channels (axis 0 of CHW, or of a flat vector) of
    /// any number of values whose other dimensions agree (DenseNet, Inception).
    Concat,
    /// Softmax over the last axis (only as the final node).
    Softmax,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bias = |b: &Option<Vec<f64>>| b.as_ref().map(|b| Redacted(b.len()));
        match self {
            Op::Dense { weight, bias: b } => f
                .debug_struct("Dense")
                .field("weight", weight)
                .field("bias", &bias(b))
                .finish(),
            Op::Conv2d {
                geom,
                weight,
                bias: b,
            } => f
                .debug_struct("Conv2d")
                .field("geom", geom)
                .field("weight", weight)
                .field("bias", &bias(b))
                .finish(),
            Op::AvgPool {
                geom,
                count_include_pad,
            } => f
                .debug_struct("AvgPool")
                .field("geom", geom)
                .field("count_include_pad", count_include_pad)
                .finish(),
            Op::MaxPool { geom } => f.debug_struct("MaxPool").field("geom", geom).finish(),
            Op::Affine { scale, shift } => f
                .debug_struct("Affine")
                .field("scale", &Redacted(scale.len()))
                .field("shift", &Redacted(shift.len()))
                .finish(),
            Op::Act(a) => f.debug_tuple("Act").field(a).finish(),
            Op::GlobalAvgPool => f.write_str("GlobalAvgPool"),
            Op::Reshape => f.write_str("Reshape"),
            Op::Add => f.write_str("Add"),
            Op::Mul => f.write_str("Mul"),
            Op::Concat => f.write_str("Concat"),
            Op::Softmax => f.write_str("Softmax"),
        }
    }
}

impl Op {
    /// Short lower-case name of the operator.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Dense { .. } => "dense",
            Op::Conv2d { .. } => "conv2d",
            Op::AvgPool { .. } => "avgpool",
            Op::GlobalAvgPool => "global_avgpool",
            Op::MaxPool { .. } => "maxpool",
            Op::Affine { .. } => "affine",
            Op::Act(a) => a.name(),
            Op::Reshape => "reshape",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Concat => "concat",
            Op::Softmax => "softmax",
        }
    }

    /// Number of weights the op carries (the provider's private parameters).
    pub fn param_count(&self) -> usize {
        match self {
            Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => weight
                .len()
                .saturating_add(bias.as_ref().map_or(0, Vec::len)),
            Op::Affine { scale, shift } => scale.len().saturating_add(shift.len()),
            _ => 0,
        }
    }
}

/// The number of elements of `shape`, `usize::MAX` if that overflows.
fn saturating_len(shape: &[usize]) -> usize {
    crate::validate::elements(shape).unwrap_or(usize::MAX)
}

/// One step of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name (from ONNX, or generated), used in reports and errors.
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Values it reads (one; two for `Add`/`Mul`; one or more for `Concat`).
    pub inputs: Vec<ValueId>,
    /// Shape of its output, without a batch axis.
    pub shape: Vec<usize>,
}

/// A whole network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Name (benchmark name or model file stem).
    pub name: String,
    /// Shape of one input record, without a batch axis (`[C, H, W]` or `[D]`).
    pub input_shape: Vec<usize>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Class names from the model's metadata, when present.
    pub class_names: Option<Vec<String>>,
    /// The input columns: names, units, plausible ranges (public, in the digest).
    #[serde(default)]
    pub schema: Option<crate::meta::FeatureSchema>,
    /// How records are prepared from image files (public, in the digest).
    #[serde(default)]
    pub preprocessing: Option<crate::meta::Preprocessing>,
}

impl Network {
    /// Shape of value `v`. Panics if `v` is not a value of the network:
    /// [`Network::validate`] first any network that did not come from this
    /// crate's own builders (the engine does so when it compiles one).
    pub fn shape_of(&self, v: ValueId) -> &[usize] {
        if v == 0 {
            &self.input_shape
        } else {
            &self.nodes[v - 1].shape
        }
    }

    /// Number of elements of one input record (saturating: a shape too
    /// large for `usize` gives `usize::MAX`, which validation refuses).
    pub fn input_len(&self) -> usize {
        saturating_len(&self.input_shape)
    }

    /// Number of outputs (classes), saturating like [`Network::input_len`].
    pub fn output_len(&self) -> usize {
        self.nodes
            .last()
            .map_or(self.input_len(), |n| saturating_len(&n.shape))
    }

    /// Total number of weights.
    pub fn param_count(&self) -> usize {
        self.nodes
            .iter()
            .fold(0usize, |a, n| a.saturating_add(n.op.param_count()))
    }
}

impl Network {
    /// The public architecture: the same network with every weight and bias
    /// emptied (tensor shapes kept, data removed; affine parameters zeroed).
    /// This is what the provider sends to the client and the dealer; the plan
    /// built from it equals the plan built from the real network.
    pub fn public(&self) -> Network {
        let mut n = self.clone();
        for node in &mut n.nodes {
            match &mut node.op {
                Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => {
                    weight.data = Vec::new();
                    *bias = bias.as_ref().map(|_| Vec::new());
                }
                Op::Affine { scale, shift } => {
                    scale.iter_mut().for_each(|v| *v = 0.0);
                    shift.iter_mut().for_each(|v| *v = 0.0);
                }
                _ => {}
            }
        }
        n
    }

    /// True when the weights have been removed by [`Network::public`].
    pub fn is_public(&self) -> bool {
        self.nodes.iter().any(|n| matches!(&n.op, Op::Dense { weight, .. } | Op::Conv2d { weight, .. } if weight.data.is_empty()))
    }
}
