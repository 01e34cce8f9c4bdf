//! The client: diagnoses records with a remote provider and dealer.

use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cryptmed_channel::ChannelError;
use cryptmed_engine::{ClientSession, ComparisonKind, Prediction, ProgressFn, Report, Reveal};
use cryptmed_model::Network;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::wire::{Frame, VERSION};
use crate::{
    Limits, Link, Role, Security, ServiceError, compile_peer, expect, hex, refuse, refuse_with,
    send, session_tag, short, tls, unexpected,
};

/// Where and how to diagnose.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    /// The provider (`host:port`).
    pub server: String,
    /// The dealer this client trusts (`host:port`).
    pub dealer: String,
    /// TLS (the CA, and optionally a client certificate).
    pub security: Security,
    /// Limits.
    pub limits: Limits,
    /// Records per batch (rounds are shared within a batch).
    pub batch: usize,
    /// The output policy the client insists on (refused if the provider's differs).
    pub reveal: Option<Reveal>,
}

/// What the handshake told the client.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session id (hex); never logged (see [`crate::session_tag`]).
    pub session: String,
    /// The session's tag ([`crate::session_tag`]), as all three parties log it.
    pub tag: String,
    /// The provider's output policy.
    pub reveal: Reveal,
    /// Class names, if the model has them.
    pub class_names: Option<Vec<String>>,
    /// The public architecture.
    pub network: Network,
    /// The architecture digest (hex) both parties checked.
    pub digest: String,
    /// The session's comparison backend (the provider's choice, in the digest).
    pub comparison: ComparisonKind,
    /// The digest the model would have under PPA (hex): names the model and
    /// its policy whatever backend a session runs (both compute the same
    /// diagnosis), so results resumed under another backend stay one run.
    pub fingerprint: String,
}

/// The costs of one batch as the client learns them: its engine report and
/// the dealer's count of the bytes on both dealer links (so no caller adds
/// constants for headers it cannot see).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchReport {
    /// The client's engine report (online traffic, its own dealer material, times, per layer).
    #[serde(flatten)]
    pub engine: Report,
    /// Once per session, on both dealer links, both ways: the two joins,
    /// the two pairing frames and the two seeds (the same in every batch's report).
    pub dealer_session_bytes: u64,
    /// This batch, on both dealer links, both ways: the batch frame, both
    /// batch headers, the corrections, and the previous batch's report frame.
    pub dealer_batch_bytes: u64,
}

/// Runs one session. After the handshake, `records(info)` supplies the
/// records (so they can be loaded and checked against the architecture the
/// provider announced); `on_batch(first, predictions, report)` is called
/// after every batch, so results can be written as they come and survive a
/// later failure.
pub fn diagnose(
    setup: &ClientSetup,
    records: impl FnOnce(&SessionInfo) -> Result<Vec<Vec<f64>>, ServiceError>,
    on_batch: impl FnMut(usize, &[Prediction], &BatchReport) -> Result<(), ServiceError>,
) -> Result<SessionInfo, ServiceError> {
    diagnose_with_progress(setup, None, records, on_batch)
}

/// [`diagnose`], calling `on_step` after every step of every batch's online
/// walk (a progress bar for networks whose one record takes seconds).
pub fn diagnose_with_progress(
    setup: &ClientSetup,
    on_step: Option<ProgressFn>,
    records: impl FnOnce(&SessionInfo) -> Result<Vec<Vec<f64>>, ServiceError>,
    on_batch: impl FnMut(usize, &[Prediction], &BatchReport) -> Result<(), ServiceError>,
) -> Result<SessionInfo, ServiceError> {
    let span = tracing::info_span!(
        "diagnose",
        server = %setup.server,
        dealer = %setup.dealer,
        tag = tracing::field::Empty
    );
    let _entered = span.enter();
    let t0 = Instant::now();
    let r = run(setup, on_step, records, on_batch);
    match &r {
        Ok((_, n)) => info!(
            records = n,
            seconds = t0.elapsed().as_secs_f64(),
            "session finished"
        ),
        Err(e) => info!(error = %e, "session failed"),
    }
    r.map(|(info, _)| info)
}

/// How the pairing ended, if not in success.
enum Refusal {
    /// The dealer refused us while the provider still reads frames: tell it why.
    Dealer(ServiceError),
    /// The provider ended it (it said why, or its link failed), or the dealer
    /// failed after the provider said `Ready` (raw shares follow: no frame).
    Other(ServiceError),
}

