//! ONNX `Pad` in front of a convolution or a pooling: folded into that
//! node's own (possibly asymmetric) padding. A Keras model rewritten in
//! PyTorch exports Keras `same` padding this way (`F.pad` then the op), and
//! TensorFlow converters do too. Any other use of `Pad` is refused.

use super::{Importer, V, attr_ints, attr_s, pb};
use crate::ir::{Op, ValueId};

/// Spatial padding waiting for the node that reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pending {
    /// The padded value.
    pub(super) x: ValueId,
    /// Top, left, bottom, right (the engine's order).
    pub(super) pads: [usize; 4],
    /// The constant padded with.
    pub(super) value: f64,
}

/// The error of a `Pad` read by anything but a convolution or a pooling.
pub(super) const PAD_CONSUMER: &str = "reads the output of a Pad: constant padding is supported only right before Conv, MaxPool or AveragePool";

impl Importer {
    /// A `Pad` node: constant mode, spatial pads only, constant pads and value.
    pub(super) fn pad(&self, n: &pb::NodeProto) -> Result<V, String> {
        let x = self.dynamic(n, 0)?;
        let mode = attr_s(n, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(format!("Pad mode {mode:?} (only constant)"));
        }
        let raw: Vec<i64> = match attr_ints(n, "pads") {
            Some(p) if self.opset < 11 => p,
            _ => self
                .konst(n, 1)
                .map_err(|_| "the pads must be constant".to_string())?
                .data
                .iter()
                .map(|v| *v as i64)
                .collect(),
        };
        if n.input.get(3).is_some_and(|a| !a.is_empty()) {
            return Err("Pad with explicit axes".into());
        }
        let value = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(_) => match self.konst(n, 2)?.data.as_slice() {
                [v] => *v,
                other => return Err(format!("pad value of {} values", other.len())),
            },
            None if self.opset < 11 => super::attr_f(n, "value", 0.0),
            None => 0.0,
        };
        // NCHW: [n, c, h, w] at the beginning, then at the end.
        let [n0, c0, h0, w0, n1, c1, h1, w1] = <[i64; 8]>::try_from(raw.clone())
            .map_err(|_| format!("pads {raw:?} (8 values for an NCHW tensor expected)"))?;
        if [n0, c0, n1, c1].iter().any(|v| *v != 0) || [h0, w0, h1, w1].iter().any(|v| *v < 0) {
            return Err(format!(
                "pads {raw:?} (only non-negative padding of height and width)"
            ));
        }
        let u = |v: i64| v as usize;
        Ok(V::Padded(Pending {
            x,
            pads: [u(h0), u(w0), u(h1), u(w1)],
            value,
        }))
    }

    /// True when value `x` is never negative: a ReLU's (or a clip at 0's)
    /// output, possibly reshaped or max-pooled since.
    pub(super) fn non_negative(&self, x: ValueId) -> bool {
        let Some(node) = x.checked_sub(1).and_then(|i| self.net.nodes.get(i)) else {
            return false;
        };
        match &node.op {
            Op::Act(a) => a.is_non_negative(),
            Op::Reshape | Op::MaxPool { .. } => self.non_negative(node.inputs[0]),
            _ => false,
        }
    }

    /// Input 0 of a convolution or pooling, with the padding of a `Pad` in
    /// front of it (zeros, and the pad value, when there is none).
    pub(super) fn padded_input(
        &self,
        n: &pb::NodeProto,
    ) -> Result<(ValueId, [usize; 4], f64), String> {
        match self.input(n, 0)? {
            V::Padded(p) => Ok((p.x, p.pads, p.value)),
            _ => Ok((self.dynamic(n, 0)?, [0; 4], 0.0)),
        }
    }
}

/// `a + b` side by side.
pub(super) fn add_pads(a: [usize; 4], b: [usize; 4]) -> [usize; 4] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

/// Whether a `ceil_mode`-free pool accepts padding with `value` folded in:
/// max pooling ignores padded cells, which is padding with negative
/// infinity, or with zeros when the padded value is never negative
/// (`non_negative`: a ReLU's output); average pooling with zeros counts
/// them, which is `count_include_pad = 1`.
pub(super) fn pool_accepts(
    op: &str,
    value: f64,
    count_include_pad: bool,
    own: [usize; 4],
    non_negative: bool,
) -> Result<(), String> {
    match op {
        "MaxPool" if value == f64::NEG_INFINITY || (value == 0.0 && non_negative) => Ok(()),
        "MaxPool" if value == 0.0 => Err(
            "a Pad with zeros before MaxPool of a value that may be negative (a padded zero \
             could win; pad with -inf, or pool the output of a ReLU)"
                .into(),
        ),
        "MaxPool" => Err(format!(
            "a Pad with value {value} before MaxPool (padded cells must never win: pad with -inf)"
        )),
        _ if value != 0.0 => Err(format!(
            "a Pad with value {value} before AveragePool (zeros only)"
        )),
        _ if !count_include_pad && own.iter().any(|p| *p > 0) => {
            Err("a Pad before an AveragePool that pads itself without counting its padding".into())
        }
        _ => Ok(()),
    }
}
