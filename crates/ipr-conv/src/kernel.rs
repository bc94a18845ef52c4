//! The convolution on plain `f32` slices (NCHW, row-major), groups 1, dilation 1: the forward
//! pass and both gradients, each one GEMM per group of images on an im2col buffer of that group,
//! groups in parallel on rayon's pool (the one burn's flex backend uses).
//!
//! With `K = C·kh·kw` and `P = Ho·Wo` for one image (a group puts its images' `P` columns side
//! by side, so that a deep layer with few pixels still makes a wide GEMM):
//! - forward: `Y[O, P] = W[O, K] · cols[K, P]`;
//! - input gradient: `dcols[K, P] = Wᵀ · dY[O, P]`, then `col2im` adds into `dX[C, H, W]`;
//! - weight gradient: `dW[O, K] = Σ_images dY[O, P] · colsᵀ[P, K]`.
//!
//! A 1×1 convolution with stride 1 and no padding needs no im2col: `cols` is the image itself.
//! A 3×3 or 5×5 convolution at stride 1 with enough channels and images runs its forward pass
//! and both gradients through [`winograd`] instead: 1/4 (3×3) or 9/25 (5×5) of the multiply-adds.

use rayon::prelude::*;

use crate::simd::widest;
use crate::winograd;

/// The shape of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides.
    pub stride: [usize; 2],
    /// Zero padding before each spatial dimension (top, left).
    pub pad: [usize; 2],
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
}

impl Geometry {
    /// `K = C·kh·kw`: a row of the weight, a column of im2col.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// `P = Ho·Wo`: output pixels of one image.
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// The zero-padded plane the windows read: `[(Ho − 1)·sh + kh, (Wo − 1)·sw + kw]`.
    fn padded(&self) -> [usize; 2] {
        [(self.ho - 1) * self.stride[0] + self.kh, (self.wo - 1) * self.stride[1] + self.kw]
    }
}

/// `dst.copy_from_slice(src)` without a library call for runs of up to 32 values (a window row of
/// an 8, 16 or 32 px plane), where the call would cost more than the copy: two fixed-size blocks
/// that overlap in the middle, each a few vector moves.
#[inline(always)]
pub(crate) fn copy_run(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn ends<const B: usize>(dst: &mut [f32], src: &[f32]) {
        let n = dst.len();
        let block = |s: &[f32]| -> [f32; B] { std::array::from_fn(|i| s[i]) };
        let (head, tail) = (block(&src[..B]), block(&src[n - B..n]));
        dst[..B].copy_from_slice(&head);
        dst[n - B..].copy_from_slice(&tail);
    }
    match dst.len() {
        16..=32 => ends::<16>(dst, src),
        8..16 => ends::<8>(dst, src),
        4..8 => ends::<4>(dst, src),
        _ => dst.copy_from_slice(&src[..dst.len()]),
    }
}

/// Copies `plane` (`[H, W]`) into the interior of `padded` (see [`Geometry::padded`]), whose
/// border is zero and stays so.
#[inline(always)]
fn pad_plane(plane: &[f32], g: &Geometry, padded: &mut [f32]) {
    let ([hp, wp], [ph, pw]) = (g.padded(), g.pad);
    let (rows, cols) = (g.h.min(hp.saturating_sub(ph)), g.w.min(wp.saturating_sub(pw)));
    for (y, row) in plane.chunks_exact(g.w).take(rows).enumerate() {
        padded[(ph + y) * wp + pw..][..cols].copy_from_slice(&row[..cols]);
    }
}

