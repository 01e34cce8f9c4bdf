//! The one place that knows the wire format of the control frames.
//!
//! A frame is a 4-byte little-endian length, then that many bytes of JSON
//! (one [`Frame`]). Decoding never allocates more than the configured limit
//! from a length field, and every failure is a typed [`DecodeError`]. After
//! the handshake, shares and dealer material travel as raw little-endian
//! ring slices whose sizes both sides take from the plan, so the data path
//! has nothing to parse.

use cryptmed_channel::{Channel, ChannelError};
use serde::{Deserialize, Serialize};

/// Protocol version; peers with a different one are refused at the handshake.
pub const VERSION: u32 = 4;

/// Default largest control frame (the public architecture is the largest).
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;

/// A control frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// Client -> provider: opens a session.
    Hello {
        /// Protocol version.
        version: u32,
        /// The output policy the client insists on, if any.
        reveal: Option<String>,
    },
    /// Provider -> client, after the hello and before the model info, when
    /// the provider picks the comparison backend per session: a round-trip
    /// probe the client answers at once with [`Frame::Pong`].
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Client -> provider: the answer to a [`Frame::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Provider -> client: the public architecture and the session's parameters.
    ModelInfo {
        /// Protocol version.
        version: u32,
        /// Fresh session id (hex), shared with the dealer.
        session: String,
        /// The public network (weights emptied), as JSON.
        network: serde_json::Value,
        /// Engine configuration (fixed point, output policy, approximations), as JSON.
        config: serde_json::Value,
        /// Plan digest (hex) the client must reproduce.
        digest: String,
        /// Class names, when the model has them.
        class_names: Option<Vec<String>>,
        /// Fingerprint of the certificate of the dealer the provider reached.
        dealer: String,
        /// Largest batch the provider accepts.
        max_batch: u64,
    },
    /// Client -> provider: the client agrees and joins its dealer.
    Accept {
        /// Fingerprint of the certificate of the dealer the client reached.
        dealer: String,
    },
    /// Party -> dealer: join session `session` as `role`.
    Join {
        /// Protocol version.
        version: u32,
        /// `provider` or `client`.
        role: String,
        /// Session id.
        session: String,
        /// Fingerprint of the certificate the *other* party presented on the
        /// provider-client link (`none` without one): the dealer pairs two
        /// joins only when each names the certificate the other joined with.
        peer: String,
        /// The public network, as JSON.
        network: serde_json::Value,
        /// Engine configuration, as JSON.
        config: serde_json::Value,
        /// Plan digest (hex).
        digest: String,
    },
    /// Dealer -> party: both parties have joined with the same plan.
    Paired {
        /// Largest batch the dealer accepts.
        max_batch: u64,
    },
    /// Provider -> client: the dealer paired us; the session starts.
    Ready,
    /// Client -> provider and dealer: the next batch has this many records.
    Batch {
        /// Records.
        size: u64,
    },
    /// Dealer -> client, after each batch: bytes on both dealer links.
    Dealt {
        /// Once per session: both joins, both pairing frames, both seeds.
        session_bytes: u64,
        /// Since the previous report: batch frames, batch headers, corrections
        /// (and the previous report frame).
        batch_bytes: u64,
    },
    /// Client -> provider and dealer: the session is over.
    Done,
    /// Server -> connecting party, instead of [`Frame::Error`], when the
    /// server (or the dealer behind it) is at one of its limits: the
    /// session ends, and the party may try again after the hint.
    Busy {
        /// The server's hint: milliseconds to wait before trying again.
        retry_after_ms: u64,
        /// Which limit.
        message: String,
    },
    /// Either way, while a link carries frames: the session ends; says why.
    Error {
        /// Short machine-readable reason (`version`, `digest`, `policy`, `dealer`, `busy`, ...).
        code: String,
        /// What differed or failed.
        message: String,
    },
}

impl Frame {
    /// The frame's type name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Ping { .. } => "ping",
            Frame::Pong { .. } => "pong",
            Frame::ModelInfo { .. } => "model_info",
            Frame::Accept { .. } => "accept",
            Frame::Join { .. } => "join",
            Frame::Paired { .. } => "paired",
            Frame::Ready => "ready",
            Frame::Batch { .. } => "batch",
            Frame::Dealt { .. } => "dealt",
            Frame::Done => "done",
            Frame::Busy { .. } => "busy",
            Frame::Error { .. } => "error",
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length field exceeds the limit (a confused or hostile peer).
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The body is not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// What arrived is a TLS record, and this side speaks plain TCP.
    #[error(
        "the peer speaks TLS and this side plain TCP (--insecure-plaintext must be given to every role or none)"
    )]
    Tls,
    /// The link failed while reading (closed, timed out).
    #[error("{0}")]
    Channel(ChannelError),
}

/// Encodes a frame (length prefix and JSON).
pub fn encode(frame: &Frame) -> Vec<u8> {
    let body = serde_json::to_vec(frame).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// Decodes a frame body (without its length prefix).
pub fn decode(body: &[u8]) -> Result<Frame, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Sends a frame and flushes.
pub fn send(ch: &mut dyn Channel, frame: &Frame) -> Result<(), ChannelError> {
    ch.send(&encode(frame))?;
    ch.flush()
}

/// True when `head` starts like a TLS record (content type 20-23, version 3.x).
fn looks_like_tls(head: &[u8; 4]) -> bool {
    (20..=23).contains(&head[0]) && head[1] == 3 && head[2] <= 4
}

/// Receives one frame of at most `limit` bytes.
pub fn recv(ch: &mut dyn Channel, limit: usize) -> Result<Frame, DecodeError> {
    let mut head = [0u8; 4];
    ch.recv(&mut head).map_err(DecodeError::Channel)?;
    let len = u32::from_le_bytes(head) as usize;
    if len > limit {
        return Err(if looks_like_tls(&head) {
            DecodeError::Tls
        } else {
            DecodeError::TooLarge { len, limit }
        });
    }
    match ch.recv_vec(len) {
        Ok(body) => decode(&body),
        // A TLS alert is a few bytes long: its "length" runs past the end.
        Err(ChannelError::Closed) if looks_like_tls(&head) => Err(DecodeError::Tls),
        Err(e) => Err(DecodeError::Channel(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptmed_channel::memory_pair;
    use proptest::prelude::*;
    use std::time::Duration;

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Hello {
                version: VERSION,
                reveal: Some("label".into()),
            },
            Frame::Ping { nonce: 5 },
            Frame::Pong { nonce: u64::MAX },
            Frame::ModelInfo {
                version: 1,
                session: "ab".into(),
                network: serde_json::json!({"x": 1}),
                config: serde_json::json!({}),
                digest: "00".into(),
                class_names: Some(vec!["a".into()]),
                dealer: "f".into(),
                max_batch: 3,
            },
            Frame::Join {
                version: 1,
                role: "client".into(),
                session: "s".into(),
                peer: "p".into(),
                network: serde_json::Value::Null,
                config: serde_json::Value::Null,
                digest: "d".into(),
            },
            Frame::Accept { dealer: "f".into() },
            Frame::Paired { max_batch: 9 },
            Frame::Ready,
            Frame::Batch { size: 7 },
            Frame::Dealt {
                session_bytes: 1,
                batch_bytes: 2,
            },
            Frame::Done,
            Frame::Busy {
                retry_after_ms: 1000,
                message: "m".into(),
            },
            Frame::Error {
                code: "digest".into(),
                message: "m".into(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_over_a_channel() {
        let (mut a, mut b) = memory_pair(Duration::from_secs(5));
        for f in all_frames() {
            send(&mut a, &f).unwrap();
            assert_eq!(recv(&mut b, DEFAULT_MAX_FRAME).unwrap(), f);
        }
    }

    #[test]
    fn oversized_truncated_and_malformed_frames_are_typed_errors() {
        let (mut a, mut b) = memory_pair(Duration::from_millis(100));
        a.send(&(1u32 << 30).to_le_bytes()).unwrap();
        a.flush().unwrap();
        assert!(matches!(
            recv(&mut b, 1 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
        let (mut a, mut b) = memory_pair(Duration::from_millis(100));
        a.send(&10u32.to_le_bytes()).unwrap();
        a.send(b"{\"ty").unwrap();
        a.flush().unwrap();
        assert!(matches!(
            recv(&mut b, 1 << 20),
            Err(DecodeError::Channel(ChannelError::Timeout))
        ));
        drop(a);
        let (mut a, mut b) = memory_pair(Duration::from_millis(100));
        a.send(&encode(&Frame::Done)[..4]).unwrap();
        a.send(b"{\"type\":\"nope\"}"[..6].as_ref()).unwrap();
        a.flush().unwrap();
        drop(a);
        assert!(recv(&mut b, 1 << 20).is_err());
        assert!(matches!(
            decode(b"{\"type\":\"nope\"}"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"\xff\xfe"),
            Err(DecodeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn batch_sizes_round_trip(size in any::<u64>(), msg in ".{0,40}") {
            for f in [Frame::Batch { size }, Frame::Error { code: "x".into(), message: msg.clone() }] {
                let enc = encode(&f);
                prop_assert_eq!(decode(&enc[4..]).unwrap(), f);
            }
        }
    }
}
