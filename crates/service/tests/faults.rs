//! Faults over real TLS on loopback: a link cut at every step of the
//! protocol, crafted frames, garbage, wrong certificates, mismatches on both
//! sides, silent peers, and idle sockets. Every case ends in a clear error
//! for the affected party, no panic, no hang, and servers that serve the
//! next session correctly.

mod common;

/// The largest single allocation this test binary made: the crafted
/// architectures below must be refused before any allocation their sizes
/// would call for (gigabytes, had they been built).
#[allow(unsafe_code)]
mod largest_allocation {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    /// The system allocator, recording the largest size asked for.
    struct Recording;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Recording {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Recording = Recording;

    /// The largest allocation so far, in bytes.
    pub(crate) fn largest() -> usize {
        LARGEST.load(Ordering::Relaxed)
    }
}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use cryptmed_channel::Channel;
use cryptmed_engine::{EngineConfig, Model, Reveal};
use cryptmed_service::client::{BatchReport, ClientSetup};
use cryptmed_service::tls::{Identity, RoleNames, generate_certs};
use cryptmed_service::wire::{self, Frame, VERSION};
use cryptmed_service::{Limits, Link, Role, Security, ServiceError, Timeouts};

/// Which link a cut is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    ClientProvider,
    ClientDealer,
    ProviderDealer,
}

/// One cut and what it must produce.
#[derive(Debug, Clone)]
struct Case {
    link: Which,
    cut: Cut,
    /// The party reading the cut direction.
    receiver: &'static str,
    /// The step its error must name.
    step: String,
    /// The cut falls after the last result (the client has succeeded).
    client_ok: bool,
}

/// Every step boundary of a one-batch session, from the client's report of
/// a clean run (per-layer bytes each way, setup, dealer material).
fn cases(r: &BatchReport) -> Vec<Case> {
    let e = &r.engine;
    let mut v = Vec::new();
    let mut add = |link, dir, frames, bytes, receiver, step: &str, client_ok| {
        v.push(Case {
            link,
            cut: Cut { dir, frames, bytes },
            receiver,
            step: step.to_string(),
            client_ok,
        })
    };
    use Dir::{Down, Up};
    use Which::*;
    // Client -> provider: hello, accept, batch, the online steps, done.
    add(ClientProvider, Up, 0, 2, "provider", "hello", false);
    add(ClientProvider, Up, 1, 2, "provider", "accept", false);
    add(ClientProvider, Up, 2, 2, "provider", "batch", false);
    // Provider -> client: model info, ready, the masked weights, the online steps.
    add(ClientProvider, Down, 0, 2, "client", "model info", false);
    add(ClientProvider, Down, 1, 2, "client", "pairing", false);
    // The setup stream: the input limits (8 bytes for each of the model's
    // 30 columns), then the masked weights.
    add(
        ClientProvider,
        Down,
        2,
        1,
        "client",
        "setup: input limits",
        false,
    );
    add(
        ClientProvider,
        Down,
        2,
        8 * 30 + 1,
        "client",
        "setup: masked weights",
        false,
    );
    let (mut sent, mut recv) = (0, 0);
    // The report's per-step lines (the last is the output step) add up to the online cost.
    let steps: Vec<(String, u64, u64)> = e
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.bytes_sent, l.bytes_recv))
        .collect();
    let (ls, lr): (u64, u64) = steps.iter().fold((0, 0), |a, s| (a.0 + s.1, a.1 + s.2));
    assert_eq!((ls, lr), (e.online_bytes_sent, e.online_bytes_recv));
    assert_eq!(steps.last().map(|s| s.0.as_str()), Some("output"));
    let setup = e.setup_bytes as usize;
    for (name, s, r) in &steps {
        if *s > 0 {
            add(ClientProvider, Up, 3, sent + 1, "provider", name, false);
        }
        if *r > 0 {
            add(
                ClientProvider,
                Down,
                2,
                setup + recv + 1,
                "client",
                name,
                false,
            );
        }
        sent += *s as usize;
        recv += *r as usize;
    }
    add(ClientProvider, Up, 3, sent + 2, "provider", "batch", true);
    // Client <-> dealer: join, batch, done; pairing, seed, header, material, report.
    add(ClientDealer, Up, 0, 2, "dealer", "join", false);
    add(ClientDealer, Up, 1, 2, "dealer", "batch", false);
    add(ClientDealer, Up, 2, 2, "dealer", "batch", true);
    let corrections = e.offline_bytes as usize - 48;
    add(ClientDealer, Down, 0, 2, "client", "pairing", false);
    add(ClientDealer, Down, 1, 1, "client", "dealer seed", false);
    add(
        ClientDealer,
        Down,
        1,
        65,
        "client",
        "dealer batch header",
        false,
    );
    add(
        ClientDealer,
        Down,
        1,
        113,
        "client",
        "dealer material",
        false,
    );
    add(
        ClientDealer,
        Down,
        1,
        112 + corrections + 2,
        "client",
        "dealer report",
        false,
    );
    // Provider <-> dealer: join; pairing, seed, header.
    add(ProviderDealer, Up, 0, 2, "dealer", "join", false);
    add(ProviderDealer, Down, 0, 2, "provider", "pairing", false);
    add(ProviderDealer, Down, 1, 1, "provider", "dealer seed", false);
    add(
        ProviderDealer,
        Down,
        1,
        65,
        "provider",
        "dealer batch header",
        false,
    );
    v
}

