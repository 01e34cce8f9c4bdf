//! Traffic counters and the one definition of a round.
//!
//! **Round.** A party's traffic is a sequence of sends and receives. A round
//! starts at every send that follows a receive (and at the party's first
//! send): the number of rounds is the number of maximal runs of sends. For a
//! simultaneous exchange (both send, then both receive) each party counts one
//! round per exchange; for a one-way message the sender counts one. The
//! rounds of a session are the larger of the two parties' counts, which is
//! the number of times a party must wait for its peer.

use crate::{Channel, ChannelError};

/// Bytes, messages and rounds seen by one party on one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommStats {
    /// Bytes this party sent.
    pub bytes_sent: u64,
    /// Bytes this party received.
    pub bytes_recv: u64,
    /// Calls to `send` (messages queued).
    pub messages: u64,
    /// Rounds, as defined in this module's documentation.
    pub rounds: u64,
}

impl CommStats {
    /// Total bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.bytes_sent + self.bytes_recv
    }

    /// The difference `self - earlier` (for per-layer accounting).
    pub fn since(&self, earlier: &CommStats) -> CommStats {
        CommStats {
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_recv: self.bytes_recv - earlier.bytes_recv,
            messages: self.messages - earlier.messages,
            rounds: self.rounds - earlier.rounds,
        }
    }
}

impl std::ops::AddAssign for CommStats {
    fn add_assign(&mut self, o: Self) {
        self.bytes_sent += o.bytes_sent;
        self.bytes_recv += o.bytes_recv;
        self.messages += o.messages;
        self.rounds += o.rounds;
    }
}

/// Wraps a channel and counts its traffic.
#[derive(Debug)]
pub struct Counted<C> {
    inner: C,
    stats: CommStats,
    last_was_send: bool,
}

impl<C: Channel> Counted<C> {
    /// Starts counting from zero.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            stats: CommStats::default(),
            last_was_send: false,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CommStats {
        self.stats
    }

    /// The wrapped channel.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// Unwraps the channel.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: Channel> Channel for Counted<C> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        if !self.last_was_send {
            self.stats.rounds += 1;
            self.last_was_send = true;
        }
        self.stats.messages += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.inner.send(bytes)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        self.last_was_send = false;
        self.stats.bytes_recv += buf.len() as u64;
        self.inner.recv(buf)
    }

    fn flush(&mut self) -> Result<(), ChannelError> {
        self.inner.flush()
    }

    fn exchange(&mut self, out: &[u8], input: &mut [u8]) -> Result<(), ChannelError> {
        if !self.last_was_send {
            self.stats.rounds += 1;
        }
        self.last_was_send = false;
        self.stats.messages += 1;
        self.stats.bytes_sent += out.len() as u64;
        self.stats.bytes_recv += input.len() as u64;
        self.inner.exchange(out, input)
    }
}
