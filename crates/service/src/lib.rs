//! The three networked roles over TLS: dealer, provider and client.
//!
//! This is the only crate that knows sockets, TLS and the wire format. The
//! design is synchronous: one thread per connection, blocking rustls streams
//! with read and write timeouts on every socket, bounded frames, a deadline
//! on every handshake and session, and caps on pending handshakes and on
//! concurrent sessions, so a slow, idle or broken peer never blocks or
//! crashes the others (see [`server`]).
//!
//! **Handshake** (every check happens where both sides learn its result):
//!
//! 1. The client opens TLS to the provider (it must present a `provider`
//!    certificate) and says [`wire::Frame::Hello`] (protocol version, the
//!    output policy it insists on). The provider checks both and refuses
//!    with an [`wire::Frame::Error`] that says what differed.
//! 2. The provider draws a fresh session id (an error, never a default id,
//!    if the system's random source fails) and opens TLS to the dealer it
//!    trusts (a `dealer` certificate) to learn that certificate; it closes
//!    this link without a frame. If its dealer is unreachable it tells the
//!    client at once (`dealer_unreachable`).
//! 3. The provider sends [`wire::Frame::ModelInfo`]: the session id, the
//!    public architecture, the engine configuration, the plan digest and
//!    the fingerprint of its dealer's certificate.
//! 4. The client rebuilds the plan, checks version, digest and policy, loads
//!    its records, opens TLS to the dealer *it* trusts and compares that
//!    dealer's fingerprint with the provider's. Any mismatch (or an
//!    unreachable dealer) goes back to the provider as an error frame, so
//!    both sides log what differed. Otherwise it sends
//!    [`wire::Frame::Accept`] (with its dealer's fingerprint, which the
//!    provider checks too) and joins the dealer. Only now does the provider
//!    join the dealer (on a new link to the same certificate), so a client
//!    that refuses the session never makes the dealer open one. Each join
//!    carries the fingerprint of the certificate the other party presented
//!    on the provider-client link: the dealer pairs a provider and a client
//!    only when the session id matches *and* each names the certificate the
//!    other joined with (so learning a session id is not enough to take a
//!    party's place; see [`dealer`]).
//! 5. The dealer validates each join's architecture (refusing one that
//!    fails [`cryptmed_model::validate`] with an `architecture` error frame
//!    naming every problem), pairs the two joins of the session, checks
//!    their digests against its own rebuild of the plan and sends each
//!    [`wire::Frame::Paired`] with the largest batch it deals for this
//!    architecture ([`Limits::max_batch_material`]); the provider then tells
//!    the client [`wire::Frame::Ready`] (or why not). The client reads both
//!    links at once, so a refusal on its own dealer link (a TLS alert for a
//!    missing or foreign certificate, an error frame) reaches it at once.
//!    The engine runs, one [`wire::Frame::Batch`] at a time. After each
//!    batch the dealer reports the bytes of both its links
//!    ([`wire::Frame::Dealt`]).
//!
//! Logs never hold a session id: all three parties log the same short tag
//! ([`session_tag`]) instead.
//!
//! Error frames are sent only while a link carries frames: once raw shares
//! flow, a failing party closes its links (an error frame could be read as
//! shares), and the peer's error names the step it was in.

pub mod audit;
pub mod client;
pub mod dealer;
pub mod provider;
pub mod server;
pub mod tls;
pub mod wire;

use std::time::Duration;

use cryptmed_channel::{Channel, ChannelError};
use cryptmed_engine::{EngineConfig, EngineError, Model};
use cryptmed_model::Network;

pub use server::Limits;
pub use tls::{Role, Security, Timeouts};

/// A link to a peer: a buffered channel over a (TLS) stream.
pub type Link = cryptmed_channel::StreamChannel<Box<dyn tls::Stream>>;

