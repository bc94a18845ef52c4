//! Winograd's minimal filtering on 6×6 tiles, at stride 1: F(4×4, 3×3) for 3×3 kernels and
//! F(2×2, 5×5) for 5×5 ones. Each m×m block of outputs (m = 7 − r) comes from a 6×6 block of
//! input through 36 products, against 16·9 = 144 (3×3) or 4·25 = 100 (5×5) for im2col. Both
//! interpolate at 0, ±1, ±2 and ∞, so they share the input transform `Bᵀ`; `G` and `Aᵀ` depend on
//! r and m. With `ξ` the 36 positions of a transformed tile and `T` the tiles of a group of images:
//! - filters: `U[ξ][O, C] = (G w Gᵀ)[ξ]`, once per call;
//! - input: `V[ξ][C, T] = (Bᵀ d B)[ξ]` for each 6×6 tile `d` (zero outside the image);
//! - 36 GEMMs `M[ξ][O, T] = U[ξ] · V[ξ]`;
//! - output: each tile's m×m block is `Aᵀ m A`.
//!
//! The transforms work on 16 tiles at a time, one per vector lane, so that they vectorise
//! whatever the width of the image (a row of an 8×8 plane holds only two 4×4 blocks).
//!
//! The input gradient of a stride-1 convolution is again one: `dY` correlated with the filters
//! turned by 180° and with input and output channels swapped, padded by `r − 1 − pad`. The weight
//! gradient is the same bilinear form read the other way: `Gᵀ (Σ (A δ Aᵀ) ⊙ V) G`.

use rayon::prelude::*;

use crate::kernel::{Geometry, Mat, Spare, copy_run, gemm, grow, task_sums, zeros};
use crate::simd::widest;

/// The side of a transformed tile.
const ALPHA: usize = 6;

/// Positions of a transformed tile.
const XI: usize = ALPHA * ALPHA;

/// Tiles transformed at once, one a vector lane.
const LANES: usize = 16;

type Lane = [f32; LANES];

/// The fewest tiles worth a GEMM: below that, images are grouped side by side.
const MIN_TILES: usize = 256;

/// The fewest input and output channels for the transforms to pay.
const MIN_CHANNELS: usize = 64;

/// The fewest output blocks in the batch times `min(C, O)` for the transforms of the filters to
/// pay.
const MIN_WORK: usize = 12288;

/// The fewest output blocks an image for the weight gradient to pay: with fewer, its GEMMs sum
/// over too few columns a group.
const MIN_IMAGE_TILES: usize = 4;

/// Whether these transforms compute this convolution: a 3×3 or 5×5 kernel at stride 1, padded by
/// less than its side.
pub fn fits(g: &Geometry) -> bool {
    g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.stride == [1, 1] && g.pad.iter().all(|&p| p < g.kh)
}

/// Output blocks an image.
fn tiles(g: &Geometry) -> usize {
    let m = ALPHA + 1 - g.kh;
    g.ho.div_ceil(m) * g.wo.div_ceil(m)
}

/// Whether the forward pass and the input gradient are also faster than im2col's, as measured on
/// the models' layers (forward and both gradients, 2 cores with AVX-512, batch 64 unless said):
/// AlexNet's 5×5 64 → 192 at 16 px 105 ms against 150; its full-width 8×8 layers 29–45 ms against
/// 67–97, the half-width ones 10–14 against 22–31; ResNet-18's 3×3 layers at 32, 16 and 8 px 51,
/// 34 and 29 ms against 79, 55 and 65; at 4 px (one block an image), forward and input gradient
/// 14 + 18 ms against 24 + 32. Not where there are few channels (3 → 64 at 32 px: 61 against 12;
/// the half-width 32 → 96 at 16 px: 44 against 35) or few blocks in the batch: 192 → 384 at 8×8
/// for 8 images 12 ms against 9 (for 16 images, 14 against 20); one 16×16 image of 64 → 192 by
/// 5×5, 9 against 4 (four of them, 8 against 10).
pub fn pays(g: &Geometry) -> bool {
    fits(g) && g.c.min(g.o) >= MIN_CHANNELS && g.n * tiles(g) * g.c.min(g.o) >= MIN_WORK
}

