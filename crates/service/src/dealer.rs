//! The dealer daemon: pairs the provider and the client of each session,
//! checks they run the same plan, and streams their correlated randomness.
//! It never sees records, weights or results.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptmed_engine::{DealerSession, EngineConfig, Model};
use cryptmed_model::Network;

use crate::wire::{Frame, VERSION};
use crate::{Limits, Link, Security, ServiceError, expect, hex, refuse, send, tls};

/// A party that has joined and waits for its partner.
struct Joined {
    link: Link,
    role: String,
    digest: String,
    model: Model,
}

type Waiting = Arc<Mutex<HashMap<String, Sender<Joined>>>>;

/// Serves sessions until `stop` is set. Each connection runs on its own
/// thread; failures are logged and end only that session.
pub fn serve(
    listener: TcpListener,
    security: Security,
    limits: Limits,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
    let active = Arc::new(AtomicUsize::new(0));
    crate::provider::accept_loop(listener, stop, |tcp| {
        let (security, waiting, active) = (security.clone(), waiting.clone(), active.clone());
        std::thread::spawn(move || {
            if let Err(e) = connection(tcp, &security, &limits, &waiting, &active) {
                tracing::warn!(error = %e, "dealer session ended with an error");
            }
        });
    })
}

fn connection(
    tcp: TcpStream,
    security: &Security,
    limits: &Limits,
    waiting: &Waiting,
    active: &AtomicUsize,
) -> Result<(), ServiceError> {
    let conn = tls::accept(tcp, security, limits.timeouts)?;
    let mut link = Link::new(conn.stream);
    let (session, role, digest, model) = match join(&mut link, limits) {
        Ok(j) => j,
        Err(e) => {
            refuse(&mut link, &e);
            return Err(e);
        }
    };
    let mut party = Some(Joined {
        link,
        role: role.clone(),
        digest,
        model,
    });
    // Hand our link to a waiting partner, or register and wait for one:
    // one lock covers the check and the insertion, so two parties never miss each other.
    let (tx, rx) = channel();
    let partner_tx = {
        let mut w = waiting
            .lock()
            .map_err(|_| ServiceError::Config("pairing table poisoned".into()))?;
        match w.remove(&session) {
            Some(t) => Some(t),
            None => {
                w.insert(session.clone(), tx);
                None
            }
        }
    };
    if let Some(tx) = partner_tx {
        if let Some(p) = party.take()
            && tx.send(p).is_err()
        {
            return Err(ServiceError::Config("the partner gave up waiting".into()));
        }
        tracing::info!(role, "joined a waiting partner");
        return Ok(());
    }
    let me = party
        .take()
        .ok_or_else(|| ServiceError::Config("internal".into()))?;
    let other = match rx.recv_timeout(limits.pair_timeout) {
        Ok(o) => o,
        Err(_) => {
            if let Ok(mut w) = waiting.lock() {
                w.remove(&session);
            }
            let mut link = me.link;
            let e = ServiceError::Config(format!(
                "no partner joined session {session} within {:?}",
                limits.pair_timeout
            ));
            refuse(&mut link, &e);
            return Err(e);
        }
    };
    if active.fetch_add(1, Ordering::SeqCst) >= limits.max_sessions {
        active.fetch_sub(1, Ordering::SeqCst);
        let e = ServiceError::Config("the dealer is at its session limit; try again later".into());
        let (mut a, mut b) = (me.link, other.link);
        refuse(&mut a, &e);
        refuse(&mut b, &e);
        return Err(e);
    }
    let result = run(me, other, limits);
    active.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Reads and checks a `Join`; returns the session id, role, digest and compiled plan.
fn join(link: &mut Link, limits: &Limits) -> Result<(String, String, String, Model), ServiceError> {
    let Frame::Join {
        version,
        role,
        session,
        network,
        config,
        digest,
    } = expect(link, limits, "party", "join")?
    else {
        return Err(ServiceError::Unexpected {
            during: "join".into(),
            expected: "join",
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
    if role != "provider" && role != "client" {
        return Err(ServiceError::Mismatch {
            what: "role",
            ours: "provider or client".into(),
            theirs: role,
        });
    }
    let network: Network = serde_json::from_value(network)
        .map_err(|e| ServiceError::Config(format!("architecture: {e}")))?;
    let config: EngineConfig = serde_json::from_value(config)
        .map_err(|e| ServiceError::Config(format!("configuration: {e}")))?;
    let model = Model::compile(network, config)?;
    let ours = hex(&model.architecture_digest());
    if ours != digest {
        return Err(ServiceError::Mismatch {
            what: "digest",
            ours,
            theirs: digest,
        });
    }
    Ok((session, role, digest, model))
}

fn run(a: Joined, b: Joined, limits: &Limits) -> Result<(), ServiceError> {
    let (mut p, mut c) = if a.role == "provider" { (a, b) } else { (b, a) };
    let problem = if p.role == c.role {
        Some(ServiceError::Mismatch {
            what: "role",
            ours: "one provider and one client".into(),
            theirs: format!("two {}s", p.role),
        })
    } else if p.digest != c.digest {
        Some(ServiceError::Mismatch {
            what: "digest",
            ours: p.digest.clone(),
            theirs: c.digest.clone(),
        })
    } else {
        None
    };
    if let Some(e) = problem {
        refuse(&mut p.link, &e);
        refuse(&mut c.link, &e);
        return Err(e);
    }
    send(&mut p.link, &Frame::Paired, "pairing")?;
    send(&mut c.link, &Frame::Paired, "pairing")?;
    let mut session = DealerSession::new(p.model, &mut p.link, &mut c.link)?;
    loop {
        match expect(&mut c.link, limits, "client", "batch")? {
            Frame::Batch { size } if size as usize <= limits.max_batch && size > 0 => {
                session.run_batch(size as usize, &mut p.link, &mut c.link)?;
            }
            Frame::Batch { size } => {
                let e = ServiceError::Config(format!(
                    "batch of {size} records is outside 1..={}",
                    limits.max_batch
                ));
                refuse(&mut c.link, &e);
                return Err(e);
            }
            Frame::Done => return Ok(()),
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

/// How long the accept loop sleeps when no connection is pending.
pub(crate) const POLL: Duration = Duration::from_millis(10);