/// Runs one cut on a fresh deployment whose three links all pass through
/// proxies; returns what went wrong, if anything.
fn run_case(case: &Case, net: &cryptmed_model::Network, recs: &[Vec<f64>]) -> Result<(), String> {
    let certs = certs();
    let stop = Stop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let lim = limits();
    let dealer = start_dealer(security(&certs, "dealer", true), lim, &stop);
    let cut = |w: Which| (case.link == w).then_some(case.cut);
    let face = |role: &str| security(&certs, role, false);
    let pd = proxy(
        &dealer,
        Role::Dealer,
        face("dealer"),
        face("provider"),
        cut(Which::ProviderDealer),
        &stop,
    );
    let cd = proxy(
        &dealer,
        Role::Dealer,
        face("dealer"),
        face("client"),
        cut(Which::ClientDealer),
        &stop,
    );
    let provider = start_provider(
        net,
        Reveal::Label,
        &pd.addr,
        security(&certs, "provider", true),
        lim,
        &stop,
    );
    let cp = proxy(
        &provider,
        Role::Provider,
        face("provider"),
        face("client"),
        cut(Which::ClientProvider),
        &stop,
    );
    let client = ClientSetup {
        server: cp.addr.clone(),
        dealer: cd.addr.clone(),
        security: face("client"),
        limits: lim,
        batch: recs.len(),
        reveal: None,
    };
    let t = Instant::now();
    let r = run(&client, recs);
    let elapsed = t.elapsed();
    let client_msg = match (&r, case.client_ok) {
        (Ok(_), true) => String::new(),
        (Ok(_), false) => return Err("the client succeeded".into()),
        (Err(e), false) => e.to_string(),
        (Err(e), true) => return Err(format!("the client failed: {e}")),
    };
    if client_msg.contains("timed out") || elapsed > Duration::from_secs(15) {
        return Err(format!("the client waited {elapsed:?}: {client_msg}"));
    }
    let want = format!("during {}", case.step);
    match case.receiver {
        "client" => {
            if !client_msg.contains(&want) || !client_msg.contains("closed") {
                return Err(format!("the client's error lacks {want:?}: {client_msg}"));
            }
        }
        server => {
            let first = |p: &Proxy| {
                p.upstream
                    .lock()
                    .unwrap()
                    .first()
                    .map(|a| format!("peer={a}"))
            };
            let peers: Vec<String> = if server == "provider" {
                first(&cp).into_iter().collect()
            } else {
                [first(&pd), first(&cd)].into_iter().flatten().collect()
            };
            let failed = if server == "provider" {
                "session failed"
            } else {
                "dealer session failed"
            };
            wait_log_where(&format!("{failed} {want} from {peers:?}"), |l| {
                l.contains(failed)
                    && l.contains(&want)
                    && l.contains("closed")
                    && peers.iter().any(|p| l.contains(p.as_str()))
            })?;
        }
    }
    // The same servers (and proxies, now passing through) serve the next session.
    let (preds, _) = run(&client, recs).map_err(|e| format!("the next session failed: {e}"))?;
    assert_correct(net, recs, &preds);
    Ok(())
}

