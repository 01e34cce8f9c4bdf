//! Opening shares: each party sends its share and adds the peer's.
//!
//! An exchange is one simultaneous message each way: one round, `8n` bytes
//! sent per party for `n` ring elements, `ceil(n/8)` bytes for `n` bits.
//! Several values opened in the same round travel in one message
//! ([`open_elems`], [`open_bits`]); [`send_elems`], [`recv_elems`],
//! [`send_bits`] and [`recv_bits`] are the one-way halves.

use cryptmed_channel::{Channel, ChannelError};
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_ring::{ELEM_BYTES, Elem, bytes_to_elems, elems_to_bytes};

/// Sends ring elements to the peer (no receive).
pub fn send_elems(ch: &mut dyn Channel, xs: &[Elem]) -> Result<(), ChannelError> {
    let mut buf = Vec::with_capacity(xs.len() * ELEM_BYTES);
    elems_to_bytes(xs, &mut buf);
    ch.send(&buf)
}

/// Receives `n` ring elements from the peer.
pub fn recv_elems(ch: &mut dyn Channel, n: usize) -> Result<Vec<Elem>, ChannelError> {
    Ok(bytes_to_elems(&ch.recv_vec(n * ELEM_BYTES)?))
}

/// Sends bit vectors, each packed to `ceil(len/8)` bytes, in one message.
pub fn send_bits(ch: &mut dyn Channel, vs: &[&BitVec]) -> Result<(), ChannelError> {
    let mut buf = Vec::with_capacity(vs.iter().map(|v| bytes_for(v.len())).sum());
    for v in vs {
        v.write_bytes(&mut buf);
    }
    ch.send(&buf)
}

/// Receives bit vectors of the given lengths (as sent by [`send_bits`]).
pub fn recv_bits(ch: &mut dyn Channel, lens: &[usize]) -> Result<Vec<BitVec>, ChannelError> {
    let total: usize = lens.iter().map(|l| bytes_for(*l)).sum();
    let buf = ch.recv_vec(total)?;
    let mut at = 0;
    Ok(lens
        .iter()
        .map(|l| {
            let n = bytes_for(*l);
            let v = BitVec::from_bytes(&buf[at..at + n], *l);
            at += n;
            v
        })
        .collect())
}

/// Opens additive shares: returns `mine + theirs` (one round).
pub fn open_elems(ch: &mut dyn Channel, mine: &[Elem]) -> Result<Vec<Elem>, ChannelError> {
    let mut out = Vec::with_capacity(mine.len() * ELEM_BYTES);
    elems_to_bytes(mine, &mut out);
    let mut input = vec![0u8; out.len()];
    ch.exchange(&out, &mut input)?;
    Ok(cryptmed_ring::add(mine, &bytes_to_elems(&input)))
}

/// Opens XOR shares of several bit vectors in one round.
pub fn open_bits(ch: &mut dyn Channel, mine: &[&BitVec]) -> Result<Vec<BitVec>, ChannelError> {
    let mut out = Vec::with_capacity(mine.iter().map(|v| bytes_for(v.len())).sum());
    for v in mine {
        v.write_bytes(&mut out);
    }
    let mut input = vec![0u8; out.len()];
    ch.exchange(&out, &mut input)?;
    let mut at = 0;
    Ok(mine
        .iter()
        .map(|v| {
            let n = bytes_for(v.len());
            let theirs = BitVec::from_bytes(&input[at..at + n], v.len());
            at += n;
            v.xor(&theirs)
        })
        .collect())
}