/// The wait for the pairing: the dealer's `Paired` on the client's own
/// dealer link and the provider's `Ready` (sent once the dealer paired the
/// provider too). Both links are read at once, the dealer link on a helper
/// thread, so a refusal on either ends the wait at once in the words of
/// whoever refused: a dealer that requires client certificates refuses a
/// client without one by a TLS alert on the client's dealer link, which
/// the provider never sees (it would only report, much later, that no
/// partner joined).
struct Pairing<'a> {
    provider_socket: Option<&'a TcpStream>,
    dealer_socket: Option<TcpStream>,
    dealer_addr: &'a str,
    max_frame: usize,
}

impl Pairing<'_> {
    fn wait(self, link: &mut Link, mut dealer: Link) -> Result<(Link, u64), Refusal> {
        let dealer_failed = Arc::new(AtomicBool::new(false));
        // When the dealer fails, end our read of the provider link (its read half only:
        // the provider must still hear from us why we stop).
        let wake = self.provider_socket.and_then(|s| s.try_clone().ok());
        let (failed, max_frame) = (dealer_failed.clone(), self.max_frame);
        let helper = std::thread::Builder::new()
            .name("client-pairing".into())
            .spawn(move || {
                let r = expect(&mut dealer, max_frame, "dealer", "pairing");
                if !matches!(r, Ok(Frame::Paired { .. })) {
                    failed.store(true, Ordering::SeqCst);
                    if let Some(s) = wake {
                        let _ = s.shutdown(Shutdown::Read);
                    }
                }
                (dealer, r)
            })
            .map_err(|e| {
                Refusal::Other(ServiceError::Io {
                    what: "starting the pairing thread".into(),
                    cause: e,
                })
            })?;
        let ready = expect(link, self.max_frame, "provider", "pairing");
        let provider_ok = matches!(ready, Ok(Frame::Ready));
        // Whether the dealer refused us before the provider's answer (or woke it).
        let dealer_failed = dealer_failed.load(Ordering::SeqCst);
        if !provider_ok && !dealer_failed {
            // The provider ended it first: stop waiting for the dealer.
            if let Some(s) = &self.dealer_socket {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let joined = helper.join();
        let Ok((dealer, paired)) = joined else {
            return Err(Refusal::Other(ServiceError::Protocol(
                "the dealer pairing thread failed".into(),
            )));
        };
        if provider_ok || dealer_failed {
            // The dealer's answer decides (when the provider is ready, it has come or is coming).
            let refused = |e| match provider_ok {
                true => Refusal::Other(e),
                false => Refusal::Dealer(e),
            };
            return match paired {
                Ok(Frame::Paired { max_batch }) if provider_ok => Ok((dealer, max_batch)),
                Ok(other) => Err(refused(unexpected("dealer", "pairing", "paired", &other))),
                Err(e) => Err(refused(dealer_refusal(e, self.dealer_addr))),
            };
        }
        Err(Refusal::Other(match ready {
            Ok(other) => unexpected("provider", "pairing", "ready", &other),
            Err(e) => e,
        }))
    }
}

/// A failure on the client's dealer link in words (see [`tls_refusal`]).
fn dealer_refusal(e: ServiceError, addr: &str) -> ServiceError {
    tls_refusal(e, "dealer", addr)
}

/// A failure on a link to the server `peer` in words: a TLS alert there
/// means the server did not accept the client's certificate, or that it
/// requires one (the default) and the client presented none.
fn tls_refusal(e: ServiceError, peer: &str, addr: &str) -> ServiceError {
    use rustls::AlertDescription as A;
    let ServiceError::Link {
        cause: ChannelError::Io(io),
        ..
    } = &e
    else {
        return e;
    };
    let alert = match io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(a)) => *a,
        _ => return e,
    };
    let reason = match alert {
        A::CertificateRequired => format!(
            "the {peer} requires a client certificate and this client presented none \
             (give --cert and --key with a client certificate of the deployment's CA)"
        ),
        a => format!(
            "the {peer} ended TLS with the alert {a:?}: it did not accept this client's certificate"
        ),
    };
    ServiceError::Handshake {
        addr: addr.into(),
        reason,
    }
}

/// What the client tells the provider when it stops for a local reason
/// (never the details: they may describe the records).
fn refuse_locally(link: &mut Link, e: &ServiceError) {
    match e {
        ServiceError::Input(_) => refuse_with(
            link,
            "input",
            "the client's records do not fit the model".into(),
        ),
        ServiceError::Config(_) | ServiceError::Io { .. } => refuse_with(
            link,
            "stopped",
            "the client stopped (a local failure; see its own log)".into(),
        ),
        e => refuse(link, e),
    }
}

