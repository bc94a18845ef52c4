//! Image transforms: centred zero padding to a size, random crop with zero padding, random
//! horizontal flip, and normalisation to `f32`.
//!
//! Format: images are `u8` CHW arrays with a `[channels, height, width]` shape. Training
//! applies pad_to → crop with padding → flip → normalise, the torchvision CIFAR recipe of
//! the reference (<https://github.com/kamwoh/DeepIPR/blob/master/dataset.py>:
//! `RandomCrop(32, padding=4)`, `RandomHorizontalFlip()`, `ToTensor()`, `Normalize`);
//! evaluation applies pad_to → normalise only.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation: `(x/255 - mean[c]) / std[c]`.
///
/// A single entry applies to every channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of each channel, on the 0..1 scale.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel, on the 0..1 scale.
    pub std: Vec<f32>,
}

impl Normalization {
    /// ImageNet statistics, which the reference also uses for CIFAR and Caltech.
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// Fashion-MNIST statistics (mean 0.2860, std 0.3530).
    pub fn fashion_mnist() -> Self {
        Self {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }

    /// MNIST statistics (mean 0.1307, std 0.3081).
    pub fn mnist() -> Self {
        Self {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }

    /// Whether this normalisation fits images with `channels` channels.
    pub fn fits(&self, channels: usize) -> bool {
        self.mean.len() == self.std.len() && (self.mean.len() == 1 || self.mean.len() == channels)
    }

    /// Writes the normalised `pixels` (CHW, `shape`) into `out`.
    ///
    /// # Panics
    /// If `out` and `pixels` differ in length or the statistics do not [`fit`](Self::fits).
    pub fn apply(&self, pixels: &[u8], shape: [usize; 3], out: &mut [f32]) {
        assert!(
            self.fits(shape[0]) && out.len() == pixels.len(),
            "normalisation does not fit {shape:?}"
        );
        let plane = shape[1] * shape[2];
        for (ch, (src, dst)) in pixels
            .chunks_exact(plane)
            .zip(out.chunks_exact_mut(plane))
            .enumerate()
        {
            let k = if self.mean.len() == 1 { 0 } else { ch };
            let (mean, std) = (self.mean[k], self.std[k]);
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = (s as f32 / 255.0 - mean) / std;
            }
        }
    }
}

/// The transform pipeline of one dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Zero-pad, centred, to at least this height and width (e.g. 28 → 32 for IDX data).
    pub pad_to: Option<usize>,
    /// Training only: zero-pad every side by this much, then crop a random window of the
    /// original size (0 disables).
    pub crop_padding: usize,
    /// Training only: mirror left-right with probability 0.5.
    pub hflip: bool,
    /// Normalisation to `f32`.
    pub normalization: Normalization,
}

impl Transform {
    /// Evaluation-style transform: normalisation only.
    pub fn new(normalization: Normalization) -> Self {
        Self {
            pad_to: None,
            crop_padding: 0,
            hflip: false,
            normalization,
        }
    }

    /// The reference CIFAR training recipe: crop with padding 4, flip, ImageNet statistics.
    pub fn cifar() -> Self {
        Self {
            pad_to: None,
            crop_padding: 4,
            hflip: true,
            normalization: Normalization::imagenet(),
        }
    }

    /// Fashion-MNIST: pad 28 → 32, crop with padding 4, flip, Fashion-MNIST statistics.
    pub fn fashion_mnist() -> Self {
        Self {
            pad_to: Some(32),
            crop_padding: 4,
            hflip: true,
            normalization: Normalization::fashion_mnist(),
        }
    }

    /// Shape of the output for an input of `shape`.
    pub fn output_shape(&self, shape: [usize; 3]) -> [usize; 3] {
        let size = self.pad_to.unwrap_or(0);
        [shape[0], shape[1].max(size), shape[2].max(size)]
    }

    /// Evaluation: pad_to, then normalise into `out` (length of the output shape).
    pub fn apply_eval(&self, pixels: &[u8], shape: [usize; 3], out: &mut [f32]) {
        let (pixels, shape) = self.padded(pixels, shape);
        self.normalization.apply(&pixels, shape, out);
    }

    /// Training: pad_to, random crop with padding, random flip, then normalise into `out`.
    pub fn apply_train(
        &self,
        pixels: &[u8],
        shape: [usize; 3],
        rng: &mut impl Rng,
        out: &mut [f32],
    ) {
        let (mut pixels, shape) = self.padded(pixels, shape);
        if self.crop_padding > 0 {
            let range = 0..=2 * self.crop_padding;
            let (top, left) = (rng.random_range(range.clone()), rng.random_range(range));
            pixels = crop_with_padding(&pixels, shape, self.crop_padding, top, left);
        }
        if self.hflip && rng.random_bool(0.5) {
            hflip(&mut pixels, shape);
        }
        self.normalization.apply(&pixels, shape, out);
    }

    fn padded(&self, pixels: &[u8], shape: [usize; 3]) -> (Vec<u8>, [usize; 3]) {
        match self.pad_to {
            Some(size) => (pad_to(pixels, shape, size), self.output_shape(shape)),
            None => (pixels.to_vec(), shape),
        }
    }
}

/// Zero-pads `pixels` (CHW, `shape`) to at least `size`×`size`, keeping the image centred
/// (the extra odd pixel goes to the bottom/right); larger sides are kept.
pub fn pad_to(pixels: &[u8], shape: [usize; 3], size: usize) -> Vec<u8> {
    let [c, h, w] = shape;
    let (nh, nw) = (h.max(size), w.max(size));
    let (top, left) = ((nh - h) / 2, (nw - w) / 2);
    let mut out = vec![0u8; c * nh * nw];
    for ch in 0..c {
        for y in 0..h {
            let src = (ch * h + y) * w;
            let dst = (ch * nh + y + top) * nw + left;
            out[dst..dst + w].copy_from_slice(&pixels[src..src + w]);
        }
    }
    out
}

/// Zero-pads every side by `pad`, then cuts the original-size window whose top-left corner
/// is (`top`, `left`) in the padded image (each in `0..=2*pad`).
///
/// # Panics
/// If `top` or `left` exceeds `2 * pad`.
pub fn crop_with_padding(
    pixels: &[u8],
    shape: [usize; 3],
    pad: usize,
    top: usize,
    left: usize,
) -> Vec<u8> {
    assert!(
        top <= 2 * pad && left <= 2 * pad,
        "crop offset ({top}, {left}) outside padding {pad}"
    );
    let [c, h, w] = shape;
    let mut out = vec![0u8; pixels.len()];
    // Output (y, x) reads source (y + top - pad, x + left - pad).
    let (x0, x1) = (
        pad.saturating_sub(left),
        (w + pad).saturating_sub(left).min(w),
    );
    for ch in 0..c {
        for y in 0..h {
            let sy = y + top;
            if sy < pad || sy - pad >= h || x0 >= x1 {
                continue;
            }
            let src = (ch * h + sy - pad) * w + x0 + left - pad;
            let dst = (ch * h + y) * w;
            out[dst + x0..dst + x1].copy_from_slice(&pixels[src..src + (x1 - x0)]);
        }
    }
    out
}

/// Mirrors `pixels` (CHW, `shape`) left-right in place.
pub fn hflip(pixels: &mut [u8], shape: [usize; 3]) {
    for row in pixels.chunks_exact_mut(shape[2]) {
        row.reverse();
    }
}
