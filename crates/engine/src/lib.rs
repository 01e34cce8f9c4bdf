//! Runs a network for one role — dealer, provider or client — over channels.
//!
//! This is where the model meets the protocols: [`Model::compile`] turns a
//! [`Network`] into a [`Plan`] of secure steps that all three roles derive
//! identically from the public architecture; the session types walk that
//! plan batch by batch.
//!
//! Typical use (all three roles in one process, as `cryptmed bench` does; see
//! [`local::run_local`]): the dealer runs [`DealerSession`], the provider
//! [`ProviderSession`] and the client [`ClientSession`]; each `new` performs
//! the per-session setup (seeds, the provider's masked weights), each
//! `run_batch` one batch of records. The caller agrees the batch sizes out of
//! band (the service sends them in its control frames); the dealer's batch
//! header lets each party check size and plan before using any material.
//!
//! **Session wire layout** (raw, sizes from the plan): dealer -> each party:
//! plan digest (32 bytes) then its seed (32 bytes); provider -> client: the
//! per-column input limits (8 bytes, `f64` LE, for each value of a record;
//! see [`Model::input_limits`]), then the masked weights of every linear
//! layer in plan order. Per batch, dealer ->
//! each party: digest (32), batch size (u64 LE), correction length (u64 LE),
//! corrections (client only). Then the online protocol.

mod bounds;
pub mod fidelity;
mod limits;
pub mod local;
pub mod opbench;
pub mod plan;
mod reference;
mod report;
mod session;

use cryptmed_channel::ChannelError;
use cryptmed_model::Network;
use cryptmed_ring::FixedPoint;
use serde::{Deserialize, Serialize};

pub use cryptmed_protocols::Speed;
pub use fidelity::Fidelity;
pub use plan::{Plan, Step, StepKind};
pub use report::{LayerReport, Report};
pub use session::{ClientSession, DealerSession, ProgressFn, ProviderSession};

/// Where a batch's online walk is: after step `done` of `total` (the plan's
/// steps and the output step), the one just finished being `step`.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Steps finished, counting the output step.
    pub done: usize,
    /// Steps of the batch, counting the output step.
    pub total: usize,
    /// The step just finished (a node name, or `output`).
    pub step: &'a str,
}

/// What the client may learn about a record's result (enforced by the provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reveal {
    /// The class index only (secure argmax).
    #[default]
    Label,
    /// The softmax vector.
    Probabilities,
    /// The raw outputs.
    Logits,
}

impl Reveal {
    /// `label`, `probabilities` or `logits`.
    pub fn name(self) -> &'static str {
        match self {
            Reveal::Label => "label",
            Reveal::Probabilities => "probabilities",
            Reveal::Logits => "logits",
        }
    }
}

/// Which secure comparison runs ReLU, max pooling, argmax, Clip and the
/// smooth functions' piece selection. Every use goes through
/// [`Comparison`](cryptmed_protocols::Comparison); an implementation is one
/// variant here and one arm in the engine's single dispatch point.
///
/// The trade-off: [`Ppa`](ComparisonKind::Ppa) takes a few rounds per
/// comparison and little dealer material; [`Fss`](ComparisonKind::Fss) one
/// round (the opening) and about a kilobyte or more of keys per comparison
/// from the dealer. [`ComparisonKind::choose`] picks by predicted latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ComparisonKind {
    /// CryptMed's parallel-prefix comparison ([`Ppa`](cryptmed_protocols::Ppa)) with 4-bit leaves.
    #[default]
    Ppa,
    /// Function secret sharing ([`Fss`](cryptmed_protocols::Fss)): distributed
    /// comparison functions evaluated locally after one opening.
    Fss,
}

impl ComparisonKind {
    /// Both backends, in the order reports list them.
    pub const ALL: [ComparisonKind; 2] = [ComparisonKind::Ppa, ComparisonKind::Fss];

    /// `ppa` or `fss`.
    pub fn name(self) -> &'static str {
        match self {
            ComparisonKind::Ppa => "ppa",
            ComparisonKind::Fss => "fss",
        }
    }
}

/// A network link between provider and client, as the latency predictions
/// and [`ComparisonKind::choose`] see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Round-trip time, seconds.
    pub rtt: f64,
    /// Bandwidth each way, bits per second.
    pub bandwidth: f64,
}