fn run(
    setup: &ClientSetup,
    on_step: Option<ProgressFn>,
    records: impl FnOnce(&SessionInfo) -> Result<Vec<Vec<f64>>, ServiceError>,
    mut on_batch: impl FnMut(usize, &[Prediction], &BatchReport) -> Result<(), ServiceError>,
) -> Result<(SessionInfo, usize), ServiceError> {
    let lim = &setup.limits;
    let conn = tls::connect(&setup.server, Role::Provider, &setup.security, lim.timeouts)?;
    let provider_socket = conn.socket;
    let provider_fp = conn.peer.fingerprint.clone();
    let mut link = Link::new(conn.stream);
    debug!("connected to the provider");
    send(
        &mut link,
        &Frame::Hello {
            version: VERSION,
            reveal: setup.reveal.map(|r| r.name().to_string()),
        },
        "provider",
        "hello",
    )?;
    // A provider that picks the comparison per session first measures the
    // round trip: answer each ping at once.
    let info = loop {
        let frame = expect(&mut link, lim.max_frame, "provider", "model info")
            .map_err(|e| tls_refusal(e, "provider", &setup.server))?;
        match frame {
            Frame::Ping { nonce } => send(
                &mut link,
                &Frame::Pong { nonce },
                "provider",
                "round-trip probe",
            )?,
            other => break other,
        }
    };
    let Frame::ModelInfo {
        version,
        session,
        network: network_json,
        config: config_json,
        digest,
        class_names,
        dealer: their_dealer,
        max_batch,
    } = info
    else {
        let e = unexpected("provider", "model info", "model_info", &info);
        refuse(&mut link, &e);
        return Err(e);
    };
    let tag = session_tag(&session);
    tracing::Span::current().record("tag", tag.as_str());
    debug!("model info received");
    // From here every failure is told to the provider before we return.
    let checked = (|| {
        if version != VERSION {
            return Err(ServiceError::Mismatch {
                what: "version",
                peer: "provider",
                ours: VERSION.to_string(),
                theirs: version.to_string(),
            });
        }
        // Validated before anything is built from it (the engine's gate).
        let (network, config, model) =
            compile_peer("provider", network_json.clone(), config_json.clone())?;
        if let Some(want) = setup.reveal.filter(|r| *r != config.reveal) {
            return Err(ServiceError::Mismatch {
                what: "policy",
                peer: "provider",
                ours: want.name().into(),
                theirs: config.reveal.name().into(),
            });
        }
        let ours = hex(&model.architecture_digest());
        if ours != digest {
            return Err(ServiceError::Mismatch {
                what: "digest",
                peer: "provider",
                ours,
                theirs: digest.clone(),
            });
        }
        let info = SessionInfo {
            session: session.clone(),
            tag: tag.clone(),
            reveal: config.reveal,
            class_names: class_names.clone(),
            network,
            digest: ours.clone(),
            comparison: config.comparison,
            fingerprint: hex(&model
                .with_comparison(ComparisonKind::Ppa)
                .architecture_digest()),
        };
        let records = records(&info)?;
        Ok((model, info, records, ours))
    })();
    let (model, info, records, ours) = match checked {
        Ok(x) => x,
        Err(e) => {
            refuse_locally(&mut link, &e);
            return Err(e);
        }
    };
    let dconn = match tls::connect(&setup.dealer, Role::Dealer, &setup.security, lim.timeouts) {
        Ok(c) => c,
        Err(e) => {
            refuse_with(
                &mut link,
                e.code(),
                format!("the client cannot use its dealer: {e}"),
            );
            return Err(e);
        }
    };
    let dealer_fp = dconn.peer.fingerprint.clone();
    if dealer_fp != their_dealer {
        let e = ServiceError::Mismatch {
            what: "dealer",
            peer: "provider",
            ours: format!(
                "the dealer at {} (certificate {})",
                setup.dealer,
                short(&dealer_fp)
            ),
            theirs: format!("a dealer with certificate {}", short(&their_dealer)),
        };
        refuse(&mut link, &e);
        return Err(e);
    }
    let mut dealer = Link::new(dconn.stream);
    send(
        &mut link,
        &Frame::Accept {
            dealer: dealer_fp.clone(),
        },
        "provider",
        "accept",
    )?;
    let joined = send(
        &mut dealer,
        &Frame::Join {
            version: VERSION,
            role: "client".into(),
            session: session.clone(),
            peer: provider_fp,
            network: network_json,
            config: config_json,
            digest: ours,
        },
        "dealer",
        "join",
    )
    .map_err(|e| dealer_refusal(e, &setup.dealer));
    if let Err(e) = joined {
        refuse_with(
            &mut link,
            e.code(),
            format!("the client cannot use its dealer: {e}"),
        );
        return Err(e);
    }
    debug!("joined the dealer");
    let pairing = Pairing {
        provider_socket: provider_socket.as_ref(),
        dealer_socket: dconn.socket,
        dealer_addr: &setup.dealer,
        max_frame: lim.max_frame,
    };
    let (mut dealer, dealer_max) = match pairing.wait(&mut link, dealer) {
        Ok(p) => p,
        Err(Refusal::Dealer(e)) => {
            // Our own dealer refused us: the provider, still waiting for the pairing, hears why.
            refuse_with(
                &mut link,
                e.code(),
                format!("the client cannot use its dealer: {e}"),
            );
            return Err(e);
        }
        Err(Refusal::Other(e)) => return Err(e),
    };
    info!(records = records.len(), "session started");
    let mut party = ClientSession::new(model, &mut dealer, &mut link)?;
    if let Some(f) = on_step {
        party.set_progress(f);
    }
    debug!(bytes = party.setup_bytes(), "setup received");
    let batch = setup
        .batch
        .min(max_batch.min(dealer_max).min(usize::MAX as u64) as usize)
        .max(1);
    let mut done = 0;
    for chunk in records.chunks(batch) {
        let frame = Frame::Batch {
            size: chunk.len() as u64,
        };
        send(&mut link, &frame, "provider", "batch")?;
        send(&mut dealer, &frame, "dealer", "batch")?;
        let (preds, engine) = party.run_batch(chunk, &mut dealer, &mut link)?;
        let dealt = expect(&mut dealer, lim.max_frame, "dealer", "dealer report")?;
        let Frame::Dealt {
            session_bytes,
            batch_bytes,
        } = dealt
        else {
            return Err(unexpected("dealer", "dealer report", "dealt", &dealt));
        };
        debug!(
            records = chunk.len(),
            online_bytes = engine.online_bytes_sent + engine.online_bytes_recv,
            rounds = engine.online_rounds,
            dealer_bytes = batch_bytes,
            "batch done"
        );
        let report = BatchReport {
            engine,
            dealer_session_bytes: session_bytes,
            dealer_batch_bytes: batch_bytes,
        };
        if let Err(e) = on_batch(done, &preds, &report) {
            // Between batches both links carry frames: say we stop.
            refuse_locally(&mut link, &e);
            refuse_locally(&mut dealer, &e);
            return Err(e);
        }
        done += chunk.len();
    }
    send(&mut link, &Frame::Done, "provider", "done")?;
    send(&mut dealer, &Frame::Done, "dealer", "done")?;
    Ok((info, done))
}