/// Whether the weight gradient is also faster than im2col's: where [`pays`], with at least four
/// blocks an image (512 channels at 4 px: 38 ms against 23).
pub fn pays_weight_grad(g: &Geometry) -> bool {
    pays(g) && tiles(g) >= MIN_IMAGE_TILES
}

/// The scales of `G`'s rows: ¼, −⅙, −⅙, 1/24, 1/24 and 1.
const G_SCALE: [f32; ALPHA] = [0.25, -1.0 / 6.0, -1.0 / 6.0, 1.0 / 24.0, 1.0 / 24.0, 1.0];

/// `G w` of the `R` taps of a filter's column: the filter's polynomial at 0, 1, −1, 2 and −2, and
/// its leading coefficient (∞), scaled by [`G_SCALE`].
#[inline(always)]
fn g<const R: usize>(w: [f32; R]) -> [f32; ALPHA] {
    let values = a::<R>(w);
    std::array::from_fn(|p| G_SCALE[p] * values[p])
}

/// `Gᵀ s` of six values: `R` taps (the adjoint of [`g`]).
#[inline(always)]
fn gt<const R: usize>(s: [f32; ALPHA]) -> [f32; R] {
    at::<R>(std::array::from_fn(|p| G_SCALE[p] * s[p]))
}

/// `Bᵀ d` of a column of six values.
#[inline(always)]
fn bt([d0, d1, d2, d3, d4, d5]: [f32; ALPHA]) -> [f32; ALPHA] {
    [
        4.0 * d0 - 5.0 * d2 + d4,
        d3 + d4 - 4.0 * (d1 + d2),
        4.0 * (d1 - d2) + d4 - d3,
        2.0 * (d3 - d1) + d4 - d2,
        2.0 * (d1 - d3) + d4 - d2,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// `Aᵀ s` (its first `M` rows) of six values: the values of a polynomial at 0, ±1, ±2 and ∞
/// turned back into its `M` coefficients (row `k` holds the points' `k`-th powers).
#[inline(always)]
fn at<const M: usize>([s0, s1, s2, s3, s4, s5]: [f32; ALPHA]) -> [f32; M] {
    let (p1, m1, p2, m2) = (s1 + s2, s1 - s2, s3 + s4, s3 - s4);
    let (mut out, mut power) = ([0.0f32; M], 1.0f32);
    for (k, v) in out.iter_mut().enumerate() {
        *v = if k % 2 == 0 { p1 + power * p2 } else { m1 + power * m2 };
        power *= 2.0;
    }
    out[0] += s0;
    out[M - 1] += s5;
    out
}

/// `A δ` of `M` values (the adjoint of [`at`]): the polynomial with coefficients `δ` at 0, 1, −1,
/// 2 and −2, and its leading coefficient (∞).
#[inline(always)]
fn a<const M: usize>(d: [f32; M]) -> [f32; ALPHA] {
    // Even and odd powers at 1 and at 2.
    let (mut e1, mut o1, mut e2, mut o2, mut power) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 1.0f32);
    for (k, v) in d.iter().enumerate() {
        if k % 2 == 0 {
            e1 += v;
            e2 += power * v;
        } else {
            o1 += v;
            o2 += power * v;
        }
        power *= 2.0;
    }
    [d[0], e1 + o1, e1 - o1, e2 + o2, e2 - o2, d[M - 1]]
}

/// `dst[to(k)] = f(src[from(0)], …, src[from(I − 1)])[k]`, lane by lane.
#[inline(always)]
fn lanes<const I: usize, const O: usize>(
    src: &[Lane],
    from: impl Fn(usize) -> usize,
    dst: &mut [Lane],
    to: impl Fn(usize) -> usize,
    f: impl Fn([f32; I]) -> [f32; O],
) {
    let (from, to): ([usize; I], [usize; O]) = (std::array::from_fn(from), std::array::from_fn(to));
    assert!(from.iter().all(|&i| i < src.len()) && to.iter().all(|&k| k < dst.len()));
    for l in 0..LANES {
        let values = f(from.map(|i| src[i][l]));
        for (k, v) in to.iter().zip(values) {
            dst[*k][l] = v;
        }
    }
}

/// Filters per parallel task of [`filters`].
const FILTER_BLOCK: usize = 16 * LANES;

/// `U` (`[36][O, C]`) into `u` of `weight` (`[O, C, R, R]`): `G w Gᵀ` for every filter, 16
/// filters at a time, one a lane, blocks of filters in parallel, each writing its runs of the 36
/// streams. `turned`: the filters of the input gradient instead, `w'[o, c] = w[c, o]` turned by
/// 180° (`weight` then being `[C, O, R, R]`).
fn filters<'a, const R: usize>(weight: &[f32], [o, c]: [usize; 2], turned: bool, u: &'a mut Vec<f32>) -> &'a [f32] {
    let count = o * c;
    let u = grow(u, XI * count);
    if count == 0 {
        return u;
    }
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..count.div_ceil(FILTER_BLOCK)).map(|_| Vec::with_capacity(XI)).collect();
    for stream in u.chunks_mut(count) {
        for (block, run) in blocks.iter_mut().zip(stream.chunks_mut(FILTER_BLOCK)) {
            block.push(run);
        }
    }
    let taps = R * R;
    blocks.into_par_iter().enumerate().for_each(|(block, mut streams)| {
        widest(#[inline(always)] || {
            let (mut w, mut t, mut tile) = ([[0.0f32; LANES]; 25], [[0.0f32; LANES]; 5 * ALPHA], [[0.0f32; LANES]; XI]);
            let first = block * FILTER_BLOCK;
            for start in (0..streams[0].len()).step_by(LANES) {
                let n = LANES.min(streams[0].len() - start);
                for l in 0..n {
                    let f = first + start + l;
                    if turned {
                        let filter = &weight[((f % c) * o + f / c) * taps..][..taps];
                        for (tap, v) in w.iter_mut().zip(filter.iter().rev()) {
                            tap[l] = *v;
                        }
                    } else {
                        for (tap, v) in w.iter_mut().zip(&weight[f * taps..][..taps]) {
                            tap[l] = *v;
                        }
                    }
                }
                for b in 0..R {
                    lanes(&w, |a| a * R + b, &mut t, |p| p * R + b, g::<R>);
                }
                for p in 0..ALPHA {
                    lanes(&t, |b| p * R + b, &mut tile, |q| p * ALPHA + q, g::<R>);
                }
                for (stream, lane) in streams.iter_mut().zip(&tile) {
                    put(&mut stream[start..], lane, n);
                }
            }
        });
    });
    u
}

