//! Runs a network for one role — dealer, provider or client — over channels.
//!
//! This is where the model meets the protocols: [`Model::compile`] turns a
//! [`Network`] into a plan of secure steps that all three roles derive
//! identically from the public architecture; the session types walk that
//! plan batch by batch.
//!
//! Typical use (all three roles in one process, as `cryptmed bench` does):
//! the dealer runs [`DealerSession`], the provider [`ProviderSession`] and the
//! client [`ClientSession`]; each `new` performs the per-session setup
//! (seeds, the provider's masked weights), each `run_batch` one batch of
//! records. The caller agrees the batch sizes out of band (the service sends
//! them in its control frames).

use cryptmed_channel::{Channel, ChannelError};
use cryptmed_model::Network;
use cryptmed_ring::FixedPoint;
use serde::{Deserialize, Serialize};

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

/// Engine settings shared by all roles (part of the architecture digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct EngineConfig {
    /// Fixed-point format.
    pub fixed: FixedPoint,
}

/// Why a session step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The network uses something the engine cannot run; the message says what and where.
    #[error("unsupported network: {0}")]
    Unsupported(String),
    /// A weight or input cannot be encoded in the fixed-point format.
    #[error("{0}")]
    Encoding(String),
    /// The channel to the peer or dealer failed.
    #[error("channel failure during {step}: {source}")]
    Channel {
        /// Which plan step was running.
        step: String,
        /// The transport error.
        #[source]
        source: ChannelError,
    },
    /// The peers disagree about the plan (sizes, kinds or order of material).
    #[error("plan mismatch: {0}")]
    PlanMismatch(String),
}

/// A network compiled for secure evaluation.
#[derive(Debug, Clone)]
pub struct Model {
    network: Network,
    config: EngineConfig,
}

impl Model {
    /// Compiles `network` (with real weights on the provider, any weights
    /// elsewhere: only the architecture is used by the dealer and client).
    pub fn compile(network: Network, config: EngineConfig) -> Result<Self, EngineError> {
        Ok(Self { network, config })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The engine configuration.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// BLAKE3 digest of the public architecture and the engine
    /// configuration (never the weights): equal digests mean equal plans.
    pub fn architecture_digest(&self) -> [u8; 32] {
        todo!("engine: architecture digest")
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

/// Traffic and time of one role over one session or batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Bytes sent to the peer party (online).
    pub online_bytes_sent: u64,
    /// Bytes received from the peer party (online).
    pub online_bytes_recv: u64,
    /// Online rounds.
    pub online_rounds: u64,
    /// Bytes received from (or, for the dealer, sent by) the dealer.
    pub offline_bytes: u64,
    /// One-time setup bytes (the masked weights), included in neither figure above.
    pub setup_bytes: u64,
    /// Wall time of the online phase, seconds.
    pub online_seconds: f64,
    /// Wall time spent on dealer material, seconds.
    pub offline_seconds: f64,
}

/// The dealer's side of one session.
pub struct DealerSession {
    _model: Model,
}

impl DealerSession {
    /// Starts a session: sends each party its seed and the setup material.
    pub fn new(
        _model: Model,
        _to_provider: &mut impl Channel,
        _to_client: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        todo!("engine: dealer session")
    }

    /// Generates and sends the material for a batch of `batch` records.
    pub fn run_batch(
        &mut self,
        _batch: usize,
        _to_provider: &mut impl Channel,
        _to_client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        todo!("engine: dealer batch")
    }
}

/// The provider's side of one session.
pub struct ProviderSession {
    _model: Model,
}

impl ProviderSession {
    /// Starts a session: receives the dealer's seed and sends the client the masked weights.
    pub fn new(
        _model: Model,
        _reveal: Reveal,
        _dealer: &mut impl Channel,
        _client: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        todo!("engine: provider session")
    }

    /// Runs one batch of `batch` records.
    pub fn run_batch(
        &mut self,
        _batch: usize,
        _dealer: &mut impl Channel,
        _client: &mut impl Channel,
    ) -> Result<Report, EngineError> {
        todo!("engine: provider batch")
    }
}

/// The client's side of one session.
pub struct ClientSession {
    _model: Model,
}

impl ClientSession {
    /// Starts a session: receives the dealer's seed and the provider's masked weights.
    pub fn new(
        _model: Model,
        _reveal: Reveal,
        _dealer: &mut impl Channel,
        _provider: &mut impl Channel,
    ) -> Result<Self, EngineError> {
        todo!("engine: client session")
    }

    /// Runs one batch; returns one prediction per record.
    pub fn run_batch(
        &mut self,
        _records: &[Vec<f64>],
        _dealer: &mut impl Channel,
        _provider: &mut impl Channel,
    ) -> Result<(Vec<Prediction>, Report), EngineError> {
        todo!("engine: client batch")
    }
}
