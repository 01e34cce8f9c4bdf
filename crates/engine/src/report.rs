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
    /// Wall time of the online phase, seconds.
    pub online_seconds: f64,
    /// Wall time spent on dealer material, seconds.
    pub offline_seconds: f64,
    /// Per plan step (online).
    pub layers: Vec<LayerReport>,
}
