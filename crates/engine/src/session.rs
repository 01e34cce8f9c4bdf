//! The three roles' sessions: setup, per-batch material and the online walk.

use std::cell::Cell;
use std::time::Instant;

use cryptmed_channel::{Channel, ChannelError, CommStats, Counted};
use cryptmed_prep::{Dealer, PartyPrep, PrepSource};
use cryptmed_protocols::linear::{self, Holder};
use cryptmed_protocols::{
    Comparison, Ctx, Ppa, Trace, argmax, mul, pool, relu, reveal, smooth, softmax, symmetric, trunc,
};
use cryptmed_ring::{Elem, FixedPoint};
use cryptmed_share::{Role, Seed};

use crate::plan::encode_weights;
use crate::plan::{Plan, StepKind};
use crate::{ComparisonKind, EngineError, LayerReport, Model, Prediction, Report, Reveal, limits};

/// The engine's one dispatch point from [`ComparisonKind`] to a
/// [`Comparison`] implementation: binds `$cmp` to it and evaluates `$body`,
/// which is generic code. A new comparison is one more arm here.
macro_rules! with_comparison {
    ($kind:expr, $cmp:ident => $body:expr) => {
        match $kind {
            ComparisonKind::Ppa => {
                let $cmp = &Ppa::DEFAULT;
                $body
            }
        }
    };
}

fn chan(step: &str) -> impl FnOnce(ChannelError) -> EngineError + '_ {
    move |source| EngineError::Channel {
        step: step.to_string(),
        source,
    }
}

fn proto(step: &str) -> impl FnOnce(cryptmed_protocols::ProtocolError) -> EngineError + '_ {
    move |e| match e {
        cryptmed_protocols::ProtocolError::Channel(source) => EngineError::Channel {
            step: step.to_string(),
            source,
        },
        source => EngineError::Protocol {
            step: step.to_string(),
            source,
        },
    }
}

/// Window lists of every record of a batch (record `b`'s indices offset by `b * in_len`).
fn batch_windows(windows: &[Vec<usize>], in_len: usize, batch: usize) -> Vec<Vec<usize>> {
    (0..batch)
        .flat_map(|b| {
            windows
                .iter()
                .map(move |w| w.iter().map(|i| i + b * in_len).collect())
        })
        .collect()
}

fn sizes(windows: &[Vec<usize>], batch: usize) -> Vec<usize> {
    (0..batch)
        .flat_map(|_| windows.iter().map(Vec::len))
        .collect()
}

/// The predicted online traffic of one batch.
pub(crate) fn trace(model: &Model, batch: usize) -> Trace {
    let mut t = Trace::default();
    for (_, _, step) in step_traces(model, batch) {
        t.append(step);
    }
    t
}

/// Each step's predicted traffic (name, protocol, trace), the output step last.
pub(crate) fn step_traces(model: &Model, batch: usize) -> Vec<(String, String, Trace)> {
    with_comparison!(model.config.comparison, cmp => step_traces_with(cmp, model, batch))
}

fn step_traces_with<C: Comparison>(
    cmp: &C,
    model: &Model,
    batch: usize,
) -> Vec<(String, String, Trace)> {
    let plan = &model.plan;
    let mut out: Vec<(String, String, Trace)> = plan
        .steps
        .iter()
        .map(|s| {
            let n = batch * s.len;
            let t = match &s.kind {
                StepKind::Linear { op, .. } => linear::trace(op, batch),
                StepKind::Relu { .. } => relu::trace(cmp, n),
                StepKind::MaxPool { windows } => pool::trace(cmp, &sizes(windows, batch)),
                StepKind::Trunc { .. } => trunc::trace(n),
                StepKind::Smooth {
                    table,
                    shift,
                    symmetric: false,
                    ..
                } => smooth::trace(cmp, n, &plan.tables[*table], *shift),
                StepKind::Smooth {
                    table,
                    symmetric: true,
                    ..
                } => symmetric::trace(cmp, n, &plan.half_tables[*table]),
                StepKind::Mul => mul::trace(n),
                _ => Trace::default(),
            };
            (s.name.clone(), s.kind.protocol().to_string(), t)
        })
        .collect();
    let protocol = match model.config.reveal {
        Reveal::Label => "secure argmax, label to the client",
        Reveal::Probabilities => "secure softmax, probabilities to the client",
        Reveal::Logits => "reveal logits to the client",
    };
    out.push((
        "output".into(),
        protocol.into(),
        output_trace(cmp, model, batch),
    ));
    out
}