impl Link {
    /// A local network: 0.2 ms round trip, 1 Gbit/s.
    pub const LAN: Link = Link {
        rtt: 0.2e-3,
        bandwidth: 1e9,
    };
    /// The benchmark suite's WAN profile: 40 ms round trip, 100 Mbit/s.
    pub const WAN: Link = Link {
        rtt: 40e-3,
        bandwidth: 100e6,
    };

    /// Time to run `trace` on this link: a round trip per round, plus the
    /// bytes of the busier direction at the link rate (both parties send
    /// at once within a round).
    pub fn time(&self, trace: &cryptmed_protocols::Trace) -> std::time::Duration {
        let (p, c) = (trace.provider_stats(), trace.client_stats());
        let bytes = p.bytes_sent.max(c.bytes_sent) as f64;
        std::time::Duration::from_secs_f64(
            trace.rounds() as f64 * self.rtt + 8.0 * bytes / self.bandwidth,
        )
    }
}

impl ComparisonKind {
    /// The backend with the lower predicted session latency of one record
    /// of `model` on `link` ([`Model::predicted_session_latency`]: the
    /// online phase with its local work on this machine, and the dealer's
    /// material); PPA on a tie (it asks far less of the dealer). Over a WAN
    /// the rounds decide; on a LAN the keys' generation, transfer and
    /// evaluation do (function secret sharing walks a 2.5 KB key per
    /// comparison, most of a microsecond, where PPA's rounds cost 0.2 ms
    /// each), so only the smallest networks get FSS there.
    pub fn choose(model: &Model, link: Link) -> ComparisonKind {
        Self::choose_on(model, link, Speed::measured())
    }

    /// [`ComparisonKind::choose`] for a machine of the given speed.
    pub fn choose_on(model: &Model, link: Link, speed: Speed) -> ComparisonKind {
        let latency = |k| {
            model
                .with_comparison(k)
                .predicted_session_latency_on(1, link, speed)
        };
        if latency(ComparisonKind::Fss) < latency(ComparisonKind::Ppa) {
            ComparisonKind::Fss
        } else {
            ComparisonKind::Ppa
        }
    }
}

/// How the smooth functions with a symmetry (sigmoid, tanh, erf, softplus,
/// SiLU, GELU) are evaluated; the others always run [`SmoothMethod::Direct`].
///
/// Measured at 16 fractional bits, accurate tables (`cryptmed bench --op
/// NAME --smooth METHOD`): the symmetric method takes 25-39% fewer online
/// bytes per element (sigmoid 347.75 -> 262, tanh 336.5 -> 205.75, GELU
/// 223.5 -> 149.5, SiLU 336 -> 205.75) and 55-64% fewer dealer bytes, for 6
/// more rounds (7 -> 13). A round costs a round trip: on a 40 ms, 100 Mbit/s
/// link 6 rounds are 240 ms, the time to send 86 bytes for about 35,000
/// elements, so the direct method wins until a layer carries that many
/// elements per batch: it is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmoothMethod {
    /// One opening serves every breakpoint of the full table: 7 rounds.
    #[default]
    Direct,
    /// The sign, then a half table on `|x|` with half the breakpoints: 13 rounds, fewer bytes.
    Symmetric,
}

impl SmoothMethod {
    /// `direct` or `symmetric`.
    pub fn name(self) -> &'static str {
        match self {
            SmoothMethod::Direct => "direct",
            SmoothMethod::Symmetric => "symmetric",
        }
    }
}

/// Engine settings shared by all roles (part of the architecture digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct EngineConfig {
    /// Fixed-point format.
    pub fixed: FixedPoint,
    /// What the client learns.
    pub reveal: Reveal,
    /// Accuracy/cost choice of the smooth-function tables.
    pub precision: cryptmed_approx::Precision,
    /// The secure comparison.
    #[serde(default)]
    pub comparison: ComparisonKind,
    /// How symmetric smooth functions are evaluated.
    #[serde(default)]
    pub smooth: SmoothMethod,
}

