//! One party's online walk over a batch: every plan step with its material
//! from the [`Feed`], then the output step (argmax, softmax or reveal).

use std::cell::Cell;
use std::time::Instant;

use cryptmed_channel::{Channel, ChannelError, CommStats, Counted};
use cryptmed_protocols::linear::{self, Holder};
use cryptmed_protocols::{
    Comparison, Ctx, argmax, clip, mul, pool, relu, reveal, smooth, softmax, symmetric, trunc,
};
use cryptmed_ring::Elem;
use cryptmed_share::Role;

use super::steps::{Material, batch_windows, softmax_tables};
use super::stream::Feed;
use super::{mismatch, proto};
use crate::plan::{Plan, StepKind, local};
use crate::{EngineError, LayerReport, Model, Prediction, Progress, Reveal};

/// The provider's encoded parameters of one linear layer.
pub(crate) struct Encoded {
    pub(crate) w: Vec<Elem>,
    pub(crate) bias: Option<Vec<Elem>>,
}

/// One party's view of a batch: what the online walk needs.
pub(crate) struct Party<'a> {
    pub(crate) model: &'a Model,
    pub(crate) role: Role,
    /// The provider's encoded weights (`None` for the client).
    pub(crate) params: Option<&'a [Encoded]>,
    pub(crate) batch: usize,
    /// Called after every step (for progress bars).
    pub(crate) progress: Option<&'a (dyn Fn(&Progress<'_>) + Send + Sync)>,
}

/// The walk's result: the client's predictions and one report per step, output last.
pub(crate) type Walked = (Option<Vec<Prediction>>, Vec<LayerReport>);

