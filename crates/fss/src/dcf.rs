//! The distributed comparison function of Boyle, Chandran, Gilboa, Gupta,
//! Ishai, Kohli and Kolobov (Eurocrypt 2021, figure 1): key generation for
//! `f(x) = beta [x < alpha]` and evaluation by each party, batched over many
//! keys and, per key, many points.
//!
//! Both passes walk the tree level by level over a whole chunk of keys (or
//! evaluations), so that each level is one call into AES with thousands of
//! blocks; large batches are split over the machine's cores.
//!
//! The secret bits of the walk (alpha's bits in key generation, the control
//! bits in both passes) select by masks, not branches: they are
//! pseudo-random, so a branch would mispredict every other time (masks made
//! evaluation 1.15-1.5x and key generation 1.2x faster, `cargo bench -p
//! cryptmed-fss`), and the code takes no branch on alpha.

use std::marker::PhantomData;

use crate::group::Group;
use crate::prg::{FixedAes, SEED_MASK};

/// Keys generated per chunk (each chunk is walked level by level).
const GEN_CHUNK: usize = 256;
/// Evaluations per chunk.
const EVAL_CHUNK: usize = 128;
/// Work items below which a batch stays on one thread.
const PARALLEL_MIN: usize = 4096;

/// `$s.$method::<W>(args)` with `W` the payload width `$w` when that width
/// has its own compiled walk (1 to 4, the protocols' widths: loops unrolled),
/// else `W = 0`, the walk for any width.
macro_rules! by_width {
    ($w:expr, $s:ident . $method:ident ($($arg:expr),*)) => {
        match $w {
            1 => $s.$method::<1>($($arg),*),
            2 => $s.$method::<2>($($arg),*),
            3 => $s.$method::<3>($($arg),*),
            4 => $s.$method::<4>($($arg),*),
            _ => $s.$method::<0>($($arg),*),
        }
    };
}

/// A DCF family: inputs of `bits` bits (most significant first), outputs
/// vectors of `width` elements of the group `G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dcf<G: Group> {
    bits: u32,
    width: usize,
    group: PhantomData<G>,
}

/// The number of bytes of one key's public part (its correction words) for
/// `bits`-bit inputs and `width`-element payloads of `G`:
/// `16 bits + ceil(G::BITS * width * (bits + 1) / 8)` (a 16-byte seed
/// correction per level with both control-bit corrections in its two low
/// bits, and a payload correction per level plus the leaf's). The root seed
/// each party also holds is not counted: it comes from the party's own PRG.
pub fn key_bytes<G: Group>(bits: u32, width: usize) -> usize {
    16 * bits as usize + G::packed_bytes(width * (bits as usize + 1))
}

impl<G: Group> Dcf<G> {
    /// A DCF on `bits`-bit inputs (1 to 64) with `width`-element payloads.
    ///
    /// # Panics
    /// If `bits` is outside 1..=64 or `G` does not support `width` (GF(2)
    /// payloads are single bits); both are fixed by the calling protocol.
    pub fn new(bits: u32, width: usize) -> Self {
        assert!((1..=64).contains(&bits), "DCF input width {bits}");
        assert!(
            G::check_width(width),
            "payload width {width} for {}",
            G::NAME
        );
        Self {
            bits,
            width,
            group: PhantomData,
        }
    }

    /// Input bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Payload elements.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Bytes of one key's correction words ([`key_bytes`]).
    pub fn key_bytes(&self) -> usize {
        key_bytes::<G>(self.bits, self.width)
    }

    /// AES blocks one expansion produces during key generation (both sides).
    fn gen_blocks(&self) -> usize {
        2 + 2 * G::payload_blocks(self.width)
    }

    /// AES blocks one evaluation step consumes (the taken side only).
    fn eval_blocks(&self) -> usize {
        1 + G::payload_blocks(self.width)
    }

