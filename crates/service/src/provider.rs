//! The provider: serves its model to clients, one thread per session.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cryptmed_engine::{Model, ProviderSession};
use cryptmed_model::Network;

use crate::wire::{Frame, VERSION};
use crate::{Limits, Link, Security, ServiceError, expect, hex, refuse, send, session_id, tls};

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
}

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
            .finish()
    }
}

/// Accepts connections until `stop` is set, handing each to `handle`.
pub(crate) fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    mut handle: impl FnMut(TcpStream),
) -> Result<(), ServiceError> {
    listener
        .set_nonblocking(true)
        .map_err(ServiceError::io("listener"))?;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, _)) => {
                tcp.set_nonblocking(false)
                    .map_err(ServiceError::io("socket"))?;
                handle(tcp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(crate::dealer::POLL)
            }
            Err(e) => tracing::warn!(error = %e, "accept failed"),
        }
    }
    Ok(())
}

/// Serves clients until `stop` is set. A failing session is logged and
/// ends alone; the server keeps serving.
pub fn serve(
    listener: TcpListener,
    setup: Arc<ProviderSetup>,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    let active = Arc::new(AtomicUsize::new(0));
    accept_loop(listener, stop, |tcp| {
        let (setup, active) = (setup.clone(), active.clone());
        std::thread::spawn(move || {
            let busy = active.fetch_add(1, Ordering::SeqCst) >= setup.limits.max_sessions;
            let r = session(tcp, &setup, busy);
            active.fetch_sub(1, Ordering::SeqCst);
            match r {
                Ok(n) => tracing::info!(records = n, "session finished"),
                Err(e) => tracing::warn!(error = %e, "session ended with an error"),
            }
        });
    })
}

/// One client session; returns the number of records served.
fn session(tcp: TcpStream, setup: &ProviderSetup, busy: bool) -> Result<u64, ServiceError> {
    let conn = tls::accept(tcp, &setup.security, setup.limits.timeouts)?;
    let mut link = Link::new(conn.stream);
    if busy {
        let e =
            ServiceError::Config("the provider is at its session limit; try again later".into());
        refuse(&mut link, &e);
        return Err(e);
    }
    let mut dealer: Option<Link> = None;
    let r = run(&mut link, &mut dealer, setup);
    if let Err(e) = &r {
        refuse(&mut link, e);
        if let Some(d) = dealer.as_mut() {
            refuse(d, e);
        }
    }
    r
}

fn run(
    link: &mut Link,
    dealer: &mut Option<Link>,
    setup: &ProviderSetup,
) -> Result<u64, ServiceError> {
    let limits = &setup.limits;
    let Frame::Hello { version, reveal } = expect(link, limits, "client", "hello")? else {
        return Err(ServiceError::Unexpected {
            during: "hello".into(),
            expected: "hello",
            got: "another",
        });
    };
    if version != VERSION {
        return Err(ServiceError::Mismatch {
            what: "version",
            ours: VERSION.to_string(),
            theirs: version.to_string(),
        });
    }
    let config = setup.model.config();
    if let Some(want) = reveal.filter(|r| r != config.reveal.name()) {
        return Err(ServiceError::Mismatch {
            what: "policy",
            ours: config.reveal.name().into(),
            theirs: want,
        });
    }
    let session = session_id();
    let digest = hex(&setup.model.architecture_digest());
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
        },
        "model info",
    )?;
    let conn = tls::connect(&setup.dealer, &setup.security, limits.timeouts)?;
    let dealer_fp = conn.peer;
    let d = dealer.insert(Link::new(conn.stream));
    send(
        d,
        &Frame::Join {
            version: VERSION,
            role: "provider".into(),
            session,
            network,
            config: config_json,
            digest,
        },
        "join",
    )?;
    match expect(d, limits, "dealer", "pairing")? {
        Frame::Paired => {}
        other => {
            return Err(ServiceError::Unexpected {
                during: "pairing".into(),
                expected: "paired",
                got: other.name(),
            });
        }
    }
    let Frame::DealerIdentity { fingerprint } = expect(link, limits, "client", "dealer identity")?
    else {
        return Err(ServiceError::Unexpected {
            during: "dealer identity".into(),
            expected: "dealer_identity",
            got: "another",
        });
    };
    if fingerprint != dealer_fp {
        return Err(ServiceError::Mismatch {
            what: "dealer",
            ours: dealer_fp,
            theirs: fingerprint,
        });
    }
    send(
        link,
        &Frame::DealerIdentity {
            fingerprint: dealer_fp,
        },
        "dealer identity",
    )?;
    let mut party = ProviderSession::new(setup.model.clone(), d, link)?;
    let mut served = 0u64;
    loop {
        match expect(link, limits, "client", "batch")? {
            Frame::Batch { size } if size > 0 && size as usize <= limits.max_batch => {
                party.run_batch(size as usize, d, link)?;
                served += size;
            }
            Frame::Batch { size } => {
                return Err(ServiceError::Config(format!(
                    "batch of {size} records is outside 1..={}",
                    limits.max_batch
                )));
            }
            Frame::Done => return Ok(served),
            other => {
                return Err(ServiceError::Unexpected {
                    during: "batch".into(),
                    expected: "batch",
                    got: other.name(),
                });
            }
        }
    }
}
