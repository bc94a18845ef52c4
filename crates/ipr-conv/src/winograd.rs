//! Winograd's minimal filtering F(2×2, 3×3) for 3×3 convolutions at stride 1: each 2×2 block of
//! outputs comes from a 4×4 block of input through 16 products instead of 36, so the GEMMs do
//! 4/9 of im2col's multiply-adds. With `ξ` the 16 positions of a transformed tile and `T` the
//! tiles of a group of images:
//! - filters: `U[ξ][O, C] = (G w Gᵀ)[ξ]`, once per call;
//! - input: `V[ξ][C, T] = (Bᵀ d B)[ξ]` for each 4×4 tile `d` (zero outside the image);
//! - 16 GEMMs `M[ξ][O, T] = U[ξ] · V[ξ]`;
//! - output: each tile's 2×2 block is `Aᵀ m A`.
//!
//! The input gradient of a 3×3 stride-1 convolution is again one: `dY` correlated with the
//! filters turned by 180° and with input and output channels swapped, padded by `2 − pad`. The
//! weight gradient is the same bilinear form read the other way: `Gᵀ (Σ (A δ Aᵀ) ⊙ V) G`.

use rayon::prelude::*;

use crate::kernel::{Geometry, Mat, Spare, gemm, grow, zeros};
use crate::simd::widest;

/// Output pixels per image below which a row of tiles is too short for the transforms to pay.
const MIN_PIXELS: usize = 64;

/// `min(C, O)·Ho·Wo` below which the transforms cost more than the products they save.
const MIN_WORK: usize = 12288;

/// The fewest tiles worth a GEMM: below that, images are grouped side by side.
const MIN_TILES: usize = 256;

/// The fewest tiles in a whole batch for the transforms of the filters to pay: a passport's
/// single image, or 32 images of 8×8, run faster through im2col.
const MIN_BATCH_TILES: usize = 1024;

/// Whether F(2×2, 3×3) computes this convolution: a 3×3 kernel at stride 1, padding at most 2.
pub fn fits(g: &Geometry) -> bool {
    g.kh == 3 && g.kw == 3 && g.stride == [1, 1] && g.pad.iter().all(|&p| p <= 2)
}

/// Whether it is also faster than im2col, as measured on the models' layers (batch 64, forward
/// and both gradients, 2 cores with AVX-512): 15–55% faster for ResNet-18's 3×3 layers at 32, 16
/// and 8 px and AlexNet's full-width 8×8 layers (192, 256 and 384 input channels); twice as slow
/// for ResNet-18's 4×4 layer4; as fast for the half-width AlexNet's 8×8 layers of 96 to 192
/// channels. Small batches lose, the filters' transforms and 16 small GEMMs costing more than they
/// save: 192 → 384 at 8×8 takes 14 ms against 2 for one image (a passport), 42 against 33 for 32
/// images, 56 against 68–83 for 64; 128 channels at 16×16, 8–11 ms against 4 for 4 images.
pub fn pays(g: &Geometry) -> bool {
    let pixels = g.ho * g.wo;
    let tiles = g.ho.div_ceil(2) * g.wo.div_ceil(2);
    fits(g) && pixels >= MIN_PIXELS && g.c.min(g.o) * pixels >= MIN_WORK && g.n * tiles >= MIN_BATCH_TILES
}

/// `U` (`[16][O, C]`) of `weight` (`[O, C, 3, 3]`): `G w Gᵀ` for every filter, filters in
/// parallel, then each of the 16 streams gathered in parallel.
fn filters(weight: &[f32], o: usize, c: usize) -> Vec<f32> {
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]] applied to a column (a, b, c).
    let g = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut tiles = zeros(16 * o * c);
    tiles.par_chunks_mut(16).zip(weight.par_chunks(9)).for_each(|(tile, w)| {
        let columns = [0, 1, 2].map(|j| g(w[j], w[3 + j], w[6 + j]));
        for i in 0..4 {
            tile[i * 4..][..4].copy_from_slice(&g(columns[0][i], columns[1][i], columns[2][i]));
        }
    });
    let mut u = zeros(16 * o * c);
    u.par_chunks_mut((o * c).max(1)).enumerate().for_each(|(xi, stream)| {
        for (v, tile) in stream.iter_mut().zip(tiles.chunks_exact(16)) {
            *v = tile[xi];
        }
    });
    u
}