/// `dst[..n] = lane[..n]`, a fixed-size copy when the lane is full.
#[inline(always)]
fn put(dst: &mut [f32], lane: &Lane, n: usize) {
    if n == LANES {
        dst[..LANES].copy_from_slice(lane);
    } else {
        dst[..n].copy_from_slice(&lane[..n]);
    }
}

/// `lane[..n] = src[..n]`, a fixed-size copy when the lane is full.
#[inline(always)]
fn get(lane: &mut Lane, src: &[f32], n: usize) {
    if n == LANES {
        lane.copy_from_slice(&src[..LANES]);
    } else {
        lane[..n].copy_from_slice(&src[..n]);
    }
}

/// Where each tile of a group starts in its image's padded plane (`[rows, cols]` of
/// `[(tiles − 1)·m + 6]`, one plane an image side by side): `image·plane + ty·m·cols + tx·m`.
fn starts(images: usize, tiles: [usize; 2], m: usize, padded: [usize; 2]) -> Vec<usize> {
    let plane = padded[0] * padded[1];
    (0..images)
        .flat_map(|image| (0..tiles[0]).flat_map(move |ty| (0..tiles[1]).map(move |tx| image * plane + ty * m * padded[1] + tx * m)))
        .collect()
}

/// `V` (`[36][C, T]`) of the images `x` (each `[C, H, W]`): `Bᵀ d B` of every 6×6 tile `d` that
/// starts at `m·tile − pad`, zero outside the image; a tile's column is
/// `image·tiles + row·across + column`. A channel at a time: its planes copied into zero-padded
/// planes, then 16 tiles at a time gathered lane by lane and transformed.
#[inline(always)]
fn transform_input(x: &[f32], [c, h, w]: [usize; 3], pad: [usize; 2], tiles: [usize; 2], m: usize, v: &mut [f32], padded: &mut Vec<f32>) {
    let images = x.len() / (c * h * w);
    let cols = images * tiles[0] * tiles[1];
    let side = [(tiles[0] - 1) * m + ALPHA, (tiles[1] - 1) * m + ALPHA];
    let plane = side[0] * side[1];
    // The image fits: (tiles − 1)·m + 6 ≥ Ho + r − 1 = H + 2·pad.
    padded.clear();
    padded.resize(images * plane, 0.0);
    let starts = starts(images, tiles, m, side);
    // A chunk's tiles, then their transform; lanes beyond the last tile are never written out.
    let (mut d, mut t) = ([[0.0f32; LANES]; XI], [[0.0f32; LANES]; XI]);
    for channel in 0..c {
        for image in 0..images {
            let src = &x[(image * c + channel) * h * w..][..h * w];
            let dst = &mut padded[image * plane..][..plane];
            for (y, row) in src.chunks_exact(w).enumerate() {
                copy_run(&mut dst[(pad[0] + y) * side[1] + pad[1]..][..w], row);
            }
        }
        for (chunk, starts) in starts.chunks(LANES).enumerate() {
            for (l, &start) in starts.iter().enumerate() {
                for (i, row) in d.chunks_exact_mut(ALPHA).enumerate() {
                    let src = &padded[start + i * side[1]..][..ALPHA];
                    for (lane, value) in row.iter_mut().zip(src) {
                        lane[l] = *value;
                    }
                }
            }
            for j in 0..ALPHA {
                lanes(&d, |i| i * ALPHA + j, &mut t, |i| i * ALPHA + j, bt);
            }
            for i in 0..ALPHA {
                lanes(&t, |j| i * ALPHA + j, &mut d, |j| i * ALPHA + j, bt);
            }
            let first = chunk * LANES;
            for (xi, lane) in d.iter().enumerate() {
                put(&mut v[(xi * c + channel) * cols + first..], lane, starts.len());
            }
        }
    }
}

