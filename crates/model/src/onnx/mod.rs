//! ONNX import: the one place that knows ONNX.
//!
//! Reads a `ModelProto` (prost code generated from the official
//! `onnx.proto` and checked in, see `tools/onnx-codegen`), folds constant
//! sub-graphs (the `Shape`/`Gather`/`Concat` chains exporters put in front of
//! `Reshape`), maps each operator to the [`Network`] IR, then rewrites
//! exactly: batch norm, bias additions and scalings fold into the preceding
//! convolution or dense layer; `x * sigmoid(x)` becomes SiLU; the erf form of
//! GELU becomes one GELU; `Where(x > t, x, softplus(x))` becomes softplus.
//!
//! A model that cannot be run is refused with one error listing every
//! offending node by name, operator and opset.

mod constant;
mod pad;
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod pb;
mod rewrite;

use std::collections::HashMap;
use std::path::Path;

use cryptmed_ring::kernels::{Conv2dGeom, Pool2dGeom};
use prost::Message;

use crate::ir::{Activation, Network, Node, Op, Tensor, ValueId};
use crate::meta::{FeatureSchema, Preprocessing};
use crate::validate::{self, Problem};

/// The operators the importer understands (for error messages).
pub const SUPPORTED: &str = "Gemm, MatMul (+Add), Conv (grouped, depthwise), Relu, Clip (constant bounds), \
MaxPool, AveragePool, GlobalAveragePool, Pad (constant, before Conv or a pool), BatchNormalization, Flatten, \
Reshape (constant shape), Identity, Dropout, Add, Sub, Mul, Div, Concat (channels), Sigmoid, Tanh, Softplus, Elu, \
Selu, LeakyRelu, Gelu, Erf, Exp, Pow (2, 3; the tanh form of GELU), ReduceMean (spatial), Greater/Less + Where \
(softplus threshold), Softmax (output), Constant, Shape, Gather, Unsqueeze, Squeeze, Cast, and on constants \
ConstantOfShape, Slice, Transpose, Neg, Sqrt; weights inline or as external data";

/// Why a model could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot import {file}:\n{}\nsupported: {SUPPORTED}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ImportError {
    /// The file (or name) being imported.
    pub file: String,
    /// Every problem found, one per offending node.
    pub problems: Vec<String>,
}

/// Imports an ONNX file.
pub fn load(path: &Path) -> Result<Network, ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImportError {
        file: file.clone(),
        problems: vec![format!("cannot read the file: {e}")],
    })?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    import(&bytes, stem, path.parent()).map_err(|mut e| {
        e.file = file;
        e
    })
}

/// Imports an ONNX model from bytes; `name` names the network. Weights
/// stored as external data need [`load`] (they live beside the file).
pub fn load_bytes(bytes: &[u8], name: &str) -> Result<Network, ImportError> {
    import(bytes, name, None)
}

