//! The three roles' sessions: setup, then batches whose dealer material
//! streams step by step ([`stream`]) into each party's online walk ([`online`]).

mod online;
mod steps;
mod stream;

use std::time::Instant;

use cryptmed_channel::{Channel, ChannelError, Counted};
use cryptmed_prep::{Dealer, PartyPrep};
use cryptmed_protocols::linear;
use cryptmed_protocols::{Ctx, Fss, Ppa, Trace};
use cryptmed_ring::Elem;
use cryptmed_share::{Role, Seed};

use crate::plan::encode_weights;
use crate::{ComparisonKind, EngineError, Model, Prediction, Progress, Report, limits};
pub(crate) use online::binary_pair;
use online::{Encoded, Party};
pub(crate) use stream::offline_first;
use stream::{Source, with_feed};

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
            ComparisonKind::Fss => {
                let $cmp = &Fss::DEFAULT;
                $body
            }
        }
    };
}

/// A progress callback: called after every step of a batch's online walk
/// (progress bars). Shared, so one callback can serve a whole session.
pub type ProgressFn = std::sync::Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

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

fn mismatch(what: impl Into<String>) -> EngineError {
    EngineError::PlanMismatch(what.into())
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
    with_comparison!(model.config.comparison, cmp => {
        steps::units(model)
            .map(|u| {
                let (name, protocol) = match u {
                    steps::Unit::Step(s) => (s.name.clone(), s.kind.protocol().to_string()),
                    steps::Unit::Output => ("output".to_string(), output_protocol(model).to_string()),
                };
                (name, protocol, steps::trace(cmp, model, batch, u))
            })
            .collect()
    })
}

fn output_protocol(model: &Model) -> &'static str {
    match model.config.reveal {
        crate::Reveal::Label => "secure argmax, label to the client",
        crate::Reveal::Probabilities => "secure softmax, probabilities to the client",
        crate::Reveal::Logits => "reveal logits to the client",
    }
}

/// The dealer's bytes to both parties for one batch (material and framing), in closed form.
pub(crate) fn offline_bytes(model: &Model, batch: usize) -> u64 {
    with_comparison!(model.config.comparison, cmp => {
        steps::units(model)
            .map(|u| steps::offline_bytes(cmp, model, batch, u))
            .sum::<u64>()
    }) + 2 * stream::framing_bytes(model)
}

/// The dealer's bytes to both parties for the largest single step of a
/// batch: what a party holds at once, whatever the network's depth.
pub(crate) fn largest_step_bytes(model: &Model, batch: usize) -> u64 {
    with_comparison!(model.config.comparison, cmp => {
        steps::units(model)
            .map(|u| steps::offline_bytes(cmp, model, batch, u))
            .max()
            .unwrap_or(0)
    })
}

