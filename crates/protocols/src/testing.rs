//! Runs both parties of a protocol on two threads over an in-memory channel,
//! with fixed seeds, for tests and benchmarks.

use std::time::Duration;

use cryptmed_channel::{CommStats, Counted, memory_pair};
use cryptmed_prep::{Dealer, PartyPrep, PrepSource};
use cryptmed_share::{Role, Seed};

use crate::Ctx;

/// What a two-party run produced.
pub struct PairRun<P, C> {
    /// The provider's result.
    pub provider: P,
    /// The client's result.
    pub client: C,
    /// The provider's traffic.
    pub provider_stats: CommStats,
    /// The client's traffic.
    pub client_stats: CommStats,
    /// Bytes the dealer sent to both parties.
    pub offline_bytes: usize,
}

/// Generates material with `deal`, hands each party its source, and runs
/// `provider` and `client` concurrently over a fresh memory channel.
///
/// Panics (this is a test harness) when either party's material was not
/// consumed exactly, or a channel fails to flush.
pub fn run_pair<P, C>(
    seed: u64,
    deal: impl FnOnce(&mut Dealer),
    provider: impl FnOnce(&mut Ctx<'_>, &mut dyn PrepSource) -> P + Send,
    client: impl FnOnce(&mut Ctx<'_>, &mut dyn PrepSource) -> C + Send,
) -> PairRun<P, C>
where
    P: Send,
    C: Send,
{
    let (s0, s1) = (
        Seed::from_u64(seed.wrapping_mul(2) + 1),
        Seed::from_u64(seed.wrapping_mul(2) + 2),
    );
    let mut dealer = Dealer::new(&s0, &s1);
    deal(&mut dealer);
    let offline_bytes = dealer.pending_bytes();
    let mut pp = PartyPrep::new(Role::Provider, &s0);
    let mut cp = PartyPrep::new(Role::Client, &s1);
    pp.load(dealer.take(Role::Provider));
    cp.load(dealer.take(Role::Client));
    let (a, b) = memory_pair(Duration::from_secs(60));
    let (mut a, mut b) = (Counted::new(a), Counted::new(b));
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            let out = client(&mut Ctx::new(Role::Client, &mut b), &mut cp);
            cryptmed_channel::Channel::flush(&mut b).expect("flush");
            assert_eq!(cp.finish(), Ok(()), "client material not consumed exactly");
            (out, b.stats())
        });
        let p = provider(&mut Ctx::new(Role::Provider, &mut a), &mut pp);
        cryptmed_channel::Channel::flush(&mut a).expect("flush");
        assert_eq!(
            pp.finish(),
            Ok(()),
            "provider material not consumed exactly"
        );
        let (c, cs) = h.join().expect("client thread panicked");
        PairRun {
            provider: p,
            client: c,
            provider_stats: a.stats(),
            client_stats: cs,
            offline_bytes,
        }
    })
}
