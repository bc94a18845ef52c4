//! Seeded synthetic dataset for tests: learnable without any download.
//!
//! Format: no file; each class has a fixed random prototype of 4×4-pixel blocks (dark or
//! bright, per channel), and every sample is its class prototype shifted by up to
//! `max_shift` pixels (zero fill) plus uniform noise. Labels cycle `0, 1, …, num_classes-1`.
//! Source: this crate (no external reference); the same config always gives the same set.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{DataError, ImageSet};

const BLOCK: usize = 4;

/// Size and randomness of a [`synthetic`] dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticConfig {
    /// Number of images.
    pub n: usize,
    /// Channels per image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of classes (prototypes).
    pub num_classes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Per-pixel noise amplitude: each pixel moves by up to ± this much.
    pub noise: u8,
    /// Largest shift of the prototype, in pixels, along each axis.
    pub max_shift: usize,
}

impl Default for SyntheticConfig {
    /// 600 gray 28×28 images in 10 classes, noise ±40, shifts up to 2 pixels, seed 0.
    fn default() -> Self {
        Self {
            n: 600,
            channels: 1,
            height: 28,
            width: 28,
            num_classes: 10,
            seed: 0,
            noise: 40,
            max_shift: 2,
        }
    }
}

/// Generates the dataset described by `config`.
pub fn synthetic(config: &SyntheticConfig) -> Result<ImageSet, DataError> {
    let SyntheticConfig {
        n,
        channels: c,
        height: h,
        width: w,
        num_classes,
        seed,
        noise,
        max_shift,
    } = *config;
    if num_classes == 0 {
        return Err(DataError::Invalid(
            "synthetic dataset needs at least one class".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (bh, bw) = (h.div_ceil(BLOCK), w.div_ceil(BLOCK));
    let prototypes: Vec<Vec<u8>> = (0..num_classes)
        .map(|_| {
            let blocks: Vec<bool> = (0..c * bh * bw).map(|_| rng.random_bool(0.5)).collect();
            (0..c * h * w)
                .map(|i| {
                    let (ch, y, x) = (i / (h * w), i / w % h, i % w);
                    if blocks[(ch * bh + y / BLOCK) * bw + x / BLOCK] {
                        220
                    } else {
                        30
                    }
                })
                .collect()
        })
        .collect();

    let shift = max_shift as i64;
    let noise = noise as i16;
    let mut pixels = Vec::with_capacity(n * c * h * w);
    let labels: Vec<usize> = (0..n).map(|i| i % num_classes).collect();
    for &label in &labels {
        let (dy, dx) = (
            rng.random_range(-shift..=shift),
            rng.random_range(-shift..=shift),
        );
        let proto = &prototypes[label];
        for ch in 0..c {
            for y in 0..h as i64 {
                for x in 0..w as i64 {
                    let (sy, sx) = (y - dy, x - dx);
                    let inside = (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx);
                    let base = if inside {
                        proto[(ch * h + sy as usize) * w + sx as usize] as i16
                    } else {
                        0
                    };
                    pixels.push((base + rng.random_range(-noise..=noise)).clamp(0, 255) as u8);
                }
            }
        }
    }
    ImageSet::new(
        format!("synthetic:seed{seed}"),
        pixels,
        labels,
        [c, h, w],
        num_classes,
    )
}
