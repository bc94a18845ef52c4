//! Batch norm followed by ReLU on plain `f32` slices (NCHW, row-major), in one pass over the
//! output and two over the input's statistics (the second from cache), with its backward pass:
//! what a conv block does after its conv, without the dozen element-wise passes and layout copies
//! of the composed ops.
//!
//! The batch may be made of equal *segments* (a private passport layer runs its public and private
//! paths as the two halves of one batch): each segment is normalised over its own images and
//! pixels with its own scale and shift, indexed `segment · C + channel`.
//!
//! Training: `y = ReLU(γ (x − μ) / √(σ² + ε) + β)` with `μ`, `σ²` (biased) of the segment's
//! channel. Its gradients, with `x̂ = (x − μ) r`, `r = 1/√(σ² + ε)`, `d = dy` where the ReLU
//! passed and 0 elsewhere, and `M` values a channel:
//! `dβ = Σ d`, `dγ = Σ d x̂`, `dx = γ r (d − dβ/M − x̂ dγ/M)`.
//! Inference: `y = ReLU(a x + b)` with a per-channel `a`, `b` (the running statistics folded in).

use rayon::prelude::*;

use crate::kernel::zeros;
use crate::simd::widest;

/// The shape of a normalised batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Pixels of one plane (`H·W`).
    pub hw: usize,
    /// Equal segments of the batch, each with its own statistics and affine (divides `n`).
    pub segments: usize,
}

impl Layout {
    /// Values that one (segment, channel) is normalised over.
    fn count(&self) -> usize {
        self.n / self.segments * self.hw
    }

    /// The (segment, channel) index of plane `plane` (`image · C + channel`).
    fn of_plane(&self, plane: usize) -> usize {
        let (image, channel) = (plane / self.c, plane % self.c);
        image / (self.n / self.segments) * self.c + channel
    }

    /// The planes of (segment, channel) `sc` in `x`.
    #[inline(always)]
    fn planes<'a>(&self, x: &'a [f32], sc: usize) -> impl Iterator<Item = &'a [f32]> + use<'a> {
        let (segment, channel, per, c, hw) = (sc / self.c, sc % self.c, self.n / self.segments, self.c, self.hw);
        (segment * per..(segment + 1) * per).map(move |image| &x[(image * c + channel) * hw..][..hw])
    }

    /// Planes per parallel task: at least 4 096 values a task.
    fn min_planes(&self) -> usize {
        4096usize.div_ceil(self.hw.max(1))
    }
}

/// `Σ f(a_i, b_i)` over two equal slices in sixteen lanes (so that it vectorises), in `f32`.
#[inline(always)]
fn lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += f(x[i], y[i]);
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(&x, &y)| f(x, y)).sum::<f32>()
}

/// Whether the ReLU passes `z` (NaN passes, so that it propagates as through burn's ReLU).
#[inline(always)]
fn passes(z: f32) -> bool {
    z.is_nan() || z > 0.0
}

/// Mean and biased variance of each (segment, channel), `[segments · C]` each: the mean, then the
/// squared deviations from it (exact two passes; a channel's planes are read again from cache).
pub fn statistics(x: &[f32], l: &Layout) -> (Vec<f32>, Vec<f32>) {
    let count = l.count().max(1) as f64;
    (0..l.segments * l.c)
        .into_par_iter()
        .map(|sc| widest(#[inline(always)] || {
            let sum: f64 = l.planes(x, sc).map(|p| f64::from(lanes(p, p, |v, _| v))).sum();
            let mean = (sum / count) as f32;
            let squares: f64 = l.planes(x, sc).map(|p| f64::from(lanes(p, p, |v, _| (v - mean) * (v - mean)))).sum();
            (mean, (squares / count) as f32)
        }))
        .unzip()
}

/// `ReLU(a x + b)` with `a`, `b` per (segment, channel).
pub fn scale_shift_relu(x: &[f32], a: &[f32], b: &[f32], l: &Layout) -> Vec<f32> {
    let mut y = zeros(x.len());
    y.par_chunks_mut(l.hw.max(1)).zip(x.par_chunks(l.hw.max(1))).with_min_len(l.min_planes()).enumerate().for_each(
        |(plane, (out, x))| {
            let sc = l.of_plane(plane);
            let (a, b) = (a[sc], b[sc]);
            widest(#[inline(always)] || {
                for (o, &v) in out.iter_mut().zip(x) {
                    let z = a * v + b;
                    *o = if passes(z) { z } else { 0.0 };
                }
            });
        },
    );
    y
}

