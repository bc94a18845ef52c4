//! Max pooling without padding on plain `f32` slices (NCHW, row-major), planes in parallel: the
//! forward pass, optionally with the index of each window's maximum, and the backward pass that
//! sends each output's gradient to that index.

use rayon::prelude::*;

use crate::kernel::zeros;
use crate::simd::widest;

/// The shape of one pooling: planes (`N·C`), input and output sides, kernel and stride.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// `N·C` planes.
    pub planes: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Output height and width: `(input − kernel) / stride + 1`.
    pub output: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
}

impl Window {
    /// The pooling of `planes` planes of `input` by `kernel` with `stride` (floor mode).
    pub fn new(planes: usize, input: [usize; 2], kernel: [usize; 2], stride: [usize; 2]) -> Self {
        let output = [0, 1].map(|d| (input[d] - kernel[d]) / stride[d] + 1);
        Self { planes, input, output, kernel, stride }
    }

    fn plane_in(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn plane_out(&self) -> usize {
        self.output[0] * self.output[1]
    }
}

/// The maxima of one plane, and with `arg` the index of each (the first, on ties).
#[inline(always)]
fn plane(x: &[f32], w: &Window, out: &mut [f32], mut arg: Option<&mut [u32]>) {
    let ([_, iw], [oh, ow], [kh, kw], [sh, sw]) = (w.input, w.output, w.kernel, w.stride);
    for oy in 0..oh {
        for ox in 0..ow {
            let (mut best, mut at) = (f32::NEG_INFINITY, oy * sh * iw + ox * sw);
            for ky in 0..kh {
                let row = (oy * sh + ky) * iw + ox * sw;
                for (kx, &v) in x[row..row + kw].iter().enumerate() {
                    if v > best {
                        (best, at) = (v, row + kx);
                    }
                }
            }
            out[oy * ow + ox] = best;
            if let Some(arg) = arg.as_deref_mut() {
                arg[oy * ow + ox] = at as u32;
            }
        }
    }
}

/// The forward pass: `[planes, Ho, Wo]` maxima of `x` (`[planes, H, W]`).
pub fn forward(x: &[f32], w: &Window) -> Vec<f32> {
    let mut y = zeros(w.planes * w.plane_out());
    y.par_chunks_mut(w.plane_out().max(1))
        .enumerate()
        .for_each(|(i, out)| widest(#[inline(always)] || plane(&x[i * w.plane_in()..(i + 1) * w.plane_in()], w, out, None)));
    y
}

/// The forward pass with, per output, the index of its maximum within its plane.
pub fn forward_with_indices(x: &[f32], w: &Window) -> (Vec<f32>, Vec<u32>) {
    let mut y = zeros(w.planes * w.plane_out());
    let mut arg = vec![0u32; y.len()];
    y.par_chunks_mut(w.plane_out().max(1)).zip(arg.par_chunks_mut(w.plane_out().max(1))).enumerate().for_each(
        |(i, (out, arg))| widest(#[inline(always)] || plane(&x[i * w.plane_in()..(i + 1) * w.plane_in()], w, out, Some(arg))),
    );
    (y, arg)
}

/// The backward pass: `dx` (`[planes, H, W]`) with each output's gradient added at its maximum.
pub fn backward(dy: &[f32], arg: &[u32], w: &Window) -> Vec<f32> {
    let mut dx = zeros(w.planes * w.plane_in());
    dx.par_chunks_mut(w.plane_in().max(1)).enumerate().for_each(|(i, dx)| {
        let range = i * w.plane_out()..(i + 1) * w.plane_out();
        for (&g, &at) in dy[range.clone()].iter().zip(&arg[range]) {
            dx[at as usize] += g;
        }
    });
    dx
}
