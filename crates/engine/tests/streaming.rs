//! Dealer material streams step by step (above the offline-first limit): a party runs its first steps
//! online before the dealer has sent the material of its last ones, and no
//! process ever holds more than a few steps' material.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cryptmed_channel::{Channel, ChannelError, MemoryChannel, memory_pair};
use cryptmed_engine::{
    ClientSession, DealerSession, EngineConfig, Model, ProgressFn, ProviderSession, Report, Reveal,
};
use cryptmed_model::{Network, zoo};

/// A gate the test opens once the client reports progress.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }

    /// Waits until open, or `limit`; true when it opened.
    fn wait(&self, limit: Duration) -> bool {
        let g = self.open.lock().unwrap();
        let (g, _) = self.cond.wait_timeout_while(g, limit, |o| !*o).unwrap();
        *g
    }
}

/// The dealer's link to the client: after `free` flushes (the session
/// header, the batch header with the first units), each further flush
/// waits for the gate. Records whether any flush had to give up waiting.
struct Gated<C> {
    inner: C,
    flushes: usize,
    free: usize,
    gate: Arc<Gate>,
    gave_up: Arc<AtomicUsize>,
}

impl<C: Channel> Channel for Gated<C> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.inner.send(bytes)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        self.inner.recv(buf)
    }
    fn flush(&mut self) -> Result<(), ChannelError> {
        self.flushes += 1;
        if self.flushes > self.free && !self.gate.wait(Duration::from_secs(20)) {
            self.gave_up.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.flush()
    }
}

/// One random record of `net` through the three roles over in-memory
/// channels (the provider runs `model`, dealer and client its public twin
/// `public`), the dealer's link to the client wrapped by `wrap`, the client
/// calling `progress` after each step; checks the logits against the
/// fixed-point reference and returns the client's report.
fn run_record<W: Channel + Send>(
    net: &Network,
    model: &Model,
    public: &Model,
    wrap: impl FnOnce(MemoryChannel) -> W,
    progress: ProgressFn,
) -> Report {
    let record = zoo::random_inputs(net, 1, 9).remove(0);
    let t = Duration::from_secs(60);
    let (mut dp, mut pd) = memory_pair(t);
    let (dc, mut cd) = memory_pair(t);
    let (mut pc, mut cp) = memory_pair(t);
    let mut dc = wrap(dc);
    std::thread::scope(|s| {
        let public_d = public.clone();
        s.spawn(move || {
            let mut d = DealerSession::new(public_d, &mut dp, &mut dc).unwrap();
            d.run_batch(1, &mut dp, &mut dc).unwrap();
        });
        let model_p = model.clone();
        s.spawn(move || {
            let mut p = ProviderSession::new(model_p, &mut pd, &mut pc).unwrap();
            p.run_batch(1, &mut pd, &mut pc).unwrap();
        });
        let mut c = ClientSession::new(public.clone(), &mut cd, &mut cp).unwrap();
        c.set_progress(progress);
        let (preds, report) = c
            .run_batch(std::slice::from_ref(&record), &mut cd, &mut cp)
            .unwrap();
        let want = model.reference_fixed(&record).unwrap();
        let got = preds[0].logits.as_ref().unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-3, "{got:?} vs {want:?}");
        }
        report
    })
}

#[test]
fn the_client_computes_before_the_dealer_has_sent_everything() {
    // minionn-mnist: 10 plan steps and an output step.
    let net = zoo::build("minionn-mnist", 5).unwrap();
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    // Streamed, not received whole before the online phase (which a record
    // of this size is by default).
    let model = Model::compile(net.clone(), config)
        .unwrap()
        .with_offline_first_limit(0);
    let public = Model::compile(net.public(), config)
        .unwrap()
        .with_offline_first_limit(0);
    assert!(model.plan().steps.len() >= 8);
    let gate = Arc::new(Gate::default());
    let gave_up = Arc::new(AtomicUsize::new(0));
    let steps_seen = Arc::new(Mutex::new(Vec::new()));
    let (g, seen) = (gate.clone(), steps_seen.clone());
    run_record(
        &net,
        &model,
        &public,
        // Free: the session seed, then the first three units of the batch.
        |dc| Gated {
            inner: dc,
            flushes: 0,
            free: 4,
            gate,
            gave_up: gave_up.clone(),
        },
        Arc::new(move |p| {
            seen.lock().unwrap().push((p.done, p.total));
            if p.done == 2 {
                g.open();
            }
        }),
    );
    assert_eq!(
        gave_up.load(Ordering::SeqCst),
        0,
        "the dealer had to send later steps before the client could compute its first ones"
    );
    let seen = steps_seen.lock().unwrap();
    let total = model.plan().steps.len() + 1;
    assert_eq!(*seen, (1..=total).map(|d| (d, total)).collect::<Vec<_>>());
}

/// By default a record this small is received whole before the online
/// phase: the client's first step starts only once the dealer has sent
/// everything, and the digest is the default's; a lowered limit is in the
/// digest, so parties that disagree on it are told at the handshake.
#[test]
fn a_small_batch_is_received_before_the_online_phase() {
    let net = zoo::build("minionn-mnist", 5).unwrap();
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    let model = Model::compile(net.clone(), config).unwrap();
    let public = Model::compile(net.public(), config).unwrap();
    assert_ne!(
        model.architecture_digest(),
        model.with_offline_first_limit(0).architecture_digest()
    );
    assert_eq!(
        model.architecture_digest(),
        model
            .with_offline_first_limit(cryptmed_engine::OFFLINE_FIRST_BYTES)
            .architecture_digest()
    );
    // The dealer's link to the client counts its flushes: the session
    // seed, the batch header with the first unit, then one per unit.
    let flushes = Arc::new(AtomicUsize::new(0));
    let units = model.plan().steps.len() + 1;
    let at_first_step = Arc::new(AtomicUsize::new(usize::MAX));
    let (f, first) = (flushes.clone(), at_first_step.clone());
    let report = run_record(
        &net,
        &model,
        &public,
        |dc| Counting { inner: dc, flushes },
        Arc::new(move |p| {
            if p.done == 1 {
                first.store(f.load(Ordering::SeqCst), Ordering::SeqCst);
            }
        }),
    );
    // The online phase is the walk alone; the session also waited for the dealer.
    assert!(
        report.session_seconds >= report.online_seconds,
        "{report:?}"
    );
    assert_eq!(
        at_first_step.load(Ordering::SeqCst),
        1 + units,
        "the client's first step ran before it had all the dealer's units"
    );
}

/// The dealer's link to the client, counting flushes.
struct Counting<C> {
    inner: C,
    flushes: Arc<AtomicUsize>,
}

impl<C: Channel> Channel for Counting<C> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.inner.send(bytes)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        self.inner.recv(buf)
    }
    fn flush(&mut self) -> Result<(), ChannelError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        self.inner.flush()
    }
}

#[test]
fn a_step_holds_far_less_than_the_network() {
    // The dealer's largest single step is a fraction of a batch's material
    // for a deep network: what streaming bounds memory by.
    let net = zoo::build("minionn-cifar", 1).unwrap();
    let model = Model::compile(net, EngineConfig::default()).unwrap();
    let (step, all) = (model.largest_step_bytes(1), model.offline_bytes(1));
    assert!(2 * step < all, "largest step {step} of {all}");
}