fn import(bytes: &[u8], name: &str, dir: Option<&Path>) -> Result<Network, ImportError> {
    let fail = |p: String| ImportError {
        file: name.to_string(),
        problems: vec![p],
    };
    let model = pb::ModelProto::decode(bytes)
        .map_err(|e| fail(format!("not a valid ONNX protobuf: {e}")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| fail("the model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .unwrap_or(13);
    let metadata = |key: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key.as_deref() == Some(key))
            .and_then(|p| p.value.clone())
    };
    let class_names =
        metadata("class_names").map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let preprocessing = metadata("preprocessing")
        .map(|v| Preprocessing::from_json(&v))
        .transpose()
        .map_err(|e| fail(format!("metadata `preprocessing`: {e}")))?;
    let schema = FeatureSchema::from_metadata(
        metadata("feature_names").as_deref(),
        metadata("feature_units").as_deref(),
        metadata("feature_ranges").as_deref(),
    )
    .map_err(|e| fail(format!("metadata: {e}")))?;
    let mut imp = Importer {
        dir: dir.map(Path::to_path_buf),
        opset,
        onnx_ops: HashMap::new(),
        current_op: String::new(),
        net: Network {
            name: name.into(),
            input_shape: vec![],
            nodes: vec![],
            class_names,
            schema,
            preprocessing,
        },
        vals: HashMap::new(),
        problems: vec![],
    };
    imp.run(graph);
    let refuse = |problems| ImportError {
        file: name.into(),
        problems,
    };
    if !imp.problems.is_empty() {
        return Err(refuse(imp.problems));
    }
    // The rewrites rely on a valid network: check it before (every node was
    // checked as it was built; this adds the totals) and after them.
    imp.validate().map_err(refuse)?;
    rewrite::simplify(&mut imp.net);
    imp.validate().map_err(refuse)?;
    let problems: Vec<String> = check_weights(&imp.net)
        .into_iter()
        .map(|(node, m)| imp.named(node, m))
        .collect();
    if !problems.is_empty() {
        return Err(refuse(problems));
    }
    Ok(imp.net)
}

/// Weights must be finite and small enough for 16-bit fixed point products;
/// returns the offending nodes and what is wrong.
fn check_weights(net: &Network) -> Vec<(&Node, String)> {
    let limit = (1u64 << 20) as f64;
    net.nodes
        .iter()
        .filter_map(|n| {
            let params: Vec<&f64> = match &n.op {
                Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => {
                    weight.data.iter().chain(bias.iter().flatten()).collect()
                }
                Op::Affine { scale, shift } => scale.iter().chain(shift).collect(),
                _ => return None,
            };
            params
                .iter()
                .find(|v| !v.is_finite() || v.abs() > limit)
                .map(|v| {
                    (
                        n,
                        format!(
                            "weight {v} is not finite or exceeds the fixed-point limit {limit}"
                        ),
                    )
                })
        })
        .collect()
}

/// A constant tensor (integers are stored as exact `f64`).
#[derive(Debug, Clone)]
struct Ct {
    dims: Vec<usize>,
    data: Vec<f64>,
}

#[derive(Debug, Clone)]
enum V {
    Const(Ct),
    Dyn(ValueId),
    /// `x > t` (`above`) or `x < t`: only meaningful inside the softplus `Where` pattern.
    Cond {
        x: ValueId,
        above: bool,
        t: Vec<f64>,
    },
    /// The output of a node that was refused: its consumers are not reported again.
    Failed,
    /// A `Pad` waiting for the convolution or pooling that absorbs it.
    Padded(pad::Pending),
}

/// The error of a node whose operator the importer does not know.
const UNSUPPORTED: &str = "unsupported operator";

/// The error of a node that reads the output of a refused node (not reported: the cause is).
const FAILED_INPUT: &str = "reads the output of a refused node";

struct Importer {
    dir: Option<std::path::PathBuf>,
    opset: i64,
    net: Network,
    vals: HashMap<String, V>,
    problems: Vec<String>,
    /// The ONNX operator each network node came from (by node name), for messages.
    onnx_ops: HashMap<String, String>,
    /// The ONNX operator of the node being imported.
    current_op: String,
}

/// Reads a tensor stored as external data (the dynamo exporter's default for larger weights).
fn external(t: &pb::TensorProto, dir: Option<&Path>) -> Result<Vec<u8>, String> {
    let name = t.name.as_deref().unwrap_or("?");
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(k))
            .and_then(|e| e.value.clone())
    };
    let location = get("location")
        .ok_or_else(|| format!("tensor {name}: external data without a location"))?;
    let dir = dir.ok_or_else(|| {
        format!("tensor {name}: external data ({location}) needs the model loaded from its file")
    })?;
    let file = dir.join(&location);
    if std::path::Path::new(&location).is_absolute() || location.contains("..") {
        return Err(format!(
            "tensor {name}: external data location {location} must be a file beside the model"
        ));
    }
    let bytes = std::fs::read(&file)
        .map_err(|e| format!("tensor {name}: cannot read {}: {e}", file.display()))?;
    let offset: usize = get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let length: usize = get("length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(bytes.len().saturating_sub(offset));
    bytes
        .get(offset..offset + length)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            format!(
                "tensor {name}: {} is shorter than offset {offset} + length {length}",
                file.display()
            )
        })
}

fn tensor(t: &pb::TensorProto, dir: Option<&Path>) -> Result<Ct, String> {
    use pb::tensor_proto::DataType as D;
    let tname = t.name.as_deref().unwrap_or("?");
    if t.dims.iter().any(|d| *d < 0) {
        return Err(format!(
            "tensor {tname} has negative dimensions {:?}",
            t.dims
        ));
    }
    let dims: Vec<usize> = t.dims.iter().map(|d| *d as usize).collect();
    let n = validate::elements(&dims)
        .ok_or_else(|| format!("tensor {tname} has too many elements (shape {dims:?})"))?;
    let dt = t.data_type.unwrap_or(0);
    let ext = if t.data_location == Some(1) {
        Some(external(t, dir)?)
    } else {
        None
    };
    let raw = ext.as_deref().or(t.raw_data.as_deref()).unwrap_or(&[]);
    let data: Vec<f64> = if dt == D::Float as i32 {
        if raw.is_empty() {
            t.float_data.iter().map(|v| *v as f64).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect()
        }
    } else if dt == D::Double as i32 {
        if raw.is_empty() {
            t.double_data.clone()
        } else {
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }
    } else if dt == D::Int64 as i32 {
        if raw.is_empty() {
            t.int64_data.iter().map(|v| *v as f64).collect()
        } else {
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64)
                .collect()
        }
    } else if dt == D::Bool as i32 {
        if raw.is_empty() {
            t.int32_data
                .iter()
                .map(|v| f64::from(u8::from(*v != 0)))
                .collect()
        } else {
            raw.iter().map(|v| f64::from(u8::from(*v != 0))).collect()
        }
    } else if dt == D::Int32 as i32 {
        if raw.is_empty() {
            t.int32_data.iter().map(|v| *v as f64).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect()
        }
    } else {
        return Err(format!(
            "tensor {} has unsupported data type {dt}",
            t.name.as_deref().unwrap_or("?")
        ));
    };
    if data.len() != n {
        return Err(format!(
            "tensor {} holds {} values for shape {:?}",
            t.name.as_deref().unwrap_or("?"),
            data.len(),
            dims
        ));
    }
    Ok(Ct { dims, data })
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}
fn attr_i(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}
fn attr_f(n: &pb::NodeProto, name: &str, default: f64) -> f64 {
    attr(n, name)
        .and_then(|a| a.f)
        .map_or(default, |v| v as f64)
}
fn attr_ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}
/// A 2-D geometry attribute (`N` values, `default` each when absent) as sizes:
/// refuses negative values and the wrong number of them.
fn sizes<const N: usize>(
    n: &pb::NodeProto,
    name: &str,
    default: usize,
) -> Result<[usize; N], String> {
    let Some(v) = attr_ints(n, name) else {
        return Ok([default; N]);
    };
    if v.iter().any(|x| *x < 0) {
        return Err(format!("negative {name} {v:?}"));
    }
    let v: Vec<usize> = v
        .iter()
        .map(|x| usize::try_from(*x).map_err(|_| format!("{name} {v:?} too large")))
        .collect::<Result<_, _>>()?;
    <[usize; N]>::try_from(v).map_err(|v| {
        format!(
            "{name} of {} values ({N} expected: only 2-D convolution and pooling)",
            v.len()
        )
    })
}

