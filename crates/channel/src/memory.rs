//! An in-process duplex pair, for tests and for running both parties in one
//! process (the `bench` and `eval` commands).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{Channel, ChannelError};

/// Bytes one direction of a memory pair holds before a sender waits for the
/// receiver (a single larger message is always accepted into an empty
/// queue). This is the in-process twin of TCP back-pressure: a dealer
/// thread cannot run a whole network ahead of the parties.
pub const MEMORY_QUEUE_BYTES: usize = 64 << 20;

/// One direction of a pair: messages bounded in bytes, and whether each end is still there.
#[derive(Debug, Default)]
struct Pipe {
    state: Mutex<PipeState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct PipeState {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    sender_gone: bool,
    receiver_gone: bool,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on the condition until `ready` or the deadline; `Timeout` after it.
    fn wait_until<'a>(
        &self,
        mut st: MutexGuard<'a, PipeState>,
        timeout: Duration,
        ready: impl Fn(&PipeState) -> bool,
    ) -> Result<MutexGuard<'a, PipeState>, ChannelError> {
        let deadline = Instant::now() + timeout;
        while !ready(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ChannelError::Timeout);
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(st)
    }
}

/// One end of an in-memory duplex link; sends are buffered until a flush or a receive.
#[derive(Debug)]
pub struct MemoryChannel {
    tx: Arc<Pipe>,
    rx: Arc<Pipe>,
    out: Vec<u8>,
    pending: Vec<u8>,
    pos: usize,
    timeout: Duration,
}

/// Two connected ends. A receive that waits longer than `timeout` fails with
/// [`ChannelError::Timeout`] instead of hanging, and so does a flush that
/// waits that long for the peer to drain [`MEMORY_QUEUE_BYTES`].
pub fn memory_pair(timeout: Duration) -> (MemoryChannel, MemoryChannel) {
    let (ab, ba) = (Arc::new(Pipe::default()), Arc::new(Pipe::default()));
    let mk = |tx, rx| MemoryChannel {
        tx,
        rx,
        out: Vec::new(),
        pending: Vec::new(),
        pos: 0,
        timeout,
    };
    (mk(ab.clone(), ba.clone()), mk(ba, ab))
}

impl Drop for MemoryChannel {
    fn drop(&mut self) {
        self.tx.lock().sender_gone = true;
        self.tx.changed.notify_all();
        self.rx.lock().receiver_gone = true;
        self.rx.changed.notify_all();
    }
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
                let mut st = self.rx.wait_until(self.rx.lock(), self.timeout, |s| {
                    !s.queue.is_empty() || s.sender_gone
                })?;
                let Some(msg) = st.queue.pop_front() else {
                    return Err(ChannelError::Closed);
                };
                st.bytes -= msg.len();
                drop(st);
                self.rx.changed.notify_all();
                self.pending = msg;
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
        if self.out.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.out);
        let len = chunk.len();
        let mut st = self.tx.wait_until(self.tx.lock(), self.timeout, |s| {
            s.receiver_gone || s.bytes == 0 || s.bytes + len <= MEMORY_QUEUE_BYTES
        })?;
        if st.receiver_gone {
            return Err(ChannelError::Closed);
        }
        st.bytes += len;
        st.queue.push_back(chunk);
        drop(st);
        self.tx.changed.notify_all();
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
    fn a_full_queue_makes_the_sender_wait_for_the_receiver() {
        let (mut a, mut b) = memory_pair(Duration::from_millis(100));
        let big = vec![7u8; MEMORY_QUEUE_BYTES];
        a.send(&big).unwrap();
        a.flush().unwrap(); // an empty queue takes any message
        a.send(b"x").unwrap();
        assert!(matches!(a.flush(), Err(ChannelError::Timeout)));
        let t = std::thread::spawn(move || {
            let mut buf = vec![0u8; MEMORY_QUEUE_BYTES];
            b.recv(&mut buf).unwrap();
            let mut one = [0u8; 1];
            b.recv(&mut one).unwrap();
            one
        });
        a.send(b"y").unwrap();
        a.flush().unwrap(); // waits until the receiver drained the big message
        assert_eq!(&t.join().unwrap(), b"y");
        // A receiver that is gone makes the next flush fail at once.
        a.send(b"z").unwrap();
        assert!(matches!(a.flush(), Err(ChannelError::Closed)));
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