#[test]
fn a_link_cut_at_any_step_fails_clearly_and_the_servers_keep_serving() {
    init();
    let net = network();
    let recs = records(2);
    let base = deploy(Reveal::Label, limits());
    let mut setup = base.client();
    setup.batch = recs.len();
    let (preds, report) = run(&setup, &recs).unwrap();
    assert_correct(&net, &recs, &preds);
    let all = cases(&report);
    assert!(all.len() >= 25, "{} cases", all.len());
    let queue = Arc::new(Mutex::new(all.clone()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (queue, failures, net, recs) =
                (queue.clone(), failures.clone(), net.clone(), recs.clone());
            std::thread::spawn(move || {
                while let Some(case) = queue.lock().unwrap().pop() {
                    if let Err(e) = run_case(&case, &net, &recs) {
                        failures.lock().unwrap().push(format!("{case:?}: {e}"));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(panics().is_empty(), "{:?}", panics());
}

/// Sends raw bytes over TLS to a server of `role` and returns its answer frame, if any.
fn send_raw(addr: &str, role: Role, sec: &Security, bytes: &[u8], close: bool) -> Option<Frame> {
    let mut link = raw(addr, role, sec);
    link.send(bytes).unwrap();
    link.flush().unwrap();
    if close {
        // Truncated: shut our side after the partial frame.
        let _ = link.get_mut().flush();
        drop(link);
        return None;
    }
    wire::recv(&mut link, 1 << 20).ok()
}

fn frame_bytes(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

#[test]
fn crafted_frames_are_refused_with_what_was_wrong_and_the_servers_keep_serving() {
    init();
    let lim = Limits {
        max_frame: 4096,
        ..limits()
    };
    let d = deploy(Reveal::Label, lim);
    let client = security(&d.certs, "client", false);
    let provider = security(&d.certs, "provider", false);
    // Oversized (above the configured 4096-byte limit), malformed, wrong type.
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "oversized",
            (5000u32).to_le_bytes().to_vec(),
            "frame of 5000 bytes exceeds the 4096-byte limit",
        ),
        (
            "malformed",
            frame_bytes("{\"type\":\"hello\",\"version\":"),
            "malformed frame",
        ),
        (
            "not json",
            frame_bytes("\u{1}\u{2}garbage"),
            "malformed frame",
        ),
        (
            "wrong type",
            frame_bytes("{\"type\":\"batch\",\"size\":3}"),
            "the client sent a batch frame during hello; expected hello",
        ),
    ];
    for (what, bytes, want) in &cases {
        let answer = send_raw(&d.provider, Role::Provider, &client, bytes, false);
        match answer {
            Some(Frame::Error { code, message }) => {
                assert_eq!(code, "protocol", "{what}");
                assert!(message.contains(want), "{what}: {message}");
            }
            other => panic!("{what}: {other:?}"),
        }
        wait_log(&["session failed", want]);
    }
    // Truncated: a length, part of the body, then the connection ends.
    let mut t = frame_bytes("{\"type\":\"hello\",\"version\":2,\"reveal\":null}");
    t.truncate(10);
    send_raw(&d.provider, Role::Provider, &client, &t, true);
    wait_log(&[
        "session failed",
        "during hello: the peer closed the connection",
    ]);
    // The dealer: a wrong frame type, and a join as a role that cannot join.
    let null = || serde_json::Value::Null;
    let hello = Frame::Hello {
        version: VERSION,
        reveal: None,
    };
    let (_, message) = refusal(&d.dealer, Role::Dealer, &provider, &hello);
    assert!(
        message.contains("the party sent a hello frame during join; expected join"),
        "{message}"
    );
    let as_dealer = join("dealer", "s", null(), null(), "d");
    let (_, message) = refusal(&d.dealer, Role::Dealer, &provider, &as_dealer);
    assert!(
        message.contains("only a provider or a client can join"),
        "{message}"
    );
    // A provider certificate joining as the client is refused.
    let as_client = join("client", "s", null(), null(), "d");
    let (code, message) = refusal(&d.dealer, Role::Dealer, &provider, &as_client);
    assert!(
        code == "role" && message.contains("certificate for the provider role; expected client"),
        "{code}: {message}"
    );
    // A frame limit below the architecture's size stops the client at model info.
    let mut small = d.client();
    small.limits.max_frame = 1024;
    let err = run(&small, &records(1)).unwrap_err();
    assert!(
        err.to_string().contains("during model info")
            && err.to_string().contains("exceeds the 1024-byte limit"),
        "{err}"
    );
    let (preds, _) = run(&d.client(), &records(3)).unwrap();
    assert_correct(&d.net, &records(3), &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn garbage_and_plain_tcp_on_a_tls_port_are_named_and_the_server_keeps_serving() {
    init();
    let d = deploy(Reveal::Label, limits());
    let port = d.provider.rsplit_once(':').unwrap().1;
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let local = s.local_addr().unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x01garbage")
        .unwrap();
    let mut answer = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut answer);
    let line = wait_log(&[&format!("peer={local}"), "session failed"]);
    assert!(line.contains("the peer does not speak TLS"), "{line}");
    // A plain-TCP client: both sides say what is wrong.
    let plain = ClientSetup {
        security: Security::Plaintext,
        ..d.client()
    };
    let err = run(&plain, &records(1)).unwrap_err().to_string();
    assert!(
        err.contains("the peer speaks TLS and this side plain TCP"),
        "{err}"
    );
    wait_log(&["session failed", "the peer does not speak TLS"]);
    let (preds, _) = run(&d.client(), &records(2)).unwrap();
    assert_correct(&d.net, &records(2), &preds);
}

#[test]
fn wrong_expired_foreign_missing_and_misused_certificates_are_refused() {
    init();
    let d = deploy(Reveal::Label, limits());
    let recs = records(1);
    let identity = |set: &cryptmed_service::tls::CertSet, role: &str| {
        let (c, k) = set.role(role).unwrap();
        Some(Identity::from_pem(c.as_bytes(), k.as_bytes()).unwrap())
    };
    let names = RoleNames::all(&["localhost".into(), "127.0.0.1".into()]);
    // A client that trusts another CA refuses the provider.
    let other = generate_certs(&names, false).unwrap();
    let c = ClientSetup {
        security: Security::tls(other.ca_pem.as_bytes(), identity(&other, "client"), false)
            .unwrap(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(err.contains("not signed by our CA"), "{err}");
    // A client certificate from another CA: the provider refuses it, and says so.
    let c = ClientSetup {
        security: Security::tls(d.certs.ca_pem.as_bytes(), identity(&other, "client"), false)
            .unwrap(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(
        err.contains("the provider ended TLS with the alert DecryptError: it did not accept this client's certificate"),
        "{err}"
    );
    wait_log(&["session failed", "not signed by our CA"]);
    // No client certificate where one is required.
    let c = ClientSetup {
        security: anonymous(&d.certs),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(
        err.contains("the provider requires a client certificate and this client presented none"),
        "{err}"
    );
    wait_log(&["session failed", "presented no certificate"]);
    // Expired certificates, signed by the right CA.
    let old = generate_certs(&names, true).unwrap();
    let stop = Stop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let expired_provider = start_provider(
        &d.net,
        Reveal::Label,
        &d.dealer,
        Security::tls(old.ca_pem.as_bytes(), identity(&old, "provider"), false).unwrap(),
        limits(),
        &stop,
    );
    let c = ClientSetup {
        server: expired_provider,
        security: Security::tls(old.ca_pem.as_bytes(), identity(&old, "client"), false).unwrap(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(err.contains("certificate has expired"), "{err}");
    let c = ClientSetup {
        security: Security::tls(d.certs.ca_pem.as_bytes(), identity(&old, "client"), false)
            .unwrap(),
        ..d.client()
    };
    assert!(run(&c, &recs).is_err());
    wait_log(&["session failed", "certificate has expired"]);
    // Role confusion: a dealer certificate used by a client, a client
    // talking to a dealer as if it were the provider, a provider
    // certificate presented by a client to the dealer.
    let c = ClientSetup {
        security: security(&d.certs, "dealer", false),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err();
    assert!(
        err.to_string()
            .contains("certificate for the dealer role; expected client")
            && err.code() == "role",
        "{err}"
    );
    wait_log(&[
        "session failed",
        "certificate for the dealer role; expected client",
    ]);
    let c = ClientSetup {
        server: d.dealer.clone(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(
        err.contains("certificate for the dealer role; expected provider"),
        "{err}"
    );
    let c = ClientSetup {
        dealer: d.provider.clone(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(
        err.contains("certificate for the provider role; expected dealer"),
        "{err}"
    );
    wait_log(&["session failed", "the client cannot use its dealer"]);
    // And the deployment still serves a well-configured client.
    let (preds, _) = run(&d.client(), &recs).unwrap();
    assert_correct(&d.net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

/// A fake provider: answers the client's hello with `answer` and returns
/// the client's reply.
fn fake_provider(
    certs: &cryptmed_service::tls::CertSet,
    answer: impl FnOnce() -> Frame + Send + 'static,
) -> (String, std::thread::JoinHandle<Option<Frame>>) {
    let (l, addr) = listener();
    let sec = security(certs, "provider", false);
    let h = std::thread::spawn(move || {
        let (tcp, _) = l.accept().ok()?;
        let c = cryptmed_service::tls::accept(
            tcp,
            &sec,
            Duration::from_secs(5),
            Duration::from_secs(10),
        )
        .ok()?;
        let mut link = Link::new(c.stream);
        wire::recv(&mut link, 1 << 20).ok()?;
        wire::send(&mut link, &answer()).ok()?;
        wire::recv(&mut link, 1 << 20).ok()
    });
    (addr, h)
}

/// A model info as the real provider would send it, for the fake one to alter.
fn model_info(net: &cryptmed_model::Network, dealer_fp: &str) -> Frame {
    let config = EngineConfig::default();
    let model = Model::compile(net.public(), config).unwrap();
    Frame::ModelInfo {
        version: VERSION,
        session: "00".repeat(16),
        network: serde_json::to_value(net.public()).unwrap(),
        config: serde_json::to_value(config).unwrap(),
        digest: model
            .architecture_digest()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        class_names: None,
        dealer: dealer_fp.into(),
        max_batch: 16,
    }
}

#[test]
fn every_mismatch_is_named_on_both_sides() {
    init();
    let d = deploy(Reveal::Label, limits());
    let recs = records(1);
    let client = security(&d.certs, "client", false);
    // Version, client side: a provider speaking version 99.
    let net = d.net.clone();
    let (addr, h) = fake_provider(&d.certs, move || {
        let mut f = model_info(&net, "x");
        if let Frame::ModelInfo { version, .. } = &mut f {
            *version = 99;
        }
        f
    });
    let c = ClientSetup {
        server: addr,
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err();
    assert!(
        err.is_mismatch() && err.to_string().contains("version mismatch"),
        "{err}"
    );
    let reply = h.join().unwrap();
    assert!(
        matches!(&reply, Some(Frame::Error { code, message }) if code == "version" && message.contains(&format!("ours is {VERSION}, the provider's is 99"))),
        "{reply:?}"
    );
    // Version, provider side: a client speaking version 99.
    let hello_99 = Frame::Hello {
        version: 99,
        reveal: None,
    };
    let (code, message) = refusal(&d.provider, Role::Provider, &client, &hello_99);
    assert!(
        code == "version" && message.contains("the client's is 99"),
        "{code}: {message}"
    );
    wait_log(&[
        "session failed",
        &format!("version mismatch: ours is {VERSION}, the client's is 99"),
    ]);
    // Digest, client side: the announced digest is not the architecture's.
    let net = d.net.clone();
    let (addr, h) = fake_provider(&d.certs, move || {
        let mut f = model_info(&net, "x");
        if let Frame::ModelInfo { digest, .. } = &mut f {
            *digest = "ff".repeat(32);
        }
        f
    });
    let c = ClientSetup {
        server: addr,
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err();
    assert!(
        err.is_mismatch() && err.to_string().contains("digest mismatch"),
        "{err}"
    );
    let reply = h.join().unwrap();
    assert!(
        matches!(&reply, Some(Frame::Error { code, message }) if code == "digest" && message.contains(&"ff".repeat(32))),
        "{reply:?}"
    );
    // Digest, provider side: a client that refuses the provider's digest; the provider logs why.
    let mut link = hello_to_provider(&d.provider, &client);
    wire::send(
        &mut link,
        &Frame::Error {
            code: "digest".into(),
            message: "digest mismatch: ours is 00, the provider's is 11".into(),
        },
    )
    .unwrap();
    wait_log(&[
        "session failed",
        "the client refused the session (digest): digest mismatch",
    ]);
    // Policy: a client that insists on logits from a label-only provider.
    let c = ClientSetup {
        reveal: Some(Reveal::Logits),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err();
    assert!(
        err.is_mismatch()
            && err
                .to_string()
                .contains("policy mismatch: ours is label, the client's is logits"),
        "{err}"
    );
    wait_log(&[
        "session failed",
        "policy mismatch: ours is label, the client's is logits",
    ]);
    // Dealer, client side: the client trusts another dealer (of a second CA that
    // every party here trusts, so only the dealer differs).
    let names = RoleNames::all(&["localhost".into(), "127.0.0.1".into()]);
    let other = generate_certs(&names, false).unwrap();
    let both = format!("{}{}", d.certs.ca_pem, other.ca_pem);
    let stop = Stop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let (dc, dk) = other.role("dealer").unwrap();
    let other_dealer = start_dealer(
        Security::tls(
            both.as_bytes(),
            Some(Identity::from_pem(dc.as_bytes(), dk.as_bytes()).unwrap()),
            true,
        )
        .unwrap(),
        limits(),
        &stop,
    );
    let (cc, ck) = d.certs.role("client").unwrap();
    let c = ClientSetup {
        dealer: other_dealer,
        security: Security::tls(
            both.as_bytes(),
            Some(Identity::from_pem(cc.as_bytes(), ck.as_bytes()).unwrap()),
            false,
        )
        .unwrap(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err();
    assert!(
        err.is_mismatch() && err.to_string().contains("dealer mismatch"),
        "{err}"
    );
    wait_log(&[
        "session failed",
        "the client refused the session (dealer): dealer mismatch",
    ]);
    // Dealer, provider side: a client that claims another dealer.
    let mut link = hello_to_provider(&d.provider, &client);
    wire::send(
        &mut link,
        &Frame::Accept {
            dealer: "0123456789abcdef0123".into(),
        },
    )
    .unwrap();
    let answer = wire::recv(&mut link, 1 << 20);
    assert!(
        matches!(&answer, Ok(Frame::Error { code, message }) if code == "dealer" && message.contains("the client's is a dealer with certificate 0123456789abcdef")),
        "{answer:?}"
    );
    wait_log(&["session failed", "dealer mismatch: ours is the dealer at"]);
    let (preds, _) = run(&d.client(), &recs).unwrap();
    assert_correct(&d.net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn an_unreachable_dealer_is_reported_to_the_other_party_at_once() {
    init();
    let d = deploy(Reveal::Label, limits());
    let recs = records(1);
    // The provider's dealer is down: the client hears it from the provider, with the reason.
    let stop = Stop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let lonely = start_provider(
        &d.net,
        Reveal::Label,
        "127.0.0.1:1",
        security(&d.certs, "provider", true),
        limits(),
        &stop,
    );
    let c = ClientSetup {
        server: lonely,
        ..d.client()
    };
    let t = Instant::now();
    let err = run(&c, &recs).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let msg = err.to_string();
    assert!(
        msg.contains("the provider refused the session (dealer_unreachable)")
            && msg.contains("cannot connect to the dealer at 127.0.0.1:1"),
        "{msg}"
    );
    assert!(!err.is_mismatch());
    // The client's dealer is down: the provider hears it from the client.
    let c = ClientSetup {
        dealer: "127.0.0.1:1".into(),
        ..d.client()
    };
    let err = run(&c, &recs).unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to the dealer at 127.0.0.1:1"),
        "{err}"
    );
    wait_log(&[
        "session failed",
        "the client refused the session (dealer_unreachable): the client cannot use its dealer",
    ]);
    let (preds, _) = run(&d.client(), &recs).unwrap();
    assert_correct(&d.net, &recs, &preds);
}

#[test]
fn silent_peers_time_out_after_the_configured_time() {
    init();
    let one = Limits {
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            io: Duration::from_secs(1),
        },
        ..limits()
    };
    let d = deploy(Reveal::Label, one);
    let certs = &d.certs;
    // A provider that completes TLS and then says nothing.
    let (l, addr) = listener();
    let sec = security(certs, "provider", false);
    let silent = std::thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        let c = cryptmed_service::tls::accept(
            tcp,
            &sec,
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(c);
    });
    let c = ClientSetup {
        server: addr,
        limits: one,
        ..d.client()
    };
    let t = Instant::now();
    let err = run(&c, &records(1)).unwrap_err().to_string();
    let took = t.elapsed();
    assert!(
        err.contains("during model info: timed out waiting for the peer"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    silent.join().unwrap();
    // A client that says hello and then nothing: the provider gives up after its timeout.
    let link = hello_to_provider(&d.provider, &security(certs, "client", false));
    wait_log(&[
        "session failed",
        "the client link failed during accept: timed out waiting for the peer",
    ]);
    drop(link);
    let (preds, _) = run(&d.client(), &records(2)).unwrap();
    assert_correct(&d.net, &records(2), &preds);
}

#[test]
fn idle_sockets_and_a_stalled_session_never_shut_out_real_clients() {
    init();
    // A long handshake deadline, so the idle sockets stay for the whole test.
    let lim = Limits {
        handshake: Duration::from_secs(60),
        ..limits()
    };
    let d = Arc::new(deploy(Reveal::Label, lim));
    let port = |a: &str| a.rsplit_once(':').unwrap().1.to_string();
    let idle: Vec<TcpStream> = (0..70)
        .flat_map(|_| {
            [
                TcpStream::connect(format!("127.0.0.1:{}", port(&d.provider))).unwrap(),
                TcpStream::connect(format!("127.0.0.1:{}", port(&d.dealer))).unwrap(),
            ]
        })
        .collect();
    // A stalled session: TLS, hello, model info, then nothing.
    let stalled = hello_to_provider(&d.provider, &security(&d.certs, "client", false));
    serve_concurrently(&d, 32, &records(3));
    drop(idle);
    drop(stalled);
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn handshakes_have_a_deadline_and_a_cap() {
    init();
    let lim = Limits {
        handshake: Duration::from_secs(1),
        max_pending: 3,
        session_deadline: Duration::from_secs(3),
        ..limits()
    };
    let d = deploy(Reveal::Label, lim);
    let addr = format!("127.0.0.1:{}", d.provider.rsplit_once(':').unwrap().1);
    // A slow sender (one byte every 300 ms) is cut at the handshake deadline.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let local = slow.local_addr().unwrap();
    let t = Instant::now();
    for b in b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_log(&[
        &format!("peer={local}"),
        "session failed",
        "handshake deadline of 1s passed",
    ]);
    assert!(t.elapsed() < Duration::from_secs(10));
    // A session that stalls after the hello ends at the session deadline,
    // well before the 20 s read timeout.
    let stalled = hello_to_provider(&d.provider, &security(&d.certs, "client", false));
    wait_log(&["session failed", "the session deadline of 3s passed"]);
    drop(stalled);
    // Three idle sockets fill the handshake slots: a fourth is closed at once, and logged.
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = TcpStream::connect(&addr).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(matches!(fourth.read(&mut b), Ok(0) | Err(_)));
    wait_log(&["too many connections in their handshake"]);
    // Once they are gone (closed by the deadline), real clients are served.
    drop(idle);
    std::thread::sleep(Duration::from_millis(1500));
    let (preds, _) = run(&d.client(), &records(2)).unwrap();
    assert_correct(&d.net, &records(2), &preds);
}

#[test]
fn the_dealer_reports_every_byte_of_both_its_links() {
    init();
    let d = deploy(Reveal::Label, limits());
    let recs = records(5);
    let mut setup = d.client();
    setup.batch = 2;
    let mut reports = Vec::new();
    let mut session = String::new();
    let info = cryptmed_service::client::diagnose(
        &setup,
        |i| {
            session = i.session.clone();
            Ok(recs.clone())
        },
        |_, _, r| {
            reports.push(r.clone());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(info.session, session);
    assert_eq!(reports.len(), 3);
    // Once per session: two joins, two pairing frames, two seed headers.
    let model = Model::compile(d.net.public(), EngineConfig::default()).unwrap();
    let digest: String = model
        .architecture_digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let join_bytes = |role: &str| {
        wire::encode(&join(
            role,
            &session,
            serde_json::to_value(d.net.public()).unwrap(),
            serde_json::to_value(EngineConfig::default()).unwrap(),
            &digest,
        ))
        .len() as u64
    };
    let paired = wire::encode(&Frame::Paired { max_batch: 256 }).len() as u64;
    let want_session = join_bytes("provider") + join_bytes("client") + 2 * paired + 2 * 64;
    // Per batch: the batch frame, the provider's material (with the PPA
    // comparison, only the stream's framing: a 40-byte header and an 8-byte
    // length per plan step and the output step), the client's material, and
    // the previous batch's report frame.
    let model = Model::compile(d.net.public(), EngineConfig::default()).unwrap();
    let framing = 40 + 8 * (model.plan().steps.len() as u64 + 1);
    let mut previous: Option<(u64, u64)> = None;
    for r in &reports {
        assert_eq!(r.dealer_session_bytes, want_session);
        let records_in_batch = if r == reports.last().unwrap() { 1 } else { 2 };
        let batch_frame = wire::encode(&Frame::Batch {
            size: records_in_batch,
        })
        .len() as u64;
        let dealt = previous.map_or(0, |(s, b)| {
            wire::encode(&Frame::Dealt {
                session_bytes: s,
                batch_bytes: b,
            })
            .len() as u64
        });
        assert_eq!(
            r.dealer_batch_bytes,
            batch_frame + framing + r.engine.offline_bytes + dealt,
            "{r:?}"
        );
        previous = Some((r.dealer_session_bytes, r.dealer_batch_bytes));
    }
    assert_eq!(
        reports[0].engine.offline_bytes,
        model.offline_bytes(2) - framing
    );
}

/// Crafted architectures (and one configuration) as a peer could send them,
/// each with what the refusal must say: the audit's stride 0, a dangling
/// value id, pooling over 40000x40000, pooling windows past the plan limit,
/// weights of the wrong shape or length, a layer past the weight limit.
fn crafted_architectures(
    net: &cryptmed_model::Network,
) -> Vec<(
    &'static str,
    serde_json::Value,
    serde_json::Value,
    &'static str,
)> {
    use serde_json::json;
    let public = serde_json::to_value(net.public()).unwrap();
    let config = serde_json::to_value(EngineConfig::default()).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut n = public.clone();
        f(&mut n);
        n
    };
    let pool = |input: [usize; 3], kernel: usize, stride: usize, out: [usize; 3]| {
        with(&|n| {
            n["input_shape"] = json!(input);
            n["nodes"] = json!([{
                "name": "mp", "inputs": [0], "shape": out,
                "op": {"op": "max_pool", "geom": {
                    "ch": input[0], "in_h": input[1], "in_w": input[2],
                    "kernel": [kernel, kernel], "stride": [stride, stride], "pads": [0, 0, 0, 0]}}
            }]);
        })
    };
    vec![
        (
            "stride 0",
            pool([1, 4, 4], 2, 0, [1, 2, 2]),
            config.clone(),
            "node mp (maxpool): stride 0 along the height",
        ),
        (
            "dangling value id",
            with(&|n| n["nodes"][1]["inputs"] = json!([99])),
            config.clone(),
            "node /1/Gemm (dense): reads value 99, which is not computed before it",
        ),
        (
            "gigantic pooling",
            pool([1, 40000, 40000], 2, 2, [1, 20000, 20000]),
            config.clone(),
            "the input shape [1, 40000, 40000] has 1600000000 elements, above the limit",
        ),
        (
            "gigantic windows",
            pool([256, 128, 128], 8, 1, [256, 121, 121]),
            config.clone(),
            "value elements and pooling-window entries per record, above the limit of 67108864",
        ),
        (
            "wrong weight shape",
            with(&|n| n["nodes"][1]["op"]["weight"]["shape"] = json!([64, 7])),
            config.clone(),
            "node /1/Gemm (dense): weights of shape [64, 7] map 7 inputs to 64 outputs; the input has 30 elements",
        ),
        (
            "wrong weight length",
            with(&|n| n["nodes"][1]["op"]["weight"]["data"] = json!([0.5, 0.5, 0.5])),
            config.clone(),
            "node /1/Gemm (dense): weights hold 3 values for shape [64, 30]",
        ),
        (
            "huge layer",
            with(&|n| {
                n["nodes"][1]["op"]["weight"]["shape"] = json!([1 << 20, 30]);
                n["nodes"][1]["shape"] = json!([1 << 20]);
            }),
            config.clone(),
            "node /1/Gemm (dense): weights of shape [1048576, 30]: more than the limit of 16777216 per layer",
        ),
        (
            "fixed point",
            public.clone(),
            json!({"fixed": {"frac_bits": 200}, "precision": "accurate", "reveal": "label", "comparison": "ppa"}),
            "configuration: 200 fractional bits is not supported (use 1 to 30)",
        ),
    ]
}

#[test]
fn crafted_architectures_are_refused_before_allocation_and_the_dealer_keeps_serving() {
    init();
    let d = deploy(Reveal::Label, limits());
    let client = security(&d.certs, "client", false);
    for (what, network, config, want) in crafted_architectures(&d.net) {
        let crafted = join("client", &"ab".repeat(16), network, config, "00");
        let (code, message) = refusal(&d.dealer, Role::Dealer, &client, &crafted);
        let code_wanted = if what == "fixed point" {
            "protocol"
        } else {
            "architecture"
        };
        assert_eq!(code, code_wanted, "{what}: {message}");
        assert!(message.contains(want), "{what}: {message}");
        if code == "architecture" {
            assert!(
                message.starts_with("the client sent an invalid network breast-cancer-relu: "),
                "{what}: {message}"
            );
        }
        wait_log(&["dealer session failed", want]);
    }
    // Nothing near the sizes described was allocated (built, the huge layer's
    // masks alone would take 250 MB and the pooling windows gigabytes); the
    // sessions these tests run allocate well under a megabyte at a time.
    assert!(
        largest_allocation::largest() < 64 << 20,
        "largest allocation: {} bytes",
        largest_allocation::largest()
    );
    // And the dealer still pairs and serves a correct session.
    let recs = records(3);
    let (preds, _) = run(&d.client(), &recs).unwrap();
    assert_correct(&d.net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn a_client_refuses_a_crafted_architecture_and_tells_the_provider_why() {
    init();
    let d = deploy(Reveal::Label, limits());
    let recs = records(1);
    for (what, network, config, want) in crafted_architectures(&d.net) {
        let net = d.net.clone();
        let (addr, h) = fake_provider(&d.certs, move || {
            let mut f = model_info(&net, "x");
            if let Frame::ModelInfo {
                network: n,
                config: c,
                ..
            } = &mut f
            {
                *n = network;
                *c = config;
            }
            f
        });
        let c = ClientSetup {
            server: addr,
            ..d.client()
        };
        let err = run(&c, &recs).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want), "{what}: {msg}");
        if what == "fixed point" {
            assert_eq!(err.code(), "protocol", "{msg}");
        } else {
            assert!(
                matches!(
                    err,
                    ServiceError::Architecture {
                        peer: "provider",
                        ..
                    }
                ) && msg.starts_with("the provider sent an invalid network"),
                "{what}: {msg}"
            );
        }
        let reply = h.join().unwrap();
        assert!(
            matches!(&reply, Some(Frame::Error { code, message }) if code == err.code() && message.contains(want)),
            "{what}: {reply:?}"
        );
    }
    assert!(
        largest_allocation::largest() < 64 << 20,
        "largest allocation: {} bytes",
        largest_allocation::largest()
    );
    let (preds, _) = run(&d.client(), &recs).unwrap();
    assert_correct(&d.net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn a_client_the_dealer_refuses_at_tls_learns_it_at_once_from_its_own_dealer_link() {
    init();
    let certs = certs();
    let stop = Stop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    // A pairing wait far longer than the test: were the client to wait for it,
    // its error would be the provider's "no partner joined", not the dealer's reason.
    let lim = Limits {
        pair_timeout: Duration::from_secs(600),
        ..limits()
    };
    let dealer = start_dealer(security(&certs, "dealer", true), lim, &stop);
    let net = network();
    // The provider requires no client certificate, and also trusts a second CA
    // (whose client certificates the dealer does not accept).
    let names = cryptmed_service::tls::RoleNames::all(&["localhost".into(), "127.0.0.1".into()]);
    let other = generate_certs(&names, false).unwrap();
    let (pc, pk) = certs.role("provider").unwrap();
    let provider = start_provider(
        &net,
        Reveal::Label,
        &dealer,
        Security::tls(
            format!("{}{}", certs.ca_pem, other.ca_pem).as_bytes(),
            Some(Identity::from_pem(pc.as_bytes(), pk.as_bytes()).unwrap()),
            false,
        )
        .unwrap(),
        lim,
        &stop,
    );
    let client = |security| ClientSetup {
        server: provider.clone(),
        dealer: dealer.clone(),
        security,
        limits: limits(),
        batch: 4,
        reveal: None,
    };
    let recs = records(2);
    // No client certificate: the dealer requires one.
    let err = run(&client(anonymous(&certs)), &recs).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ServiceError::Handshake { .. })
            && msg.contains(&format!("TLS handshake with {dealer} failed"))
            && msg.contains(
                "the dealer requires a client certificate and this client presented none"
            ),
        "{msg}"
    );
    wait_log(&["dealer session failed", "the peer presented no certificate"]);
    // A client certificate of the second CA: the provider accepts it, the dealer does not.
    let (c, k) = other.role("client").unwrap();
    let foreign = Security::tls(
        certs.ca_pem.as_bytes(),
        Some(Identity::from_pem(c.as_bytes(), k.as_bytes()).unwrap()),
        false,
    )
    .unwrap();
    let err = run(&client(foreign), &recs).unwrap_err().to_string();
    assert!(
        err.contains("it did not accept this client's certificate"),
        "{err}"
    );
    // With its certificate, the same client is served.
    let (preds, _) = run(&client(security(&certs, "client", false)), &recs).unwrap();
    assert_correct(&net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn the_dealer_sizes_batches_to_its_material_limit() {
    init();
    let certs = certs();
    let stop = Stop(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let net = network();
    let model = Model::compile(net.public(), EngineConfig::default()).unwrap();
    // Room for three records' material, not four.
    let lim = Limits {
        max_batch_material: model.offline_bytes(3),
        ..limits()
    };
    assert!(model.offline_bytes(4) > lim.max_batch_material);
    let dealer = start_dealer(security(&certs, "dealer", true), lim, &stop);
    let provider = start_provider(
        &net,
        Reveal::Label,
        &dealer,
        security(&certs, "provider", true),
        limits(),
        &stop,
    );
    let mut setup = ClientSetup {
        server: provider.clone(),
        dealer: dealer.clone(),
        security: security(&certs, "client", false),
        limits: limits(),
        batch: 16,
        reveal: None,
    };
    // The client asks for 16 per batch and gets the dealer's 3.
    let recs = records(7);
    let mut sizes = Vec::new();
    let mut preds = Vec::new();
    cryptmed_service::client::diagnose(
        &setup,
        |_| Ok(recs.clone()),
        |_, p, _| {
            sizes.push(p.len());
            preds.extend_from_slice(p);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(sizes, [3, 3, 1]);
    assert_correct(&net, &recs, &preds);
    // A dealer with no room for even one record's material still serves
    // records one at a time: material streams step by step.
    let tiny = Limits {
        max_batch_material: model.offline_bytes(1) - 1,
        ..limits()
    };
    let dealer = start_dealer(security(&certs, "dealer", true), tiny, &stop);
    setup.server = start_provider(
        &net,
        Reveal::Label,
        &dealer,
        security(&certs, "provider", true),
        limits(),
        &stop,
    );
    setup.dealer = dealer;
    let mut sizes = Vec::new();
    let mut preds = Vec::new();
    cryptmed_service::client::diagnose(
        &setup,
        |_| Ok(recs.clone()),
        |_, p, _| {
            sizes.push(p.len());
            preds.extend_from_slice(p);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(sizes, [1; 7]);
    assert_correct(&net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}