    /// Dealer: the correction words of `alphas.len()` keys, key `i` for
    /// `betas[i*width..(i+1)*width] * [x < alphas[i]]`, concatenated
    /// ([`key_bytes`] each). `roots[p][i]` is party `p`'s root seed of key
    /// `i` (its two low bits are ignored); the parties' roots must be
    /// independent and uniform.
    ///
    /// # Panics
    /// If the slices' lengths disagree or an `alpha` has more than `bits` bits.
    pub fn keygen(&self, roots: [&[u128]; 2], alphas: &[u64], betas: &[u64]) -> Vec<u8> {
        let keys = alphas.len();
        assert_eq!(roots[0].len(), keys, "provider roots");
        assert_eq!(roots[1].len(), keys, "client roots");
        assert_eq!(betas.len(), keys * self.width, "payloads");
        assert!(
            self.bits == 64 || alphas.iter().all(|a| a >> self.bits == 0),
            "alpha beyond {} bits",
            self.bits
        );
        let kb = self.key_bytes();
        let mut out = vec![0u8; keys * kb];
        let work = |first: usize, part: &mut [u8]| {
            let aes = FixedAes::new();
            for (c, out) in part.chunks_mut(GEN_CHUNK * kb).enumerate() {
                let lo = first + c * GEN_CHUNK;
                let hi = lo + out.len() / kb;
                let chunk = (
                    [&roots[0][lo..hi], &roots[1][lo..hi]],
                    &alphas[lo..hi],
                    &betas[lo * self.width..hi * self.width],
                    out,
                );
                by_width!(self.width, self.gen_chunk(&aes, chunk));
            }
        };
        split(&mut out, kb, 1, work);
        out
    }

    /// Party `party` (0 or 1): its shares of `f_k(points[k*per + j])` for
    /// each key `k` of `cws` (as [`keygen`](Self::keygen) wrote them, `per` points
    /// per key), `width` elements per point, in point order.
    ///
    /// # Panics
    /// If `party > 1`, `cws` is not a whole number of keys, the roots or
    /// points do not match it, or `per` is 0.
    pub fn eval(
        &self,
        party: usize,
        roots: &[u128],
        cws: &[u8],
        points: &[u64],
        per: usize,
    ) -> Vec<u64> {
        assert!(party < 2, "party {party}");
        assert!(per > 0, "no points per key");
        let kb = self.key_bytes();
        assert_eq!(cws.len() % kb, 0, "correction words are not whole keys");
        let keys = cws.len() / kb;
        assert_eq!(roots.len(), keys, "roots");
        assert_eq!(points.len(), keys * per, "points");
        let w = self.width;
        let mut out = vec![0u64; points.len() * w];
        let work = |first: usize, out: &mut [u64]| {
            let aes = FixedAes::new();
            for (c, out) in out.chunks_mut(EVAL_CHUNK * w).enumerate() {
                let lo = first + c * EVAL_CHUNK;
                let hi = lo + out.len() / w;
                let chunk = (party, roots, cws, &points[lo..hi], lo, per, out);
                by_width!(w, self.eval_chunk(&aes, chunk));
            }
        };
        split(&mut out, w, per, work);
        out
    }

