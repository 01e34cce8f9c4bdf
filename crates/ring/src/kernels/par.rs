//! Splitting kernel work over the machine's cores.

use rayon::prelude::*;

use super::simd::{self, Isa, Kernel};

/// Multiply-adds from which a kernel uses every core (below it, waking the
/// other threads costs more than they save).
pub const PARALLEL_MACS: usize = 1 << 20;

/// Threads worth using for `macs` multiply-adds.
pub(crate) fn workers(macs: usize) -> usize {
    if macs >= PARALLEL_MACS {
        rayon::current_num_threads().max(1)
    } else {
        1
    }
}

/// Runs every task for `isa`, over all cores when `macs` is large.
pub(crate) fn run_all<K: Kernel<Output = ()> + Send>(isa: Isa, macs: usize, tasks: Vec<K>) {
    if workers(macs) > 1 && tasks.len() > 1 {
        tasks.into_par_iter().for_each(|t| simd::run(isa, t));
    } else {
        tasks.into_iter().for_each(|t| simd::run(isa, t));
    }
}

/// Cuts `out`, made of rows of `row_len`, into pieces of at most `piece`
/// elements per row: `(row, piece index, piece)` in row-major order. Tasks
/// gather the pieces they write, so a task can own a block of a matrix
/// whose rows are not contiguous.
pub(crate) fn pieces<T>(
    out: &mut [T],
    row_len: usize,
    piece: usize,
) -> impl Iterator<Item = (usize, usize, &mut [T])> {
    out.chunks_mut(row_len.max(1))
        .enumerate()
        .flat_map(move |(r, row)| {
            row.chunks_mut(piece.max(1))
                .enumerate()
                .map(move |(p, s)| (r, p, s))
        })
}