/// The output planes `y` (`[O, out]` per image) of `M` (`[36][O, T]`): `Aᵀ m A` of every tile,
/// 16 tiles at a time, each lane's block then written to its place.
#[inline(always)]
fn transform_output<const M: usize>(mm: &[f32], o: usize, out: [usize; 2], tiles: [usize; 2], y: &mut [f32]) {
    let per_image = tiles[0] * tiles[1];
    let plane = out[0] * out[1];
    let cols = y.len() / (o * plane) * per_image;
    // A chunk's transformed tiles; t[k][j] (k < M): Aᵀ down each column; b[k][jj]: Aᵀ along
    // each row of t.
    let (mut s, mut t, mut b) = ([[0.0f32; LANES]; XI], [[0.0f32; LANES]; 4 * ALPHA], [[0.0f32; LANES]; 16]);
    for channel in 0..o {
        for first in (0..cols).step_by(LANES) {
            let count = LANES.min(cols - first);
            for (xi, lane) in s.iter_mut().enumerate() {
                get(lane, &mm[(xi * o + channel) * cols + first..], count);
            }
            for j in 0..ALPHA {
                lanes(&s, |i| i * ALPHA + j, &mut t, |k| k * ALPHA + j, at::<M>);
            }
            for k in 0..M {
                lanes(&t, |j| k * ALPHA + j, &mut b, |jj| k * M + jj, at::<M>);
            }
            let blocks = &b[..M * M];
            for l in 0..count {
                let col = first + l;
                let (image, rest) = (col / per_image, col % per_image);
                let (ty, tx) = (rest / tiles[1], rest % tiles[1]);
                let dst = &mut y[(image * o + channel) * plane..][..plane];
                for (k, block) in blocks.chunks_exact(M).enumerate() {
                    let oy = ty * M + k;
                    if oy >= out[0] {
                        break;
                    }
                    for (jj, lane) in block.iter().enumerate().take(out[1] - tx * M) {
                        dst[oy * out[1] + tx * M + jj] = lane[l];
                    }
                }
            }
        }
    }
}

