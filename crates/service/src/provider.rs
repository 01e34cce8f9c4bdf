//! The provider: serves its model to clients, one thread per session.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use cryptmed_channel::Counted;
use cryptmed_engine::{ComparisonKind, Link as EngineLink, Model, ProviderSession};
use cryptmed_model::Network;
use tracing::{debug, info, warn};

use crate::audit::{self, AuditLog, Entry};
use crate::server::{Slot, Slots, Watch, Watchdog, accept_loop};
use crate::tls::PeerCert;
use crate::wire::{Frame, VERSION};
use crate::{
    Limits, Link, Role, Security, ServiceError, expect, hex, refuse, send, session_id, session_tag,
    short, tls, unexpected,
};

/// Everything a provider needs to serve.
pub struct ProviderSetup {
    /// The compiled model, with its weights.
    pub model: Model,
    /// The public network sent to clients (weights emptied).
    pub public: Network,
    /// The dealer this provider trusts (`host:port`).
    pub dealer: String,
    /// TLS for clients (server side) and for the dealer (client side).
    pub security: Security,
    /// Session limits.
    pub limits: Limits,
    /// How each session's comparison backend is picked.
    pub backend: Backend,
}

/// How the provider picks a session's comparison backend.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Backend {
    /// The compiled model's own, for every session.
    #[default]
    Fixed,
    /// Per session, the one with the lower predicted latency
    /// ([`ComparisonKind::choose`]) on the client's link: its round trip
    /// measured at the session's start (the fastest of [`PROBES`] pings,
    /// before the model info) and its bandwidth as given, in bits per
    /// second (a measurement within a session's first round trips would see
    /// TCP's slow start, not the link).
    PerSession {
        /// The link's bandwidth, bits per second.
        bandwidth: f64,
    },
}

/// Pings of a [`Backend::PerSession`] round-trip measurement.
pub const PROBES: usize = 3;

/// Never prints weights: the model's own `Debug` shows shapes only, the
/// public network is shown by name.
impl std::fmt::Debug for ProviderSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSetup")
            .field("model", &self.model)
            .field("public", &self.public.name)
            .field("dealer", &self.dealer)
            .field("security", &self.security)
            .field("limits", &self.limits)
            .field("backend", &self.backend)
            .finish()
    }
}

/// Serves clients until `stop` is set. A failing session is logged and
/// ends alone; the server keeps serving. See [`crate::server`] for the
/// limits on pending handshakes, sessions and deadlines.
pub fn serve(
    listener: TcpListener,
    setup: Arc<ProviderSetup>,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    serve_audited(listener, setup, None, stop)
}

/// [`serve`], appending one line per session to `audit` (see [`crate::audit`]).
pub fn serve_audited(
    listener: TcpListener,
    setup: Arc<ProviderSetup>,
    audit: Option<Arc<AuditLog>>,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    let lim = setup.limits;
    let pending = Slots::new(lim.max_pending);
    let sessions = Slots::new(lim.max_sessions);
    let watchdog = Watchdog::default();
    accept_loop(listener, stop, &watchdog, |tcp, peer| {
        let Some(slot) = pending.take() else {
            warn!(%peer, limit = pending.cap(), "too many connections in their handshake; closed this one");
            return;
        };
        let watch = watchdog.watch(&tcp, "handshake", lim.handshake);
        let (setup, sessions, audit) = (setup.clone(), sessions.clone(), audit.clone());
        let spawned = std::thread::Builder::new()
            .name("provider-session".into())
            .spawn(move || {
                // At warn level, so a failure logged at the default level names the peer and session.
                let span = tracing::warn_span!(
                    "session",
                    role = "provider",
                    %peer,
                    tag = tracing::field::Empty
                );
                let _entered = span.enter();
                let t0 = Instant::now();
                let mut entry = Entry::new("provider");
                entry.model = Some(hex(&setup.model.architecture_digest()));
                entry.policy = Some(setup.model.config().reveal.name().into());
                let r = session(tcp, peer, &setup, slot, &sessions, &watch, &mut entry)
                    .map_err(|e| watch.explain(e));
                entry.finish(&r);
                if !matches!(&r, Err(e) if e.is_probe()) {
                    entry.records = *r.as_ref().unwrap_or(&0);
                    audit::record(audit.as_deref(), &entry);
                }
                match r {
                    Ok(n) => info!(
                        records = n,
                        seconds = t0.elapsed().as_secs_f64(),
                        "session finished"
                    ),
                    Err(e) if e.is_probe() => info!(error = %e, "connection closed before TLS"),
                    Err(e) => warn!(error = %e, "session failed"),
                }
            });
        if let Err(e) = spawned {
            warn!(%peer, error = %e, "cannot start a session thread");
        }
    })
}

