//! The dealer daemon: pairs the provider and the client of each session,
//! checks they run the same plan, and streams their correlated randomness.
//! It never sees records, weights or results.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cryptmed_channel::{ChannelError, Counted};
use cryptmed_engine::{DealerSession, Model};
use tracing::{debug, info, warn};

use crate::audit::{self, AuditLog, Entry};
use crate::server::{Slot, Slots, Watch, Watchdog, accept_loop};
use crate::tls::PeerCert;
use crate::wire::{Frame, VERSION};
use crate::{
    Limits, Link, Role, Security, ServiceError, compile_peer, expect, hex, refuse, send,
    session_tag, tls, unexpected,
};

/// A counted link: the dealer reports the bytes of both its links.
type Counter = Counted<Link>;

/// A party that has joined and waits for its partner.
struct Joined {
    link: Counter,
    /// Its certificate's subject (for the audit trail).
    subject: String,
    role: Role,
    digest: String,
    model: Model,
    watch: Watch,
    _slot: Slot,
}

/// What pairs two joins: the session id, and the fingerprints of the
/// provider's and the client's certificates as the provider-client link
/// saw them, each taken once from a party's own dealer link and once from
/// what its partner says it saw. So a party that learned a session id but
/// is not the certificate holder at the other end of that session's
/// provider-client link never takes a slot in it: its key differs, it
/// waits alone and is refused when the pairing time runs out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PairKey {
    session: String,
    provider: String,
    client: String,
}

type Waiting = Arc<Mutex<HashMap<PairKey, Sender<Joined>>>>;

/// Serves sessions until `stop` is set. Each connection runs on its own
/// thread; failures are logged and end only that session. See
/// [`crate::server`] for the limits on pending handshakes, sessions and
/// deadlines; joined parties count against `2 * max_sessions`.
pub fn serve(
    listener: TcpListener,
    security: Security,
    limits: Limits,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    serve_audited(listener, security, limits, None, stop)
}

/// [`serve`], appending one line per session to `audit` (see [`crate::audit`]).
pub fn serve_audited(
    listener: TcpListener,
    security: Security,
    limits: Limits,
    audit: Option<Arc<AuditLog>>,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
    let pending = Slots::new(limits.max_pending);
    let parties = Slots::new(2 * limits.max_sessions);
    let watchdog = Watchdog::default();
    accept_loop(listener, stop, &watchdog, |tcp, peer| {
        let Some(slot) = pending.take() else {
            warn!(%peer, limit = pending.cap(), "too many connections in their handshake; closed this one");
            return;
        };
        let watch = watchdog.watch(&tcp, "handshake", limits.handshake);
        let (security, waiting, parties, audit) = (
            security.clone(),
            waiting.clone(),
            parties.clone(),
            audit.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("dealer-session".into())
            .spawn(move || {
                // At warn level, so a failure logged at the default level names the peer and session.
                let span = tracing::warn_span!(
                    "dealer",
                    %peer,
                    role = tracing::field::Empty,
                    tag = tracing::field::Empty
                );
                let _entered = span.enter();
                let c = Conn {
                    security: &security,
                    limits: &limits,
                    waiting: &waiting,
                    parties: &parties,
                };
                let mut entry = Entry::new("dealer");
                let r = c.connection(tcp, peer, slot, watch, &mut entry);
                entry.finish(&r);
                match r {
                    Ok(Ends::Recorded) => audit::record(audit.as_deref(), &entry),
                    Ok(Ends::Silent) => {}
                    Err(e) if e.is_probe() => info!(error = %e, "connection closed before TLS"),
                    Err(e) => {
                        audit::record(audit.as_deref(), &entry);
                        warn!(error = %e, "dealer session failed");
                    }
                }
            });
        if let Err(e) = spawned {
            warn!(%peer, error = %e, "cannot start a connection thread");
        }
    })
}

/// A stream that notes whether the peer sent any byte: a link closed after
/// TLS without one is a provider that only learned our certificate (see
/// the handshake in the crate docs), not a failed join.
struct Heard {
    inner: Box<dyn tls::Stream>,
    heard: Arc<AtomicBool>,
}

impl std::io::Read for Heard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.heard.store(true, Ordering::SeqCst);
        }
        Ok(n)
    }
}

impl std::io::Write for Heard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// How a connection ended well: with a session for the audit trail, or
/// without one (its partner's thread records the session; or a provider
/// only learned our certificate).
enum Ends {
    Recorded,
    Silent,
}

/// What every connection thread shares.
struct Conn<'a> {
    security: &'a Security,
    limits: &'a Limits,
    waiting: &'a Waiting,
    parties: &'a Slots,
}