/// `D` (`[36][O, T]`) of the output gradients `dy` (images of `[O, out]`): `A δ Aᵀ` of every
/// m×m block `δ`, zero beyond the output; columns as in [`transform_input`].
#[inline(always)]
fn transform_gradient<const M: usize>(dy: &[f32], o: usize, out: [usize; 2], tiles: [usize; 2], d: &mut [f32]) {
    let per_image = tiles[0] * tiles[1];
    let plane = out[0] * out[1];
    let cols = dy.len() / (o * plane) * per_image;
    // A chunk's blocks (lanes beyond the output stay zero: `delta` is cleared where a block
    // is cut short), then A down each column, then A along each row.
    let (mut delta, mut t, mut e) = ([[0.0f32; LANES]; 16], [[0.0f32; LANES]; 4 * ALPHA], [[0.0f32; LANES]; XI]);
    for channel in 0..o {
        for first in (0..cols).step_by(LANES) {
            let count = LANES.min(cols - first);
            for l in 0..count {
                let col = first + l;
                let (image, rest) = (col / per_image, col % per_image);
                let (ty, tx) = (rest / tiles[1], rest % tiles[1]);
                let src = &dy[(image * o + channel) * plane..][..plane];
                for (k, row) in delta.chunks_exact_mut(M).take(M).enumerate() {
                    let oy = ty * M + k;
                    for (jj, lane) in row.iter_mut().enumerate() {
                        let ox = tx * M + jj;
                        lane[l] = if oy < out[0] && ox < out[1] { src[oy * out[1] + ox] } else { 0.0 };
                    }
                }
            }
            for j in 0..M {
                lanes(&delta, |k| k * M + j, &mut t, |p| p * M + j, a::<M>);
            }
            for p in 0..ALPHA {
                lanes(&t, |j| p * M + j, &mut e, |q| p * ALPHA + q, a::<M>);
            }
            for (xi, lane) in e.iter().enumerate() {
                put(&mut d[(xi * o + channel) * cols + first..], lane, count);
            }
        }
    }
}

/// Images per group: enough for [`MIN_TILES`] columns, and at most a thread's share of the
/// batch, so that every thread has a group of its own.
fn group_size(n: usize, per_image: usize) -> usize {
    let share = n.div_ceil(rayon::current_num_threads()).max(1);
    MIN_TILES.div_ceil(per_image.max(1)).clamp(1, share)
}

/// A convolution by `r×r` filters transformed into `u` (`[36][O, C]`): `x` (`[N, C, H, W]`),
/// zero-padded by `pad` before each spatial dimension (and wherever a tile leaves the image),
/// gives `[N, O, out[0], out[1]]`.
fn convolve<const M: usize>(x: &[f32], u: &[f32], [n, c, h, w]: [usize; 4], o: usize, pad: [usize; 2], out: [usize; 2]) -> Vec<f32> {
    let tiles = [out[0].div_ceil(M), out[1].div_ceil(M)];
    let per_image = tiles[0] * tiles[1];
    let group = group_size(n, per_image);
    let wide = n.div_ceil(group) < rayon::current_num_threads();
    let (plane_in, plane_out) = (h * w, out[0] * out[1]);
    let mut y = zeros(n * o * plane_out);
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(group * o * plane_out).enumerate().for_each_init(
        || (Spare::take(), Spare::take(), Spare::take()),
        |(v, m, padded): &mut (Spare, Spare, Spare), (t, y)| {
            let images = y.len() / (o * plane_out);
            let x = &x[t * group * c * plane_in..][..images * c * plane_in];
            let cols = images * per_image;
            let (v, m) = (grow(v, XI * c * cols), grow(m, XI * o * cols));
            widest(#[inline(always)] || transform_input(x, [c, h, w], pad, tiles, M, v, padded));
            for xi in 0..XI {
                let (lhs, rhs) = (Mat::rows(&u[xi * o * c..][..o * c], c), Mat::rows(&v[xi * c * cols..][..c * cols], cols));
                gemm([o, cols, c], &mut m[xi * o * cols..][..o * cols], lhs, rhs, false, wide);
            }
            widest(#[inline(always)] || transform_output::<M>(m, o, out, tiles, y));
        },
    );
    y
}

/// The forward pass for a geometry that [`fits`]: `y` (`[N, O, Ho, Wo]`).
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let shape = [g.n, g.c, g.h, g.w];
    if g.kh == 3 {
        convolve::<4>(x, filters::<3>(weight, [g.o, g.c], false, &mut Spare::take()), shape, g.o, g.pad, [g.ho, g.wo])
    } else {
        convolve::<2>(x, filters::<5>(weight, [g.o, g.c], false, &mut Spare::take()), shape, g.o, g.pad, [g.ho, g.wo])
    }
}

/// The input gradient for a geometry that [`fits`]: `dx` (`[N, C, H, W]`) from `dy`.
pub fn input_grad(dy: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let pad = [g.kh - 1 - g.pad[0], g.kw - 1 - g.pad[1]];
    let shape = [g.n, g.o, g.ho, g.wo];
    if g.kh == 3 {
        convolve::<4>(dy, filters::<3>(weight, [g.c, g.o], true, &mut Spare::take()), shape, g.c, pad, [g.h, g.w])
    } else {
        convolve::<2>(dy, filters::<5>(weight, [g.c, g.o], true, &mut Spare::take()), shape, g.c, pad, [g.h, g.w])
    }
}

/// The weight gradient for a geometry that [`fits`]: `dw` (`[O, C, r, r]`) from `x` and `dy`,
/// `Gᵀ (Σ_tiles (A δ Aᵀ) ⊙ (Bᵀ d B)) G` as 36 GEMMs over the tiles. Each task sums its own groups
/// of images; the tasks' sums are added in task order, so the result does not depend on
/// scheduling.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    if g.kh == 3 { weight_grad_of::<4, 3>(x, dy, g) } else { weight_grad_of::<2, 5>(x, dy, g) }
}

