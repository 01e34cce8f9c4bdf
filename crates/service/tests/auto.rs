//! `serve --comparison auto`: the provider measures each client's round
//! trip before the model info and picks the backend per session; both
//! parties and the dealer run the one it picked (it is in the digest), and
//! the diagnosis matches the plaintext model either way.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::*;
use cryptmed_engine::{ComparisonKind, Reveal};
use cryptmed_service::Role;
use cryptmed_service::client::{ClientSetup, diagnose};
use cryptmed_service::provider::Backend;
use cryptmed_service::wire::{self, Frame, VERSION};

/// A TCP relay to `target` that holds every chunk for `delay` in each
/// direction (a round trip of `2 delay`); TLS passes through untouched.
fn delaying_relay(target: String, delay: Duration, stop: Arc<AtomicBool>) -> String {
    let (l, addr) = listener();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let Ok((down, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            down.set_nonblocking(false).unwrap();
            let up = TcpStream::connect(target.replace("localhost", "127.0.0.1")).unwrap();
            for (from, to) in [
                (down.try_clone().unwrap(), up.try_clone().unwrap()),
                (up, down),
            ] {
                forward(from, to, delay);
            }
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn forward(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A dealer and a provider choosing per session at `bandwidth` bits/s.
fn deploy_auto(bandwidth: f64) -> Deployment {
    deploy_with(Reveal::Label, limits(), Backend::PerSession { bandwidth })
}

/// Runs a session; returns the backend the client was told and the predictions.
fn session(
    setup: &ClientSetup,
    recs: &[Vec<f64>],
) -> (ComparisonKind, Vec<cryptmed_engine::Prediction>) {
    let mut kind = None;
    let mut preds = Vec::new();
    diagnose(
        setup,
        |info| {
            kind = Some(info.comparison);
            Ok(recs.to_vec())
        },
        |_, p, _| {
            preds.extend_from_slice(p);
            Ok(())
        },
    )
    .unwrap();
    (kind.unwrap(), preds)
}

#[test]
fn the_provider_picks_the_backend_from_each_clients_measured_round_trip() {
    init();
    let recs = records(3);
    // 1 Gbit/s: the bundled model's keys (250 KB) cost little to send.
    let d = deploy_auto(1e9);
    // Through a relay holding each chunk 20 ms each way (a WAN's 40 ms
    // round trip): 18 PPA rounds against 4 FSS rounds, FSS.
    let far = ClientSetup {
        server: delaying_relay(
            d.provider.clone(),
            Duration::from_millis(20),
            d.stop.0.clone(),
        ),
        ..d.client()
    };
    let (kind, preds) = session(&far, &recs);
    assert_eq!(kind, ComparisonKind::Fss);
    assert_correct(&d.net, &recs, &preds);
    let log = wait_log(&[
        "comparison chosen for this client's link",
        "comparison=\"fss\"",
    ]);
    let rtt: f64 = log
        .split("rtt_ms=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((40.0..1000.0).contains(&rtt), "measured {rtt} ms: {log}");
    // The same provider, a client on loopback: a fraction of a millisecond
    // per round, so FSS's keys no longer pay, at 100 Mbit/s for the dealer.
    let near = deploy_auto(100e6);
    let (kind, preds) = session(&near.client(), &recs);
    assert_eq!(kind, ComparisonKind::Ppa);
    assert_correct(&near.net, &recs, &preds);
    assert!(panics().is_empty(), "{:?}", panics());
}

/// A client that answers a ping with anything but its pong is refused,
/// with a message naming the probe.
#[test]
fn a_wrong_pong_is_refused() {
    init();
    let d = deploy_auto(1e9);
    let mut link = raw(
        &d.provider,
        Role::Provider,
        &security(&d.certs, "client", false),
    );
    let hello = Frame::Hello {
        version: VERSION,
        reveal: None,
    };
    wire::send(&mut link, &hello).unwrap();
    let ping = wire::recv(&mut link, 1 << 20).unwrap();
    let Frame::Ping { nonce } = ping else {
        panic!("expected a ping, got {ping:?}");
    };
    wire::send(&mut link, &Frame::Pong { nonce: nonce + 1 }).unwrap();
    let reply = wire::recv(&mut link, 1 << 20).unwrap();
    assert!(
        matches!(&reply, Frame::Error { message, .. } if message.contains("round-trip probe")),
        "{reply:?}"
    );
}
