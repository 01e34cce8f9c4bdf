//! How dealer material travels: per batch a header, then one length-framed
//! chunk per unit (plan step, then the output step), in plan order.
//!
//! The dealer produces, sends and forgets a unit's material before it
//! starts the next; a party pulls the chunks on a helper thread. Two modes,
//! which both parties pick alike from the model and the batch size:
//! - **Offline first** (the batch's material, both parties, at most
//!   [`Model::with_offline_first_limit`], 128 MiB by default): a party
//!   receives all of it before its online walk starts, the classic
//!   offline/online split. The online phase then never
//!   waits on the dealer, so its time is the protocols' own (function
//!   secret sharing's keys are megabytes that would otherwise stall it).
//! - **Streamed** (larger batches, the imaging networks): the helper thread
//!   runs at most [`AHEAD`] units ahead of the walk (TCP back-pressure, or
//!   the bounded in-memory channel, stops the dealer when a party falls
//!   behind), so every process holds the material of a few units, never the
//!   network's: memory is set by the largest layer.
//!
//! No deadline grows with the model: each read waits at most the link's
//! timeout since its last byte.
//!
//! Wire, dealer -> each party, per batch: plan digest (32 bytes) and batch
//! size (u64 LE); then per unit a length (u64 LE) and that many bytes (the
//! party's [`Dealer::take`](cryptmed_prep::Dealer::take) for the unit).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use cryptmed_channel::Channel;
use cryptmed_prep::{Dealer, PartyPrep, PrepSource};
use cryptmed_protocols::Comparison;
use cryptmed_ring::Elem;
use cryptmed_share::Role;

use super::steps::{self, Material, Unit};
use super::{chan, mismatch};
use crate::{EngineError, Model};

/// Units a party's helper thread may take ahead of its online walk when
/// the material streams.
pub(crate) const AHEAD: usize = 1;

/// Bytes of the batch header.
pub(crate) const HEADER_BYTES: u64 = 40;

/// Bytes of a unit's length prefix.
pub(crate) const FRAME_BYTES: u64 = 8;

/// Largest unit a party accepts (a 224x224 layer under function secret
/// sharing is a few gigabytes; anything beyond this is a broken dealer).
const MAX_UNIT_BYTES: u64 = 1 << 36;

/// The dealer's framing bytes to one party for a batch.
pub(crate) fn framing_bytes(model: &Model) -> u64 {
    HEADER_BYTES + FRAME_BYTES * steps::unit_count(model) as u64
}

/// Dealer side: deals every unit of a batch and sends each party its part
/// as soon as it is dealt. Returns the bytes sent to both parties.
pub(crate) fn deal_batch<C: Comparison>(
    cmp: &C,
    model: &Model,
    d: &mut Dealer,
    masks: &[Vec<Elem>],
    batch: usize,
    links: [&mut dyn Channel; 2],
) -> Result<u64, EngineError> {
    let [to_provider, to_client] = links;
    let mut head = model.architecture_digest().to_vec();
    head.extend((batch as u64).to_le_bytes());
    let mut sent = 0u64;
    for (ch, who) in [
        (&mut *to_provider, "batch header to the provider"),
        (&mut *to_client, "batch header to the client"),
    ] {
        ch.send(&head).map_err(chan(who))?;
        sent += HEADER_BYTES;
    }
    for unit in steps::units(model) {
        steps::deal(cmp, model, d, masks, batch, unit);
        for (ch, role) in [
            (&mut *to_provider, Role::Provider),
            (&mut *to_client, Role::Client),
        ] {
            let body = d.take(role);
            let during = unit_name(unit);
            ch.send(&(body.len() as u64).to_le_bytes())
                .and_then(|()| ch.send(&body))
                .and_then(|()| ch.flush())
                .map_err(chan(&during))?;
            sent += FRAME_BYTES + body.len() as u64;
        }
    }
    Ok(sent)
}

/// A unit's name for errors (`dealer material for /1/Relu`).
fn unit_name(unit: Unit<'_>) -> String {
    match unit {
        Unit::Step(s) => format!("dealer material for {}", s.name),
        Unit::Output => "dealer material for the output".into(),
    }
}

/// Party side: reads and checks the batch header.
pub(crate) fn recv_header(
    model: &Model,
    dealer: &mut dyn Channel,
    batch: usize,
) -> Result<(), EngineError> {
    let head = dealer
        .recv_vec(HEADER_BYTES as usize)
        .map_err(chan("dealer batch header"))?;
    if head[..32] != model.architecture_digest() {
        return Err(mismatch("the dealer's batch is for a different plan"));
    }
    let theirs = u64::from_le_bytes(head[32..40].try_into().unwrap_or_default());
    if theirs != batch as u64 {
        return Err(mismatch(format!(
            "the dealer prepared a batch of {theirs} records, this party runs {batch}"
        )));
    }
    Ok(())
}