/// Why a session failed. Each variant says who is likely at fault. Display
/// messages are complete on their own (no variant exposes a `source`), so a
/// chain of contexts never repeats them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Local configuration: files, certificates, flags.
    #[error("configuration: {0}")]
    Config(String),
    /// The client's records do not fit the model (never sent to the provider in detail).
    #[error("{0}")]
    Input(String),
    /// A peer could not be reached.
    #[error("cannot connect to the {peer} at {addr}: {reason}")]
    Connect {
        /// `provider` or `dealer`.
        peer: &'static str,
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
    /// The peer's certificate is for another role (a dealer certificate used by a client, ...).
    #[error("{addr} presented a certificate for the {got} role; expected {expected}")]
    Role {
        /// Peer address.
        addr: String,
        /// The role(s) accepted here.
        expected: String,
        /// The role in the certificate (or `no role`).
        got: String,
    },
    /// A local I/O failure (sockets, writing results).
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        cause: std::io::Error,
    },
    /// The link failed mid-protocol (peer gone, silent, or reset).
    #[error("the {peer} link failed during {during}: {}", describe(cause))]
    Link {
        /// Which link (`provider`, `client`, `dealer`).
        peer: &'static str,
        /// Protocol step.
        during: String,
        /// Transport error.
        cause: ChannelError,
    },
    /// The peer sent a frame we cannot read (malformed, truncated, too large).
    #[error("bad frame from the {peer} during {during}: {cause}")]
    Frame {
        /// Which link.
        peer: &'static str,
        /// Protocol step.
        during: String,
        /// Decoding error.
        cause: wire::DecodeError,
    },
    /// The peer sent a valid frame of the wrong type for this step.
    #[error("the {peer} sent a {got} frame during {during}; expected {expected}")]
    Unexpected {
        /// Which link.
        peer: &'static str,
        /// Protocol step.
        during: String,
        /// Expected frame type(s).
        expected: &'static str,
        /// Frame type received.
        got: &'static str,
    },
    /// The two sides disagree (version, architecture digest, policy, dealer).
    #[error("{what} mismatch: ours is {ours}, the {peer}'s is {theirs}")]
    Mismatch {
        /// What differs (`version`, `digest`, `policy`, `dealer`).
        what: &'static str,
        /// Whom we disagree with.
        peer: &'static str,
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
    /// A server is at one of its limits (we are the server).
    #[error("{0}")]
    Busy(String),
    /// The server we reached (or the dealer behind it) is at one of its
    /// limits: try again after `retry_after` (see [`client::retry_busy`]).
    #[error("the {peer} is busy: {message}")]
    Overloaded {
        /// Who said so.
        peer: &'static str,
        /// Which limit.
        message: String,
        /// The server's hint.
        retry_after: Duration,
    },
    /// The peer broke the protocol in a way no frame type describes.
    #[error("{0}")]
    Protocol(String),
    /// The peer described a network that fails validation: what is wrong,
    /// node by node (refused before anything is built or allocated from it).
    #[error("the {peer} sent an {cause}")]
    Architecture {
        /// Who sent it.
        peer: &'static str,
        /// Every problem.
        cause: cryptmed_model::InvalidNetwork,
    },
    /// A handshake or session deadline passed (the link was closed).
    #[error("the {what} deadline of {limit:?} passed")]
    Deadline {
        /// `handshake`, `pairing` or `session`.
        what: &'static str,
        /// The configured limit.
        limit: Duration,
    },
    /// The operating system's random source failed: the session stops
    /// (no default or zero id, seed or mask is ever used).
    #[error(transparent)]
    Randomness(#[from] cryptmed_share::RngFailure),
    /// The secure computation failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A transport error in words: a TLS alert says what the peer objected to.
fn describe(cause: &ChannelError) -> String {
    if let ChannelError::Io(e) = cause
        && let Some(rustls::Error::AlertReceived(alert)) =
            e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
    {
        return format!(
            "the peer ended TLS with the alert {alert:?} (it did not accept our certificate, or we offered none)"
        );
    }
    cause.to_string()
}

/// Codes of error frames that mean the parties disagree.
const MISMATCH_CODES: [&str; 4] = ["version", "digest", "policy", "dealer"];

impl ServiceError {
    pub(crate) fn io(what: &str) -> impl FnOnce(std::io::Error) -> ServiceError + '_ {
        move |cause| ServiceError::Io {
            what: what.into(),
            cause,
        }
    }

    /// The code sent in an error frame for this failure.
    pub fn code(&self) -> &str {
        match self {
            ServiceError::Mismatch { what, .. } => what,
            ServiceError::Refused { code, .. } => code,
            ServiceError::Engine(_) => "engine",
            ServiceError::Frame { .. }
            | ServiceError::Unexpected { .. }
            | ServiceError::Protocol(_) => "protocol",
            ServiceError::Architecture { .. } => "architecture",
            ServiceError::Connect { peer: "dealer", .. } => "dealer_unreachable",
            ServiceError::Busy(_) | ServiceError::Overloaded { .. } => "busy",
            ServiceError::Role { .. } => "role",
            ServiceError::Input(_) => "input",
            ServiceError::Deadline { .. } => "deadline",
            ServiceError::Randomness(_) => "randomness",
            _ => "failed",
        }
    }

    /// True for a connection closed before TLS began (a port probe or a
    /// health check): servers log it quietly.
    pub fn is_probe(&self) -> bool {
        matches!(self, ServiceError::Handshake { reason, .. } if reason == tls::CLOSED_IN_HANDSHAKE)
    }

    /// True when a server (or the dealer behind it) was at a limit: the
    /// session may succeed if tried again later.
    pub fn is_busy(&self) -> bool {
        self.code() == "busy"
    }

    /// True when the failure is a disagreement between the parties.
    pub fn is_mismatch(&self) -> bool {
        MISMATCH_CODES.contains(&self.code())
    }
}

/// Compiles the architecture and configuration a peer sent (JSON): the
/// configuration must deserialize (which checks its fixed-point format), and
/// the network must pass validation (the engine's gate), which is reported
/// as [`ServiceError::Architecture`] so the peer learns what was wrong.
pub(crate) fn compile_peer(
    peer: &'static str,
    network: serde_json::Value,
    config: serde_json::Value,
) -> Result<(Network, EngineConfig, Model), ServiceError> {
    let network: Network = serde_json::from_value(network)
        .map_err(|e| ServiceError::Protocol(format!("the {peer}'s architecture: {e}")))?;
    let config: EngineConfig = serde_json::from_value(config)
        .map_err(|e| ServiceError::Protocol(format!("the {peer}'s configuration: {e}")))?;
    let model = Model::compile(network.clone(), config).map_err(|e| match e {
        EngineError::InvalidNetwork(cause) => ServiceError::Architecture { peer, cause },
        e => ServiceError::Engine(e),
    })?;
    Ok((network, config, model))
}

/// Reads the next frame from `peer`, turning an error frame into [`ServiceError::Refused`].
pub(crate) fn expect(
    link: &mut dyn Channel,
    max_frame: usize,
    peer: &'static str,
    during: &str,
) -> Result<wire::Frame, ServiceError> {
    match wire::recv(link, max_frame) {
        Ok(wire::Frame::Error { code, message }) => Err(ServiceError::Refused {
            peer,
            code,
            message,
        }),
        Ok(wire::Frame::Busy {
            retry_after_ms,
            message,
        }) => Err(ServiceError::Overloaded {
            peer,
            message,
            retry_after: Duration::from_millis(retry_after_ms),
        }),
        Ok(f) => Ok(f),
        Err(wire::DecodeError::Channel(cause)) => Err(ServiceError::Link {
            peer,
            during: during.into(),
            cause,
        }),
        Err(cause) => Err(ServiceError::Frame {
            peer,
            during: during.into(),
            cause,
        }),
    }
}

/// The error for a valid frame of the wrong type.
pub(crate) fn unexpected(
    peer: &'static str,
    during: &str,
    expected: &'static str,
    got: &wire::Frame,
) -> ServiceError {
    ServiceError::Unexpected {
        peer,
        during: during.into(),
        expected,
        got: got.name(),
    }
}

/// Sends a frame to `peer`.
pub(crate) fn send(
    link: &mut dyn Channel,
    frame: &wire::Frame,
    peer: &'static str,
    during: &str,
) -> Result<(), ServiceError> {
    wire::send(link, frame).map_err(|cause| ServiceError::Link {
        peer,
        during: during.into(),
        cause,
    })
}

/// Best effort: tells the peer why the session ends, with `message`.
/// Only while the link carries frames (never once raw shares flow).
pub(crate) fn refuse_with(link: &mut dyn Channel, code: &str, message: String) {
    let _ = wire::send(
        link,
        &wire::Frame::Error {
            code: code.into(),
            message,
        },
    );
}

/// How long a server at its limit asks a party to wait before trying again.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Best effort: tells the peer why the session ends (the error's own
/// message); a server at a limit says so with a [`wire::Frame::Busy`] hint.
pub(crate) fn refuse(link: &mut dyn Channel, e: &ServiceError) {
    if e.is_busy() {
        let _ = wire::send(
            link,
            &wire::Frame::Busy {
                retry_after_ms: BUSY_RETRY_AFTER.as_millis() as u64,
                message: e.to_string(),
            },
        );
    } else {
        refuse_with(link, e.code(), e.to_string());
    }
}

/// A fresh random session id (hex), or an error when the system's random
/// source fails (never a default id).
pub(crate) fn session_id() -> Result<String, ServiceError> {
    let mut b = [0u8; 16];
    cryptmed_share::os_random(&mut b)?;
    Ok(hex(&b))
}

/// The session's tag in logs and messages: the first 8 hex digits of a
/// hash of its id. The id itself (which, with a link's channel binding,
/// lets a party join the dealer) never appears in a log; the tag is the
/// same on all three parties, so their logs can be matched.
pub fn session_tag(id: &str) -> String {
    blake3::hash(id.as_bytes()).to_hex()[..8].to_string()
}

/// Hex of a digest.
pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fingerprint shortened for messages (the first 16 hex digits).
pub(crate) fn short(fp: &str) -> &str {
    fp.get(..16).unwrap_or(fp)
}