/// One connection: TLS, hello, then a session slot; returns the records
/// served, and notes the session in `entry`.
fn session(
    tcp: TcpStream,
    peer: SocketAddr,
    setup: &ProviderSetup,
    pending: Slot,
    sessions: &Slots,
    watch: &Watch,
    entry: &mut Entry,
) -> Result<u64, ServiceError> {
    let lim = &setup.limits;
    let conn = tls::accept(tcp, &setup.security, lim.handshake, lim.timeouts.io)?;
    entry.peers.push(conn.peer.subject.clone());
    let mut link = Counted::new(Link::new(conn.stream));
    let admitted = Admitted {
        setup,
        pending,
        sessions,
        watch,
    };
    let r = admitted.serve(&mut link, &conn.peer, peer, entry);
    entry.bytes += link.stats().bytes();
    r
}

/// A connection whose TLS handshake completed.
struct Admitted<'a> {
    setup: &'a ProviderSetup,
    pending: Slot,
    sessions: &'a Slots,
    watch: &'a Watch,
}

impl Admitted<'_> {
    /// Hello, a session slot, then the session.
    fn serve(
        self,
        link: &mut Counter,
        client: &PeerCert,
        peer: SocketAddr,
        entry: &mut Entry,
    ) -> Result<u64, ServiceError> {
        let Admitted {
            setup,
            pending,
            sessions,
            watch,
        } = self;
        let lim = &setup.limits;
        let hello = client
            .check_role(&[Role::Client], true)
            .and_then(|()| expect(link, lim.max_frame, "client", "hello"));
        let hello = match hello {
            Ok(h) => h,
            Err(e) => {
                refuse(link, &e);
                return Err(e);
            }
        };
        debug!(%peer, "hello received");
        drop(pending);
        let Some(_slot) = sessions.take() else {
            let e = ServiceError::Busy(format!(
                "the provider is at its limit of {} concurrent sessions; try again later",
                sessions.cap()
            ));
            refuse(link, &e);
            return Err(e);
        };
        watch.reset("session", lim.session_deadline);
        // Error frames only while the client reads frames (until `Ready`).
        let mut framed = true;
        let r = run(
            link,
            &client.fingerprint,
            hello,
            setup,
            watch,
            &mut framed,
            entry,
        );
        if let Err(e) = &r
            && framed
        {
            refuse(link, e);
        }
        r
    }
}

/// A counted link: the audit trail notes the bytes of the session's links.
type Counter = Counted<Link>;

