//! Shared by the service's integration tests: in-process deployments over
//! real TLS on loopback, captured logs and panics, a TLS-terminating
//! cutting proxy, and raw TLS peers that send crafted frames.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cryptmed_engine::{EngineConfig, Model, Prediction, Reveal};
use cryptmed_model::{Network, reference};
use cryptmed_service::client::{BatchReport, ClientSetup, diagnose};
use cryptmed_service::provider::{Backend, ProviderSetup};
use cryptmed_service::tls::{CertSet, Identity, RoleNames, generate_certs};
use cryptmed_service::wire::{self, Frame, VERSION};
use cryptmed_service::{Limits, Link, Role, Security, ServiceError, Timeouts, dealer, provider};

/// Everything the tracing subscriber wrote, and every panic message.
struct Captured {
    logs: Mutex<Vec<u8>>,
    panics: Mutex<Vec<String>>,
}

fn captured() -> &'static Captured {
    static C: OnceLock<Captured> = OnceLock::new();
    C.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Only panics outside the tests' own assertions count.
            let in_tests = info.location().is_some_and(|l| l.file().contains("tests"));
            if !in_tests && let Ok(mut p) = captured().panics.lock() {
                p.push(info.to_string());
            }
            default(info);
        }));
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
        Captured {
            logs: Mutex::new(Vec::new()),
            panics: Mutex::new(Vec::new()),
        }
    })
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut l) = captured().logs.lock() {
            l.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing logs (at debug) and panics; call first in every test.
pub fn init() {
    let _ = captured();
}

/// The log lines so far.
pub fn logs() -> Vec<String> {
    let l = captured()
        .logs
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    String::from_utf8_lossy(&l)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every panic so far (must stay empty).
pub fn panics() -> Vec<String> {
    captured()
        .panics
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default()
}

/// Waits up to 15 s for a log line that contains every one of `parts`.
pub fn wait_log(parts: &[&str]) -> String {
    wait_log_where(&format!("{parts:?}"), |l| {
        parts.iter().all(|p| l.contains(p))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits up to 15 s for a log line that satisfies `ok`; the error lists recent lines.
pub fn wait_log_where(what: &str, ok: impl Fn(&str) -> bool) -> Result<String, String> {
    let t = Instant::now();
    loop {
        if let Some(l) = logs().into_iter().find(|l| ok(l)) {
            return Ok(l);
        }
        if t.elapsed() > Duration::from_secs(15) {
            let recent: Vec<String> = logs().into_iter().rev().take(30).collect();
            return Err(format!(
                "no log line with {what}; recent lines:\n{}",
                recent.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The breast-cancer model the README's examples use (ReLU MLP, 2 classes).
pub fn network() -> Network {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    cryptmed_model::onnx::load(&root.join("models/breast-cancer-relu.onnx")).unwrap()
}

/// `count` real records of the model's test split.
pub fn records(count: usize) -> Vec<Vec<f64>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let r =
        cryptmed_input::load(&root.join("testdata/breast_cancer_test.csv"), 30, true, 1e9).unwrap();
    r.records.into_iter().take(count).collect()
}

/// A certificate set for loopback.
pub fn certs() -> CertSet {
    generate_certs(
        &RoleNames::all(&["localhost".into(), "127.0.0.1".into()]),
        false,
    )
    .unwrap()
}

/// TLS for `role` with its certificate.
pub fn security(certs: &CertSet, role: &str, require: bool) -> Security {
    let (c, k) = certs.role(role).unwrap();
    Security::tls(
        certs.ca_pem.as_bytes(),
        Some(Identity::from_pem(c.as_bytes(), k.as_bytes()).unwrap()),
        require,
    )
    .unwrap()
}

/// TLS trusting the CA, without a certificate of our own.
pub fn anonymous(certs: &CertSet) -> Security {
    Security::tls(certs.ca_pem.as_bytes(), None, false).unwrap()
}

/// Limits for tests: short waits, so faults end quickly.
pub fn limits() -> Limits {
    Limits {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(20),
        },
        handshake: Duration::from_secs(5),
        pair_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// Stops the servers it started when dropped.
pub struct Stop(pub Arc<AtomicBool>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A listener on a free loopback port and its `localhost:PORT` address.
pub fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = format!("localhost:{}", l.local_addr().unwrap().port());
    (l, a)
}

/// Starts a dealer; returns its address.
pub fn start_dealer(security: Security, limits: Limits, stop: &Stop) -> String {
    let (l, addr) = listener();
    let st = stop.0.clone();
    std::thread::spawn(move || dealer::serve(l, security, limits, st));
    addr
}

/// Starts a provider of `net` that trusts the dealer at `dealer_addr`; returns its address.
pub fn start_provider(
    net: &Network,
    reveal: Reveal,
    dealer_addr: &str,
    security: Security,
    limits: Limits,
    stop: &Stop,
) -> String {
    start_provider_with(
        net,
        reveal,
        dealer_addr,
        security,
        limits,
        stop,
        Backend::Fixed,
    )
}

/// [`start_provider`] with a choice of how sessions pick their comparison backend.
pub fn start_provider_with(
    net: &Network,
    reveal: Reveal,
    dealer_addr: &str,
    security: Security,
    limits: Limits,
    stop: &Stop,
    backend: Backend,
) -> String {
    let model = Model::compile(
        net.clone(),
        EngineConfig {
            reveal,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let setup = Arc::new(ProviderSetup {
        model,
        public: net.public(),
        dealer: dealer_addr.into(),
        security,
        limits,
        backend,
    });
    let (l, addr) = listener();
    let st = stop.0.clone();
    std::thread::spawn(move || provider::serve(l, setup, st));
    addr
}

/// A dealer and a provider with certificates; servers require client certificates.
pub struct Deployment {
    pub certs: CertSet,
    pub dealer: String,
    pub provider: String,
    pub net: Network,
    pub stop: Stop,
}

/// Starts a dealer and a provider of the breast-cancer model.
pub fn deploy(reveal: Reveal, limits: Limits) -> Deployment {
    deploy_with(reveal, limits, Backend::Fixed)
}

/// [`deploy`] with a choice of how sessions pick their comparison backend.
pub fn deploy_with(reveal: Reveal, limits: Limits, backend: Backend) -> Deployment {
    let certs = certs();
    let stop = Stop(Arc::new(AtomicBool::new(false)));
    let dealer = start_dealer(security(&certs, "dealer", true), limits, &stop);
    let net = network();
    let provider = start_provider_with(
        &net,
        reveal,
        &dealer,
        security(&certs, "provider", true),
        limits,
        &stop,
        backend,
    );
    Deployment {
        certs,
        dealer,
        provider,
        net,
        stop,
    }
}

impl Deployment {
    /// A client with its certificate.
    pub fn client(&self) -> ClientSetup {
        ClientSetup {
            server: self.provider.clone(),
            dealer: self.dealer.clone(),
            security: security(&self.certs, "client", false),
            limits: limits(),
            batch: 4,
            reveal: None,
        }
    }
}

/// Runs a session; returns the predictions and the last batch report.
pub fn run(
    setup: &ClientSetup,
    records: &[Vec<f64>],
) -> Result<(Vec<Prediction>, BatchReport), ServiceError> {
    let mut out = Vec::new();
    let mut last = BatchReport::default();
    diagnose(
        setup,
        |_| Ok(records.to_vec()),
        |_, p, r| {
            out.extend_from_slice(p);
            last = r.clone();
            Ok(())
        },
    )?;
    Ok((out, last))
}

/// Asserts the labels equal the plaintext model's.
pub fn assert_correct(net: &Network, records: &[Vec<f64>], preds: &[Prediction]) {
    assert_eq!(preds.len(), records.len());
    for (x, p) in records.iter().zip(preds) {
        let want = reference::evaluate(net, x);
        let label = usize::from(want[1] > want[0]);
        assert_eq!(p.label, label, "record {x:?}");
    }
}

/// Which way a cut applies: from the party that connects (`Up`) or from the server (`Down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Connecting party -> server.
    Up,
    /// Server -> connecting party.
    Down,
}

/// Where the proxy cuts the first connection: in direction `dir`, after
/// `frames` whole control frames and then `bytes` more bytes.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    pub dir: Dir,
    pub frames: usize,
    pub bytes: usize,
}

/// A TLS-terminating proxy (it holds the certificates of both ends, as a
/// test may) that forwards plaintext and cuts its first connection that
/// carries data at an exact plaintext offset; later connections pass
/// through. (A connection closed after TLS without data, such as the
/// provider's look at its dealer's certificate, is not cut.)
pub struct Proxy {
    /// Where to connect (`localhost:PORT`).
    pub addr: String,
    /// The proxy's local addresses towards the server (the peer the server
    /// logs), per connection that carried data.
    pub upstream: Arc<Mutex<Vec<SocketAddr>>>,
}

/// Starts a proxy to `target` (a `role` server): towards the connecting
/// party it presents `face`, towards the server `client_side`.
pub fn proxy(
    target: &str,
    role: Role,
    face: Security,
    client_side: Security,
    cut: Option<Cut>,
    stop: &Stop,
) -> Proxy {
    let (l, addr) = listener();
    l.set_nonblocking(true).unwrap();
    let upstream = Arc::new(Mutex::new(Vec::new()));
    let (up, st, target) = (upstream.clone(), stop.0.clone(), target.to_string());
    std::thread::spawn(move || {
        let cut = Arc::new(Mutex::new(cut));
        while !st.load(Ordering::SeqCst) {
            let Ok((tcp, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            tcp.set_nonblocking(false).unwrap();
            let (face, client_side, target, up, cut) = (
                face.clone(),
                client_side.clone(),
                target.clone(),
                up.clone(),
                cut.clone(),
            );
            std::thread::spawn(move || {
                let t = Timeouts {
                    connect: Duration::from_secs(5),
                    io: Duration::from_secs(30),
                };
                let Ok(down) = cryptmed_service::tls::accept(tcp, &face, t.connect, t.io) else {
                    return;
                };
                let Ok(upc) = cryptmed_service::tls::connect(&target, role, &client_side, t) else {
                    return;
                };
                pump(down, upc, &cut, &up);
            });
        }
    });
    Proxy { addr, upstream }
}

/// One direction's bytes so far and where to cut it.
struct Side {
    seen: Vec<u8>,
    cut: Option<(usize, usize)>,
}

impl Side {
    /// The absolute cut offset, once enough bytes arrived to know it.
    fn offset(&self) -> Option<usize> {
        let (frames, bytes) = self.cut?;
        let mut at = 0;
        for _ in 0..frames {
            let head = self.seen.get(at..at + 4)?;
            at += 4 + u32::from_le_bytes(head.try_into().ok()?) as usize;
        }
        Some(at + bytes)
    }
}

/// Forwards both ways; the first connection to carry data takes the cut
/// (and records its upstream address). At the cut, the receiving side gets
/// a clean end of stream after exactly the bytes before the offset (its
/// further writes are read and dropped), and the sending side is shut down.
fn pump(
    down: cryptmed_service::tls::Connected,
    up: cryptmed_service::tls::Connected,
    shared_cut: &Mutex<Option<Cut>>,
    upstream: &Mutex<Vec<SocketAddr>>,
) {
    let (mut a, mut b) = (down.stream, up.stream);
    let (sa, sb) = (down.socket.unwrap(), up.socket.unwrap());
    for s in [&sa, &sb] {
        s.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    }
    let mut sides = [(); 2].map(|()| Side {
        seen: Vec::new(),
        cut: None,
    });
    let mut carried = false;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        for k in 0..2 {
            let (src, dst, dst_sock, src_sock) = if k == 0 {
                (&mut a, &mut b, &sb, &sa)
            } else {
                (&mut b, &mut a, &sa, &sb)
            };
            let n = match src.read(&mut buf) {
                Ok(0) => {
                    let _ = dst.flush();
                    let _ = dst_sock.shutdown(Shutdown::Write);
                    return drain(dst, dst_sock, src_sock);
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => {
                    let _ = dst_sock.shutdown(Shutdown::Both);
                    let _ = src_sock.shutdown(Shutdown::Both);
                    return;
                }
            };
            if !carried {
                carried = true;
                upstream.lock().unwrap().push(sb.local_addr().unwrap());
                if let Some(c) = shared_cut.lock().unwrap().take() {
                    sides[usize::from(c.dir == Dir::Down)].cut = Some((c.frames, c.bytes));
                }
            }
            let side = &mut sides[k];
            let before = side.seen.len();
            side.seen.extend_from_slice(&buf[..n]);
            match side.offset() {
                Some(at) if at < side.seen.len() => {
                    let keep = at.saturating_sub(before);
                    let _ = dst.write_all(&buf[..keep]);
                    let _ = dst.flush();
                    let _ = src_sock.shutdown(Shutdown::Both);
                    let _ = dst_sock.shutdown(Shutdown::Write);
                    return drain(dst, dst_sock, src_sock);
                }
                _ => {
                    if dst.write_all(&buf[..n]).and_then(|()| dst.flush()).is_err() {
                        let _ = src_sock.shutdown(Shutdown::Both);
                        let _ = dst_sock.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        }
    }
}

/// Reads and drops what the receiving side still writes, until it closes.
fn drain(
    dst: &mut Box<dyn cryptmed_service::tls::Stream>,
    dst_sock: &TcpStream,
    other: &TcpStream,
) {
    let _ = other.shutdown(Shutdown::Both);
    let mut buf = vec![0u8; 1 << 16];
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        match dst.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = dst_sock.shutdown(Shutdown::Both);
}

/// A raw TLS connection to a server of `role`, for crafted frames.
pub fn raw(addr: &str, role: Role, security: &Security) -> Link {
    let c = cryptmed_service::tls::connect(
        addr,
        role,
        security,
        Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(10),
        },
    )
    .unwrap();
    Link::new(c.stream)
}

/// A raw TLS link to the provider at `addr` that said hello and read the
/// provider's model info: a client stopped at the handshake's next step.
pub fn hello_to_provider(addr: &str, security: &Security) -> Link {
    let mut link = raw(addr, Role::Provider, security);
    wire::send(
        &mut link,
        &Frame::Hello {
            version: VERSION,
            reveal: None,
        },
    )
    .unwrap();
    assert!(matches!(
        wire::recv(&mut link, 1 << 20),
        Ok(Frame::ModelInfo { .. })
    ));
    link
}

/// A join frame of `role` for session `session`, naming a partner
/// certificate fingerprint of the real one's length that no party has.
pub fn join(
    role: &str,
    session: &str,
    network: serde_json::Value,
    config: serde_json::Value,
    digest: &str,
) -> Frame {
    Frame::Join {
        version: VERSION,
        role: role.into(),
        session: session.into(),
        peer: "00".repeat(32),
        network,
        config,
        digest: digest.into(),
    }
}

/// Sends `frame` over a raw TLS link to the `role` server at `addr` and
/// returns the code and message of the error frame it must answer with.
pub fn refusal(addr: &str, role: Role, security: &Security, frame: &Frame) -> (String, String) {
    let mut link = raw(addr, role, security);
    wire::send(&mut link, frame).unwrap();
    match wire::recv(&mut link, 1 << 20) {
        Ok(Frame::Error { code, message }) => (code, message),
        other => panic!(
            "expected an error frame for {}, got {other:?}",
            frame.name()
        ),
    }
}

/// `clients` concurrent sessions of `records` against `d`, each checked
/// against the plaintext reference.
pub fn serve_concurrently(d: &Arc<Deployment>, clients: usize, records: &[Vec<f64>]) {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (d, recs) = (d.clone(), records.to_vec());
            std::thread::spawn(move || {
                let (preds, _) = run(&d.client(), &recs).unwrap();
                assert_correct(&d.net, &recs, &preds);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