/// Fills `P` columns of `cols` (`K` rows, `ld` apart) with the patches of one image `x`
/// (`[C, H, W]`); outside the image is zero. Each plane is copied into the interior of a padded
/// plane (`padded`, zero on its border), from which every row of every window is one contiguous
/// run at stride 1, without a test or a fill.
#[inline(always)]
fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32], ld: usize, padded: &mut [f32]) {
    let (p, [sh, sw], [_, wp]) = (g.p(), g.stride, g.padded());
    for (c, plane) in x.chunks_exact(g.h * g.w).enumerate() {
        pad_plane(plane, g, padded);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &mut cols[((c * g.kh + ki) * g.kw + kj) * ld..][..p];
                for (oy, out) in row.chunks_exact_mut(g.wo).enumerate() {
                    let src = &padded[(oy * sh + ki) * wp + kj..];
                    if sw == 1 {
                        copy_run(out, src);
                    } else {
                        for (o, v) in out.iter_mut().zip(src.iter().step_by(sw)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// Adds the patches in `P` columns of `cols` (`K` rows, `ld` apart) back into one image's
/// gradient `dx` (`[C, H, W]`): the transpose of [`im2col`], through a padded plane (`padded`)
/// whose interior is then copied out.
#[inline(always)]
fn col2im(cols: &[f32], g: &Geometry, dx: &mut [f32], ld: usize, padded: &mut [f32]) {
    let (p, [sh, sw], [hp, wp], [ph, pw]) = (g.p(), g.stride, g.padded(), g.pad);
    let (rows, width) = (g.h.min(hp.saturating_sub(ph)), g.w.min(wp.saturating_sub(pw)));
    for (c, plane) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
        padded.fill(0.0);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &cols[((c * g.kh + ki) * g.kw + kj) * ld..][..p];
                for (oy, src) in row.chunks_exact(g.wo).enumerate() {
                    let dst = &mut padded[(oy * sh + ki) * wp + kj..];
                    if sw == 1 {
                        for (d, s) in dst[..g.wo].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (d, s) in dst.iter_mut().step_by(sw).zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
        // Rows and columns of the plane beyond every window (a stride that skips them) get no
        // gradient: they stay zero.
        for (y, out) in plane.chunks_exact_mut(g.w).take(rows).enumerate() {
            out[..width].copy_from_slice(&padded[(ph + y) * wp + pw..][..width]);
        }
    }
}

/// A row-major matrix operand: its data and its row and column strides.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rs: isize,
    cs: isize,
}

impl<'a> Mat<'a> {
    /// `data` as an `r × c` row-major matrix.
    pub(crate) fn rows(data: &'a [f32], c: usize) -> Self {
        Self { data, rs: c as isize, cs: 1 }
    }

    /// The transpose of `data` stored as a `c × r` row-major matrix, seen as `r × c`.
    pub(crate) fn transposed(data: &'a [f32], r: usize) -> Self {
        Self { data, rs: 1, cs: r as isize }
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, `dst` row-major; accumulates when `accumulate`.
pub(crate) fn gemm([m, n, k]: [usize; 3], dst: &mut [f32], lhs: Mat<'_>, rhs: Mat<'_>, accumulate: bool, parallel: bool) {
    assert!(dst.len() >= m * n, "gemm destination of {} for {m}×{n}", dst.len());
    let reach = |mat: &Mat<'_>, rows: usize, cols: usize| {
        rows.saturating_sub(1) as isize * mat.rs + cols.saturating_sub(1) as isize * mat.cs + 1
    };
    assert!(m == 0 || k == 0 || reach(&lhs, m, k) as usize <= lhs.data.len(), "gemm lhs out of bounds");
    assert!(k == 0 || n == 0 || reach(&rhs, k, n) as usize <= rhs.data.len(), "gemm rhs out of bounds");
    let parallelism = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    #[allow(unsafe_code)]
    // SAFETY: the asserts above keep every element gemm reads within `lhs.data` and `rhs.data`
    // (strides are positive, the last element is at `(rows-1)·rs + (cols-1)·cs`) and every
    // element it writes within `dst` (`m·n`, row-major); `dst` is borrowed mutably, so it
    // aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs,
            lhs.rs,
            rhs.data.as_ptr(),
            rhs.cs,
            rhs.rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The fewest GEMM columns worth a call: below that, images are grouped side by side.
const MIN_COLUMNS: usize = 256;

/// How the images are split: `group` images per GEMM (their columns side by side, so that deep
/// layers with few pixels still make wide GEMMs), groups in parallel when there are enough to keep
/// every thread busy, else each GEMM in parallel (`wide`).
#[derive(Clone, Copy)]
struct Split {
    group: usize,
    groups: usize,
    wide: bool,
}

impl Split {
    fn of(g: &Geometry) -> Self {
        let group = MIN_COLUMNS.div_ceil(g.p().max(1)).clamp(1, g.n.max(1));
        let groups = g.n.div_ceil(group);
        Self { group, groups, wide: groups < rayon::current_num_threads() }
    }
}

thread_local! {
    /// This thread's spare scratch buffers (see [`Spare`]).
    static SPARES: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer taken from this thread's spares and given back when dropped, so that im2col
/// and Winograd allocate (and zero) their scratch space once per thread, not on every call.
pub(crate) struct Spare(Vec<f32>);

impl Spare {
    pub(crate) fn take() -> Self {
        Self(SPARES.with(|spares| spares.borrow_mut().pop()).unwrap_or_default())
    }
}

impl std::ops::Deref for Spare {
    type Target = Vec<f32>;

    fn deref(&self) -> &Vec<f32> {
        &self.0
    }
}

impl std::ops::DerefMut for Spare {
    fn deref_mut(&mut self) -> &mut Vec<f32> {
        &mut self.0
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        // A thread being torn down has no spares left to keep it in.
        let _ = SPARES.try_with(|spares| spares.borrow_mut().push(buffer));
    }
}

/// Per-task buffers, grown on demand and reused across the groups a task runs.
struct Scratch {
    cols: Spare,
    wide: Spare,
}

impl Scratch {
    fn take() -> Self {
        Self { cols: Spare::take(), wide: Spare::take() }
    }
}

/// `len` zeros, written by every thread of the pool (a fresh buffer for a pass's output: filled
/// on the calling thread alone, it would keep the others waiting).
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len].par_chunks_mut(1 << 14).for_each(|chunk| chunk.fill(std::mem::MaybeUninit::new(0.0)));
    #[allow(unsafe_code)]
    // SAFETY: the capacity is at least `len` and its first `len` elements were just written.
    unsafe {
        v.set_len(len);
    }
    v
}

pub(crate) fn grow(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// `cols` (`[K, images·P]`) of the images `x` (`images` of `[C, H, W]`).
fn group_cols<'a>(x: &[f32], g: &Geometry, images: usize, cols: &'a mut Vec<f32>) -> &'a [f32] {
    let (s, width, [hp, wp]) = (g.c * g.h * g.w, images * g.p(), g.padded());
    let cols = grow(cols, g.k() * width);
    let mut padded = vec![0.0f32; hp * wp];
    widest(#[inline(always)] || {
        for i in 0..images {
            im2col(&x[i * s..(i + 1) * s], g, &mut cols[i * g.p()..], width, &mut padded);
        }
    });
    cols
}

/// `dy` of `images` (`[images, O, P]`) as one `[O, images·P]` matrix.
fn gather<'a>(dy: &'a [f32], g: &Geometry, images: usize, wide: &'a mut Vec<f32>) -> &'a [f32] {
    if images == 1 {
        return dy;
    }
    let (p, width) = (g.p(), images * g.p());
    let out = grow(wide, g.o * width);
    for i in 0..images {
        for o in 0..g.o {
            out[o * width + i * p..][..p].copy_from_slice(&dy[(i * g.o + o) * p..][..p]);
        }
    }
    out
}

/// The forward pass: `y` (`[N, O, Ho, Wo]`) of `x` (`[N, C, H, W]`) and `weight` (`[O, C, kh, kw]`).
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    if winograd::pays(g) { winograd::forward(x, weight, g) } else { im2col_forward(x, weight, g) }
}

fn im2col_forward(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p, s, split) = (g.k(), g.p(), g.c * g.h * g.w, Split::of(g));
    let mut y = zeros(g.n * g.o * p);
    let w = Mat::rows(weight, k);
    y.par_chunks_mut(split.group * g.o * p).enumerate().for_each_init(Scratch::take, |scratch, (t, out)| {
        let (images, first) = (out.len() / (g.o * p), t * split.group);
        let x = &x[first * s..(first + images) * s];
        if images == 1 && g.pointwise() {
            return gemm([g.o, p, k], out, w, Mat::rows(x, p), false, split.wide);
        }
        let width = images * p;
        let cols = group_cols(x, g, images, &mut scratch.cols);
        if images == 1 {
            return gemm([g.o, p, k], out, w, Mat::rows(cols, p), false, split.wide);
        }
        let wide = grow(&mut scratch.wide, g.o * width);
        gemm([g.o, width, k], wide, w, Mat::rows(cols, width), false, split.wide);
        for i in 0..images {
            for o in 0..g.o {
                out[(i * g.o + o) * p..][..p].copy_from_slice(&wide[o * width + i * p..][..p]);
            }
        }
    });
    y
}

/// The gradient of the input: `dx` (`[N, C, H, W]`) from `dy` (`[N, O, Ho, Wo]`) and `weight`.
pub fn input_grad(dy: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    if winograd::pays(g) { winograd::input_grad(dy, weight, g) } else { im2col_input_grad(dy, weight, g) }
}

fn im2col_input_grad(dy: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p, s, split) = (g.k(), g.p(), g.c * g.h * g.w, Split::of(g));
    let mut dx = zeros(g.n * s);
    let wt = Mat::transposed(weight, k);
    dx.par_chunks_mut(split.group * s).enumerate().for_each_init(Scratch::take, |scratch, (t, dxg)| {
        let (images, first) = (dxg.len() / s, t * split.group);
        let width = images * p;
        let dy = gather(&dy[first * g.o * p..(first + images) * g.o * p], g, images, &mut scratch.wide);
        if images == 1 && g.pointwise() {
            return gemm([k, p, g.o], dxg, wt, Mat::rows(dy, p), false, split.wide);
        }
        let cols = grow(&mut scratch.cols, k * width);
        gemm([k, width, g.o], cols, wt, Mat::rows(dy, width), false, split.wide);
        let [hp, wp] = g.padded();
        let mut padded = vec![0.0f32; hp * wp];
        widest(#[inline(always)] || {
            for i in 0..images {
                col2im(&cols[i * p..], g, &mut dxg[i * s..(i + 1) * s], width, &mut padded);
            }
        });
    });
    dx
}