impl Conn<'_> {
    fn connection(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        pending: Slot,
        watch: Watch,
        entry: &mut Entry,
    ) -> Result<Ends, ServiceError> {
        let lim = self.limits;
        let conn = tls::accept(tcp, self.security, lim.handshake, lim.timeouts.io)
            .map_err(|e| watch.explain(e))?;
        entry.peers.push(conn.peer.subject.clone());
        let heard = Arc::new(AtomicBool::new(false));
        let stream = Heard {
            inner: conn.stream,
            heard: heard.clone(),
        };
        let mut link = Counted::new(Link::new(Box::new(stream)));
        let (key, role, digest, model) = match join(&mut link, lim, &conn.peer) {
            Ok(j) => j,
            Err(ServiceError::Link {
                cause: ChannelError::Closed,
                ..
            }) if !heard.load(Ordering::SeqCst) => {
                debug!("closed after TLS without a byte (a provider learning our certificate)");
                return Ok(Ends::Silent);
            }
            Err(e) => {
                refuse(&mut link, &e);
                return Err(watch.explain(e));
            }
        };
        drop(pending);
        let span = tracing::Span::current();
        span.record("role", role.name());
        let tag = session_tag(&key.session);
        span.record("tag", tag.as_str());
        entry.session = Some(tag.clone());
        entry.model = Some(digest.clone());
        entry.policy = Some(model.config().reveal.name().into());
        debug!(%peer, "joined");
        let Some(slot) = self.parties.take() else {
            let e = ServiceError::Busy(format!(
                "the dealer is at its limit of {} concurrent sessions; try again later",
                lim.max_sessions
            ));
            refuse(&mut link, &e);
            return Err(e);
        };
        watch.reset("pairing", lim.pair_timeout + lim.handshake);
        let me = Joined {
            link,
            subject: conn.peer.subject,
            role,
            digest,
            model,
            watch,
            _slot: slot,
        };
        // Hand our link to a waiting partner, or register and wait for one:
        // one lock covers the check and the insertion, so two parties never miss each other.
        let (tx, rx) = channel();
        let partner_tx = {
            let mut w = self
                .waiting
                .lock()
                .map_err(|_| ServiceError::Config("pairing table poisoned".into()))?;
            match w.remove(&key) {
                Some(t) => Some(t),
                None => {
                    w.insert(key.clone(), tx);
                    None
                }
            }
        };
        if let Some(tx) = partner_tx {
            if let Err(back) = tx.send(me) {
                let mut link = back.0.link;
                let e = ServiceError::Busy("the partner stopped waiting".into());
                refuse(&mut link, &e);
                return Err(e);
            }
            debug!("handed over to the waiting partner");
            return Ok(Ends::Silent);
        }
        let other = match rx.recv_timeout(lim.pair_timeout) {
            Ok(o) => o,
            Err(_) => {
                if let Ok(mut w) = self.waiting.lock() {
                    w.remove(&key);
                }
                let mut link = me.link;
                let e = ServiceError::Busy(format!(
                    "no partner joined session {tag} within {:?} (a partner pairs only with the \
                     certificate the provider-client link saw)",
                    lim.pair_timeout
                ));
                refuse(&mut link, &e);
                return Err(e);
            }
        };
        let t0 = Instant::now();
        me.watch.reset("session", lim.session_deadline);
        other.watch.reset("session", lim.session_deadline);
        entry.peers = match me.role {
            Role::Provider => vec![me.subject.clone(), other.subject.clone()],
            _ => vec![other.subject.clone(), me.subject.clone()],
        };
        let (n, bytes) = run(me, other, lim)?;
        (entry.records, entry.bytes) = (n, bytes);
        info!(
            records = n,
            dealer_bytes = bytes,
            seconds = t0.elapsed().as_secs_f64(),
            "session finished"
        );
        Ok(Ends::Recorded)
    }
}

