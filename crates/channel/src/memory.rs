//! An in-process duplex pair, for tests and for running both parties in one
//! process (the `bench` and `eval` commands).

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use crate::{Channel, ChannelError};

/// One end of an in-memory duplex link; sends are buffered until a flush or a receive.
#[derive(Debug)]
pub struct MemoryChannel {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    out: Vec<u8>,
    pending: Vec<u8>,
    pos: usize,
    timeout: Duration,
}

/// Two connected ends. A receive that waits longer than `timeout` fails with
/// [`ChannelError::Timeout`] instead of hanging.
pub fn memory_pair(timeout: Duration) -> (MemoryChannel, MemoryChannel) {
    let (t0, r1) = channel();
    let (t1, r0) = channel();
    let mk = |tx, rx| MemoryChannel {
        tx,
        rx,
        out: Vec::new(),
        pending: Vec::new(),
        pos: 0,
        timeout,
    };
    (mk(t0, r0), mk(t1, r1))
}

impl Channel for MemoryChannel {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<(), ChannelError> {
        self.flush()?;
        let mut filled = 0;
        while filled < buf.len() {
            if self.pos == self.pending.len() {
                self.pending = match self.rx.recv_timeout(self.timeout) {
                    Ok(v) => v,
                    Err(RecvTimeoutError::Timeout) => return Err(ChannelError::Timeout),
                    Err(RecvTimeoutError::Disconnected) => return Err(ChannelError::Closed),
                };
                self.pos = 0;
            }
            let n = (buf.len() - filled).min(self.pending.len() - self.pos);
            buf[filled..filled + n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            filled += n;
            self.pos += n;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ChannelError> {
        if !self.out.is_empty() {
            let chunk = std::mem::take(&mut self.out);
            self.tx.send(chunk).map_err(|_| ChannelError::Closed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counted;

    #[test]
    fn exchanges_and_counts_rounds() {
        let (a, b) = memory_pair(Duration::from_secs(5));
        let (mut a, mut b) = (Counted::new(a), Counted::new(b));
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 3];
            b.send(b"xy").unwrap();
            b.recv(&mut buf).unwrap();
            assert_eq!(&buf, b"abc");
            b.send(b"z").unwrap();
            b.flush().unwrap();
            b.stats()
        });
        a.send(b"ab").unwrap();
        a.send(b"c").unwrap();
        let mut two = [0u8; 2];
        a.recv(&mut two).unwrap();
        assert_eq!(&two, b"xy");
        let mut one = [0u8; 1];
        a.recv(&mut one).unwrap();
        assert_eq!(&one, b"z");
        let sb = t.join().unwrap();
        let sa = a.stats();
        assert_eq!(
            (sa.bytes_sent, sa.bytes_recv, sa.messages, sa.rounds),
            (3, 3, 2, 1)
        );
        assert_eq!(
            (sb.bytes_sent, sb.bytes_recv, sb.messages, sb.rounds),
            (3, 3, 2, 2)
        );
    }

    #[test]
    fn dropped_peer_and_silence_are_errors() {
        let (mut a, b) = memory_pair(Duration::from_millis(50));
        let mut buf = [0u8; 1];
        assert!(matches!(a.recv(&mut buf), Err(ChannelError::Timeout)));
        drop(b);
        assert!(matches!(a.recv(&mut buf), Err(ChannelError::Closed)));
    }
}