/// The gradient of the weight: `dw` (`[O, C, kh, kw]`) from `x` and `dy`, summed over images.
/// Each task sums its own groups; the tasks' sums are added in task order, so the result does not
/// depend on scheduling.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    if winograd::pays_weight_grad(g) { winograd::weight_grad(x, dy, g) } else { im2col_weight_grad(x, dy, g) }
}

fn im2col_weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p, s, split) = (g.k(), g.p(), g.c * g.h * g.w, Split::of(g));
    task_sums(split.groups, split.wide, g.o * k, |groups, dw| {
        let mut scratch = Scratch::take();
        for (i, group) in groups.enumerate() {
            let first = group * split.group;
            let images = split.group.min(g.n - first);
            let width = images * p;
            let x = &x[first * s..(first + images) * s];
            let dy = gather(&dy[first * g.o * p..(first + images) * g.o * p], g, images, &mut scratch.wide);
            let cols = if images == 1 && g.pointwise() { x } else { group_cols(x, g, images, &mut scratch.cols) };
            gemm([g.o, k, width], dw, Mat::rows(dy, width), Mat::transposed(cols, width), i > 0, split.wide);
        }
    })
}

/// A sum of `len` values over `groups` groups of images: the groups split into runs of
/// consecutive ones, a run a task (one task when `wide`, the GEMMs then being parallel; else one a
/// thread), each task adding its run into a sum of its own with `run`; the tasks' sums are then
/// added in task order, so the result does not depend on scheduling.
pub(crate) fn task_sums(groups: usize, wide: bool, len: usize, run: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync) -> Vec<f32> {
    let tasks = if wide { 1 } else { rayon::current_num_threads().min(groups).max(1) };
    let per_task = groups.div_ceil(tasks).max(1);
    let partials: Vec<Vec<f32>> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let mut sum = vec![0.0f32; len];
            run(task * per_task..((task + 1) * per_task).min(groups), &mut sum);
            sum
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0.0; len]);
    for part in parts {
        total.par_iter_mut().zip(&part).for_each(|(a, b)| *a += b);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, in f64.
    fn direct(x: &[f32], w: &[f32], g: &Geometry) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.o * g.p()];
        for n in 0..g.n {
            for o in 0..g.o {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut s = 0.0f64;
                        for c in 0..g.c {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let iy = (oy * g.stride[0] + ki) as isize - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kj) as isize - g.pad[1] as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                        let xv = x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                        let wv = w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                        s += f64::from(xv) * f64::from(wv);
                                    }
                                }
                            }
                        }
                        y[((n * g.o + o) * g.ho + oy) * g.wo + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn geometry(n: usize, c: usize, hw: [usize; 2], o: usize, k: usize, s: usize, p: usize) -> Geometry {
        let out = |i: usize| (i + 2 * p - k) / s + 1;
        Geometry { n, c, h: hw[0], w: hw[1], o, kh: k, kw: k, stride: [s, s], pad: [p, p], ho: out(hw[0]), wo: out(hw[1]) }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    #[test]
    fn forward_and_both_gradients_match_the_definition() {
        type Pass = fn(&[f32], &[f32], &Geometry) -> Vec<f32>;
        let im2col: [Pass; 3] = [im2col_forward, im2col_input_grad, im2col_weight_grad];
        let wino: [Pass; 3] = [winograd::forward, winograd::input_grad, winograd::weight_grad];
        let cases = [
            geometry(3, 5, [7, 6], 4, 3, 1, 1),
            geometry(2, 3, [9, 9], 6, 5, 2, 2),
            geometry(2, 3, [9, 7], 4, 5, 1, 2),
            geometry(3, 2, [7, 6], 3, 5, 1, 0),
            geometry(1, 2, [5, 8], 3, 5, 1, 4),
            geometry(1, 4, [5, 5], 3, 1, 1, 0),
            geometry(2, 2, [6, 7], 3, 3, 2, 0),
            geometry(5, 6, [10, 10], 4, 1, 1, 0),
            geometry(2, 3, [7, 9], 5, 3, 1, 1),
            geometry(3, 4, [5, 5], 6, 3, 1, 0),
            geometry(1, 3, [6, 5], 2, 3, 1, 2),
            // 100 blocks an image: Winograd groups three images, so eight make groups of 3, 3 and 2
            // (on two threads the weight gradient sums two groups in one task); im2col runs one
            // image a group.
            geometry(8, 3, [40, 40], 4, 3, 1, 1),
        ];
        // Both paths where Winograd fits (3×3 and 5×5 at stride 1, odd sides, every padding it
        // takes), im2col elsewhere.
        assert_eq!(cases.iter().filter(|g| winograd::fits(g)).count(), 8);
        for g in cases {
            for [forward, input_grad, weight_grad] in std::iter::once(im2col).chain(winograd::fits(&g).then_some(wino)) {
                let (x, w) = (values(g.n * g.c * g.h * g.w, 1), values(g.o * g.k(), 2));
                let y = forward(&x, &w, &g);
                for (a, b) in y.iter().zip(direct(&x, &w, &g)) {
                    assert!((f64::from(*a) - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
                }
                // <dy, conv(x, w)> is bilinear: its gradients are the adjoints.
                let dy = values(y.len(), 3);
                let dx = input_grad(&dy, &w, &g);
                let dw = weight_grad(&x, &dy, &g);
                let eps = 1e-2f32;
                let loss = |x: &[f32], w: &[f32]| direct(x, w, &g).iter().zip(&dy).map(|(a, b)| a * f64::from(*b)).sum::<f64>();
                // Every pixel of the first row of the first plane, and two more.
                for i in (0..g.w).chain([x.len() / 2, x.len() - 1]) {
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    xp[i] += eps;
                    xm[i] -= eps;
                    let numeric = (loss(&xp, &w) - loss(&xm, &w)) / f64::from(2.0 * eps);
                    assert!((numeric - f64::from(dx[i])).abs() < 1e-3, "{g:?} dx[{i}]: {numeric} vs {}", dx[i]);
                }
                // Every tap of the first filter, and two more.
                for i in (0..g.kh * g.kw).chain([w.len() / 2, w.len() - 1]) {
                    let (mut wp, mut wm) = (w.clone(), w.clone());
                    wp[i] += eps;
                    wm[i] -= eps;
                    let numeric = (loss(&x, &wp) - loss(&x, &wm)) / f64::from(2.0 * eps);
                    assert!((numeric - f64::from(dw[i])).abs() < 1e-3, "{g:?} dw[{i}]: {numeric} vs {}", dw[i]);
                }
            }
        }
    }

    #[test]
    fn winograd_runs_where_it_was_measured_to_pay() {
        // AlexNet's 3×3 layers at full and half width and its 5×5 64 → 192, ResNet-18's 3×3
        // layers at 32, 16 and 8 px; not layers of few channels.
        for (c, hw, o, k) in [(192, 8, 384, 3), (384, 8, 256, 3), (256, 8, 256, 3), (96, 8, 192, 3), (128, 8, 128, 3), (64, 32, 64, 3), (128, 16, 128, 3), (64, 16, 192, 5)] {
            assert!(winograd::pays_weight_grad(&geometry(64, c, [hw, hw], o, k, 1, k / 2)), "{c}→{o} at {hw} px");
        }
        for (c, hw, o, k) in [(3, 32, 64, 5), (32, 16, 96, 5)] {
            assert!(!winograd::pays(&geometry(64, c, [hw, hw], o, k, 1, k / 2)), "{c}→{o} at {hw} px");
        }
        // ResNet's 4×4 layer4: one block an image, Winograd's forward pass and input gradient,
        // im2col's weight gradient.
        let layer4 = geometry(64, 512, [4, 4], 512, 3, 1, 1);
        assert!(winograd::pays(&layer4) && !winograd::pays_weight_grad(&layer4));
        assert!(!winograd::pays(&geometry(64, 256, [16, 16], 256, 3, 2, 1)), "stride 2");
        // A passport's single image, too few images of 8×8, one 5×5 image.
        for n in [1, 8] {
            assert!(!winograd::pays(&geometry(n, 192, [8, 8], 384, 3, 1, 1)), "{n} images");
        }
        assert!(winograd::pays(&geometry(16, 192, [8, 8], 384, 3, 1, 1)), "16 images");
        assert!(!winograd::pays(&geometry(1, 64, [16, 16], 192, 5, 1, 2)), "one 5×5 image");
    }
}
