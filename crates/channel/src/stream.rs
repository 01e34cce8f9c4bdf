//! A buffered channel over any `Read + Write` stream, so that TCP and TLS
//! plug in unchanged. Writes are gathered until a flush (or a receive, which
//! flushes first); the write buffer grows as needed and is handed to the
//! stream in one `write_all`.

use std::io::{Read, Write};

use crate::{Channel, ChannelError};

/// Size of the interleaved chunks of [`Channel::exchange`] (one TLS record).
pub const EXCHANGE_CHUNK: usize = 16 * 1024;

/// Bytes [`Channel::exchange`] may write ahead of what it has read: four
/// chunks, half of Linux's default socket receive buffer (128 KiB), so a
/// peer's writes always fit without anyone reading.
pub const EXCHANGE_WINDOW: usize = 4 * EXCHANGE_CHUNK;

/// Buffered channel over a stream. Timeouts are the stream's own (set them on
/// the socket); a timed-out read surfaces as [`ChannelError::Timeout`].
#[derive(Debug)]
pub struct StreamChannel<S> {
    stream: S,
    out: Vec<u8>,
}

impl<S: Read + Write> StreamChannel<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            out: Vec::with_capacity(1 << 14),
        }
    }

    /// The wrapped stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Unwraps the stream (pending writes are dropped; flush first).
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Read + Write> Channel for StreamChannel<S> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        self.flush()?;
        self.stream.read_exact(buf).map_err(ChannelError::from_io)
    }

    fn exchange(&mut self, out: &[u8], input: &mut [u8]) -> Result<(), ChannelError> {
        // Write at most EXCHANGE_WINDOW bytes beyond what has been read: both
        // peers run this same loop, so the unread bytes in either direction
        // never exceed the window, which fits in the socket buffers, and
        // neither peer can block forever in `write`.
        self.flush()?;
        let (mut sent, mut got) = (0, 0);
        while sent < out.len() || got < input.len() {
            while sent < out.len() && sent < got + EXCHANGE_WINDOW {
                let end = (sent + EXCHANGE_CHUNK)
                    .min(out.len())
                    .min(got + EXCHANGE_WINDOW);
                self.stream
                    .write_all(&out[sent..end])
                    .map_err(ChannelError::from_io)?;
                sent = end;
            }
            self.stream.flush().map_err(ChannelError::from_io)?;
            if got < input.len() {
                let end = (got + EXCHANGE_CHUNK).min(input.len());
                self.stream
                    .read_exact(&mut input[got..end])
                    .map_err(ChannelError::from_io)?;
                got = end;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ChannelError> {
        if !self.out.is_empty() {
            self.stream
                .write_all(&self.out)
                .map_err(ChannelError::from_io)?;
            self.out.clear();
        }
        self.stream.flush().map_err(ChannelError::from_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn works_over_tcp_and_reports_close() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut c = StreamChannel::new(s);
            let v = c.recv_vec(5).unwrap();
            c.send(&v).unwrap();
            c.flush().unwrap();
        });
        let mut c = StreamChannel::new(TcpStream::connect(addr).unwrap());
        c.send(b"hello").unwrap();
        assert_eq!(c.recv_vec(5).unwrap(), b"hello");
        t.join().unwrap();
        assert!(matches!(c.recv_vec(1), Err(ChannelError::Closed)));
    }

    #[test]
    fn large_simultaneous_exchange_does_not_deadlock() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let n = 8 << 20;
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut c = StreamChannel::new(s);
            let mut got = vec![0u8; n];
            c.exchange(&vec![2u8; n], &mut got).unwrap();
            assert!(got.iter().all(|b| *b == 1));
        });
        let mut c = StreamChannel::new(TcpStream::connect(addr).unwrap());
        let mut got = vec![0u8; n];
        c.exchange(&vec![1u8; n], &mut got).unwrap();
        assert!(got.iter().all(|b| *b == 2));
        t.join().unwrap();
    }
}