fn weight_grad_of<const M: usize, const R: usize>(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (n, c, o) = (g.n, g.c, g.o);
    let tiles = [g.ho.div_ceil(M), g.wo.div_ceil(M)];
    let per_image = tiles[0] * tiles[1];
    let group = group_size(n, per_image);
    let groups = n.div_ceil(group);
    let wide = groups < rayon::current_num_threads();
    let (plane_in, plane_out) = (g.h * g.w, g.p());
    let m = task_sums(groups, wide, XI * o * c, |run, m| {
        let (mut v, mut d, mut padded) = (Spare::take(), Spare::take(), Spare::take());
        for (i, first) in run.map(|group_index| group_index * group).enumerate() {
            let images = group.min(n - first);
            let cols = images * per_image;
            let (v, d) = (grow(&mut v, XI * c * cols), grow(&mut d, XI * o * cols));
            widest(#[inline(always)] || {
                transform_input(&x[first * c * plane_in..][..images * c * plane_in], [c, g.h, g.w], g.pad, tiles, M, v, &mut padded);
                transform_gradient::<M>(&dy[first * o * plane_out..][..images * o * plane_out], o, [g.ho, g.wo], tiles, d);
            });
            for xi in 0..XI {
                let lhs = Mat::rows(&d[xi * o * cols..][..o * cols], cols);
                let rhs = Mat::transposed(&v[xi * c * cols..][..c * cols], cols);
                gemm([o, c, cols], &mut m[xi * o * c..][..o * c], lhs, rhs, i > 0, wide);
            }
        }
    });
    // dw = Gᵀ m G, 16 filters at a time, one a lane.
    let mut dw = zeros(o * c * R * R);
    dw.par_chunks_mut(R * R * LANES).enumerate().for_each(|(chunk, dw)| {
        widest(#[inline(always)] || {
            let count = dw.len() / (R * R);
            let mut s = [[0.0f32; LANES]; XI];
            for (xi, lane) in s.iter_mut().enumerate() {
                get(lane, &m[xi * o * c + chunk * LANES..], count);
            }
            let (mut t, mut taps) = ([[0.0f32; LANES]; 5 * ALPHA], [[0.0f32; LANES]; 25]);
            for q in 0..ALPHA {
                lanes(&s, |p| p * ALPHA + q, &mut t, |a| a * ALPHA + q, gt::<R>);
            }
            for a in 0..R {
                lanes(&t, |q| a * ALPHA + q, &mut taps, |b| a * R + b, gt::<R>);
            }
            for (l, filter) in dw.chunks_exact_mut(R * R).enumerate() {
                for (value, tap) in filter.iter_mut().zip(&taps) {
                    *value = tap[l];
                }
            }
        });
    });
    dw
}