/// Longest single wait between two attempts of [`retry_busy`].
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Runs `attempt` until it succeeds, fails for a reason other than a busy
/// server ([`ServiceError::is_busy`]), or `retry_for` has passed since the
/// first attempt. Between attempts it waits with jittered exponential
/// back-off (at least half the server's hint, doubling up to 15 s, never
/// past `retry_for`) so that many refused clients do not return at once,
/// and calls `on_wait(error, wait)` first (to say that it waits). The last
/// error is returned when it gives up.
pub fn retry_busy<T>(
    retry_for: Duration,
    mut on_wait: impl FnMut(&ServiceError, Duration),
    mut attempt: impl FnMut() -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    let t0 = Instant::now();
    let mut ceiling = Duration::ZERO;
    loop {
        let e = match attempt() {
            Err(e) if e.is_busy() => e,
            r => return r,
        };
        let hint = match &e {
            ServiceError::Overloaded { retry_after, .. } => *retry_after,
            _ => crate::BUSY_RETRY_AFTER,
        };
        ceiling = (ceiling * 2).max(hint).min(MAX_BACKOFF);
        let left = retry_for.saturating_sub(t0.elapsed());
        if left.is_zero() {
            return Err(e);
        }
        let wait = jitter(hint / 2, ceiling).min(left);
        on_wait(&e, wait);
        std::thread::sleep(wait);
    }
}

/// A uniformly random duration in `[low, high]` (`high` if the system's
/// random source fails: the jitter only spreads load, it guards no secret).
fn jitter(low: Duration, high: Duration) -> Duration {
    let mut b = [0u8; 8];
    if high <= low || cryptmed_share::os_random(&mut b).is_err() {
        return high;
    }
    let u = u64::from_le_bytes(b) as f64 / u64::MAX as f64;
    low + (high - low).mul_f64(u)
}
