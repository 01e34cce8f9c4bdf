//! What the two servers (dealer and provider) share: limits, the accept
//! loop, counted slots and the deadline watchdog.
//!
//! A connection first holds a *pending* slot (capped by
//! [`Limits::max_pending`]) while it completes TLS and sends its first frame
//! within [`Limits::handshake`]; only then does it take a *session* slot
//! (capped by [`Limits::max_sessions`]). So idle or slow sockets can delay
//! new clients by at most the handshake deadline and never take session
//! slots. Every session also has an overall deadline
//! ([`Limits::session_deadline`]): the watchdog shuts down the sockets of a
//! connection whose deadline passed, which ends any blocked read or write.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ServiceError, Timeouts, wire};

/// Limits that keep every session bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Socket timeouts (connect, and each read and write).
    pub timeouts: Timeouts,
    /// Servers: time for an accepted connection to complete TLS and send its first frame.
    pub handshake: Duration,
    /// Servers: longest a whole session may last.
    pub session_deadline: Duration,
    /// Largest control frame.
    pub max_frame: usize,
    /// Largest batch a server accepts.
    pub max_batch: usize,
    /// Concurrent sessions a server runs (more are refused with a `busy` error).
    pub max_sessions: usize,
    /// Connections a server lets complete their handshake at once (more are closed at once).
    pub max_pending: usize,
    /// How long the dealer waits for the second party of a session.
    pub pair_timeout: Duration,
    /// The dealer: most bytes of material it deals for one batch of more
    /// than one record. The batch size it announces (and accepts) is the
    /// largest within both this and [`Limits::max_batch`] for the session's
    /// architecture, and at least one: material is produced, sent and
    /// consumed step by step, so a process holds one layer's material at a
    /// time whatever the batch; this cap bounds how long one batch takes and
    /// how much one step can hold.
    pub max_batch_material: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            handshake: Duration::from_secs(10),
            session_deadline: Duration::from_secs(6 * 3600),
            max_frame: wire::DEFAULT_MAX_FRAME,
            max_batch: 256,
            max_sessions: 64,
            max_pending: 128,
            pair_timeout: Duration::from_secs(30),
            max_batch_material: 1 << 30,
        }
    }
}

/// How long the accept loop sleeps when no connection is pending.
const POLL: Duration = Duration::from_millis(10);

/// Accepts connections until `stop` is set, handing each to `handle`, and
/// enforces the watchdog's deadlines between accepts.
pub(crate) fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    watchdog: &Watchdog,
    mut handle: impl FnMut(TcpStream, SocketAddr),
) -> Result<(), ServiceError> {
    listener
        .set_nonblocking(true)
        .map_err(ServiceError::io("listener"))?;
    while !stop.load(Ordering::SeqCst) {
        watchdog.reap();
        match listener.accept() {
            Ok((tcp, peer)) => match tcp.set_nonblocking(false) {
                Ok(()) => handle(tcp, peer),
                Err(e) => tracing::warn!(%peer, error = %e, "cannot use an accepted socket"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
    Ok(())
}

/// A counter of held slots with a cap.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    held: Arc<AtomicUsize>,
    cap: usize,
}

/// One held slot; released on drop.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            held: Arc::new(AtomicUsize::new(0)),
            cap,
        }
    }

    /// Takes a slot, or `None` at the cap.
    pub(crate) fn take(&self) -> Option<Slot> {
        let mut now = self.held.load(Ordering::SeqCst);
        loop {
            if now >= self.cap {
                return None;
            }
            match self
                .held
                .compare_exchange(now, now + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(Slot(self.held.clone())),
                Err(v) => now = v,
            }
        }
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

struct Entry {
    deadline: Instant,
    sockets: Vec<TcpStream>,
    fired: Arc<AtomicBool>,
}

/// Shuts down the sockets of connections whose deadline passed.
#[derive(Clone, Default)]
pub(crate) struct Watchdog {
    entries: Arc<Mutex<HashMap<u64, Entry>>>,
    next: Arc<AtomicU64>,
}

/// A connection under the watchdog; leaves it on drop.
pub(crate) struct Watch {
    id: u64,
    entries: Arc<Mutex<HashMap<u64, Entry>>>,
    fired: Arc<AtomicBool>,
    what: Mutex<(&'static str, Duration)>,
}

impl Watchdog {
    /// Watches `tcp` with a deadline `limit` from now, called `what` in errors.
    pub(crate) fn watch(&self, tcp: &TcpStream, what: &'static str, limit: Duration) -> Watch {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let fired = Arc::new(AtomicBool::new(false));
        if let Ok(mut e) = self.entries.lock() {
            e.insert(
                id,
                Entry {
                    deadline: Instant::now() + limit,
                    sockets: tcp.try_clone().into_iter().collect(),
                    fired: fired.clone(),
                },
            );
        }
        Watch {
            id,
            entries: self.entries.clone(),
            fired,
            what: Mutex::new((what, limit)),
        }
    }

    /// Shuts down every connection past its deadline.
    pub(crate) fn reap(&self) {
        let now = Instant::now();
        if let Ok(mut entries) = self.entries.lock() {
            for e in entries.values_mut() {
                if e.deadline <= now && !e.fired.swap(true, Ordering::SeqCst) {
                    for s in &e.sockets {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                }
            }
        }
    }
}

impl Watch {
    /// A new deadline, `limit` from now, called `what` in errors.
    pub(crate) fn reset(&self, what: &'static str, limit: Duration) {
        if let Ok(mut w) = self.what.lock() {
            *w = (what, limit);
        }
        if let Ok(mut e) = self.entries.lock()
            && let Some(e) = e.get_mut(&self.id)
        {
            e.deadline = Instant::now() + limit;
        }
    }

    /// Also shuts down `tcp` at the deadline (the provider's dealer link).
    pub(crate) fn add(&self, tcp: Option<&TcpStream>) {
        if let (Some(tcp), Ok(mut e)) = (tcp, self.entries.lock())
            && let Some(e) = e.get_mut(&self.id)
            && let Ok(s) = tcp.try_clone()
        {
            e.sockets.push(s);
        }
    }

    /// If the deadline passed, the error that says so instead of `e`.
    pub(crate) fn explain(&self, e: ServiceError) -> ServiceError {
        if self.fired.load(Ordering::SeqCst) {
            let (what, limit) = self
                .what
                .lock()
                .map(|w| *w)
                .unwrap_or(("session", Duration::ZERO));
            ServiceError::Deadline { what, limit }
        } else {
            e
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(&self.id);
        }
    }
}