impl Party<'_> {
    /// The whole online phase of a batch over `ch`, pulling each step's material from `feed`.
    pub(crate) fn run<C: Comparison, Ch: Channel>(
        &self,
        cmp: &C,
        ch: &mut Counted<Ch>,
        feed: &mut Feed<C>,
        input: Vec<Elem>,
    ) -> Result<Walked, EngineError> {
        let counters = Cell::new(ch.stats());
        let mut probe = Probe {
            inner: ch,
            counters: &counters,
        };
        let mut ctx = Ctx::new(self.role, &mut probe);
        let (out, mut layers) = self.steps(cmp, &mut ctx, &counters, feed, input)?;
        let (before, t) = (counters.get(), Instant::now());
        let material = feed.next()?;
        let preds = self.finish_output(cmp, &mut ctx, &out, &material)?;
        ctx.ch.flush().map_err(super::chan("result"))?;
        layers.push(output_report(self.model, &counters.get().since(&before), t));
        self.report_progress(self.model.plan.steps.len() + 1, "output");
        Ok((preds, layers))
    }

    fn report_progress(&self, done: usize, name: &str) {
        if let Some(f) = self.progress {
            f(&Progress {
                done,
                total: self.model.plan.steps.len() + 1,
                step: name,
            });
        }
    }

    /// Every plan step in order; returns the shares of the output value and per-step reports.
    /// A value is dropped after the last step that reads it, so memory follows the widest
    /// layer, not the network.
    fn steps<C: Comparison>(
        &self,
        cmp: &C,
        ctx: &mut Ctx<'_>,
        counters: &Cell<CommStats>,
        feed: &mut Feed<C>,
        input: Vec<Elem>,
    ) -> Result<(Vec<Elem>, Vec<LayerReport>), EngineError> {
        let plan: &Plan = &self.model.plan;
        let last_use = last_uses(plan);
        let mut values: Vec<Option<Vec<Elem>>> = vec![None; plan.value_len.len()];
        values[0] = Some(input);
        let mut layers = Vec::with_capacity(plan.steps.len() + 1);
        for (i, s) in plan.steps.iter().enumerate() {
            let material = feed.next()?;
            let before = counters.get();
            let t0 = Instant::now();
            let y = self.step(cmp, ctx, &values, i, &material)?;
            drop(material);
            values[s.output] = Some(y);
            for v in &s.inputs {
                if last_use[*v] == i {
                    values[*v] = None;
                }
            }
            let d = counters.get().since(&before);
            layers.push(LayerReport {
                name: s.name.clone(),
                protocol: s.kind.protocol().to_string(),
                bytes_sent: d.bytes_sent,
                bytes_recv: d.bytes_recv,
                rounds: d.rounds,
                seconds: t0.elapsed().as_secs_f64(),
            });
            self.report_progress(i + 1, &s.name);
        }
        let out = values[plan.output.value].take().unwrap_or_default();
        Ok((out, layers))
    }

    /// Step `i` of the plan on the current values.
    fn step<C: Comparison>(
        &self,
        cmp: &C,
        ctx: &mut Ctx<'_>,
        values: &[Option<Vec<Elem>>],
        i: usize,
        material: &Material<C>,
    ) -> Result<Vec<Elem>, EngineError> {
        let plan = &self.model.plan;
        let s = &plan.steps[i];
        let input = |k: usize| values[s.inputs[k]].as_deref().unwrap_or(&[]);
        let x = input(0);
        let name = s.name.as_str();
        Ok(match (&s.kind, material) {
            (StepKind::Linear { op, layer }, Material::Linear(m)) => {
                let holder = match self.params {
                    Some(p) => Holder::Provider {
                        weights: &p[*layer].w,
                        bias: p[*layer].bias.as_deref(),
                    },
                    None => Holder::Client,
                };
                linear::eval(ctx, op, holder, x, m).map_err(proto(name))?
            }
            (StepKind::Relu { shift }, Material::Relu(m)) => {
                relu::eval(cmp, ctx, x, *shift, m).map_err(proto(name))?
            }
            (StepKind::MaxPool { geom }, Material::Pool(m)) => {
                let w = batch_windows(&geom.windows(), plan.value_len[s.inputs[0]], self.batch);
                pool::eval(cmp, ctx, x, &w, m).map_err(proto(name))?
            }
            (StepKind::Clip { shift, min, max }, Material::Clip(m)) => {
                let b = self.clip_bounds(*shift, *min, *max)?;
                clip::eval(cmp, ctx, x, *shift, b, m).map_err(proto(name))?
            }
            (StepKind::Trunc { shift }, Material::Trunc(m)) => {
                trunc::eval(ctx, x, *shift, m).map_err(proto(name))?
            }
            (StepKind::Smooth { table, .. }, Material::Smooth(m)) => {
                smooth::eval(cmp, ctx, x, &plan.tables[*table], m).map_err(proto(name))?
            }
            (StepKind::Smooth { table, .. }, Material::Symmetric(m)) => {
                symmetric::eval(cmp, ctx, x, &plan.half_tables[*table], m).map_err(proto(name))?
            }
            (StepKind::Mul, Material::Mul(m)) => {
                mul::eval(ctx, x, input(1), m).map_err(proto(name))?
            }
            (kind, Material::None) if local::is_local(kind) => {
                let ins: Vec<&[Elem]> = (0..s.inputs.len()).map(input).collect();
                let lens: Vec<usize> = s.inputs.iter().map(|v| plan.value_len[*v]).collect();
                local::apply(kind, &ins, &lens, self.batch).unwrap_or_default()
            }
            _ => return Err(mismatch(format!("step {name}: material of the wrong kind"))),
        })
    }

    /// A clip step's bounds, encoded: thresholds at the input's scale, constants at `f`.
    fn clip_bounds(
        &self,
        shift: u32,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Result<clip::Bounds, EngineError> {
        let fp = self.model.config.fixed;
        let f = fp.frac_bits();
        let pair = |v: f64| -> Result<(Elem, Elem), EngineError> {
            let enc = |bits| {
                fp.encode_at(v, bits)
                    .map_err(|e| EngineError::Encoding(format!("clip bound {v}: {e}")))
            };
            Ok((enc(f + shift)?, enc(f)?))
        };
        Ok(clip::Bounds {
            lower: min.map(pair).transpose()?,
            upper: max.map(pair).transpose()?,
        })
    }

    /// The output step: reveal, argmax or softmax. Returns the client's predictions.
    fn finish_output<C: Comparison>(
        &self,
        cmp: &C,
        ctx: &mut Ctx<'_>,
        out: &[Elem],
        material: &Material<C>,
    ) -> Result<Option<Vec<Prediction>>, EngineError> {
        let model = self.model;
        let o = &model.plan.output;
        let fp = model.config.fixed;
        let widened;
        let out = if o.binary {
            widened = binary_pair(out, ctx.lead(), model.config.reveal == Reveal::Label);
            &widened[..]
        } else {
            out
        };
        let rows = |clear: Vec<Elem>, scale: u32, probabilities: bool| -> Vec<Prediction> {
            clear
                .chunks_exact(o.classes)
                .map(|row| {
                    let v: Vec<f64> = row.iter().map(|x| fp.decode_at(*x, scale)).collect();
                    let label = first_max(&v);
                    let (probabilities, logits) = if probabilities {
                        (Some(v), None)
                    } else {
                        (None, Some(v))
                    };
                    Prediction {
                        label,
                        probabilities,
                        logits,
                    }
                })
                .collect()
        };
        match (model.config.reveal, material) {
            (Reveal::Label, Material::Argmax(m)) => {
                let labels =
                    argmax::eval(cmp, ctx, out, o.classes, m).map_err(proto("output (argmax)"))?;
                Ok(labels.map(|ls| {
                    ls.into_iter()
                        .map(|label| Prediction {
                            label,
                            probabilities: None,
                            logits: None,
                        })
                        .collect()
                }))
            }
            (Reveal::Logits, Material::None) => {
                let clear = reveal::to_client(ctx, out).map_err(proto("output (reveal)"))?;
                Ok(clear.map(|v| rows(v, o.scale, false)))
            }
            (Reveal::Probabilities, Material::Softmax(m)) => {
                let tables = o
                    .softmax
                    .map(|t| softmax_tables(model, t))
                    .ok_or_else(|| mismatch("softmax tables missing"))?;
                let p = softmax::eval(cmp, ctx, out, o.classes, &tables, m)
                    .map_err(proto("output (softmax)"))?;
                let clear = reveal::to_client(ctx, &p).map_err(proto("output (reveal)"))?;
                let scale = softmax::output_scale(&tables);
                Ok(clear.map(|v| rows(v, scale, true)))
            }
            _ => Err(mismatch("output material of the wrong kind")),
        }
    }
}