/// `out[k] = f(a[k], b[k])` over the length of `out`.
#[inline(always)]
fn combine(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
        *o = f(*a, *b);
    }
}

/// The first four runs of `n` values of `t`.
#[inline(always)]
fn quarters(t: &mut [f32], n: usize) -> [&mut [f32]; 4] {
    let (t0, rest) = t.split_at_mut(n);
    let (t1, rest) = rest.split_at_mut(n);
    let (t2, rest) = rest.split_at_mut(n);
    [t0, t1, t2, &mut rest[..n]]
}

/// `V` (`[16][C, T]`) of the images `x` (each `[C, H, W]`): `Bᵀ d B` of every 4×4 tile `d` that
/// starts at `2·tile − pad`, zero outside the image; a tile's column is
/// `image·tiles + row·across + column`. Each plane is first zero-padded and its rows split into
/// even and odd columns (so that every later step reads contiguous runs); then a row of tiles at a
/// time, `Bᵀ` across its four rows element by element, and `B` along them into the 16 streams.
#[inline(always)]
fn transform_input(x: &[f32], [c, h, w]: [usize; 3], pad: [usize; 2], tiles: [usize; 2], v: &mut [f32]) {
    let per_image = tiles[0] * tiles[1];
    let cols = x.len() / (c * h * w) * per_image;
    let half = tiles[1] + 1;
    // padded[r]: the even columns of padded row r, then its odd ones; t likewise after Bᵀ.
    let (mut padded, mut line, mut t) = (vec![0.0f32; (2 * tiles[0] + 2) * 2 * half], vec![0.0f32; 2 * half], vec![0.0f32; 8 * half]);
    for (plane, x) in x.chunks_exact(h * w).enumerate() {
        let (image, channel) = (plane / c, plane % c);
        for (r, row) in padded.chunks_exact_mut(2 * half).enumerate() {
            let iy = r.wrapping_sub(pad[0]);
            let (even, odd) = row.split_at_mut(half);
            if iy >= h {
                even.fill(0.0);
                odd.fill(0.0);
                continue;
            }
            // 2·half = 2·⌈Wo/2⌉ + 2 ≥ W + 2·pad: the row with its padding fits the line.
            let cut = (pad[1] + w).min(2 * half);
            line[pad[1]..cut].copy_from_slice(&x[iy * w..][..cut - pad[1]]);
            line[cut..].fill(0.0);
            for (k, pair) in line.chunks_exact(2).enumerate() {
                (even[k], odd[k]) = (pair[0], pair[1]);
            }
        }
        for ty in 0..tiles[0] {
            let rows = &padded[2 * ty * 2 * half..][..8 * half];
            let (r0, r1, r2, r3) = (&rows[..2 * half], &rows[2 * half..4 * half], &rows[4 * half..6 * half], &rows[6 * half..]);
            let [t0, t1, t2, t3] = quarters(&mut t, 2 * half);
            combine(t0, r0, r2, |a, b| a - b);
            combine(t1, r1, r2, |a, b| a + b);
            combine(t2, r2, r1, |a, b| a - b);
            combine(t3, r1, r3, |a, b| a - b);
            let (first, across) = (image * per_image + ty * tiles[1], tiles[1]);
            for (i, ti) in t.chunks_exact(2 * half).enumerate() {
                let (even, odd) = ti.split_at(half);
                let (e0, e1, o0, o1) = (&even[..across], &even[1..][..across], &odd[..across], &odd[1..][..across]);
                let stream = |j: usize| ((i * 4 + j) * c + channel) * cols + first;
                combine(&mut v[stream(0)..][..across], e0, e1, |a, b| a - b);
                combine(&mut v[stream(1)..][..across], o0, e1, |a, b| a + b);
                combine(&mut v[stream(2)..][..across], e1, o0, |a, b| a - b);
                combine(&mut v[stream(3)..][..across], o0, o1, |a, b| a - b);
            }
        }
    }
}