fn output_trace<C: Comparison>(cmp: &C, model: &Model, batch: usize) -> Trace {
    let o = &model.plan.output;
    match (model.config.reveal, o.softmax) {
        (Reveal::Label, _) => argmax::trace(cmp, batch, o.classes),
        (Reveal::Probabilities, Some(t)) => {
            let tables = softmax_tables(model, t);
            softmax::trace(cmp, batch, o.classes, softmax_shift(model), &tables)
                .then(reveal::trace(batch * o.classes))
        }
        _ => reveal::trace(batch * o.classes),
    }
}

fn softmax_tables(model: &Model, t: [usize; 2]) -> softmax::Tables<'_> {
    softmax::Tables {
        exp: &model.plan.tables[t[0]],
        reciprocal: &model.plan.tables[t[1]],
    }
}

/// Bits to truncate the logits by before the softmax's exp (down to scale `f`).
fn softmax_shift(model: &Model) -> u32 {
    model.plan.output.scale - model.plan.frac_bits
}

/// The dealer's bytes for one batch (corrections plus both batch headers), by
/// dry-running its generation with throw-away seeds.
pub(crate) fn offline_bytes(model: &Model, batch: usize) -> u64 {
    let (s0, s1) = (Seed::from_u64(1), Seed::from_u64(2));
    let mut d = Dealer::new(&s0, &s1);
    let masks: Vec<Vec<Elem>> = model
        .plan
        .linear
        .iter()
        .map(|l| linear::deal_setup(&mut d, &l.op))
        .collect();
    deal_batch(model, &mut d, &masks, batch);
    d.pending_bytes() as u64 + 2 * 48
}

/// Dealer side: material of every step for a batch, in plan order.
fn deal_batch(model: &Model, d: &mut Dealer, masks: &[Vec<Elem>], batch: usize) {
    with_comparison!(
        model.config.comparison,
        cmp => deal_batch_with(cmp, model, d, masks, batch)
    )
}

fn deal_batch_with<C: Comparison>(
    cmp: &C,
    model: &Model,
    d: &mut Dealer,
    masks: &[Vec<Elem>],
    batch: usize,
) {
    for s in &model.plan.steps {
        let n = batch * s.len;
        match &s.kind {
            StepKind::Linear { op, layer } => linear::deal(d, op, &masks[*layer], batch),
            StepKind::Relu { shift } => relu::deal(cmp, d, n, *shift),
            StepKind::MaxPool { windows } => pool::deal(cmp, d, &sizes(windows, batch)),
            StepKind::Trunc { shift } => trunc::deal(d, n, *shift),
            StepKind::Smooth {
                table,
                shift,
                symmetric: false,
                ..
            } => smooth::deal(cmp, d, n, &model.plan.tables[*table], *shift),
            StepKind::Smooth {
                table,
                shift,
                symmetric: true,
                ..
            } => symmetric::deal(cmp, d, n, &model.plan.half_tables[*table], *shift),
            StepKind::Mul => mul::deal(d, n),
            _ => {}
        }
    }
    match (model.config.reveal, model.plan.output.softmax) {
        (Reveal::Label, _) => argmax::deal(cmp, d, batch, model.plan.output.classes),
        (Reveal::Probabilities, Some(t)) => softmax::deal(
            cmp,
            d,
            batch,
            model.plan.output.classes,
            softmax_shift(model),
            &softmax_tables(model, t),
        ),
        _ => {}
    }
}

