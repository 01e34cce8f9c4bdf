//! Exact communication traces, and bytes and rounds derived from them.
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

/// The communication of a protocol step for both parties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The provider's operations in order.
    pub provider: Vec<Event>,
    /// The client's operations in order.
    pub client: Vec<Event>,
}

impl Trace {
    /// Both parties exchange `bytes` each way.
    pub fn exchange(bytes: u64) -> Self {
        Self {
            provider: vec![Event::Exchange(bytes)],
            client: vec![Event::Exchange(bytes)],
        }
    }

    /// The client sends `bytes` to the provider.
    pub fn client_to_provider(bytes: u64) -> Self {
        Self {
            provider: vec![Event::Recv(bytes)],
            client: vec![Event::Send(bytes)],
        }
    }

    /// The provider sends `bytes` to the client.
    pub fn provider_to_client(bytes: u64) -> Self {
        Self {
            provider: vec![Event::Send(bytes)],
            client: vec![Event::Recv(bytes)],
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