/// Why a session step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The network uses something the engine cannot run; the message says what and where.
    #[error("unsupported network: {0}")]
    Unsupported(String),
    /// The network description is inconsistent or too large (it failed
    /// [`cryptmed_model::validate`]); every problem is listed by node.
    #[error(transparent)]
    InvalidNetwork(#[from] cryptmed_model::InvalidNetwork),
    /// A weight or input cannot be encoded in the fixed-point format.
    #[error("{0}")]
    Encoding(String),
    /// A record holds a value the model cannot take: NaN, one the format
    /// cannot encode, or one outside the model's range for its column (see
    /// [`Model::input_limits`]).
    #[error("record {record}, column {column}: {reason}")]
    Record {
        /// The record, counted from 0 within the session (as results are numbered).
        record: usize,
        /// The column (value of the flattened record), counted from 1.
        column: usize,
        /// What is wrong, with the allowed range where there is one.
        reason: String,
    },
    /// The channel to the peer or dealer failed.
    #[error("channel failure during {step}: {source}")]
    Channel {
        /// Which plan step was running.
        step: String,
        /// The transport error.
        #[source]
        source: ChannelError,
    },
    /// An online protocol failed for a reason other than the channel.
    #[error("protocol failure during {step}: {source}")]
    Protocol {
        /// Which plan step was running.
        step: String,
        /// The protocol's error.
        #[source]
        source: cryptmed_protocols::ProtocolError,
    },
    /// The peers disagree about the plan (sizes, kinds or order of material).
    #[error("plan mismatch: {0}")]
    PlanMismatch(String),
    /// The operating system's random source failed: the session stops
    /// rather than use a default seed.
    #[error(transparent)]
    Randomness(#[from] cryptmed_share::RngFailure),
}

/// A network compiled for secure evaluation. Cloning is cheap (the network
/// and the plan, with the provider's weights, are shared), so every session
/// of a server shares one copy of the weights.
#[derive(Clone)]
pub struct Model {
    network: std::sync::Arc<Network>,
    config: EngineConfig,
    plan: std::sync::Arc<Plan>,
    input_limits: Option<Vec<f64>>,
    /// Dealer bytes of a batch up to which it is received before the online
    /// phase ([`Model::with_offline_first_limit`]).
    offline_first_bytes: u64,
    digest: [u8; 32],
}

/// The default of [`Model::with_offline_first_limit`]: 128 MiB of dealer
/// bytes per batch (both parties): a record of every benchmark network on
/// either backend but minionn-cifar under function secret sharing. The
/// imaging networks stream, which overlaps the dealer with the online phase
/// (ResNet-18: a record takes 1.41 s received first, 0.74 s streamed).
pub const OFFLINE_FIRST_BYTES: u64 = 128 << 20;

/// The digest of [`Model::architecture_digest`]: the plan, the
/// configuration and the network's public description of its inputs and
/// outputs (the columns and the preprocessing a record goes through, the
/// class names).
fn digest(plan: &Plan, config: &EngineConfig, network: &Network, offline_first: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"cryptmed plan v3\0");
    // Both parties must agree on it (one receiving all material first while
    // the other streams would stall the dealer); the default leaves every
    // digest as it was.
    if offline_first != OFFLINE_FIRST_BYTES {
        h.update(b"offline first\0");
        h.update(&offline_first.to_le_bytes());
    }
    h.update(&serde_json::to_vec(plan).unwrap_or_default());
    h.update(&serde_json::to_vec(config).unwrap_or_default());
    h.update(&serde_json::to_vec(&network.schema).unwrap_or_default());
    h.update(&serde_json::to_vec(&network.preprocessing).unwrap_or_default());
    h.update(&serde_json::to_vec(&network.class_names).unwrap_or_default());
    *h.finalize().as_bytes()
}

/// Shows the architecture's size and the configuration, never weights.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("network", &self.network.name)
            .field("nodes", &self.network.nodes.len())
            .field("parameters", &self.network.param_count())
            .field("public", &self.network.is_public())
            .field("config", &self.config)
            .field("input_limits", &self.input_limits.as_ref().map(Vec::len))
            .field("plan", &self.plan)
            .finish()
    }
}