/// A party's material for one step.
enum Material<C: Comparison> {
    Linear(linear::LinearMaterial),
    Relu(relu::ReluMaterial<C>),
    Pool(Vec<pool::LevelMaterial<C>>),
    Trunc(trunc::TruncMaterial),
    Smooth(smooth::SmoothMaterial<C>),
    Symmetric(symmetric::SymmetricMaterial<C>),
    Mul(mul::MulMaterial),
    Argmax(argmax::ArgmaxMaterial<C>),
    Softmax(Box<softmax::SoftmaxMaterial<C>>),
    None,
}

/// Party side: mirror of [`deal_batch`].
fn take_batch<C: Comparison>(
    cmp: &C,
    model: &Model,
    p: &mut dyn PrepSource,
    masked: &[Vec<Elem>],
    batch: usize,
) -> Vec<Material<C>> {
    let mut out: Vec<Material<C>> = model
        .plan
        .steps
        .iter()
        .map(|s| {
            let n = batch * s.len;
            match &s.kind {
                StepKind::Linear { op, layer } => Material::Linear(linear::take(
                    p,
                    op,
                    batch,
                    masked.get(*layer).map(Vec::as_slice),
                )),
                StepKind::Relu { shift } => Material::Relu(relu::take(cmp, p, n, *shift)),
                StepKind::MaxPool { windows } => {
                    Material::Pool(pool::take(cmp, p, &sizes(windows, batch)))
                }
                StepKind::Trunc { .. } => Material::Trunc(trunc::take(p, n)),
                StepKind::Smooth {
                    table,
                    shift,
                    symmetric: false,
                    ..
                } => Material::Smooth(smooth::take(cmp, p, n, &model.plan.tables[*table], *shift)),
                StepKind::Smooth {
                    table,
                    shift,
                    symmetric: true,
                    ..
                } => Material::Symmetric(symmetric::take(
                    cmp,
                    p,
                    n,
                    &model.plan.half_tables[*table],
                    *shift,
                )),
                StepKind::Mul => Material::Mul(mul::take(p, n)),
                _ => Material::None,
            }
        })
        .collect();
    let classes = model.plan.output.classes;
    match (model.config.reveal, model.plan.output.softmax) {
        (Reveal::Label, _) => out.push(Material::Argmax(argmax::take(cmp, p, batch, classes))),
        (Reveal::Probabilities, Some(t)) => out.push(Material::Softmax(Box::new(softmax::take(
            cmp,
            p,
            batch,
            classes,
            softmax_shift(model),
            &softmax_tables(model, t),
        )))),
        _ => {}
    }
    out
}

/// The provider's encoded parameters of one linear layer.
struct Encoded {
    w: Vec<Elem>,
    bias: Option<Vec<Elem>>,
}