fn run(
    link: &mut Counter,
    client_fp: &str,
    hello: Frame,
    setup: &ProviderSetup,
    watch: &Watch,
    framed: &mut bool,
    entry: &mut Entry,
) -> Result<u64, ServiceError> {
    let lim = &setup.limits;
    let Frame::Hello { version, reveal } = hello else {
        return Err(unexpected("client", "hello", "hello", &hello));
    };
    if version != VERSION {
        return Err(ServiceError::Mismatch {
            what: "version",
            peer: "client",
            ours: VERSION.to_string(),
            theirs: version.to_string(),
        });
    }
    let config = setup.model.config();
    if let Some(want) = reveal.filter(|r| r != config.reveal.name()) {
        return Err(ServiceError::Mismatch {
            what: "policy",
            peer: "client",
            ours: config.reveal.name().into(),
            theirs: want,
        });
    }
    let session = session_id()?;
    let tag = session_tag(&session);
    tracing::Span::current().record("tag", tag.as_str());
    entry.session = Some(tag);
    info!(policy = config.reveal.name(), "session started");
    let model = match setup.backend {
        Backend::Fixed => setup.model.clone(),
        Backend::PerSession { bandwidth } => {
            let rtt = measure_rtt(link, lim.max_frame)?;
            let kind = ComparisonKind::choose(&setup.model, EngineLink { rtt, bandwidth });
            info!(
                rtt_ms = rtt * 1e3,
                mbit = bandwidth / 1e6,
                comparison = kind.name(),
                "comparison chosen for this client's link"
            );
            setup.model.with_comparison(kind)
        }
    };
    let config = model.config();

    // Reach our dealer before answering, so the client learns at once if we
    // cannot, and learn its certificate for the model info. The join waits
    // for the client's accept (a client that refuses never opens a session
    // at the dealer), on a fresh connection: the client may take longer to
    // load its records than the dealer lets a connection sit without a frame.
    let dealer_fp = tls::connect(&setup.dealer, Role::Dealer, &setup.security, lim.timeouts)?
        .peer
        .fingerprint;
    let digest = hex(&model.architecture_digest());
    let network =
        serde_json::to_value(&setup.public).map_err(|e| ServiceError::Config(e.to_string()))?;
    let config_json =
        serde_json::to_value(config).map_err(|e| ServiceError::Config(e.to_string()))?;
    send(
        link,
        &Frame::ModelInfo {
            version: VERSION,
            session: session.clone(),
            network: network.clone(),
            config: config_json.clone(),
            digest: digest.clone(),
            class_names: setup.public.class_names.clone(),
            dealer: dealer_fp.clone(),
            max_batch: lim.max_batch as u64,
        },
        "client",
        "model info",
    )?;
    let accept = expect(link, lim.max_frame, "client", "accept")?;
    let Frame::Accept { dealer: theirs } = accept else {
        return Err(unexpected("client", "accept", "accept", &accept));
    };
    let dealer_mismatch = |theirs: &str| ServiceError::Mismatch {
        what: "dealer",
        peer: "client",
        ours: format!(
            "the dealer at {} (certificate {})",
            setup.dealer,
            short(&dealer_fp)
        ),
        theirs: format!("a dealer with certificate {}", short(theirs)),
    };
    if theirs != dealer_fp {
        return Err(dealer_mismatch(&theirs));
    }
    debug!("the client accepted");
    let dconn = tls::connect(&setup.dealer, Role::Dealer, &setup.security, lim.timeouts)?;
    if dconn.peer.fingerprint != dealer_fp {
        return Err(dealer_mismatch(&dconn.peer.fingerprint));
    }
    entry.peers.push(dconn.peer.subject.clone());
    watch.add(dconn.socket.as_ref());
    let join = Frame::Join {
        version: VERSION,
        role: "provider".into(),
        session,
        peer: client_fp.into(),
        network,
        config: config_json,
        digest,
    };
    let mut dealer = Counted::new(Link::new(dconn.stream));
    let r = serve_paired(&mut dealer, &join, link, framed, model, setup);
    // The audit trail counts both of this session's links, however it ends.
    entry.bytes += dealer.stats().bytes();
    r
}

/// Joins the dealer with `join`, then serves the client's batches until it
/// is done; returns the records served.
fn serve_paired(
    dealer: &mut Counter,
    join: &Frame,
    link: &mut Counter,
    framed: &mut bool,
    model: Model,
    setup: &ProviderSetup,
) -> Result<u64, ServiceError> {
    let lim = &setup.limits;
    send(dealer, join, "dealer", "join")?;
    debug!(dealer = %setup.dealer, "joined the dealer");
    let paired = expect(dealer, lim.max_frame, "dealer", "pairing")?;
    let Frame::Paired { .. } = paired else {
        return Err(unexpected("dealer", "pairing", "paired", &paired));
    };
    send(link, &Frame::Ready, "client", "pairing")?;
    *framed = false;
    debug!("paired");
    let mut party = ProviderSession::new(model, dealer, link)?;
    debug!(bytes = party.setup_bytes(), "setup sent");
    let mut served = 0u64;
    loop {
        match expect(link, lim.max_frame, "client", "batch")? {
            Frame::Batch { size } if size > 0 && size as usize <= lim.max_batch => {
                let report = party.run_batch(size as usize, dealer, link)?;
                served += size;
                debug!(
                    records = size,
                    online_bytes = report.online_bytes_sent + report.online_bytes_recv,
                    rounds = report.online_rounds,
                    "batch done"
                );
            }
            Frame::Batch { size } => {
                return Err(ServiceError::Protocol(format!(
                    "the client asked for a batch of {size} records, outside 1..={}",
                    lim.max_batch
                )));
            }
            Frame::Done => return Ok(served),
            other => return Err(unexpected("client", "batch", "batch or done", &other)),
        }
    }
}

/// The client link's round trip, seconds: the fastest of [`PROBES`] pings,
/// each answered by a pong with its nonce.
fn measure_rtt(link: &mut Counter, max_frame: usize) -> Result<f64, ServiceError> {
    let mut best = f64::INFINITY;
    for nonce in 0..PROBES as u64 {
        let t = Instant::now();
        send(link, &Frame::Ping { nonce }, "client", "round-trip probe")?;
        match expect(link, max_frame, "client", "round-trip probe")? {
            Frame::Pong { nonce: n } if n == nonce => {}
            other => {
                return Err(unexpected(
                    "client",
                    "round-trip probe",
                    "pong with the ping's nonce",
                    &other,
                ));
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}