    /// Key generation for one chunk of keys, level by level; `W` is the
    /// payload width when known at compile time, else 0.
    fn gen_chunk<const W: usize>(&self, aes: &FixedAes, chunk: GenChunk<'_>) {
        let (roots, alphas, betas, out) = chunk;
        let w = if W == 0 { self.width } else { W };
        let (c, n) = (alphas.len(), self.bits as usize);
        let h = G::payload_blocks(w);
        let per = self.gen_blocks();
        let kb = self.key_bytes();
        // Party-major state: index p * c + k.
        let mut s: Vec<u128> = roots[0]
            .iter()
            .chain(roots[1])
            .map(|r| r & SEED_MASK)
            .collect();
        let mut t: Vec<bool> = (0..2 * c).map(|i| i >= c).collect();
        let mut va = vec![0u64; c * w];
        let mut vals = vec![0u64; c * w * (n + 1)];
        let mut blocks = vec![0u128; 2 * c * per];
        let mut buf = Vec::with_capacity(blocks.len());
        // pay[p][side]: one side's payload of party p for the current key.
        let mut pay = [
            [vec![0u64; w], vec![0u64; w]],
            [vec![0u64; w], vec![0u64; w]],
        ];
        for level in 0..n {
            for (b, seed) in blocks.chunks_exact_mut(per).zip(&s) {
                for (j, b) in b.iter_mut().enumerate() {
                    *b = seed ^ FixedAes::tweak(j);
                }
            }
            aes.hash(&mut blocks, &mut buf);
            for k in 0..c {
                let a = (alphas[k] >> (n - 1 - level)) & 1 == 1;
                let (keep, lose) = (usize::from(a), usize::from(!a));
                let mut seed = [[0u128; 2]; 2];
                let mut tb = [[false; 2]; 2];
                for p in 0..2 {
                    let e = &blocks[(p * c + k) * per..(p * c + k + 1) * per];
                    for side in 0..2 {
                        seed[p][side] = e[side] & SEED_MASK;
                        tb[p][side] = e[side] & 1 == 1;
                        let pb = &e[2 + side * h..2 + (side + 1) * h];
                        G::payload(e[side], pb, &mut pay[p][side]);
                    }
                }
                let s_cw = seed[0][lose] ^ seed[1][lose];
                let t_cw = [tb[0][0] ^ tb[1][0] ^ a ^ true, tb[0][1] ^ tb[1][1] ^ a];
                // Alpha's bits and the control bits are secret and
                // pseudo-random: masks, not branches.
                let am = u64::from(a).wrapping_neg();
                let t1 = t[c + k];
                let sign = |x: u64| G::select_neg(x, t1);
                for e in 0..w {
                    let acc = &mut va[k * w + e];
                    let v = G::sub(G::sub(pay[1][lose][e], pay[0][lose][e]), *acc);
                    let v = sign(G::add(v, betas[k * w + e] & am));
                    vals[(k * (n + 1) + level) * w + e] = v;
                    *acc = G::add(
                        G::add(G::sub(*acc, pay[1][keep][e]), pay[0][keep][e]),
                        sign(v),
                    );
                }
                let word = s_cw | u128::from(t_cw[0]) | u128::from(t_cw[1]) << 1;
                let at = k * kb + 16 * level;
                out[at..at + 16].copy_from_slice(&word.to_le_bytes());
                for p in 0..2 {
                    let i = p * c + k;
                    let tp = t[i];
                    let tm = u128::from(tp).wrapping_neg();
                    s[i] = seed[p][keep] ^ (s_cw & tm);
                    t[i] = tb[p][keep] ^ (tp & t_cw[keep]);
                }
            }
        }
        // The leaf: CW = (-1)^t1 (convert(s1) - convert(s0) - V_alpha).
        let leaf = self.leaf_payloads(aes, &s, &mut buf);
        for k in 0..c {
            let t1 = t[c + k];
            for e in 0..w {
                let v = G::sub(
                    G::sub(leaf[(c + k) * w + e], leaf[k * w + e]),
                    va[k * w + e],
                );
                vals[(k * (n + 1) + n) * w + e] = G::select_neg(v, t1);
            }
        }
        let mut packed = Vec::with_capacity(G::packed_bytes(w * (n + 1)));
        for k in 0..c {
            packed.clear();
            G::write(&vals[k * w * (n + 1)..(k + 1) * w * (n + 1)], &mut packed);
            out[k * kb + 16 * n..(k + 1) * kb].copy_from_slice(&packed);
        }
    }

    /// `convert(s)` for each seed: the left-side payload of its expansion.
    fn leaf_payloads(&self, aes: &FixedAes, seeds: &[u128], buf: &mut Vec<[u8; 16]>) -> Vec<u64> {
        let w = self.width;
        let per = self.eval_blocks();
        let mut blocks = vec![0u128; seeds.len() * per];
        for (b, seed) in blocks.chunks_exact_mut(per).zip(seeds) {
            for (j, b) in b.iter_mut().enumerate() {
                *b = seed ^ FixedAes::tweak(if j == 0 { 0 } else { 1 + j });
            }
        }
        aes.hash(&mut blocks, buf);
        let mut out = vec![0u64; seeds.len() * w];
        for (i, o) in out.chunks_mut(w).enumerate() {
            let e = &blocks[i * per..(i + 1) * per];
            G::payload(e[0], &e[1..], o);
        }
        out
    }