/// What a party's material feed cost: bytes from the dealer, time spent
/// receiving and preparing material (on the helper thread), and the wall
/// time of the online walk alone.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FeedStats {
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) walk_seconds: f64,
}

/// Whether a batch's material is received whole before the online walk
/// (see the module docs); both parties decide alike.
pub(crate) fn offline_first(model: &Model, batch: usize) -> bool {
    model.offline_bytes(batch) <= model.offline_first_bytes
}

/// The online walk's source of material: the next unit's, in plan order.
pub(crate) struct Feed<C: Comparison> {
    /// Units already received (offline first).
    ready: VecDeque<Result<Material<C>, EngineError>>,
    rx: Receiver<Result<Material<C>, EngineError>>,
}

impl<C: Comparison> Feed<C> {
    /// The next unit's material (or the error that stopped the feed).
    pub(crate) fn next(&mut self) -> Result<Material<C>, EngineError> {
        if let Some(m) = self.ready.pop_front() {
            return m;
        }
        self.rx.recv().unwrap_or_else(|_| {
            Err(mismatch(
                "the dealer material ended before the plan did".to_string(),
            ))
        })
    }

    /// Receives every unit (or up to the first failure) before the walk.
    fn fill(&mut self, units: usize) {
        while self.ready.len() < units {
            match self.rx.recv() {
                Ok(m) => {
                    let failed = m.is_err();
                    self.ready.push_back(m);
                    if failed {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// This party's view of its material for one batch.
pub(crate) struct Source<'a> {
    pub(crate) model: &'a Model,
    pub(crate) prep: &'a mut PartyPrep,
    /// The client's masked weights (empty for the provider).
    pub(crate) masked: &'a [Vec<Elem>],
    pub(crate) batch: usize,
}

/// Runs `walk` with a [`Feed`] of this party's material for one batch,
/// pulled from `dealer` on a helper thread (all of it first when
/// [`offline_first`]); returns `walk`'s result and what the feed cost.
/// Reads the batch header first.
pub(crate) fn with_feed<C, R>(
    cmp: &C,
    src: Source<'_>,
    dealer: &mut (dyn Channel + Send),
    walk: impl FnOnce(&mut Feed<C>) -> Result<R, EngineError>,
) -> Result<(R, FeedStats), EngineError>
where
    C: Comparison,
{
    let t0 = Instant::now();
    recv_header(src.model, dealer, src.batch)?;
    let header_seconds = t0.elapsed().as_secs_f64();
    let units = steps::unit_count(src.model);
    let whole = offline_first(src.model, src.batch);
    let (tx, rx) = sync_channel(if whole { units } else { AHEAD });
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(cmp, src, dealer, tx));
        let mut feed = Feed {
            ready: VecDeque::new(),
            rx,
        };
        if whole {
            feed.fill(units);
        }
        // A failed feed hands its error to the walk, which returns it.
        let started = Instant::now();
        let walked = walk(&mut feed);
        let walk_seconds = started.elapsed().as_secs_f64();
        drop(feed);
        // The receiver is gone: a producer blocked on a full queue stops now.
        let mut stats = producer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        stats.seconds += header_seconds;
        stats.bytes += HEADER_BYTES;
        stats.walk_seconds = walk_seconds;
        Ok((walked?, stats))
    })
}

/// The helper thread: each unit's chunk, loaded and taken, into the queue;
/// a failure goes into the queue in place of the unit's material.
fn produce<C: Comparison>(
    cmp: &C,
    src: Source<'_>,
    dealer: &mut (dyn Channel + Send),
    tx: SyncSender<Result<Material<C>, EngineError>>,
) -> FeedStats {
    let mut stats = FeedStats::default();
    for unit in steps::units(src.model) {
        let t = Instant::now();
        let material = (|| {
            let during = unit_name(unit);
            let head = dealer
                .recv_vec(FRAME_BYTES as usize)
                .map_err(chan(&during))?;
            let len = u64::from_le_bytes(head.try_into().unwrap_or_default());
            if len > MAX_UNIT_BYTES {
                return Err(mismatch(format!(
                    "the dealer announced {len} bytes for one step, above the {MAX_UNIT_BYTES}-byte limit"
                )));
            }
            let body = dealer.recv_vec(len as usize).map_err(chan(&during))?;
            stats.bytes += FRAME_BYTES + len;
            src.prep.load(body);
            let m = steps::take(cmp, src.model, src.prep, src.masked, src.batch, unit);
            src.prep
                .finish()
                .map_err(|e| mismatch(format!("{during}: {e}")))?;
            Ok(m)
        })();
        stats.seconds += t.elapsed().as_secs_f64();
        let failed = material.is_err();
        // A closed queue means the walk stopped; its own error says why.
        if tx.send(material).is_err() || failed {
            break;
        }
    }
    stats
}