/// A binary head's single logit `x` per record as the pair `[0, x]` the
/// output step sees (`softmax([0, x]) = [1 - p, p]`); for the label, `[0, x +
/// 1]` in units of the last place, so that index 1 wins exactly when `x >=
/// 0`, i.e. `p >= 0.5` (the leader adds the public 1).
pub(crate) fn binary_pair(x: &[Elem], lead: bool, label: bool) -> Vec<Elem> {
    let bias = Elem::from(lead && label);
    x.iter().flat_map(|v| [0, v.wrapping_add(bias)]).collect()
}

/// `last[v]`: the index of the last step that reads value `v` (the output
/// value counts as read by the output step, after every plan step).
fn last_uses(plan: &Plan) -> Vec<usize> {
    let mut last = vec![0; plan.value_len.len()];
    for (i, s) in plan.steps.iter().enumerate() {
        for v in &s.inputs {
            last[*v] = i;
        }
    }
    last[plan.output.value] = plan.steps.len();
    last
}

/// The output step's line in a report (argmax, reveal or softmax), so the
/// per-step lines add up to the whole online cost.
fn output_report(model: &Model, d: &CommStats, t: Instant) -> LayerReport {
    LayerReport {
        name: "output".into(),
        protocol: match model.config.reveal {
            Reveal::Label => "argmax (label to the client only)",
            Reveal::Logits => "reveal logits to the client",
            Reveal::Probabilities => "softmax, reveal to the client",
        }
        .into(),
        bytes_sent: d.bytes_sent,
        bytes_recv: d.bytes_recv,
        rounds: d.rounds,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// Index of the first largest value.
fn first_max(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// A channel wrapper that publishes the counters after every operation, so
/// the walker can read per-step deltas while the context borrows the channel.
struct Probe<'a, C: Channel> {
    inner: &'a mut Counted<C>,
    counters: &'a Cell<CommStats>,
}

impl<C: Channel> Channel for Probe<'_, C> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        let r = self.inner.send(bytes);
        self.counters.set(self.inner.stats());
        r
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        let r = self.inner.recv(buf);
        self.counters.set(self.inner.stats());
        r
    }
    fn flush(&mut self) -> Result<(), ChannelError> {
        self.inner.flush()
    }
    fn exchange(&mut self, out: &[u8], input: &mut [u8]) -> Result<(), ChannelError> {
        let r = self.inner.exchange(out, input);
        self.counters.set(self.inner.stats());
        r
    }
}
