//! The bytes-only transport contract between two parties, with traffic
//! counters, an in-memory duplex pair for tests and a buffered channel over
//! any `Read + Write` stream (TCP or TLS).
//!
//! This crate knows no cryptography and no ring: typed encodings of shares
//! are layered on top of it in `cryptmed-share`.

mod memory;
mod stats;
mod stream;

pub use memory::{MEMORY_QUEUE_BYTES, MemoryChannel, memory_pair};
pub use stats::{CommStats, Counted};
pub use stream::{EXCHANGE_CHUNK, EXCHANGE_WINDOW, StreamChannel};

/// Why a channel operation failed. After any error the channel's state is
/// unknown: the only safe move is to drop the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer closed the connection (or the in-memory peer was dropped).
    #[error("the peer closed the connection")]
    Closed,
    /// Nothing arrived within the configured time.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The underlying stream failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
}

impl ChannelError {
    /// Maps an I/O error to the most specific variant (closed, timeout, other).
    pub fn from_io(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => Self::Closed,
            WouldBlock | TimedOut => Self::Timeout,
            _ => Self::Io(e),
        }
    }
}

/// A reliable, ordered, bytes-only link to the other party.
///
/// Sends may be buffered; `recv` flushes pending sends first, so a party
/// that sends and then waits for an answer can never deadlock on its own
/// buffer.
pub trait Channel {
    /// Queues `bytes` for the peer.
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError>;
    /// Fills `buf` with exactly `buf.len()` bytes from the peer, flushing first.
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError>;
    /// Pushes every queued byte to the peer.
    fn flush(&mut self) -> Result<(), ChannelError>;

    /// Sends `out` and receives `input.len()` bytes as one simultaneous
    /// exchange (both parties call it at the same step). Implementations over
    /// real sockets interleave bounded chunks so that two peers exchanging
    /// large messages never both block in `write`.
    fn exchange(&mut self, out: &[u8], input: &mut [u8]) -> Result<(), ChannelError> {
        self.send(out)?;
        self.recv(input)
    }

    /// Receives exactly `len` bytes into a new vector.
    fn recv_vec(&mut self, len: usize) -> Result<Vec<u8>, ChannelError> {
        let mut v = vec![0u8; len];
        self.recv(&mut v)?;
        Ok(v)
    }
}

impl<C: Channel + ?Sized> Channel for &mut C {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        (**self).send(bytes)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        (**self).recv(buf)
    }
    fn flush(&mut self) -> Result<(), ChannelError> {
        (**self).flush()
    }
    fn exchange(&mut self, out: &[u8], input: &mut [u8]) -> Result<(), ChannelError> {
        (**self).exchange(out, input)
    }
}

impl<C: Channel + ?Sized> Channel for Box<C> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        (**self).send(bytes)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        (**self).recv(buf)
    }
    fn flush(&mut self) -> Result<(), ChannelError> {
        (**self).flush()
    }
    fn exchange(&mut self, out: &[u8], input: &mut [u8]) -> Result<(), ChannelError> {
        (**self).exchange(out, input)
    }
}