fn encode_params(model: &Model) -> Result<Vec<Encoded>, EngineError> {
    let fp = model.config.fixed;
    model
        .plan
        .linear
        .iter()
        .map(|l| {
            if l.weight.len() != l.op.weight_len() {
                return Err(EngineError::Encoding(format!(
                    "layer {}: the provider's network has no weights (a public network was given)",
                    l.node
                )));
            }
            let w = encode_weights(fp, l).map_err(|(i, e)| {
                EngineError::Encoding(format!("layer {} weight {i}: {e}", l.node))
            })?;
            let bias = match &l.bias {
                Some(b) => Some(
                    b.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            fp.encode_at(*v, l.bias_scale).map_err(|e| {
                                EngineError::Encoding(format!("layer {} bias {i}: {e}", l.node))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                None => None,
            };
            Ok(Encoded { w, bias })
        })
        .collect()
}

impl<C: Comparison> Party<'_, C> {
    /// Runs the online walk for one party; returns the shares of the output value and per-step reports.
    fn online(
        &self,
        cmp: &C,
        ctx: &mut Ctx<'_>,
        counters: &Cell<CommStats>,
        input: Vec<Elem>,
    ) -> Result<(Vec<Elem>, Vec<LayerReport>), EngineError> {
        let (model, params, mats, batch) = (self.model, self.params, self.mats, self.batch);
        let plan: &Plan = &model.plan;
        let mut values: Vec<Option<Vec<Elem>>> = vec![None; plan.value_len.len()];
        values[0] = Some(input);
        let mut layers = Vec::with_capacity(plan.steps.len());
        for (s, mat) in plan.steps.iter().zip(mats) {
            let before = counters.get();
            let t0 = Instant::now();
            let x = values[s.inputs[0]].as_deref().unwrap_or(&[]);
            let name = s.name.as_str();
            let y = match (&s.kind, mat) {
                (StepKind::Linear { op, layer }, Material::Linear(m)) => {
                    let holder = match params {
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
                (StepKind::MaxPool { windows }, Material::Pool(m)) => {
                    let w = batch_windows(windows, plan.value_len[s.inputs[0]], batch);
                    pool::eval(cmp, ctx, x, &w, m).map_err(proto(name))?
                }
                (StepKind::Trunc { shift }, Material::Trunc(m)) => {
                    trunc::eval(ctx, x, *shift, m).map_err(proto(name))?
                }
                (StepKind::Smooth { table, .. }, Material::Smooth(m)) => {
                    smooth::eval(cmp, ctx, x, &plan.tables[*table], m).map_err(proto(name))?
                }
                (StepKind::Smooth { table, .. }, Material::Symmetric(m)) => {
                    symmetric::eval(cmp, ctx, x, &plan.half_tables[*table], m)
                        .map_err(proto(name))?
                }
                (StepKind::Mul, Material::Mul(m)) => {
                    let y = values[s.inputs[1]].as_deref().unwrap_or(&[]);
                    mul::eval(ctx, x, y, m).map_err(proto(name))?
                }
                (
                    StepKind::SumPool {
                        windows,
                        multiplier,
                    },
                    _,
                ) => {
                    let w = batch_windows(windows, plan.value_len[s.inputs[0]], batch);
                    let per = windows.len();
                    w.iter()
                        .enumerate()
                        .map(|(i, win)| {
                            let sum = win.iter().fold(0u64, |a, j| a.wrapping_add(x[*j]));
                            match multiplier {
                                Some(m) => sum.wrapping_mul(m[i % per]),
                                None => sum,
                            }
                        })
                        .collect()
                }
                (StepKind::Add { align }, _) => {
                    let y = values[s.inputs[1]].as_deref().unwrap_or(&[]);
                    x.iter()
                        .zip(y)
                        .map(|(a, b)| (a << align[0]).wrapping_add(b << align[1]))
                        .collect()
                }
                (StepKind::Alias, _) => x.to_vec(),
                _ => {
                    return Err(EngineError::PlanMismatch(format!(
                        "step {name}: material of the wrong kind"
                    )));
                }
            };
            values[s.output] = Some(y);
            let d = counters.get().since(&before);
            layers.push(LayerReport {
                name: s.name.clone(),
                protocol: s.kind.protocol().to_string(),
                bytes_sent: d.bytes_sent,
                bytes_recv: d.bytes_recv,
                rounds: d.rounds,
                seconds: t0.elapsed().as_secs_f64(),
            });
        }
        let out = values[plan.output.value].take().unwrap_or_default();
        Ok((out, layers))
    }
}

/// Reads and checks the dealer's batch header; returns the corrections.
fn recv_batch_header(
    model: &Model,
    dealer: &mut dyn Channel,
    batch: usize,
) -> Result<Vec<u8>, EngineError> {
    let head = dealer.recv_vec(48).map_err(chan("dealer batch header"))?;
    if head[..32] != model.architecture_digest() {
        return Err(EngineError::PlanMismatch(
            "the dealer's batch is for a different plan".into(),
        ));
    }
    let their_batch = u64::from_le_bytes(head[32..40].try_into().unwrap_or_default());
    if their_batch != batch as u64 {
        return Err(EngineError::PlanMismatch(format!(
            "the dealer prepared a batch of {their_batch} records, this party runs {batch}"
        )));
    }
    let len = u64::from_le_bytes(head[40..48].try_into().unwrap_or_default());
    const LIMIT: u64 = 1 << 34;
    if len > LIMIT {
        return Err(EngineError::PlanMismatch(format!(
            "the dealer announced {len} bytes of material, above the {LIMIT}-byte limit"
        )));
    }
    dealer
        .recv_vec(len as usize)
        .map_err(chan("dealer material"))
}

/// Reads the dealer's session header (digest and seed) and checks the plan.
fn recv_seed(model: &Model, dealer: &mut dyn Channel) -> Result<Seed, EngineError> {
    let head = dealer.recv_vec(64).map_err(chan("dealer seed"))?;
    if head[..32] != model.architecture_digest() {
        return Err(EngineError::PlanMismatch(
            "the dealer's session is for a different architecture or configuration".into(),
        ));
    }
    let mut s = [0u8; 32];
    s.copy_from_slice(&head[32..]);
    Ok(Seed::from_bytes(s))
}

/// The dealer's side of one session.
pub struct DealerSession {
    model: Model,
    dealer: Dealer,
    masks: Vec<Vec<Elem>>,
}

impl DealerSession {
    /// Starts a session: sends each party the plan digest and its seed, and
    /// derives the provider's weight masks.
    pub fn new(
        model: Model,
        to_provider: &mut impl Channel,
        to_client: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        let (s0, s1) = (Seed::random(), Seed::random());
        let digest = model.architecture_digest();
        for (ch, s, who) in [
            (&mut *to_provider as &mut dyn Channel, &s0, "provider"),
            (to_client, &s1, "client"),
        ] {
            ch.send(&digest).map_err(chan(who))?;
            ch.send(s.as_bytes()).map_err(chan(who))?;
            ch.flush().map_err(chan(who))?;
        }
        let mut dealer = Dealer::new(&s0, &s1);
        let masks = model
            .plan
            .linear
            .iter()
            .map(|l| linear::deal_setup(&mut dealer, &l.op))
            .collect();
        Ok(Self {
            model,
            dealer,
            masks,
        })
    }

    /// Generates and sends the material for a batch of `batch` records.
    pub fn run_batch(
        &mut self,
        batch: usize,
        to_provider: &mut impl Channel,
        to_client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        let t0 = Instant::now();
        deal_batch(&self.model, &mut self.dealer, &self.masks, batch);
        let for_provider = self.dealer.take(Role::Provider);
        let for_client = self.dealer.take(Role::Client);
        let digest = self.model.architecture_digest();
        let mut sent = 0u64;
        for (ch, body, who) in [
            (
                &mut *to_provider as &mut dyn Channel,
                &for_provider[..],
                "provider",
            ),
            (to_client, &for_client[..], "client"),
        ] {
            let mut head = digest.to_vec();
            head.extend((batch as u64).to_le_bytes());
            head.extend((body.len() as u64).to_le_bytes());
            ch.send(&head).map_err(chan(who))?;
            ch.send(body).map_err(chan(who))?;
            ch.flush().map_err(chan(who))?;
            sent += (head.len() + body.len()) as u64;
        }
        Ok(Report {
            offline_bytes: sent,
            offline_seconds: t0.elapsed().as_secs_f64(),
            ..Report::default()
        })
    }
}

/// The provider's side of one session.
pub struct ProviderSession {
    model: Model,
    prep: PartyPrep,
    params: Vec<Encoded>,
    setup_bytes: u64,
}

impl ProviderSession {
    /// Starts a session: receives the dealer's seed and sends the client the masked weights.
    pub fn new(
        model: Model,
        dealer: &mut impl Channel,
        client: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        let params = encode_params(&model)?;
        let seed = recv_seed(&model, dealer)?;
        let mut prep = PartyPrep::new(Role::Provider, &seed);
        let mut counted = Counted::new(client);
        let len = model.plan.value_len[0];
        let limits = model
            .input_limits
            .clone()
            .unwrap_or_else(|| vec![model.config.fixed.limit(); len]);
        let bytes: Vec<u8> = limits.iter().flat_map(|l| l.to_le_bytes()).collect();
        counted.send(&bytes).map_err(chan("setup: input limits"))?;
        let mut ctx = Ctx::new(Role::Provider, &mut counted);
        for (l, p) in model.plan.linear.iter().zip(&params) {
            let b = linear::take_setup(&mut prep, &l.op).unwrap_or_default();
            linear::send_masked_weights(&mut ctx, &p.w, &b)
                .map_err(proto("setup: masked weights"))?;
        }
        counted.flush().map_err(chan("setup: masked weights"))?;
        let setup_bytes = counted.stats().bytes_sent;
        Ok(Self {
            model,
            prep,
            params,
            setup_bytes,
        })
    }

    /// One-time setup bytes sent to the client.
    pub fn setup_bytes(&self) -> u64 {
        self.setup_bytes
    }

    /// Runs one batch of `batch` records.
    pub fn run_batch(
        &mut self,
        batch: usize,
        dealer: &mut impl Channel,
        client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        with_comparison!(
            self.model.config.comparison,
            cmp => self.run_batch_with(cmp, batch, dealer, client)
        )
    }

    fn run_batch_with<C: Comparison>(
        &mut self,
        cmp: &C,
        batch: usize,
        dealer: &mut impl Channel,
        client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        let t0 = Instant::now();
        let corrections = recv_batch_header(&self.model, dealer, batch)?;
        let offline_bytes = 48 + corrections.len() as u64;
        self.prep.load(corrections);
        let mats = take_batch(cmp, &self.model, &mut self.prep, &[], batch);
        self.prep
            .finish()
            .map_err(|e| EngineError::PlanMismatch(e.to_string()))?;
        let offline_seconds = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut counted = Counted::new(client);
        let input = vec![0; batch * self.model.plan.value_len[0]];
        let party = Party {
            model: &self.model,
            role: Role::Provider,
            params: Some(&self.params),
            mats: &mats,
            batch,
        };
        let (out, mut layers) = party.run(cmp, &mut counted, input)?;
        let (before, t) = (counted.stats(), Instant::now());
        party.finish_output(cmp, &mut counted, &out)?;
        counted.flush().map_err(chan("result"))?;
        layers.push(output_report(
            &self.model,
            &counted.stats().since(&before),
            t,
        ));
        let s = counted.stats();
        Ok(Report {
            online_bytes_sent: s.bytes_sent,
            online_bytes_recv: s.bytes_recv,
            online_rounds: s.rounds,
            offline_bytes,
            setup_bytes: self.setup_bytes,
            online_seconds: t1.elapsed().as_secs_f64(),
            offline_seconds,
            layers,
        })
    }
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

/// One party's view of a batch: what the online walk and the output step need.
struct Party<'a, C: Comparison> {
    model: &'a Model,
    role: Role,
    params: Option<&'a [Encoded]>,
    mats: &'a [Material<C>],
    batch: usize,
}

impl<C: Comparison> Party<'_, C> {
    /// Runs the online walk over a counted channel, collecting per-step traffic.
    fn run<Ch: Channel>(
        &self,
        cmp: &C,
        ch: &mut Counted<Ch>,
        input: Vec<Elem>,
    ) -> Result<(Vec<Elem>, Vec<LayerReport>), EngineError> {
        let counters = Cell::new(ch.stats());
        let mut probe = Probe {
            inner: ch,
            counters: &counters,
        };
        let mut ctx = Ctx::new(self.role, &mut probe);
        self.online(cmp, &mut ctx, &counters, input)
    }
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

impl<C: Comparison> Party<'_, C> {
    /// The output step: reveal or argmax. Returns the client's predictions.
    fn finish_output<Ch: Channel>(
        &self,
        cmp: &C,
        ch: &mut Counted<Ch>,
        out: &[Elem],
    ) -> Result<Option<Vec<Prediction>>, EngineError> {
        let model = self.model;
        let last = self.mats.last();
        let mut ctx = Ctx::new(self.role, ch);
        let o = &model.plan.output;
        match (model.config.reveal, last) {
            (Reveal::Label, Some(Material::Argmax(m))) => {
                let labels = argmax::eval(cmp, &mut ctx, out, o.classes, m)
                    .map_err(proto("output (argmax)"))?;
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
            (Reveal::Logits, _) => {
                let clear = reveal::to_client(&mut ctx, out).map_err(proto("output (reveal)"))?;
                let fp = model.config.fixed;
                Ok(clear.map(|v| {
                    v.chunks_exact(o.classes)
                        .map(|row| {
                            let logits: Vec<f64> =
                                row.iter().map(|x| fp.decode_at(*x, o.scale)).collect();
                            Prediction {
                                label: first_max(&logits),
                                probabilities: None,
                                logits: Some(logits),
                            }
                        })
                        .collect()
                }))
            }
            (Reveal::Probabilities, Some(Material::Softmax(m))) => {
                let tables = o
                    .softmax
                    .map(|t| softmax_tables(model, t))
                    .ok_or_else(|| EngineError::PlanMismatch("softmax tables missing".into()))?;
                let p = softmax::eval(cmp, &mut ctx, out, o.classes, &tables, m)
                    .map_err(proto("output (softmax)"))?;
                let clear = reveal::to_client(&mut ctx, &p).map_err(proto("output (reveal)"))?;
                let (fp, scale) = (model.config.fixed, softmax::output_scale(&tables));
                Ok(clear.map(|v| {
                    v.chunks_exact(o.classes)
                        .map(|row| {
                            let probabilities: Vec<f64> =
                                row.iter().map(|x| fp.decode_at(*x, scale)).collect();
                            Prediction {
                                label: first_max(&probabilities),
                                probabilities: Some(probabilities),
                                logits: None,
                            }
                        })
                        .collect()
                }))
            }
            _ => Err(EngineError::PlanMismatch("output material missing".into())),
        }
    }
}

/// Index of the first largest value.
pub(crate) fn first_max(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// The client's side of one session.
pub struct ClientSession {
    model: Model,
    prep: PartyPrep,
    masked: Vec<Vec<Elem>>,
    setup_bytes: u64,
    input_limits: Vec<f64>,
    /// Records run so far in this session (so errors name a record by its session index).
    records_done: usize,
}

impl ClientSession {
    /// Starts a session: receives the dealer's seed and the provider's masked weights.
    pub fn new(
        model: Model,
        dealer: &mut impl Channel,
        provider: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        let seed = recv_seed(&model, dealer)?;
        let mut prep = PartyPrep::new(Role::Client, &seed);
        let len = model.plan.value_len[0];
        let mut bytes = vec![0u8; 8 * len];
        provider
            .recv(&mut bytes)
            .map_err(chan("setup: input limits"))?;
        let limits: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        if let Some((j, l)) = limits
            .iter()
            .enumerate()
            .find(|(_, l)| !(l.is_finite() && **l > 0.0))
        {
            return Err(EngineError::PlanMismatch(format!(
                "the provider announced an input limit of {l} for column {}",
                j + 1
            )));
        }
        let mut ctx = Ctx::new(Role::Client, provider);
        let mut masked = Vec::with_capacity(model.plan.linear.len());
        let mut setup_bytes = 8 * len as u64;
        for l in &model.plan.linear {
            let none = linear::take_setup(&mut prep, &l.op);
            debug_assert!(none.is_none());
            masked.push(
                linear::recv_masked_weights(&mut ctx, &l.op)
                    .map_err(proto("setup: masked weights"))?,
            );
            setup_bytes += 8 * l.op.weight_len() as u64;
        }
        Ok(Self {
            model,
            prep,
            masked,
            setup_bytes,
            input_limits: limits,
            records_done: 0,
        })
    }

    /// The provider's per-column input limits for this session (see [`Model::input_limits`]).
    pub fn input_limits(&self) -> &[f64] {
        &self.input_limits
    }

    /// One-time setup bytes received from the provider.
    pub fn setup_bytes(&self) -> u64 {
        self.setup_bytes
    }

    /// Runs one batch; returns one prediction per record.
    pub fn run_batch(
        &mut self,
        records: &[Vec<f64>],
        dealer: &mut impl Channel,
        provider: &mut impl Channel,
    ) -> Result<(Vec<Prediction>, Report), EngineError> {
        with_comparison!(
            self.model.config.comparison,
            cmp => self.run_batch_with(cmp, records, dealer, provider)
        )
    }

    fn run_batch_with<C: Comparison>(
        &mut self,
        cmp: &C,
        records: &[Vec<f64>],
        dealer: &mut impl Channel,
        provider: &mut impl Channel,
    ) -> Result<(Vec<Prediction>, Report), EngineError> {
        let batch = records.len();
        let input = encode_records(
            self.model.config.fixed,
            Some(&self.input_limits),
            self.records_done,
            records,
            self.model.plan.value_len[0],
        )?;
        self.records_done += batch;
        let t0 = Instant::now();
        let corrections = recv_batch_header(&self.model, dealer, batch)?;
        let offline_bytes = 48 + corrections.len() as u64;
        self.prep.load(corrections);
        let mats = take_batch(cmp, &self.model, &mut self.prep, &self.masked, batch);
        self.prep
            .finish()
            .map_err(|e| EngineError::PlanMismatch(e.to_string()))?;
        let offline_seconds = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut counted = Counted::new(provider);
        let party = Party {
            model: &self.model,
            role: Role::Client,
            params: None,
            mats: &mats,
            batch,
        };
        let (out, mut layers) = party.run(cmp, &mut counted, input)?;
        let (before, t) = (counted.stats(), Instant::now());
        let preds = party
            .finish_output(cmp, &mut counted, &out)?
            .unwrap_or_default();
        counted.flush().map_err(chan("result"))?;
        layers.push(output_report(
            &self.model,
            &counted.stats().since(&before),
            t,
        ));
        let s = counted.stats();
        let report = Report {
            online_bytes_sent: s.bytes_sent,
            online_bytes_recv: s.bytes_recv,
            online_rounds: s.rounds,
            offline_bytes,
            setup_bytes: self.setup_bytes,
            online_seconds: t1.elapsed().as_secs_f64(),
            offline_seconds,
            layers,
        };
        Ok((preds, report))
    }
}

/// Encodes records at the input scale, naming the record (counted from
/// `first`) and column of any bad value; with `limits`, also refuses values
/// beyond the model's range for their column.
pub(crate) fn encode_records(
    fp: FixedPoint,
    limits: Option<&[f64]>,
    first: usize,
    records: &[Vec<f64>],
    len: usize,
) -> Result<Vec<Elem>, EngineError> {
    let mut out = Vec::with_capacity(records.len() * len);
    for (r, rec) in (first..).zip(records) {
        if rec.len() != len {
            return Err(EngineError::Encoding(format!(
                "record {r}: {} values, the model expects {len}",
                rec.len()
            )));
        }
        limits::check_record(fp, limits, r, rec)?;
        for (j, v) in rec.iter().enumerate() {
            out.push(fp.encode(*v).map_err(|e| EngineError::Record {
                record: r,
                column: j + 1,
                reason: e.to_string(),
            })?);
        }
    }
    Ok(out)
}