fn attr_s(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

impl Importer {
    fn run(&mut self, g: &pb::GraphProto) {
        for init in &g.initializer {
            match tensor(init, self.dir.as_deref()) {
                Ok(t) => {
                    self.vals
                        .insert(init.name.clone().unwrap_or_default(), V::Const(t));
                }
                Err(e) => self.problems.push(e),
            }
        }
        let inputs: Vec<&pb::ValueInfoProto> = g
            .input
            .iter()
            .filter(|i| !self.vals.contains_key(i.name.as_deref().unwrap_or("")))
            .collect();
        if inputs.len() != 1 {
            self.problems.push(format!(
                "the graph must have exactly one data input, it has {}",
                inputs.len()
            ));
            return;
        }
        let dims = input_dims(inputs[0]);
        let shape: Vec<usize> = match &dims {
            Some(d) if d.len() >= 2 => d[1..].iter().map(|v| v.unwrap_or(0)).collect(),
            Some(d) => d.iter().map(|v| v.unwrap_or(0)).collect(),
            None => vec![],
        };
        if shape.is_empty() || shape.contains(&0) {
            let input = inputs[0].name.as_deref().unwrap_or("?");
            let why = format!(
                "its input {input} has the shape [{}], which cannot be resolved (only the batch axis may be symbolic; export with fixed sizes)",
                dims_text(inputs[0])
            );
            let readers: Vec<&pb::NodeProto> = g
                .node
                .iter()
                .filter(|n| n.input.iter().any(|i| i == input))
                .collect();
            for n in &readers {
                self.problems.push(format!(
                    "node {} ({}, opset {}): {why}",
                    n.name.as_deref().unwrap_or("?"),
                    n.op_type.as_deref().unwrap_or("?"),
                    self.opset
                ));
            }
            if readers.is_empty() {
                self.problems.push(format!("the graph: {why}"));
            }
            return;
        }
        if let Err(m) = validate::check_shape(&shape) {
            self.problems.push(format!(
                "input {}: its shape {m}",
                inputs[0].name.as_deref().unwrap_or("?")
            ));
            return;
        }
        self.net.input_shape = shape;
        self.vals
            .insert(inputs[0].name.clone().unwrap_or_default(), V::Dyn(0));
        for n in &g.node {
            let op = n.op_type.as_deref().unwrap_or("?");
            self.current_op = op.to_string();
            if let Err(e) = self.node(n) {
                if e != FAILED_INPUT {
                    self.problems.push(format!(
                        "node {} ({op}, opset {}): {e}",
                        validate::printable(n.name.as_deref().unwrap_or("?")),
                        self.opset
                    ));
                }
                // keep going so that every offending node is reported (once)
                for o in &n.output {
                    self.vals.insert(o.clone(), V::Failed);
                }
            }
        }
        if self.problems.is_empty() {
            match g
                .output
                .first()
                .and_then(|o| self.vals.get(o.name.as_deref().unwrap_or("")))
            {
                Some(V::Dyn(v)) if *v == self.net.nodes.len() && *v > 0 => {}
                Some(V::Dyn(v)) => {
                    // The output is an earlier value: make it last with an alias.
                    let shape = self.net.shape_of(*v).to_vec();
                    let v = *v;
                    self.current_op = "Identity".into();
                    if let Err(e) = self.push("output", Op::Reshape, vec![v], shape) {
                        self.problems.push(format!("the graph output: {e}"));
                    }
                }
                _ => self
                    .problems
                    .push("the graph output is not computed from the input".into()),
            }
        }
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.net.shape_of(v).to_vec()
    }

    /// Appends a node after checking it against the values before it
    /// ([`validate::check_node`]); on a problem the node is not added.
    fn push(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<ValueId>,
        shape: Vec<usize>,
    ) -> Result<ValueId, String> {
        self.net.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            shape,
        });
        let problems = validate::check_node(&self.net, self.net.nodes.len() - 1);
        if !problems.is_empty() {
            self.net.nodes.pop();
            return Err(problems.join("; "));
        }
        self.onnx_ops
            .insert(name.to_string(), self.current_op.clone());
        Ok(self.net.nodes.len())
    }

    /// The whole network's check, each problem named by its ONNX node, operator and opset.
    fn validate(&self) -> Result<(), Vec<String>> {
        validate::validate(&self.net).map_err(|e| {
            e.problems
                .iter()
                .map(|p: &Problem| match &p.node {
                    Some(n) => self.describe(n, p.op, &p.message),
                    None => format!("the network: {}", p.message),
                })
                .collect()
        })
    }

    /// `node NAME (ONNX operator, opset N): message` for a network node.
    fn describe(&self, name: &str, op: &str, message: &str) -> String {
        format!(
            "node {} ({}, opset {}): {message}",
            validate::printable(name),
            self.onnx_ops.get(name).map_or(op, String::as_str),
            self.opset
        )
    }

    fn named(&self, node: &Node, message: String) -> String {
        self.describe(&node.name, node.op.name(), &message)
    }

    fn input(&self, n: &pb::NodeProto, i: usize) -> Result<V, String> {
        let name = n
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("missing input {i}"))?;
        match self.vals.get(name) {
            Some(V::Failed) => Err(FAILED_INPUT.into()),
            Some(v) => Ok(v.clone()),
            None => Err(format!("input {name} is not defined before use")),
        }
    }

    fn konst(&self, n: &pb::NodeProto, i: usize) -> Result<Ct, String> {
        match self.input(n, i)? {
            V::Const(c) => Ok(c),
            _ => Err(format!("input {i} must be a constant (weights are fixed)")),
        }
    }

    fn dynamic(&self, n: &pb::NodeProto, i: usize) -> Result<ValueId, String> {
        match self.input(n, i)? {
            V::Dyn(v) => Ok(v),
            V::Padded(_) => Err(pad::PAD_CONSUMER.into()),
            _ => Err(format!("input {i} must depend on the record")),
        }
    }

    fn node(&mut self, n: &pb::NodeProto) -> Result<(), String> {
        let op = n.op_type.as_deref().unwrap_or("");
        let name = n
            .name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("{op}_{}", self.net.nodes.len()));
        let out = n.output.first().cloned().unwrap_or_default();
        if let Some(c) = self.fold(n, op)? {
            self.vals.insert(out, V::Const(c));
            return Ok(());
        }
        let act = |a: Activation| Some(a);
        let activation = match op {
            "Relu" => act(Activation::Relu),
            "Sigmoid" => act(Activation::Sigmoid),
            "Tanh" => act(Activation::Tanh),
            "Softplus" => act(Activation::Softplus),
            "Erf" => act(Activation::Erf),
            "Exp" => act(Activation::Exp),
            "Elu" => act(Activation::Elu {
                alpha: attr_f(n, "alpha", 1.0),
            }),
            "LeakyRelu" => act(Activation::LeakyRelu {
                alpha: attr_f(n, "alpha", 0.01),
            }),
            "Selu" => {
                let (a, g) = (
                    attr_f(n, "alpha", 1.673_263_2),
                    attr_f(n, "gamma", 1.050_701),
                );
                if (a - 1.673_263_2).abs() > 1e-5 || (g - 1.050_701).abs() > 1e-5 {
                    return Err(format!(
                        "SELU with alpha {a}, gamma {g} (only the standard constants)"
                    ));
                }
                act(Activation::Selu)
            }
            "Gelu" => match attr_s(n, "approximate").as_deref() {
                None | Some("none") => act(Activation::GeluErf),
                Some("tanh") => act(Activation::GeluTanh),
                Some(o) => return Err(format!("approximate = {o}")),
            },
            "Clip" => Some(self.clip(n)?),
            _ => None,
        };
        let v = if let Some(a) = activation {
            let x = self.dynamic(n, 0)?;
            let s = self.shape(x);
            V::Dyn(self.push(&name, Op::Act(a), vec![x], s)?)
        } else {
            match op {
                "Identity" => self.input(n, 0)?,
                "Dropout" => {
                    // inputs: data, ratio (default 0.5), training_mode (default false)
                    let training = n.input.get(2).is_some_and(|s| !s.is_empty())
                        && self.konst(n, 2)?.data.iter().any(|v| *v != 0.0);
                    let ratio = match n.input.get(1).filter(|s| !s.is_empty()) {
                        Some(_) => self.konst(n, 1)?.data.first().copied().unwrap_or(0.5),
                        None => 0.5,
                    };
                    if training && ratio != 0.0 {
                        return Err(format!(
                            "training_mode = true with ratio {ratio}: it drops at random (export the model after model.eval())"
                        ));
                    }
                    self.input(n, 0)?
                }
                "Gemm" => V::Dyn(self.gemm(n, &name)?),
                "MatMul" => V::Dyn(self.matmul(n, &name)?),
                "Conv" => V::Dyn(self.conv(n, &name)?),
                "MaxPool" | "AveragePool" => V::Dyn(self.pool(n, &name, op)?),
                "GlobalAveragePool" => {
                    let x = self.dynamic(n, 0)?;
                    let s = self.shape(x);
                    if s.len() != 3 {
                        return Err(format!("input of shape {s:?} (CHW expected)"));
                    }
                    V::Dyn(self.push(&name, Op::GlobalAvgPool, vec![x], vec![s[0], 1, 1])?)
                }
                "BatchNormalization" => {
                    let x = self.dynamic(n, 0)?;
                    let (g, b, m, var) = (
                        self.konst(n, 1)?,
                        self.konst(n, 2)?,
                        self.konst(n, 3)?,
                        self.konst(n, 4)?,
                    );
                    let eps = attr_f(n, "epsilon", 1e-5);
                    let ch = self.shape(x)[0];
                    let lens = [g.data.len(), b.data.len(), m.data.len(), var.data.len()];
                    if lens.iter().any(|l| *l != ch) {
                        return Err(format!(
                            "scale, bias, mean and variance of {lens:?} values for {ch} channels (one each per channel)"
                        ));
                    }
                    let scale: Vec<f64> = g
                        .data
                        .iter()
                        .zip(&var.data)
                        .map(|(g, v)| g / (v + eps).sqrt())
                        .collect();
                    let shift: Vec<f64> = b
                        .data
                        .iter()
                        .zip(&m.data)
                        .zip(&scale)
                        .map(|((b, m), s)| b - m * s)
                        .collect();
                    let s = self.shape(x);
                    V::Dyn(self.push(&name, Op::Affine { scale, shift }, vec![x], s)?)
                }
                "Flatten" => {
                    let x = self.dynamic(n, 0)?;
                    if attr_i(n, "axis", 1) != 1 {
                        return Err("only axis = 1 (keep the batch axis)".into());
                    }
                    let len = self.shape(x).iter().product();
                    V::Dyn(self.push(&name, Op::Reshape, vec![x], vec![len])?)
                }
                "Reshape" => {
                    let x = self.dynamic(n, 0)?;
                    let target = self.konst(n, 1).map_err(|e| match e.as_str() {
                        FAILED_INPUT => e,
                        _ => "the target shape must be constant".into(),
                    })?;
                    let len: usize = self.shape(x).iter().product();
                    V::Dyn(self.push(
                        &name,
                        Op::Reshape,
                        vec![x],
                        resolve_shape(&target.data, len)?,
                    )?)
                }
                "Squeeze" | "Unsqueeze" => {
                    // Only shape bookkeeping on a record (the batch axis is implicit).
                    let x = self.dynamic(n, 0)?;
                    let s = self.shape(x);
                    V::Dyn(self.push(&name, Op::Reshape, vec![x], s)?)
                }
                "Add" | "Sub" | "Mul" | "Div" => self.arith(n, &name, op)?,
                "ReduceMean" => {
                    let x = self.dynamic(n, 0)?;
                    let s = self.shape(x);
                    let axes: Vec<i64> = match (attr_ints(n, "axes"), self.konst(n, 1)) {
                        (Some(a), _) => a,
                        (None, Ok(c)) => c.data.iter().map(|v| *v as i64).collect(),
                        _ => return Err("axes must be constant".into()),
                    };
                    let mut axes: Vec<i64> = axes
                        .iter()
                        .map(|a| if *a < 0 { a + 4 } else { *a })
                        .collect();
                    axes.sort_unstable();
                    if s.len() != 3 || axes != [2, 3] {
                        return Err(format!(
                            "mean over axes {axes:?} of {s:?} (only the spatial mean, as adaptive average pooling to 1)"
                        ));
                    }
                    let shape = if attr_i(n, "keepdims", 1) != 0 {
                        vec![s[0], 1, 1]
                    } else {
                        vec![s[0]]
                    };
                    V::Dyn(self.push(&name, Op::GlobalAvgPool, vec![x], shape)?)
                }
                "Pow" => {
                    let x = self.dynamic(n, 0)?;
                    let e = self.konst(n, 1)?;
                    let s = self.shape(x);
                    match e.data.as_slice() {
                        [p] if *p == 2.0 => V::Dyn(self.push(&name, Op::Mul, vec![x, x], s)?),
                        [p] if *p == 3.0 => {
                            let sq = self.push(
                                &format!("{name}.square"),
                                Op::Mul,
                                vec![x, x],
                                s.clone(),
                            )?;
                            V::Dyn(self.push(&name, Op::Mul, vec![sq, x], s)?)
                        }
                        other => return Err(format!("exponent {other:?} (only 2 and 3)")),
                    }
                }
                "Greater" | "Less" => {
                    let x = self.dynamic(n, 0)?;
                    let t = self.konst(n, 1)?.data;
                    V::Cond {
                        x,
                        above: op == "Greater",
                        t,
                    }
                }
                "Where" => self.where_softplus(n)?,
                "Pad" => self.pad(n)?,
                "Concat" => V::Dyn(self.concat(n, &name)?),
                "Softmax" => {
                    let x = self.dynamic(n, 0)?;
                    let s = self.shape(x);
                    let axis = attr_i(n, "axis", -1);
                    if !(axis == -1 || axis as usize == s.len()) {
                        return Err(format!("softmax over axis {axis} (only the last)"));
                    }
                    V::Dyn(self.push(&name, Op::Softmax, vec![x], s)?)
                }
                _ => return Err(UNSUPPORTED.into()),
            }
        };
        self.vals.insert(out, v);
        Ok(())
    }

    fn gemm(&mut self, n: &pb::NodeProto, name: &str) -> Result<ValueId, String> {
        let x = self.dynamic(n, 0)?;
        if attr_i(n, "transA", 0) != 0 {
            return Err("transA = 1".into());
        }
        let w = self.konst(n, 1)?;
        let (alpha, beta) = (attr_f(n, "alpha", 1.0), attr_f(n, "beta", 1.0));
        let [k, m] = w.dims[..] else {
            return Err(format!("weights of shape {:?} (rank 2 expected)", w.dims));
        };
        let (rows, cols, data) = if attr_i(n, "transB", 0) != 0 {
            (k, m, w.data.clone())
        } else {
            (m, k, transpose(&w.data, k, m))
        };
        let weight = Tensor::new(vec![rows, cols], data.iter().map(|v| v * alpha).collect())
            .map_err(|e| format!("weights: {e}"))?;
        let bias = match self.input(n, 2) {
            Ok(V::Const(c)) => Some(
                broadcast(&c.data, rows)
                    .into_iter()
                    .map(|v| v * beta)
                    .collect(),
            ),
            _ => None,
        };
        let in_len: usize = self.shape(x).iter().product();
        if in_len != cols {
            return Err(format!(
                "weights expect {cols} inputs, the value has {in_len}"
            ));
        }
        self.push(name, Op::Dense { weight, bias }, vec![x], vec![rows])
    }

    fn matmul(&mut self, n: &pb::NodeProto, name: &str) -> Result<ValueId, String> {
        let x = self.dynamic(n, 0)?;
        let w = self.konst(n, 1)?;
        if w.dims.len() != 2 {
            return Err(format!("weights of rank {} (2 expected)", w.dims.len()));
        }
        let (k, m) = (w.dims[0], w.dims[1]);
        let in_len: usize = self.shape(x).iter().product();
        if in_len != k {
            return Err(format!("weights expect {k} inputs, the value has {in_len}"));
        }
        let weight = Tensor::new(vec![m, k], transpose(&w.data, k, m))
            .map_err(|e| format!("weights: {e}"))?;
        self.push(name, Op::Dense { weight, bias: None }, vec![x], vec![m])
    }

    fn conv(&mut self, n: &pb::NodeProto, name: &str) -> Result<ValueId, String> {
        let (x, padded, value) = self.padded_input(n)?;
        if value != 0.0 {
            return Err(format!("a Pad with value {value} before Conv (zeros only)"));
        }
        let w = self.konst(n, 1)?;
        let s = self.shape(x);
        if s.len() != 3 || w.dims.len() != 4 {
            return Err(format!(
                "2-D convolution expected (input {s:?}, weights {:?})",
                w.dims
            ));
        }
        if attr_s(n, "auto_pad").is_some_and(|p| p != "NOTSET") {
            return Err("auto_pad (give explicit pads)".into());
        }
        let k = [w.dims[2], w.dims[3]];
        if let Some(ks) = attr_ints(n, "kernel_shape")
            && ks != [k[0] as i64, k[1] as i64]
        {
            return Err(format!(
                "kernel_shape {ks:?} differs from the weights' {k:?}"
            ));
        }
        let strides = sizes::<2>(n, "strides", 1)?;
        // ONNX orders 2-D pads as the engine does: top, left, bottom, right.
        let pads = pad::add_pads(sizes::<4>(n, "pads", 0)?, padded);
        let dilation = sizes::<2>(n, "dilations", 1)?;
        let group = attr_i(n, "group", 1);
        if group < 1 {
            return Err(format!("group {group} (at least 1)"));
        }
        let groups = usize::try_from(group).map_err(|_| format!("group {group}"))?;
        let geom = Conv2dGeom {
            in_ch: s[0],
            in_h: s[1],
            in_w: s[2],
            out_ch: w.dims[0],
            kernel: k,
            stride: strides,
            pads,
            dilation,
            groups,
        };
        if w.dims[1].checked_mul(groups) != Some(s[0]) {
            return Err(format!(
                "{} input channels for weights {:?} with group {groups}",
                s[0], w.dims
            ));
        }
        let bias = match self.input(n, 2) {
            Ok(V::Const(c)) => Some(c.data),
            _ => None,
        };
        let shape = vec![geom.out_ch, geom.out_h(), geom.out_w()];
        let weight = Tensor::new(w.dims.clone(), w.data).map_err(|e| format!("weights: {e}"))?;
        self.push(name, Op::Conv2d { geom, weight, bias }, vec![x], shape)
    }

    fn pool(&mut self, n: &pb::NodeProto, name: &str, op: &str) -> Result<ValueId, String> {
        let (x, padded, value) = self.padded_input(n)?;
        let s = self.shape(x);
        if s.len() != 3 {
            return Err(format!("input of shape {s:?} (CHW expected)"));
        }
        if attr_i(n, "ceil_mode", 0) != 0 {
            return Err("ceil_mode = 1".into());
        }
        if attr_s(n, "auto_pad").is_some_and(|p| p != "NOTSET") {
            return Err("auto_pad (give explicit pads)".into());
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|v| *v != 1)) {
            return Err("dilated pooling".into());
        }
        if attr_ints(n, "kernel_shape").is_none() {
            return Err("kernel_shape missing".into());
        }
        let own = sizes::<4>(n, "pads", 0)?;
        let mut count_include_pad = attr_i(n, "count_include_pad", 0) != 0;
        if padded != [0; 4] {
            pad::pool_accepts(op, value, count_include_pad, own, self.non_negative(x))?;
            // Padded zeros count in every window's divisor.
            count_include_pad = true;
        }
        let geom = Pool2dGeom {
            ch: s[0],
            in_h: s[1],
            in_w: s[2],
            kernel: sizes::<2>(n, "kernel_shape", 1)?,
            stride: sizes::<2>(n, "strides", 1)?,
            pads: pad::add_pads(own, padded),
        };
        let shape = vec![geom.ch, geom.out_h(), geom.out_w()];
        let op = if op == "MaxPool" {
            Op::MaxPool { geom }
        } else {
            Op::AvgPool {
                geom,
                count_include_pad,
            }
        };
        self.push(name, op, vec![x], shape)
    }

    /// `Concat` of record-dependent values along channels (axis 1 of NCHW,
    /// or of a flat `[N, D]`); all-constant concatenations are folded earlier.
    fn concat(&mut self, n: &pb::NodeProto, name: &str) -> Result<ValueId, String> {
        let xs: Vec<ValueId> = (0..n.input.len())
            .map(|i| self.dynamic(n, i))
            .collect::<Result<_, _>>()?;
        let rank = self.shape(xs[0]).len() as i64 + 1;
        let axis = attr_i(n, "axis", 0);
        if axis != 1 && axis != 1 - rank {
            return Err(format!(
                "concatenation along axis {axis} (only channels: axis 1 of the batched tensor)"
            ));
        }
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| self.shape(*x)).collect();
        let mut shape = shapes[0].clone();
        shape[0] = shapes.iter().map(|s| s[0]).sum();
        self.push(name, Op::Concat, xs, shape)
    }

    /// `Clip` with constant bounds: attributes before opset 11, optional inputs since.
    /// Bounds far beyond the values' range (`FLT_MAX`) are dropped by the engine's plan.
    fn clip(&self, n: &pb::NodeProto) -> Result<Activation, String> {
        let bound = |i: usize, attr: &str| -> Result<Option<f64>, String> {
            if self.opset < 11 {
                return Ok(self::attr(n, attr).and_then(|a| a.f).map(f64::from));
            }
            match n.input.get(i).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(_) => match self.konst(n, i)?.data.as_slice() {
                    [v] => Ok(Some(*v)),
                    other => Err(format!(
                        "a clip bound of {} values (one constant)",
                        other.len()
                    )),
                },
            }
        };
        // An infinite bound on its own side is no bound (`clamp(min=0, max=inf)`).
        Ok(Activation::Clip {
            min: bound(1, "min")?.filter(|v| *v != f64::NEG_INFINITY),
            max: bound(2, "max")?.filter(|v| *v != f64::INFINITY),
        })
    }

    fn arith(&mut self, n: &pb::NodeProto, name: &str, op: &str) -> Result<V, String> {
        let (a, b) = (self.input(n, 0)?, self.input(n, 1)?);
        let per_channel = |c: &Ct, s: &[usize]| -> Result<Vec<f64>, String> {
            match c.data.len() {
                1 => Ok(c.data.clone()),
                l if l == s[0] => Ok(c.data.clone()),
                l if s.len() == 1 && l == s[0] => Ok(c.data.clone()),
                l => Err(format!(
                    "constant of {l} values does not broadcast per channel over {s:?}"
                )),
            }
        };
        Ok(V::Dyn(match (op, a, b) {
            ("Add", V::Dyn(x), V::Dyn(y)) => {
                let s = self.shape(x);
                if s.iter().product::<usize>() != self.shape(y).iter().product::<usize>() {
                    return Err(format!("adding shapes {s:?} and {:?}", self.shape(y)));
                }
                self.push(name, Op::Add, vec![x, y], s)?
            }
            ("Mul", V::Dyn(x), V::Dyn(y)) => {
                let s = self.shape(x);
                self.push(name, Op::Mul, vec![x, y], s)?
            }
            (_, V::Dyn(x), V::Const(c)) | (_, V::Const(c), V::Dyn(x))
                if op == "Add" || op == "Mul" =>
            {
                let s = self.shape(x);
                let c = per_channel(&c, &s)?;
                let affine = if op == "Add" {
                    Op::Affine {
                        scale: vec![1.0],
                        shift: c,
                    }
                } else {
                    Op::Affine {
                        scale: c,
                        shift: vec![0.0],
                    }
                };
                self.push(name, affine, vec![x], s)?
            }
            ("Sub", V::Dyn(x), V::Const(c)) => {
                let s = self.shape(x);
                let c = per_channel(&c, &s)?;
                self.push(
                    name,
                    Op::Affine {
                        scale: vec![1.0],
                        shift: c.iter().map(|v| -v).collect(),
                    },
                    vec![x],
                    s,
                )?
            }
            ("Sub", V::Const(c), V::Dyn(x)) => {
                let s = self.shape(x);
                let c = per_channel(&c, &s)?;
                self.push(
                    name,
                    Op::Affine {
                        scale: vec![-1.0],
                        shift: c,
                    },
                    vec![x],
                    s,
                )?
            }
            ("Div", V::Dyn(x), V::Const(c)) => {
                let s = self.shape(x);
                let c = per_channel(&c, &s)?;
                if c.contains(&0.0) {
                    return Err("division by zero".into());
                }
                self.push(
                    name,
                    Op::Affine {
                        scale: c.iter().map(|v| 1.0 / v).collect(),
                        shift: vec![0.0],
                    },
                    vec![x],
                    s,
                )?
            }
            _ => {
                return Err(format!(
                    "{op} of these operands (a record-dependent divisor or subtrahend pattern)"
                ));
            }
        }))
    }

    /// `Where(x > t, x, softplus(x))` or `Where(x < t, softplus(x), x)`, PyTorch's
    /// softplus threshold: softplus itself (the engine's softplus is exact on its
    /// identity tail), when `t` is at least 12 (there softplus(t) - t < 2^-16).
    fn where_softplus(&mut self, n: &pb::NodeProto) -> Result<V, String> {
        let (c, a, b) = (self.input(n, 0)?, self.input(n, 1)?, self.input(n, 2)?);
        if let (V::Cond { x, above, t }, V::Dyn(a), V::Dyn(b)) = (c, a, b) {
            let is_softplus_of = |v: ValueId, of: ValueId| {
                v > 0
                    && matches!(self.net.nodes[v - 1].op, Op::Act(Activation::Softplus))
                    && self.net.nodes[v - 1].inputs[0] == of
            };
            let (identity, soft) = if above { (a, b) } else { (b, a) };
            if identity == x && is_softplus_of(soft, x) {
                return match t.as_slice() {
                    [t] if *t >= 12.0 => Ok(V::Dyn(soft)),
                    t => Err(format!(
                        "softplus threshold {t:?}: below 12 the identity branch differs from softplus"
                    )),
                };
            }
        }
        Err("Where is supported only as softplus's threshold: Where(x > t, x, Softplus(x)) or Where(x < t, Softplus(x), x)".into())
    }
}