impl Model {
    /// Compiles `network`. The provider passes real weights; the dealer and the
    /// client may pass the public network (weights emptied): only the
    /// architecture is used on their side.
    ///
    /// Refuses (with [`EngineError::Unsupported`]) a configuration whose
    /// largest fixed-point scale leaves less than
    /// [`plan::MIN_HEADROOM_BITS`] bits below the `2^62` bound of the
    /// truncation and comparison protocols (too many fractional bits for this
    /// architecture), and, with weights, one whose first layers leave some
    /// column of the records less than `[-1, 1]` (see [`Model::input_limits`]).
    pub fn compile(network: Network, config: EngineConfig) -> Result<Self, EngineError> {
        let plan = plan::build(
            &network,
            config.fixed.frac_bits(),
            config.precision,
            config.smooth,
            config.reveal,
        )?;
        plan::check_headroom(&plan)?;
        let input_limits = limits::input_limits(&plan);
        if let Some(l) = &input_limits {
            let needed: Vec<f64> = match &network.schema {
                Some(schema) => schema
                    .features
                    .iter()
                    .map(|c| c.magnitude().unwrap_or(1.0))
                    .collect(),
                None => vec![],
            };
            limits::check_usable(config.fixed, l, &needed)?;
        }
        let digest = digest(&plan, &config, &network, OFFLINE_FIRST_BYTES);
        Ok(Self {
            network: std::sync::Arc::new(network),
            config,
            digest,
            plan: std::sync::Arc::new(plan),
            input_limits,
            offline_first_bytes: OFFLINE_FIRST_BYTES,
        })
    }

    /// Per column of a record (the flattened input, in order), the largest
    /// magnitude `L_j` (a power of two) such that every record with all
    /// `|x_j| <= L_j` is guaranteed to keep every value up to and including
    /// the output of the first linear layers below `2^62` once encoded (the
    /// precondition of the truncation and comparison protocols): a sound
    /// bound from the encoded weights, the biases and the scales, with each
    /// column's share of the headroom in proportion to the largest weight
    /// that reads it (see the `limits` module). `None` for a public network
    /// (no weights): the client gets the provider's limits at the session's
    /// setup. Records outside them are refused when encoded, with
    /// [`EngineError::Record`] naming the record, the column and its range.
    /// Deeper layers work at scale `2f` and keep [`plan::MIN_HEADROOM_BITS`]
    /// or more bits of headroom; their activations are not bounded here.
    pub fn input_limits(&self) -> Option<&[f64]> {
        self.input_limits.as_deref()
    }

    /// Checks records against the model before a run: the length, NaN, and
    /// with weights the per-column limits ([`Model::input_limits`]). Errors
    /// name the record (counted from 0) and the column (from 1), as a
    /// session would.
    pub fn check_records(&self, records: &[Vec<f64>]) -> Result<(), EngineError> {
        let len = self.plan.value_len[0];
        for (r, rec) in records.iter().enumerate() {
            if rec.len() != len {
                return Err(EngineError::Encoding(format!(
                    "record {r}: {} values, the model expects {len}",
                    rec.len()
                )));
            }
            limits::check_record(self.config.fixed, self.input_limits(), r, rec)?;
        }
        Ok(())
    }

