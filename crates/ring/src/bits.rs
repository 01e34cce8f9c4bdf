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
        let mut words = vec![0u64; words_for(len)];
        for (i, b) in bytes.iter().take(bytes_for(len)).enumerate() {
            words[i / 8] |= (*b as u64) << (8 * (i % 8));
        }
        Self::from_words(words, len)
    }

    /// Appends exactly [`bytes_for`]`(len)` little-endian bytes to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        let n = bytes_for(self.len);
        for i in 0..n {
            out.push((self.words[i / 8] >> (8 * (i % 8))) as u8);
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
pub fn bit_planes(xs: &[u64], bits: u32) -> Vec<BitVec> {
    let n = xs.len();
    let mut planes: Vec<Vec<u64>> = vec![vec![0u64; words_for(n)]; bits as usize];
    for (i, x) in xs.iter().enumerate() {
        let (w, s) = (i / 64, i % 64);
        let mut v = *x;
        for plane in planes.iter_mut() {
            plane[w] |= (v & 1) << s;
            v >>= 1;
        }
    }
    planes
        .into_iter()
        .map(|p| BitVec::from_words(p, n))
        .collect()
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

    proptest! {
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
