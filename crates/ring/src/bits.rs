//! Bit-sliced packing: `len` bits stored 64 to a word, lane `i` in word
//! `i / 64` at bit `i % 64`, so that one word operation acts on 64 values.
//!
//! Bits past `len` in the last word are always zero (every constructor and
//! operation keeps that invariant), so equality and byte encoding are exact.

/// A packed vector of bits (one lane per value of a layer).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BitVec {
    words: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for BitVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BitVec(len={})", self.len)
    }
}

/// Number of words needed for `len` bits.
#[inline]
pub fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

/// Number of bytes a `len`-bit vector takes on the wire.
#[inline]
pub fn bytes_for(len: usize) -> usize {
    len.div_ceil(8)
}

impl BitVec {
    /// All-zero vector of `len` bits.
    pub fn zeros(len: usize) -> Self {
        Self {
            words: vec![0; words_for(len)],
            len,
        }
    }

    /// All-one vector of `len` bits.
    pub fn ones(len: usize) -> Self {
        let mut v = Self {
            words: vec![u64::MAX; words_for(len)],
            len,
        };
        v.mask_tail();
        v
    }

    /// Builds from packed words; bits past `len` are cleared.
    pub fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        words.resize(words_for(len), 0);
        let mut v = Self { words, len };
        v.mask_tail();
        v
    }

    /// Builds from one bool per lane.
    pub fn from_bools(bits: &[bool]) -> Self {
        let mut v = Self::zeros(bits.len());
        for (i, b) in bits.iter().enumerate() {
            if *b {
                v.words[i / 64] |= 1 << (i % 64);
            }
        }
        v
    }

    /// Reads exactly [`bytes_for`]`(len)` little-endian bytes.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Self {
        let bytes = &bytes[..bytes_for(len).min(bytes.len())];
        let mut words = Vec::with_capacity(words_for(len));
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            words.push(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            words.push(u64::from_le_bytes(last));
        }
        Self::from_words(words, len)
    }

    /// Appends exactly [`bytes_for`]`(len)` little-endian bytes to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        let n = bytes_for(self.len);
        out.reserve(n);
        let full = n / 8;
        for w in &self.words[..full] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        if !n.is_multiple_of(8) {
            out.extend_from_slice(&self.words[full].to_le_bytes()[..n % 8]);
        }
    }

    /// Number of lanes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the vector has no lanes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The packed words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Lane `i` as 0 or 1.
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        (self.words[i / 64] >> (i % 64)) & 1
    }

    /// Sets lane `i` to the low bit of `b`.
    #[inline]
    pub fn set(&mut self, i: usize, b: u64) {
        let w = &mut self.words[i / 64];
        *w = (*w & !(1 << (i % 64))) | ((b & 1) << (i % 64));
    }

    /// Lane-wise XOR in place.
    pub fn xor_assign(&mut self, o: &BitVec) {
        debug_assert_eq!(self.len, o.len);
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a ^= b;
        }
    }

    /// Lane-wise AND in place.
    pub fn and_assign(&mut self, o: &BitVec) {
        debug_assert_eq!(self.len, o.len);
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= b;
        }
    }

    /// Lane-wise XOR.
    pub fn xor(&self, o: &BitVec) -> BitVec {
        let mut r = self.clone();
        r.xor_assign(o);
        r
    }

    /// Lane-wise AND.
    pub fn and(&self, o: &BitVec) -> BitVec {
        let mut r = self.clone();
        r.and_assign(o);
        r
    }

    /// Lane-wise NOT.
    pub fn not(&self) -> BitVec {
        let mut r = Self {
            words: self.words.iter().map(|w| !w).collect(),
            len: self.len,
        };
        r.mask_tail();
        r
    }

    /// Unpacks to one `u64` (0 or 1) per lane.
    pub fn to_u64s(&self) -> Vec<u64> {
        (0..self.len).map(|i| self.get(i)).collect()
    }

    fn mask_tail(&mut self) {
        let r = self.len % 64;
        if let (true, Some(last)) = (r != 0, self.words.last_mut()) {
            *last &= (1u64 << r) - 1;
        }
    }
}