    /// A sound upper bound on `|secure output - reference_fixed output|`
    /// (real units) per output value: the truncations' round-ups (at most
    /// one unit each) propagated through the later layers with their
    /// encoded weights' row L1 norms. `None` for a public network, or when
    /// the network has steps this analysis does not bound (products, smooth
    /// functions).
    pub fn output_error_bound(&self) -> Option<f64> {
        bounds::output_error(&self.plan)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The engine configuration.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// The plan all roles run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// BLAKE3 digest of the plan's public steps, the engine configuration
    /// and the inputs' public columns, preprocessing and class names (never the
    /// weights): equal digests mean equal plans. Computed once, when the
    /// model is compiled.
    pub fn architecture_digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The same network and plan with another comparison backend (the
    /// digest changes with it; the plan does not depend on it).
    pub fn with_comparison(&self, comparison: ComparisonKind) -> Model {
        let config = EngineConfig {
            comparison,
            ..self.config
        };
        Model {
            digest: digest(&self.plan, &config, &self.network, self.offline_first_bytes),
            config,
            ..self.clone()
        }
    }

    /// The same model, receiving a batch's dealer material whole before
    /// the online phase only up to `bytes` (both parties; above it the
    /// material streams step by step, bounding memory by the largest step).
    /// Part of the digest when not [`OFFLINE_FIRST_BYTES`]: both parties
    /// must use the same limit. The command line always uses the default;
    /// tests lower it to exercise streaming on small networks.
    pub fn with_offline_first_limit(&self, bytes: u64) -> Model {
        Model {
            digest: digest(&self.plan, &self.config, &self.network, bytes),
            offline_first_bytes: bytes,
            ..self.clone()
        }
    }

    /// Predicted online latency of one batch of `batch` records on `link`
    /// on this machine ([`Model::predicted_latency_on`] at
    /// [`Speed::measured`]).
    pub fn predicted_latency(&self, batch: usize, link: Link) -> std::time::Duration {
        self.predicted_latency_on(batch, link, Speed::measured())
    }

    /// Predicted online latency of one batch of `batch` records on `link`:
    /// rounds and transfer time ([`Link::time`]), plus the key bytes each
    /// party evaluates at `speed` (function secret sharing's local work, one
    /// thread; other local work is not counted).
    pub fn predicted_latency_on(
        &self,
        batch: usize,
        link: Link,
        speed: Speed,
    ) -> std::time::Duration {
        let t = self.predict(batch);
        link.time(&t)
            + std::time::Duration::from_secs_f64(t.key_bytes_evaluated as f64 * speed.eval)
    }

    /// Predicted wall time of a batch on this machine
    /// ([`Model::predicted_session_latency_on`] at [`Speed::measured`]).
    pub fn predicted_session_latency(&self, batch: usize, link: Link) -> std::time::Duration {
        self.predicted_session_latency_on(batch, link, Speed::measured())
    }

    /// Predicted wall time of a batch: the online phase
    /// ([`Model::predicted_latency_on`]) and the dealer's material, which
    /// takes generating (function secret sharing's keys, at `speed`) and
    /// sending (half of [`Model::offline_bytes`] to each party, over its
    /// own dealer link like `link`). A batch whose material is received
    /// before the online phase (up to 128 MiB) takes both one after the
    /// other; a larger one streams, and takes the longer of the two.
    pub fn predicted_session_latency_on(
        &self,
        batch: usize,
        link: Link,
        speed: Speed,
    ) -> std::time::Duration {
        let per_party = self.offline_bytes(batch) as f64 / 2.0;
        let keygen = match self.config.comparison {
            ComparisonKind::Fss => per_party * speed.keygen,
            ComparisonKind::Ppa => 0.0,
        };
        let dealer = keygen + 8.0 * per_party / link.bandwidth;
        let online = self.predicted_latency_on(batch, link, speed).as_secs_f64();
        std::time::Duration::from_secs_f64(if session::offline_first(self, batch) {
            dealer + online
        } else {
            dealer.max(online)
        })
    }

    /// Predicted communication of one batch of `batch` records (online phase).
    pub fn predict(&self, batch: usize) -> cryptmed_protocols::Trace {
        session::trace(self, batch)
    }

    /// Each plan step's predicted traffic for one batch: `(name, protocol, trace)`, output last.
    pub fn step_traces(&self, batch: usize) -> Vec<(String, String, cryptmed_protocols::Trace)> {
        session::step_traces(self, batch)
    }

    /// Bytes the dealer sends for one batch of `batch` records (both
    /// parties, material and framing), in closed form (nothing is dealt).
    pub fn offline_bytes(&self, batch: usize) -> u64 {
        session::offline_bytes(self, batch)
    }

    /// Dealer bytes (both parties) of the largest single step of a batch of
    /// `batch` records: material streams step by step, so this, not
    /// [`Model::offline_bytes`], is what any process holds at once.
    pub fn largest_step_bytes(&self, batch: usize) -> u64 {
        session::largest_step_bytes(self, batch)
    }

    /// Predicted one-time setup traffic (the per-column input limits and the masked weights), in bytes.
    pub fn setup_bytes(&self) -> u64 {
        let weights: u64 = self
            .plan
            .linear
            .iter()
            .map(|l| 8 * l.op.weight_len() as u64)
            .sum();
        8 * self.plan.value_len[0] as u64 + weights
    }

    /// The plaintext reference in the engine's own fixed-point arithmetic:
    /// the same plan, scales and truncations, computed in the clear (needs
    /// real weights). Returns the output values decoded to reals, as the
    /// output step sees them (a binary head's logit `x` as `[0, x]`).
    pub fn reference_fixed(&self, input: &[f64]) -> Result<Vec<f64>, EngineError> {
        reference::evaluate(self, input)
    }
}

/// A record's result as the client receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Predicted class index.
    pub label: usize,
    /// Softmax vector, when the policy reveals it.
    pub probabilities: Option<Vec<f64>>,
    /// Raw outputs, when the policy reveals them.
    pub logits: Option<Vec<f64>>,
}