fn encode_params(model: &Model) -> Result<Vec<Encoded>, EngineError> {
    let fp = model.config.fixed;
    let layer = |l: &crate::plan::LinearParams| -> Result<Encoded, EngineError> {
        if l.weight.len() != l.op.weight_len() {
            return Err(EngineError::Encoding(format!(
                "layer {}: the provider's network has no weights (a public network was given)",
                l.node
            )));
        }
        let w = encode_weights(fp, l)
            .map_err(|(i, e)| EngineError::Encoding(format!("layer {} weight {i}: {e}", l.node)))?;
        let bias = l
            .bias
            .as_ref()
            .map(|b| {
                b.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        fp.encode_at(*v, l.bias_scale).map_err(|e| {
                            EngineError::Encoding(format!("layer {} bias {i}: {e}", l.node))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Encoded { w, bias })
    };
    model.plan.linear.iter().map(layer).collect()
}

/// Reads the dealer's session header (digest and seed) and checks the plan.
fn recv_seed(model: &Model, dealer: &mut dyn Channel) -> Result<Seed, EngineError> {
    let head = dealer.recv_vec(64).map_err(chan("dealer seed"))?;
    if head[..32] != model.architecture_digest() {
        return Err(mismatch(
            "the dealer's session is for a different architecture or configuration",
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
        let (s0, s1) = (Seed::random()?, Seed::random()?);
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

    /// Deals a batch of `batch` records, sending each step's material as
    /// soon as it is made (the parties' reads pace it).
    pub fn run_batch(
        &mut self,
        batch: usize,
        to_provider: &mut impl Channel,
        to_client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        let t0 = Instant::now();
        let Self {
            model,
            dealer,
            masks,
        } = self;
        let sent = with_comparison!(model.config.comparison, cmp => {
            stream::deal_batch(cmp, model, dealer, masks, batch, [to_provider, to_client])
        })?;
        let seconds = t0.elapsed().as_secs_f64();
        Ok(Report {
            offline_bytes: sent,
            offline_seconds: seconds,
            session_seconds: seconds,
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
    progress: Option<ProgressFn>,
}

impl ProviderSession {
    /// Starts a session: receives the dealer's seed and sends the client the
    /// per-column input limits and the masked weights.
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
            progress: None,
        })
    }

    /// One-time setup bytes sent to the client.
    pub fn setup_bytes(&self) -> u64 {
        self.setup_bytes
    }

    /// Calls `f` after every step of every batch (for progress bars).
    pub fn set_progress(&mut self, f: ProgressFn) {
        self.progress = Some(f);
    }

    /// Runs one batch of `batch` records.
    pub fn run_batch(
        &mut self,
        batch: usize,
        dealer: &mut (impl Channel + Send),
        client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        let t0 = Instant::now();
        let Self {
            model,
            prep,
            params,
            setup_bytes,
            progress,
        } = self;
        let party = Party {
            model,
            role: Role::Provider,
            params: Some(params),
            batch,
            progress: progress.as_deref(),
        };
        let mut counted = Counted::new(client);
        let input = vec![0; batch * model.plan.value_len[0]];
        let src = Source {
            model,
            prep,
            masked: &[],
            batch,
        };
        let ((_, layers), fed) = with_comparison!(model.config.comparison, cmp => {
            with_feed(cmp, src, dealer, |feed| party.run(cmp, &mut counted, feed, input))
        })?;
        Ok(report(&counted, layers, fed, *setup_bytes, t0))
    }
}

/// A party's report of one batch.
fn report<C: Channel>(
    counted: &Counted<C>,
    layers: Vec<crate::LayerReport>,
    fed: stream::FeedStats,
    setup_bytes: u64,
    t0: Instant,
) -> Report {
    let s = counted.stats();
    Report {
        online_bytes_sent: s.bytes_sent,
        online_bytes_recv: s.bytes_recv,
        online_rounds: s.rounds,
        offline_bytes: fed.bytes,
        setup_bytes,
        online_seconds: fed.walk_seconds,
        offline_seconds: fed.seconds,
        session_seconds: t0.elapsed().as_secs_f64(),
        layers,
    }
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
    progress: Option<ProgressFn>,
}

impl ClientSession {
    /// Starts a session: receives the dealer's seed, the provider's
    /// per-column input limits and its masked weights.
    pub fn new(
        model: Model,
        dealer: &mut impl Channel,
        provider: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        let seed = recv_seed(&model, dealer)?;
        let mut prep = PartyPrep::new(Role::Client, &seed);
        let len = model.plan.value_len[0];
        let bytes = provider
            .recv_vec(8 * len)
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
            return Err(mismatch(format!(
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
            progress: None,
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

    /// Calls `f` after every step of every batch (for progress bars).
    pub fn set_progress(&mut self, f: ProgressFn) {
        self.progress = Some(f);
    }

    /// Runs one batch; returns one prediction per record.
    pub fn run_batch(
        &mut self,
        records: &[Vec<f64>],
        dealer: &mut (impl Channel + Send),
        provider: &mut impl Channel,
    ) -> Result<(Vec<Prediction>, Report), EngineError> {
        let t0 = Instant::now();
        let batch = records.len();
        let Self {
            model,
            prep,
            masked,
            setup_bytes,
            input_limits,
            records_done,
            progress,
        } = self;
        let input = encode_records(model, Some(input_limits), *records_done, records)?;
        *records_done += batch;
        let party = Party {
            model,
            role: Role::Client,
            params: None,
            batch,
            progress: progress.as_deref(),
        };
        let mut counted = Counted::new(provider);
        let src = Source {
            model,
            prep,
            masked,
            batch,
        };
        let ((preds, layers), fed) = with_comparison!(model.config.comparison, cmp => {
            with_feed(cmp, src, dealer, |feed| party.run(cmp, &mut counted, feed, input))
        })?;
        Ok((
            preds.unwrap_or_default(),
            report(&counted, layers, fed, *setup_bytes, t0),
        ))
    }
}

/// Encodes records at the input scale (column `j` with its extra
/// [`Plan::input_exponents`](crate::plan::Plan) bits), naming the record
/// (counted from `first`) and column of any bad value; with `limits`, also
/// refuses values beyond the model's range for their column.
pub(crate) fn encode_records(
    model: &Model,
    limits: Option<&[f64]>,
    first: usize,
    records: &[Vec<f64>],
) -> Result<Vec<Elem>, EngineError> {
    let (fp, plan) = (model.config.fixed, &model.plan);
    let len = plan.value_len[0];
    let scale = |j: usize| {
        let e = plan.input_exponents.get(j).copied().unwrap_or(0);
        fp.frac_bits().saturating_add_signed(e)
    };
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
            out.push(
                fp.encode_at(*v, scale(j))
                    .map_err(|e| EngineError::Record {
                        record: r,
                        column: j + 1,
                        reason: e.to_string(),
                    })?,
            );
        }
    }
    Ok(out)
}