/// A gradient of `x`'s shape, each plane written by `f(sc, out, x, dy)` from the same plane of `x`
/// and `dy` (`sc`: its segment and channel), planes in parallel.
fn map_planes(x: &[f32], dy: &[f32], l: &Layout, f: impl Fn(usize, &mut [f32], &[f32], &[f32]) + Sync) -> Vec<f32> {
    let mut dx = zeros(x.len());
    dx.par_chunks_mut(l.hw.max(1))
        .zip(x.par_chunks(l.hw.max(1)).zip(dy.par_chunks(l.hw.max(1))))
        .with_min_len(l.min_planes())
        .enumerate()
        .for_each(|(plane, (out, (x, dy)))| f(l.of_plane(plane), out, x, dy));
    dx
}

/// The per-(segment, channel) `a = γ r` and `b = β − μ a` of a batch norm with these statistics.
pub fn fold(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    gamma
        .iter()
        .zip(beta)
        .zip(mean.iter().zip(var))
        .map(|((&g, &b), (&m, &v))| {
            let a = g / (f64::from(v) + epsilon).sqrt() as f32;
            (a, b - m * a)
        })
        .unzip()
}

/// The training forward pass: the output, and the batch mean and biased variance of each
/// (segment, channel).
pub fn forward(x: &[f32], gamma: &[f32], beta: &[f32], l: &Layout, epsilon: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mean, var) = statistics(x, l);
    let (a, b) = fold(gamma, beta, &mean, &var, epsilon);
    (scale_shift_relu(x, &a, &b, l), mean, var)
}

/// The training backward pass from the input `x`, the output's gradient `dy`, the scale and shift
/// the forward pass used and the statistics it returned: `(dx, dγ, dβ)`.
pub fn backward(
    x: &[f32],
    dy: &[f32],
    [gamma, beta]: [&[f32]; 2],
    [mean, var]: [&[f32]; 2],
    l: &Layout,
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (a, b) = fold(gamma, beta, mean, var, epsilon);
    // Σ d and Σ d (x − μ) of each (segment, channel).
    let (dbeta, centred): (Vec<f64>, Vec<f64>) = (0..l.segments * l.c)
        .into_par_iter()
        .map(|sc| {
            let (a, b, m) = (a[sc], b[sc], mean[sc]);
            widest(#[inline(always)] || {
                l.planes(x, sc).zip(l.planes(dy, sc)).fold((0.0f64, 0.0f64), |(s, t), (x, dy)| {
                    let d = |v: f32, g: f32| if passes(a * v + b) { g } else { 0.0 };
                    (s + f64::from(lanes(x, dy, d)), t + f64::from(lanes(x, dy, |v, g| d(v, g) * (v - m))))
                })
            })
        })
        .unzip();
    let r: Vec<f64> = var.iter().map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt()).collect();
    let dgamma: Vec<f64> = centred.iter().zip(&r).map(|(c, r)| c * r).collect();
    // dx = k1 d + k2 (x − μ) + k3 with k1 = γ r, k2 = −γ r² dγ / M, k3 = −γ r dβ / M.
    let count = l.count().max(1) as f64;
    let k: Vec<[f32; 3]> = (0..l.segments * l.c)
        .map(|sc| {
            let gr = f64::from(gamma[sc]) * r[sc];
            [gr as f32, (-gr * r[sc] * dgamma[sc] / count) as f32, (-gr * dbeta[sc] / count) as f32]
        })
        .collect();
    let dx = map_planes(x, dy, l, |sc, out, x, dy| {
        let ([k1, k2, k3], a, b, m) = (k[sc], a[sc], b[sc], mean[sc]);
        widest(#[inline(always)] || {
            for ((o, &v), &g) in out.iter_mut().zip(x).zip(dy) {
                let d = if passes(a * v + b) { g } else { 0.0 };
                *o = k1 * d + k2 * (v - m) + k3;
            }
        });
    });
    let narrow = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (dx, narrow(dgamma), narrow(dbeta))
}

