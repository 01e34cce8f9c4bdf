//! The three networked roles over TLS: dealer, provider and client.
//!
//! This is the only crate that knows sockets, TLS and the wire format. The
//! design is synchronous: one thread per session, blocking rustls streams
//! with read and write timeouts on every socket, bounded frames, and a cap on
//! concurrent sessions, so a slow or broken session never blocks or crashes
//! the others.
//!
//! Session flow: the client says [`wire::Frame::Hello`]; the provider answers
//! with the public architecture ([`wire::Frame::ModelInfo`]); the client
//! rebuilds the plan and checks its digest. Both join the dealer they each
//! trust with the session id; the dealer pairs them and checks their digests
//! agree. The parties then compare the fingerprints of the dealer certificate
//! each saw, so a session runs only if both reached the same dealer. Then
//! the engine runs, one [`wire::Frame::Batch`] at a time. Any mismatch ends
//! the session with an [`wire::Frame::Error`] that says what differed.

pub mod client;
pub mod dealer;
pub mod provider;
pub mod tls;
pub mod wire;

use std::time::Duration;

use cryptmed_channel::{ChannelError, StreamChannel};
use cryptmed_engine::EngineError;

pub use tls::{Security, Timeouts};

/// A link to a peer: a buffered channel over a (TLS) stream.
pub type Link = StreamChannel<Box<dyn tls::Stream>>;

/// Limits that keep every session bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Socket timeouts.
    pub timeouts: Timeouts,
    /// Largest control frame.
    pub max_frame: usize,
    /// Largest batch a server accepts.
    pub max_batch: usize,
    /// Concurrent sessions a server runs (more are refused with a `busy` error).
    pub max_sessions: usize,
    /// How long the dealer waits for the second party of a session.
    pub pair_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            max_frame: wire::DEFAULT_MAX_FRAME,
            max_batch: 256,
            max_sessions: 64,
            pair_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a session failed. Each variant says who is likely at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Local configuration: files, certificates, flags.
    #[error("configuration: {0}")]
    Config(String),
    /// The peer could not be reached.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (wrong or expired certificate, not TLS, ...).
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake {
        /// Peer address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A local I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The link failed mid-protocol (peer gone, silent, or reset).
    #[error("{during}: {source}")]
    Link {
        /// Protocol step.
        during: String,
        /// Transport error.
        #[source]
        source: ChannelError,
    },
    /// The peer sent a frame we cannot read (malformed, truncated, too large).
    #[error("{during}: {source}")]
    Frame {
        /// Protocol step.
        during: String,
        /// Decoding error.
        #[source]
        source: wire::DecodeError,
    },
    /// The peer sent a valid frame of the wrong type for this step.
    #[error("{during}: expected a {expected} frame, got {got}")]
    Unexpected {
        /// Protocol step.
        during: String,
        /// Expected frame.
        expected: &'static str,
        /// Frame received.
        got: &'static str,
    },
    /// The two sides disagree (version, architecture digest, policy, dealer).
    #[error("{what} mismatch: ours is {ours}, theirs is {theirs}")]
    Mismatch {
        /// What differs (`version`, `digest`, `policy`, `dealer`, `role`).
        what: &'static str,
        /// Our value.
        ours: String,
        /// Their value.
        theirs: String,
    },
    /// The peer ended the session with an error frame.
    #[error("the {peer} refused the session ({code}): {message}")]
    Refused {
        /// Who refused.
        peer: &'static str,
        /// Its reason code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The secure computation failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ServiceError {
    pub(crate) fn io(what: &str) -> impl FnOnce(std::io::Error) -> ServiceError + '_ {
        move |source| ServiceError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn link(during: &str) -> impl FnOnce(ChannelError) -> ServiceError + '_ {
        move |source| ServiceError::Link {
            during: during.into(),
            source,
        }
    }

    /// The code sent in an error frame for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Mismatch { what, .. } => what,
            ServiceError::Engine(_) => "engine",
            ServiceError::Frame { .. } | ServiceError::Unexpected { .. } => "protocol",
            _ => "failed",
        }
    }

    /// True when the failure is a disagreement between the parties.
    pub fn is_mismatch(&self) -> bool {
        matches!(self, ServiceError::Mismatch { .. })
            || matches!(self, ServiceError::Refused { code, .. } if ["version", "digest", "policy", "dealer", "role"].contains(&code.as_str()))
    }
}

/// Reads the next frame, turning an error frame into [`ServiceError::Refused`].
pub(crate) fn expect(
    link: &mut Link,
    limits: &Limits,
    peer: &'static str,
    during: &str,
) -> Result<wire::Frame, ServiceError> {
    match wire::recv(link, limits.max_frame) {
        Ok(wire::Frame::Error { code, message }) => Err(ServiceError::Refused {
            peer,
            code,
            message,
        }),
        Ok(f) => Ok(f),
        Err(wire::DecodeError::Channel(source)) => Err(ServiceError::Link {
            during: during.into(),
            source,
        }),
        Err(source) => Err(ServiceError::Frame {
            during: during.into(),
            source,
        }),
    }
}

/// Sends a frame.
pub(crate) fn send(link: &mut Link, frame: &wire::Frame, during: &str) -> Result<(), ServiceError> {
    wire::send(link, frame).map_err(ServiceError::link(during))
}

/// Best effort: tells the peer why the session ends.
pub(crate) fn refuse(link: &mut Link, e: &ServiceError) {
    let _ = wire::send(
        link,
        &wire::Frame::Error {
            code: e.code().into(),
            message: e.to_string(),
        },
    );
}

/// A fresh random session id (hex).
pub(crate) fn session_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap_or_default();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex of a digest.
pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|x| format!("{x:02x}")).collect()
}