/// The output planes `y` (`[O, out]` per image) of `M` (`[16][O, T]`): `Aᵀ m A` of every tile,
/// a row of tiles at a time (`Aᵀ` across the 16 streams, then `A` along them).
#[inline(always)]
fn transform_output(m: &[f32], o: usize, out: [usize; 2], tiles: [usize; 2], y: &mut [f32]) {
    let per_image = tiles[0] * tiles[1];
    let cols = y.len() / (o * out[0] * out[1]) * per_image;
    let across = tiles[1];
    let (mut u, mut row) = (vec![0.0f32; 8 * across], vec![0.0f32; 2 * across]);
    for (plane, y) in y.chunks_exact_mut(out[0] * out[1]).enumerate() {
        let (image, channel) = (plane / o, plane % o);
        for ty in 0..tiles[0] {
            let first = image * per_image + ty * across;
            let stream = |xi: usize| &m[(xi * o + channel) * cols + first..][..across];
            for j in 0..4 {
                let (m0, m1, m2, m3) = (stream(j), stream(4 + j), stream(8 + j), stream(12 + j));
                let (top, bottom) = u.split_at_mut(4 * across);
                let (top, bottom) = (&mut top[j * across..][..across], &mut bottom[j * across..][..across]);
                let (m0, m1, m2, m3) = (&m0[..across], &m1[..across], &m2[..across], &m3[..across]);
                for tx in 0..across {
                    top[tx] = m0[tx] + m1[tx] + m2[tx];
                    bottom[tx] = m1[tx] - m2[tx] - m3[tx];
                }
            }
            for a in 0..2 {
                let oy = 2 * ty + a;
                if oy >= out[0] {
                    break;
                }
                let ua = &u[a * 4 * across..][..4 * across];
                let (q0, q1, q2, q3) = (&ua[..across], &ua[across..2 * across], &ua[2 * across..3 * across], &ua[3 * across..]);
                for (tx, pair) in row.chunks_exact_mut(2).enumerate() {
                    pair[0] = q0[tx] + q1[tx] + q2[tx];
                    pair[1] = q1[tx] - q2[tx] - q3[tx];
                }
                y[oy * out[1]..][..out[1]].copy_from_slice(&row[..out[1]]);
            }
        }
    }
}

