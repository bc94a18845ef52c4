//! Passport sampling from a pretrained model's activations (`key_type` `image` and `shuffle`).
//!
//! The activations at a passport layer's input, for `n` sampled images, are
//! `[n, C, H, W]`. With `n = 1` the passport is that activation. With `n > 1` the passport is one
//! `[1, C, H, W]` tensor whose channel `j` is a channel picked at random, without repetition,
//! from image `j mod n`; the input layer instead takes one whole random image.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Where a layer's passports come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// `U(-1, 1)` noise shaped like the layer input.
    Random,
    /// One image through a pretrained model.
    Image,
    /// Channels mixed from 20 images through a pretrained model.
    #[default]
    Shuffle,
}

impl KeyType {
    /// Images sampled per passport (`image`: 1, `shuffle`: 20, `random`: none).
    pub fn images(self) -> usize {
        match self {
            KeyType::Random => 0,
            KeyType::Image => 1,
            KeyType::Shuffle => 20,
        }
    }
}

/// A passport picked from sampled activations, and where each of its channels came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// `[1, C, H, W]` values.
    pub values: Vec<f32>,
    /// For channel `j`: `(image, channel)` of its source in the activations.
    pub provenance: Vec<(usize, usize)>,
}

/// Picks a `[1, C, H, W]` passport from activations `[n, C, H, W]` (row-major in `acts`).
///
/// `input_layer` marks the network's first block, whose passport is one whole random image.
pub fn select_passport(
    acts: &[f32],
    [n, c, h, w]: [usize; 4],
    input_layer: bool,
    rng: &mut impl Rng,
) -> Selection {
    assert_eq!(acts.len(), n * c * h * w, "activations do not match their shape");
    let plane = h * w;
    let provenance: Vec<(usize, usize)> = if n == 1 || input_layer {
        let image = rng.random_range(0..n);
        (0..c).map(|ch| (image, ch)).collect()
    } else {
        // For each image, a random order of its channels; channel j takes the next unused
        // channel of image j mod n.
        let mut orders: Vec<Vec<usize>> = (0..n)
            .map(|_| {
                let mut order: Vec<usize> = (0..c).collect();
                order.shuffle(rng);
                order
            })
            .collect();
        (0..c)
            .map(|j| {
                let image = j % n;
                let ch = orders[image].pop().expect("c channels per image suffice for c picks");
                (image, ch)
            })
            .collect()
    };
    let values = provenance
        .iter()
        .flat_map(|&(image, ch)| {
            let start = (image * c + ch) * plane;
            acts[start..start + plane].iter().copied()
        })
        .collect();
    Selection { values, provenance }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Activations whose every plane is filled with `image * 1000 + channel`.
    fn tagged(n: usize, c: usize, plane: usize) -> Vec<f32> {
        (0..n * c)
            .flat_map(|i| std::iter::repeat_n(((i / c) * 1000 + i % c) as f32, plane))
            .collect()
    }

    #[test]
    fn shuffle_shape_and_channel_provenance() {
        let (n, c, h, w) = (20, 64, 4, 4);
        let acts = tagged(n, c, h * w);
        let sel = select_passport(&acts, [n, c, h, w], false, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(sel.values.len(), c * h * w);
        let mut seen = std::collections::HashSet::new();
        for (j, &(image, ch)) in sel.provenance.iter().enumerate() {
            assert_eq!(image, j % n, "channel {j} must come from image j mod n");
            assert!(seen.insert((image, ch)), "({image}, {ch}) picked twice");
            let plane = &sel.values[j * h * w..(j + 1) * h * w];
            assert!(plane.iter().all(|&v| v == (image * 1000 + ch) as f32));
        }
        // The picks within one image are not simply the first channels.
        let from_zero: Vec<usize> =
            sel.provenance.iter().filter(|p| p.0 == 0).map(|p| p.1).collect();
        assert_ne!(from_zero, (0..from_zero.len()).collect::<Vec<_>>());
    }

    #[test]
    fn input_layer_takes_one_whole_image() {
        let (n, c, h, w) = (20, 3, 2, 2);
        let acts = tagged(n, c, h * w);
        let sel = select_passport(&acts, [n, c, h, w], true, &mut ChaCha8Rng::seed_from_u64(5));
        let image = sel.provenance[0].0;
        assert_eq!(sel.provenance, (0..c).map(|ch| (image, ch)).collect::<Vec<_>>());
    }

    #[test]
    fn single_image_is_the_activation() {
        let acts: Vec<f32> = (0..2 * 3 * 3).map(|v| v as f32).collect();
        let sel = select_passport(&acts, [1, 2, 3, 3], false, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(sel.values, acts);
    }
}
