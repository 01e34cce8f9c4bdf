//! How far secure results are from the exact answer: the secure logits and
//! probabilities against the `f64` reference of the same network, and the
//! fixed-point twin's own difference from it, accumulated over records for
//! `eval --json` and `demo --json`.
//!
//! The yardstick is [`Model::reference_logits`]: the `f64` network as the
//! output step sees it (a binary head's logit `x` as `[0, x]`, before its
//! sigmoid), and its `f64` softmax for probabilities.

use cryptmed_model::{Activation, Op, reference};
use serde::Serialize;

use crate::{EngineError, Model, Prediction};

impl Model {
    /// The `f64` reference of what the output step sees: the network's
    /// outputs, or for a single-output (binary) head the pair `[0, x]` of
    /// its logit `x` (the input of a final sigmoid). Needs real weights.
    pub fn reference_logits(&self, input: &[f64]) -> Vec<f64> {
        let net = &*self.network;
        let mut values = reference::evaluate_all(net, input);
        if self.plan.output.binary {
            let sigmoid = matches!(
                net.nodes.last().map(|n| &n.op),
                Some(Op::Act(Activation::Sigmoid))
            );
            let x = if sigmoid {
                let last = net.nodes.last().map(|n| n.inputs[0]).unwrap_or(0);
                values[last].first().copied()
            } else {
                values.last().and_then(|v| v.first().copied())
            };
            return vec![0.0, x.unwrap_or(f64::NAN)];
        }
        values.pop().unwrap_or_default()
    }
}

/// The `f64` softmax of `logits` (shifted by their maximum).
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Errors of secure results against the `f64` reference, over the records
/// added so far. Fields the output policy does not reveal stay `None`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Fidelity {
    /// Records measured.
    pub records: usize,
    /// Largest `|secure logit - f64 logit|` (the `logits` policy).
    pub max_abs_logit_error: Option<f64>,
    /// Mean of `|secure logit - f64 logit|` over every logit.
    pub mean_abs_logit_error: Option<f64>,
    /// Largest `|secure probability - f64 softmax of the f64 logits|` (the
    /// `probabilities` policy).
    pub max_abs_probability_error: Option<f64>,
    /// Largest `|sum of a record's secure probabilities - 1|`.
    pub max_probability_sum_error: Option<f64>,
    /// Largest `|fixed-point twin logit - f64 logit|`: what the fixed-point
    /// arithmetic itself costs, whatever the policy (the secure result is
    /// within a few units of the twin).
    pub fixed_point_max_abs_logit_error: f64,
    #[serde(skip)]
    logit_error_sum: f64,
    #[serde(skip)]
    logits_counted: usize,
}

impl Fidelity {
    /// Measures one record's secure prediction against the references.
    pub fn add(
        &mut self,
        model: &Model,
        record: &[f64],
        secure: &Prediction,
    ) -> Result<(), EngineError> {
        let want = model.reference_logits(record);
        let twin = model.reference_fixed(record)?;
        let max_diff = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        };
        self.records += 1;
        self.fixed_point_max_abs_logit_error = self
            .fixed_point_max_abs_logit_error
            .max(max_diff(&twin, &want));
        if let Some(l) = &secure.logits {
            let d = max_diff(l, &want);
            self.max_abs_logit_error = Some(self.max_abs_logit_error.unwrap_or(0.0).max(d));
            self.logit_error_sum += l.iter().zip(&want).map(|(x, y)| (x - y).abs()).sum::<f64>();
            self.logits_counted += l.len();
            self.mean_abs_logit_error = Some(self.logit_error_sum / self.logits_counted as f64);
        }
        if let Some(p) = &secure.probabilities {
            let d = max_diff(p, &softmax(&want));
            let sum = (p.iter().sum::<f64>() - 1.0).abs();
            self.max_abs_probability_error =
                Some(self.max_abs_probability_error.unwrap_or(0.0).max(d));
            self.max_probability_sum_error =
                Some(self.max_probability_sum_error.unwrap_or(0.0).max(sum));
        }
        Ok(())
    }
}