/// A convolution by 3×3 filters transformed into `u` (`[16][O, C]`): `x` (`[N, C, H, W]`),
/// zero-padded by `pad` before each spatial dimension (and wherever a tile leaves the image),
/// gives `[N, O, out[0], out[1]]`.
fn convolve(x: &[f32], u: &[f32], [n, c, h, w]: [usize; 4], o: usize, pad: [usize; 2], out: [usize; 2]) -> Vec<f32> {
    let tiles = [out[0].div_ceil(2), out[1].div_ceil(2)];
    let per_image = tiles[0] * tiles[1];
    let group = MIN_TILES.div_ceil(per_image.max(1)).clamp(1, n.max(1));
    let wide = n.div_ceil(group) < rayon::current_num_threads();
    let (plane_in, plane_out) = (h * w, out[0] * out[1]);
    let mut y = zeros(n * o * plane_out);
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(group * o * plane_out).enumerate().for_each_init(
        || (Spare::take(), Spare::take()),
        |(v, m): &mut (Spare, Spare), (t, y)| {
            let images = y.len() / (o * plane_out);
            let x = &x[t * group * c * plane_in..][..images * c * plane_in];
            let cols = images * per_image;
            let (v, m) = (grow(v, 16 * c * cols), grow(m, 16 * o * cols));
            widest(#[inline(always)] || transform_input(x, [c, h, w], pad, tiles, v));
            for xi in 0..16 {
                let (lhs, rhs) = (Mat::rows(&u[xi * o * c..][..o * c], c), Mat::rows(&v[xi * c * cols..][..c * cols], cols));
                gemm([o, cols, c], &mut m[xi * o * cols..][..o * cols], lhs, rhs, false, wide);
            }
            widest(#[inline(always)] || transform_output(m, o, out, tiles, y));
        },
    );
    y
}

/// The forward pass for a geometry that [`fits`]: `y` (`[N, O, Ho, Wo]`).
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    convolve(x, &filters(weight, g.o, g.c), [g.n, g.c, g.h, g.w], g.o, g.pad, [g.ho, g.wo])
}

/// The input gradient for a geometry that [`fits`]: `dx` (`[N, C, H, W]`) from `dy`.
pub fn input_grad(dy: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    // w'[c, o, i, j] = w[o, c, 2 − i, 2 − j].
    let mut turned = vec![0.0f32; weight.len()];
    for (oc, filter) in weight.chunks_exact(9).enumerate() {
        let (o, c) = (oc / g.c, oc % g.c);
        for (t, value) in filter.iter().enumerate() {
            turned[(c * g.o + o) * 9 + 8 - t] = *value;
        }
    }
    let pad = [2 - g.pad[0], 2 - g.pad[1]];
    convolve(dy, &filters(&turned, g.c, g.o), [g.n, g.o, g.ho, g.wo], g.c, pad, [g.h, g.w])
}

/// `D` (`[16][O, T]`) of the output gradients `dy` (images of `[O, out]`): `A δ Aᵀ` of every
/// 2×2 block `δ`, zero beyond the output, with A = [[1, 0], [1, 1], [1, −1], [0, −1]]; columns as
/// in [`transform_input`], a row of tiles at a time, its two rows split into even and odd columns.
#[inline(always)]
fn transform_gradient(dy: &[f32], o: usize, out: [usize; 2], tiles: [usize; 2], d: &mut [f32]) {
    let per_image = tiles[0] * tiles[1];
    let cols = dy.len() / (o * out[0] * out[1]) * per_image;
    let across = tiles[1];
    // rows[a]: the even columns of row a, then its odd ones; t likewise after A.
    let (mut rows, mut line, mut t) = (vec![0.0f32; 4 * across], vec![0.0f32; 2 * across], vec![0.0f32; 8 * across]);
    for (plane, dy) in dy.chunks_exact(out[0] * out[1]).enumerate() {
        let (image, channel) = (plane / o, plane % o);
        for ty in 0..tiles[0] {
            for (a, row) in rows.chunks_exact_mut(2 * across).enumerate() {
                let oy = 2 * ty + a;
                let (even, odd) = row.split_at_mut(across);
                if oy >= out[0] {
                    even.fill(0.0);
                    odd.fill(0.0);
                    continue;
                }
                // 2·across = 2·⌈Wo/2⌉ ≥ Wo: the row fits the line, a zero after it when Wo is odd.
                line[..out[1]].copy_from_slice(&dy[oy * out[1]..][..out[1]]);
                line[out[1]..].fill(0.0);
                for (k, pair) in line.chunks_exact(2).enumerate() {
                    (even[k], odd[k]) = (pair[0], pair[1]);
                }
            }
            let (p, q) = rows.split_at(2 * across);
            let [t0, t1, t2, t3] = quarters(&mut t, 2 * across);
            t0.copy_from_slice(p);
            combine(t1, p, q, |a, b| a + b);
            combine(t2, p, q, |a, b| a - b);
            combine(t3, q, q, |a, _| -a);
            let first = image * per_image + ty * across;
            for (i, ti) in t.chunks_exact(2 * across).enumerate() {
                let (even, odd) = (&ti[..across], &ti[across..][..across]);
                let stream = |j: usize| ((i * 4 + j) * o + channel) * cols + first;
                d[stream(0)..][..across].copy_from_slice(even);
                combine(&mut d[stream(1)..][..across], even, odd, |a, b| a + b);
                combine(&mut d[stream(2)..][..across], even, odd, |a, b| a - b);
                combine(&mut d[stream(3)..][..across], odd, odd, |a, _| -a);
            }
        }
    }
}

/// `Gᵀ m G` of one transformed 4×4 block: a 3×3 filter, with
/// Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]].
fn filter_tile(m: &[f32; 16]) -> [f32; 9] {
    let gt = |v: [f32; 4]| [v[0] + 0.5 * (v[1] + v[2]), 0.5 * (v[1] - v[2]), 0.5 * (v[1] + v[2]) + v[3]];
    let columns: [[f32; 3]; 4] = std::array::from_fn(|j| gt([m[j], m[4 + j], m[8 + j], m[12 + j]]));
    let mut w = [0.0f32; 9];
    for i in 0..3 {
        w[i * 3..i * 3 + 3].copy_from_slice(&gt([columns[0][i], columns[1][i], columns[2][i], columns[3][i]]));
    }
    w
}

/// The weight gradient for a geometry that [`fits`]: `dw` (`[O, C, 3, 3]`) from `x` and `dy`,
/// `Gᵀ (Σ_tiles (A δ Aᵀ) ⊙ (Bᵀ d B)) G` as 16 GEMMs over the tiles. Each task sums its own groups
/// of images; the tasks' sums are added in task order, so the result does not depend on
/// scheduling.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (n, c, o) = (g.n, g.c, g.o);
    let tiles = [g.ho.div_ceil(2), g.wo.div_ceil(2)];
    let per_image = tiles[0] * tiles[1];
    let group = MIN_TILES.div_ceil(per_image.max(1)).clamp(1, n.max(1));
    let (groups, threads) = (n.div_ceil(group), rayon::current_num_threads());
    let wide = groups < threads;
    let tasks = if wide { 1 } else { threads.min(groups) };
    let per_task = groups.div_ceil(tasks.max(1)).max(1);
    let (plane_in, plane_out) = (g.h * g.w, g.p());
    let partial = |task: usize| {
        let mut m = vec![0.0f32; 16 * o * c];
        let (mut v, mut d) = (Spare::take(), Spare::take());
        let firsts = (task * per_task..((task + 1) * per_task).min(groups)).map(|group_index| group_index * group);
        for (i, first) in firsts.enumerate() {
            let images = group.min(n - first);
            let cols = images * per_image;
            let (v, d) = (grow(&mut v, 16 * c * cols), grow(&mut d, 16 * o * cols));
            widest(#[inline(always)] || {
                transform_input(&x[first * c * plane_in..][..images * c * plane_in], [c, g.h, g.w], g.pad, tiles, v);
                transform_gradient(&dy[first * o * plane_out..][..images * o * plane_out], o, [g.ho, g.wo], tiles, d);
            });
            for xi in 0..16 {
                let lhs = Mat::rows(&d[xi * o * cols..][..o * cols], cols);
                let rhs = Mat::transposed(&v[xi * c * cols..][..c * cols], cols);
                gemm([o, c, cols], &mut m[xi * o * c..][..o * c], lhs, rhs, i > 0, wide);
            }
        }
        m
    };
    let partials: Vec<Vec<f32>> = (0..tasks).into_par_iter().map(partial).collect();
    let mut parts = partials.into_iter();
    let mut m = parts.next().unwrap_or_else(|| vec![0.0; 16 * o * c]);
    for part in parts {
        m.par_iter_mut().zip(&part).for_each(|(a, b)| *a += b);
    }
    let mut dw = zeros(o * c * 9);
    dw.par_chunks_mut(9).enumerate().for_each(|(oc, filter)| {
        filter.copy_from_slice(&filter_tile(&std::array::from_fn(|xi| m[xi * o * c + oc])));
    });
    dw
}
