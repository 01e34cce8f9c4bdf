//! Traffic and time reports, per layer and per batch.

use serde::{Deserialize, Serialize};

/// One plan step's cost as seen by one party.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Node name.
    pub name: String,
    /// Protocol used.
    pub protocol: String,
    /// Bytes this party sent.
    pub bytes_sent: u64,
    /// Bytes this party received.
    pub bytes_recv: u64,
    /// Rounds this party counted.
    pub rounds: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Traffic and time of one role over one session or batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Bytes sent to the peer party (online).
    pub online_bytes_sent: u64,
    /// Bytes received from the peer party (online).
    pub online_bytes_recv: u64,
    /// Online rounds as this party counts them.
    pub online_rounds: u64,
    /// Bytes received from (or, for the dealer, sent by) the dealer.
    pub offline_bytes: u64,
    /// One-time setup bytes (the masked weights), included in neither figure above.
    pub setup_bytes: u64,
    /// Wall time of the online phase, seconds: the walk through the plan,
    /// from the first online message to the result. When the batch's
    /// material is received before the walk (the classic offline/online
    /// split, up to 128 MiB of dealer bytes), this excludes the dealer;
    /// when it streams (larger batches), waits for it are included.
    pub online_seconds: f64,
    /// Time spent receiving and preparing dealer material, seconds (on a
    /// helper thread, so it may overlap the online phase).
    pub offline_seconds: f64,
    /// Wall time of the whole batch, dealer material included, seconds.
    #[serde(default)]
    pub session_seconds: f64,
    /// Per plan step (online).
    pub layers: Vec<LayerReport>,
}
