//! Exact communication traces, bytes and rounds derived from them, and
//! each protocol's closed-form cost.
//!
//! Two independent descriptions of every protocol's traffic exist on
//! purpose: `trace` lists the channel operations `eval` performs (it
//! composes, merges rounds across protocols, and the engine sums it over a
//! plan), while `cost` is the closed formula of the module docs (bytes both
//! ways and rounds of the protocol run alone). Tests assert that the
//! measured counters, the trace and the formula agree exactly.
//!
//! A protocol's trace lists, for each party, the channel operations `eval`
//! performs with their sizes. Rounds follow the single definition of
//! `cryptmed_channel::CommStats`: a round starts at every send (or exchange)
//! that follows a receive, and at the first one. Concatenating the traces of
//! consecutive protocols and counting gives the rounds of the composition,
//! including the merges (a one-way message followed by an exchange with no
//! receive in between is one round).

use cryptmed_channel::CommStats;

/// One channel operation of one party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Sent this many bytes.
    Send(u64),
    /// Received this many bytes.
    Recv(u64),
    /// Simultaneous exchange of this many bytes each way.
    Exchange(u64),
}

/// The communication of a protocol step for both parties, and the one
/// local cost that rivals it: the function-secret-sharing key bytes each
/// party walks through (every point at which it evaluates a key costs a
/// pass over the key; about a nanosecond per byte, see
/// `cryptmed_fss::Speed`). The other protocols' local work is a small
/// fraction of their rounds on any link, and is not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The provider's operations in order.
    pub provider: Vec<Event>,
    /// The client's operations in order.
    pub client: Vec<Event>,
    /// Key bytes each party evaluates (key size times points per key).
    pub key_bytes_evaluated: u64,
}

impl Trace {
    /// Both parties exchange `bytes` each way.
    pub fn exchange(bytes: u64) -> Self {
        Self {
            provider: vec![Event::Exchange(bytes)],
            client: vec![Event::Exchange(bytes)],
            key_bytes_evaluated: 0,
        }
    }

    /// The client sends `bytes` to the provider.
    pub fn client_to_provider(bytes: u64) -> Self {
        Self {
            provider: vec![Event::Recv(bytes)],
            client: vec![Event::Send(bytes)],
            key_bytes_evaluated: 0,
        }
    }

    /// The provider sends `bytes` to the client.
    pub fn provider_to_client(bytes: u64) -> Self {
        Self {
            provider: vec![Event::Send(bytes)],
            client: vec![Event::Recv(bytes)],
            key_bytes_evaluated: 0,
        }
    }

    /// Appends `other` after `self`.
    pub fn then(mut self, other: Trace) -> Self {
        self.append(other);
        self
    }

    /// Appends `other` in place.
    pub fn append(&mut self, other: Trace) {
        self.provider.extend(other.provider);
        self.client.extend(other.client);
        self.key_bytes_evaluated += other.key_bytes_evaluated;
    }

    /// Local work only: `bytes` of keys evaluated by each party, no traffic.
    pub fn evaluating(bytes: u64) -> Self {
        Self {
            key_bytes_evaluated: bytes,
            ..Self::default()
        }
    }

    /// The provider's counters as `Counted` would report them.
    pub fn provider_stats(&self) -> CommStats {
        stats(&self.provider)
    }

    /// The client's counters as `Counted` would report them.
    pub fn client_stats(&self) -> CommStats {
        stats(&self.client)
    }

    /// Bytes both ways between the parties.
    pub fn bytes(&self) -> u64 {
        let p = self.provider_stats();
        p.bytes_sent + p.bytes_recv
    }

    /// Rounds of the session: the larger of the two parties' counts.
    pub fn rounds(&self) -> u64 {
        self.provider_stats().rounds.max(self.client_stats().rounds)
    }
}

/// A protocol's online cost run alone: bytes both ways between the parties, and rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Bytes sent by both parties together.
    pub bytes: u64,
    /// Rounds (the larger of the two parties' counts).
    pub rounds: u64,
}

impl Cost {
    /// `bytes` and `rounds`.
    pub const fn new(bytes: u64, rounds: u64) -> Self {
        Self { bytes, rounds }
    }

    /// One exchange of `each_way` bytes in each direction: one round.
    pub const fn exchange(each_way: u64) -> Self {
        Self::new(2 * each_way, 1)
    }

    /// Sequential composition. Rounds add up, which is exact when `next`
    /// starts with an exchange (every composite protocol here does).
    pub const fn then(self, next: Cost) -> Self {
        Self::new(self.bytes + next.bytes, self.rounds + next.rounds)
    }

    /// The cost a trace amounts to (to compare the two descriptions).
    pub fn of(t: &Trace) -> Self {
        Self::new(t.bytes(), t.rounds())
    }
}

/// `ceil(n / 8)`: bytes of `n` packed bits.
pub const fn bit_bytes(n: usize) -> u64 {
    n.div_ceil(8) as u64
}

/// `ceil(log2(x))` (0 for `x <= 1`): levels of a halving tree over `x` items.
pub const fn ceil_log2(x: usize) -> u64 {
    if x <= 1 {
        0
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as u64
    }
}

/// Counts one party's events with the round rule of `CommStats`.
pub fn stats(events: &[Event]) -> CommStats {
    let mut s = CommStats::default();
    let mut last_send = false;
    for e in events {
        match *e {
            Event::Send(b) => {
                if !last_send {
                    s.rounds += 1;
                }
                last_send = true;
                s.messages += 1;
                s.bytes_sent += b;
            }
            Event::Recv(b) => {
                last_send = false;
                s.bytes_recv += b;
            }
            Event::Exchange(b) => {
                if !last_send {
                    s.rounds += 1;
                }
                last_send = false;
                s.messages += 1;
                s.bytes_sent += b;
                s.bytes_recv += b;
            }
        }
    }
    s
}