/// Transposes values into bit planes: plane `j` holds bit `j` of every value.
/// Returns `bits` planes of `xs.len()` lanes each.
///
/// Works on blocks of 64 values with an in-register 64 x 64 bit-matrix
/// transpose (six butterfly passes, about 3 word operations per value and
/// pass) instead of 64 shift-and-or steps per value.
pub fn bit_planes(xs: &[u64], bits: u32) -> Vec<BitVec> {
    let n = xs.len();
    let bits = (bits as usize).min(64);
    let mut planes: Vec<Vec<u64>> = vec![Vec::with_capacity(words_for(n)); bits];
    let mut block = [0u64; 64];
    for chunk in xs.chunks(64) {
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (plane, word) in planes.iter_mut().zip(&block) {
            plane.push(*word);
        }
    }
    planes
        .into_iter()
        .map(|p| BitVec::from_words(p, n))
        .collect()
}

/// Transposes a 64 x 64 bit matrix in place: afterwards bit `i` of word `j`
/// is what bit `j` of word `i` was.
fn transpose64(a: &mut [u64; 64]) {
    const MASKS: [(usize, u64); 6] = [
        (32, 0x0000_0000_FFFF_FFFF),
        (16, 0x0000_FFFF_0000_FFFF),
        (8, 0x00FF_00FF_00FF_00FF),
        (4, 0x0F0F_0F0F_0F0F_0F0F),
        (2, 0x3333_3333_3333_3333),
        (1, 0x5555_5555_5555_5555),
    ];
    for (j, m) in MASKS {
        // Swap the off-diagonal j x j blocks of every 2j x 2j block.
        for k in (0..64).filter(|k| k & j == 0) {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k + j] ^= t;
            a[k] ^= t << j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tail_is_masked() {
        let v = BitVec::ones(70);
        assert_eq!(v.words()[1], (1 << 6) - 1);
        assert_eq!(v.not(), BitVec::zeros(70));
        let mut bytes = Vec::new();
        v.write_bytes(&mut bytes);
        assert_eq!(bytes.len(), 9);
        assert_eq!(BitVec::from_bytes(&bytes, 70), v);
    }

    /// The definition: plane `j`, lane `i` is bit `j` of value `i`.
    fn planes_naive(xs: &[u64], bits: u32) -> Vec<BitVec> {
        (0..bits)
            .map(|j| BitVec::from_bools(&xs.iter().map(|x| (x >> j) & 1 == 1).collect::<Vec<_>>()))
            .collect()
    }

    #[test]
    fn planes_match_their_definition_on_edge_values() {
        let edges = [
            0,
            1,
            u64::MAX,
            1 << 63,
            (1 << 63) - 1,
            0x5555_5555_5555_5555,
        ];
        for n in [0, 1, 63, 64, 65, 127, 128, 200] {
            let xs: Vec<u64> = (0..n)
                .map(|i| edges[i % edges.len()] ^ (i as u64).rotate_left(17))
                .collect();
            for bits in [1, 7, 63, 64] {
                assert_eq!(
                    bit_planes(&xs, bits),
                    planes_naive(&xs, bits),
                    "n {n}, bits {bits}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn planes_equal_the_naive_transpose(xs in proptest::collection::vec(any::<u64>(), 0..300), bits in 1u32..=64) {
            prop_assert_eq!(bit_planes(&xs, bits), planes_naive(&xs, bits));
        }

        #[test]
        fn word_bytes_round_trip(words in proptest::collection::vec(any::<u64>(), 0..20), cut in 0usize..64) {
            let len = (words.len() * 64).saturating_sub(cut);
            let v = BitVec::from_words(words, len);
            let mut bytes = Vec::new();
            v.write_bytes(&mut bytes);
            prop_assert_eq!(bytes.len(), bytes_for(len));
            prop_assert_eq!(BitVec::from_bytes(&bytes, len), v);
        }

        #[test]
        fn planes_round_trip(xs in proptest::collection::vec(any::<u64>(), 0..200)) {
            let planes = bit_planes(&xs, 64);
            for (i, x) in xs.iter().enumerate() {
                let back = (0..64).fold(0u64, |acc, j| acc | (planes[j].get(i) << j));
                prop_assert_eq!(back, *x);
            }
        }

        #[test]
        fn bytes_round_trip(bits in proptest::collection::vec(any::<bool>(), 0..300)) {
            let v = BitVec::from_bools(&bits);
            let mut out = Vec::new();
            v.write_bytes(&mut out);
            prop_assert_eq!(out.len(), bytes_for(bits.len()));
            prop_assert_eq!(BitVec::from_bytes(&out, bits.len()), v);
        }
    }
}