fn input_dims(v: &pb::ValueInfoProto) -> Option<Vec<Option<usize>>> {
    use pb::tensor_shape_proto::dimension::Value as Dv;
    use pb::type_proto::Value as Tv;
    let Some(Tv::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return None;
    };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(Dv::DimValue(x)) if *x > 0 => Some(*x as usize),
                _ => None,
            })
            .collect(),
    )
}

/// A value's declared shape as text: sizes, symbolic names, `?` for unknown.
fn dims_text(v: &pb::ValueInfoProto) -> String {
    use pb::tensor_shape_proto::dimension::Value as Dv;
    use pb::type_proto::Value as Tv;
    let Some(Tv::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return "not a tensor".into();
    };
    let Some(shape) = t.shape.as_ref() else {
        return "no shape".into();
    };
    shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(Dv::DimValue(x)) => x.to_string(),
            Some(Dv::DimParam(p)) if !p.is_empty() => p.clone(),
            _ => "?".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn transpose(w: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

fn broadcast(v: &[f64], n: usize) -> Vec<f64> {
    if v.len() == 1 {
        vec![v[0]; n]
    } else {
        v.to_vec()
    }
}

/// A Reshape target with the batch axis first; `0` and `-1` resolved.
fn resolve_shape(target: &[f64], len: usize) -> Result<Vec<usize>, String> {
    let t: Vec<i64> = target.iter().map(|v| *v as i64).collect();
    let rest = if t.len() > 1 { &t[1..] } else { &t[..] };
    let bad = || format!("target shape {t:?} does not hold {len} values");
    if rest.iter().any(|d| *d == 0 || *d < -1) || rest.iter().filter(|d| **d == -1).count() > 1 {
        return Err(bad());
    }
    let known = rest
        .iter()
        .filter(|d| **d > 0)
        .try_fold(1usize, |a, d| a.checked_mul(usize::try_from(*d).ok()?))
        .ok_or_else(bad)?;
    let shape: Vec<usize> = rest
        .iter()
        .map(|d| if *d == -1 { len / known } else { *d as usize })
        .collect();
    if validate::elements(&shape) != Some(len) {
        return Err(bad());
    }
    Ok(shape)
}