    /// Evaluation of one chunk of points (`first` is the index of the chunk's first point).
    /// `W` is the payload width when known at compile time, else 0.
    fn eval_chunk<const W: usize>(&self, aes: &FixedAes, chunk: EvalChunk<'_>) {
        let (party, roots, cws, points, first, per, out) = chunk;
        let w = if W == 0 { self.width } else { W };
        let n = self.bits as usize;
        let h = G::payload_blocks(w);
        let step = self.eval_blocks();
        let kb = self.key_bytes();
        // Each point's key, found once (not a division per level).
        let keys: Vec<usize> = (first..first + points.len()).map(|i| i / per).collect();
        let mut s: Vec<u128> = keys.iter().map(|k| roots[*k] & SEED_MASK).collect();
        // Bring the chunk's keys into cache front to back (a stream the
        // prefetcher follows) before the walk reads a word of each per level.
        let (lo, hi) = (keys[0] * kb, (keys[keys.len() - 1] + 1) * kb);
        let touched = cws[lo..hi].iter().step_by(64).fold(0u8, |a, b| a ^ b);
        std::hint::black_box(touched);
        let mut t = vec![party == 1; points.len()];
        let mut blocks = vec![0u128; points.len() * step];
        let mut buf = Vec::with_capacity(blocks.len());
        let mut pay = vec![0u64; w];
        let negate = party == 1;
        for level in 0..n {
            let shift = n - 1 - level;
            for ((b, x), seed) in blocks.chunks_exact_mut(step).zip(points).zip(&s) {
                let side = ((x >> shift) & 1) as usize;
                b[0] = seed ^ FixedAes::tweak(side);
                for (j, y) in b[1..].iter_mut().enumerate() {
                    *y = seed ^ FixedAes::tweak(2 + side * h + j);
                }
            }
            aes.hash(&mut blocks, &mut buf);
            let iter = blocks
                .chunks_exact(step)
                .zip(out.chunks_exact_mut(w))
                .zip(points.iter().zip(&keys))
                .zip(s.iter_mut().zip(t.iter_mut()));
            for (((b, o), (x, k)), (seed, tb)) in iter {
                let side = ((x >> shift) & 1) as u32;
                let key = &cws[k * kb..(k + 1) * kb];
                let cw = u128::from_le_bytes(
                    key[16 * level..16 * level + 16]
                        .try_into()
                        .unwrap_or([0; 16]),
                );
                G::payload(b[0], &b[1..], &mut pay);
                // The control bit is pseudo-random: masks, not branches
                // (a mispredicted branch per level and element costs more
                // than the AES call).
                let on = u64::from(*tb).wrapping_neg();
                let fix = cw & (u128::from(on) | u128::from(on) << 64);
                *seed = (b[0] ^ fix) & SEED_MASK;
                *tb = (b[0] & 1 == 1) ^ ((fix >> side) & 1 == 1);
                let vals = &key[16 * n..];
                for (j, (o, p)) in o.iter_mut().zip(&pay).enumerate() {
                    let v = G::add(*p, G::read(vals, level * w + j) & on);
                    *o = G::add(*o, if negate { G::neg(v) } else { v });
                }
            }
        }
        let leaf = self.leaf_payloads(aes, &s, &mut buf);
        for (e, o) in out.chunks_exact_mut(w).enumerate() {
            let vals = &cws[keys[e] * kb + 16 * n..(keys[e] + 1) * kb];
            let on = u64::from(t[e]).wrapping_neg();
            for (j, o) in o.iter_mut().enumerate() {
                let v = G::add(leaf[e * w + j], G::read(vals, n * w + j) & on);
                *o = G::add(*o, if negate { G::neg(v) } else { v });
            }
        }
    }
}

/// One chunk of a key generation: both parties' roots, the points, the
/// payloads and the keys' bytes.
type GenChunk<'a> = ([&'a [u128]; 2], &'a [u64], &'a [u64], &'a mut [u8]);

/// One chunk of an evaluation: party, roots, correction words, the chunk's
/// points, the index of its first point, points per key, and its outputs.
type EvalChunk<'a> = (
    usize,
    &'a [u128],
    &'a [u8],
    &'a [u64],
    usize,
    usize,
    &'a mut [u64],
);

/// Threads worth using for `items` work items.
fn threads_for(items: usize) -> usize {
    if items < PARALLEL_MIN {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(items / (PARALLEL_MIN / 2)).max(1)
}

/// Runs `work(first, part)` over `out`, whose items are `record` elements
/// long, split into one contiguous part per thread at multiples of `align`
/// items (`first` is the index of the part's first item).
fn split<T: Send>(
    out: &mut [T],
    record: usize,
    align: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let items = out.len() / record;
    let threads = threads_for(items);
    if threads == 1 {
        work(0, out);
        return;
    }
    let span = (items / align).div_ceil(threads) * align;
    std::thread::scope(|sc| {
        for (i, part) in out.chunks_mut(span * record).enumerate() {
            let work = &work;
            sc.spawn(move || work(i * span, part));
        }
    });
}