/// Reads and checks a `Join`; returns the pairing key, role, digest and compiled plan.
fn join(
    link: &mut Counter,
    limits: &Limits,
    conn: &PeerCert,
) -> Result<(PairKey, Role, String, Model), ServiceError> {
    conn.check_role(&[Role::Provider, Role::Client], true)?;
    let frame = expect(link, limits.max_frame, "party", "join")?;
    let Frame::Join {
        version,
        role,
        session,
        peer,
        network,
        config,
        digest,
    } = frame
    else {
        return Err(unexpected("party", "join", "join", &frame));
    };
    if version != VERSION {
        return Err(ServiceError::Mismatch {
            what: "version",
            peer: "party",
            ours: VERSION.to_string(),
            theirs: version.to_string(),
        });
    }
    let role = match Role::from_name(&role) {
        Some(r @ (Role::Provider | Role::Client)) => r,
        _ => {
            return Err(ServiceError::Protocol(format!(
                "a party joined as {role:?}; only a provider or a client can join"
            )));
        }
    };
    if let Some(cert) = conn.role
        && cert != role
    {
        return Err(ServiceError::Role {
            addr: conn.addr.clone(),
            expected: format!("{role} (the role it joined as)"),
            got: cert.name().into(),
        });
    }
    // Validated before anything is built from it: any peer can send a join.
    let (_, _, model) = compile_peer(role.name(), network, config)?;
    let ours = hex(&model.architecture_digest());
    if ours != digest {
        return Err(ServiceError::Mismatch {
            what: "digest",
            peer: role.name(),
            ours,
            theirs: digest,
        });
    }
    let own = conn.fingerprint.clone();
    let (provider, client) = match role {
        Role::Provider => (own, peer),
        _ => (peer, own),
    };
    let key = PairKey {
        session,
        provider,
        client,
    };
    Ok((key, role, digest, model))
}

/// The largest batch, up to [`Limits::max_batch`], whose dealer material
/// stays within [`Limits::max_batch_material`] for this architecture, and
/// never less than one record: material streams step by step, so even a
/// network whose one record exceeds the cap is dealt in bounded memory. The
/// dealer's bytes are a closed form that grows with the batch, so a binary
/// search finds it without dealing anything.
fn largest_batch(model: &Model, limits: &Limits) -> usize {
    let fits = |b: usize| model.offline_bytes(b) <= limits.max_batch_material;
    let (mut lo, mut hi) = (1, limits.max_batch.max(1));
    if fits(hi) {
        return hi;
    }
    // Invariant: `lo` fits (or is 1), `hi` does not.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Total bytes both ways on both links.
fn total(a: &Counter, b: &Counter) -> u64 {
    a.stats().bytes() + b.stats().bytes()
}

/// Runs a paired session; returns the records served and the bytes on both links.
fn run(a: Joined, b: Joined, limits: &Limits) -> Result<(u64, u64), ServiceError> {
    let (mut p, mut c) = if a.role == Role::Provider {
        (a, b)
    } else {
        (b, a)
    };
    let problem = if p.role == c.role {
        Some(ServiceError::Protocol(format!(
            "two {}s joined the same session",
            p.role
        )))
    } else if p.digest != c.digest {
        Some(ServiceError::Mismatch {
            what: "digest",
            peer: "client",
            ours: format!("the provider's {}", p.digest),
            theirs: c.digest.clone(),
        })
    } else {
        None
    };
    let max_batch = largest_batch(&p.model, limits);
    if let Some(e) = problem {
        refuse(&mut p.link, &e);
        refuse(&mut c.link, &e);
        return Err(e);
    }
    let paired = Frame::Paired {
        max_batch: max_batch as u64,
    };
    send(&mut p.link, &paired, "provider", "pairing")?;
    send(&mut c.link, &paired, "client", "pairing")?;
    info!("session paired");
    // From here the parties read raw material: no more error frames, a failure closes both links.
    let r = (|| {
        let mut session = DealerSession::new(p.model.clone(), &mut p.link, &mut c.link)?;
        let session_bytes = total(&p.link, &c.link);
        let mut last = session_bytes;
        let mut served = 0u64;
        loop {
            match expect(&mut c.link, limits.max_frame, "client", "batch")? {
                Frame::Batch { size } if size > 0 && size <= max_batch as u64 => {
                    session.run_batch(size as usize, &mut p.link, &mut c.link)?;
                    let now = total(&p.link, &c.link);
                    send(
                        &mut c.link,
                        &Frame::Dealt {
                            session_bytes,
                            batch_bytes: now - last,
                        },
                        "client",
                        "dealer report",
                    )?;
                    debug!(records = size, bytes = now - last, "batch dealt");
                    last = now;
                    served += size;
                }
                Frame::Batch { size } => {
                    return Err(ServiceError::Protocol(format!(
                        "the client asked for a batch of {size} records, outside 1..={max_batch} \
                         (the dealer announced {max_batch} for this architecture)"
                    )));
                }
                Frame::Done => return Ok((served, total(&p.link, &c.link))),
                other => return Err(unexpected("client", "batch", "batch or done", &other)),
            }
        }
    })();
    r.map_err(|e| c.watch.explain(p.watch.explain(e)))
}