/// The backward pass of [`scale_shift_relu`]: `(dx, da, db)`.
pub fn scale_shift_relu_backward(x: &[f32], dy: &[f32], a: &[f32], b: &[f32], l: &Layout) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (db, da): (Vec<f32>, Vec<f32>) = (0..l.segments * l.c)
        .into_par_iter()
        .map(|sc| {
            let (a, b) = (a[sc], b[sc]);
            let d = |v: f32, g: f32| if passes(a * v + b) { g } else { 0.0 };
            widest(#[inline(always)] || {
                l.planes(x, sc).zip(l.planes(dy, sc)).fold((0.0f64, 0.0f64), |(s, t), (x, dy)| {
                    (s + f64::from(lanes(x, dy, d)), t + f64::from(lanes(x, dy, |v, g| d(v, g) * v)))
                })
            })
        })
        .map(|(s, t)| (s as f32, t as f32))
        .unzip();
    let dx = map_planes(x, dy, l, |sc, out, x, dy| {
        let (a, b) = (a[sc], b[sc]);
        widest(#[inline(always)] || {
            for ((o, &v), &g) in out.iter_mut().zip(x).zip(dy) {
                *o = if passes(a * v + b) { a * g } else { 0.0 };
            }
        });
    });
    (dx, da, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 1000) as f32 / 250.0 - 1.0).collect()
    }

    /// The training output by its definition, in f64.
    fn definition(x: &[f32], gamma: &[f32], beta: &[f32], l: &Layout, eps: f64) -> Vec<f64> {
        let per = l.n / l.segments;
        let mut y = vec![0.0; x.len()];
        for s in 0..l.segments {
            for c in 0..l.c {
                let idx: Vec<usize> = (s * per..(s + 1) * per).flat_map(|i| (0..l.hw).map(move |p| (i * l.c + c) * l.hw + p)).collect();
                let m = idx.iter().map(|&i| f64::from(x[i])).sum::<f64>() / idx.len() as f64;
                let v = idx.iter().map(|&i| (f64::from(x[i]) - m).powi(2)).sum::<f64>() / idx.len() as f64;
                for &i in &idx {
                    let z = f64::from(gamma[s * l.c + c]) * (f64::from(x[i]) - m) / (v + eps).sqrt() + f64::from(beta[s * l.c + c]);
                    y[i] = z.max(0.0);
                }
            }
        }
        y
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        // Planes of 35 values (two full lanes and a remainder), two segments of three images.
        let l = Layout { n: 6, c: 3, hw: 35, segments: 2 };
        let eps = 1e-5;
        let x = values(l.n * l.c * l.hw, 1);
        let gamma = vec![1.5, -0.7, 0.3, 0.9, 1.1, -2.0];
        let beta = vec![0.2, 0.1, -0.4, 0.0, 0.5, 0.3];
        let (y, mean, var) = forward(&x, &gamma, &beta, &l, eps);
        for (a, b) in y.iter().zip(definition(&x, &gamma, &beta, &l, eps)) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!((mean.len(), var.len()), (6, 6));
        let dy = values(y.len(), 7);
        let (dx, dgamma, dbeta) = backward(&x, &dy, [&gamma, &beta], [&mean, &var], &l, eps);
        let loss = |x: &[f32], g: &[f32], b: &[f32]| definition(x, g, b, &l, eps).iter().zip(&dy).map(|(y, d)| y * f64::from(*d)).sum::<f64>();
        let h = 1e-3f32;
        let numeric = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / f64::from(2.0 * h);
        let close = |n: f64, a: f32| (n - f64::from(a)).abs() <= 2e-3 + 1e-4 * n.abs();
        for i in [0, 1, 40, 106, 200, x.len() - 1] {
            let n = numeric(&|e| {
                let mut x = x.clone();
                x[i] += e;
                loss(&x, &gamma, &beta)
            });
            assert!(close(n, dx[i]), "dx[{i}]: {n} vs {}", dx[i]);
        }
        for i in 0..6 {
            let ng = numeric(&|e| {
                let mut g = gamma.clone();
                g[i] += e;
                loss(&x, &g, &beta)
            });
            let nb = numeric(&|e| {
                let mut b = beta.clone();
                b[i] += e;
                loss(&x, &gamma, &b)
            });
            assert!(close(ng, dgamma[i]), "dγ[{i}]: {ng} vs {}", dgamma[i]);
            assert!(close(nb, dbeta[i]), "dβ[{i}]: {nb} vs {}", dbeta[i]);
        }
    }

    #[test]
    fn the_variance_of_a_large_offset_is_exact() {
        // A mean far from zero: one-pass Σx² − (Σx)² would lose every digit of this variance.
        let l = Layout { n: 4, c: 1, hw: 64, segments: 1 };
        let x: Vec<f32> = (0..256).map(|i| 1000.0 + if i % 2 == 0 { 0.01 } else { -0.01 }).collect();
        let (mean, var) = statistics(&x, &l);
        assert!((mean[0] - 1000.0).abs() < 1e-3, "{mean:?}");
        assert!((var[0] - 1e-4).abs() < 2e-6, "{var:?}");
    }

    #[test]
    fn nan_propagates_through_the_relu() {
        let l = Layout { n: 1, c: 1, hw: 3, segments: 1 };
        let y = scale_shift_relu(&[1.0, f32::NAN, -1.0], &[1.0], &[0.0], &l);
        assert!(y[0] == 1.0 && y[1].is_nan() && y[2] == 0.0, "{y:?}");
    }
}
