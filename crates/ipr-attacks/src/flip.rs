//! Sign flipping: negate a fraction of all γ entries of the passport layers (the owner's model
//! along its passport path, folded) and measure what is left of the accuracy and the signature.

use std::collections::HashSet;

use burn::module::Param;
use burn::prelude::*;
use ipr_data::Loader;
use ipr_models::{LayerSignature, Net};
use ipr_passport::Route;
use ipr_schemes::evaluate;
use ipr_verify::check_signatures;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::AttackError;

/// One flipping level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlipRow {
    /// Fraction of all passport-layer γ entries negated.
    pub fraction: f64,
    /// Test accuracy along the passport path.
    pub accuracy: f64,
    /// Fraction of the owner's signature bits the flipped γ still carries.
    pub detection: f64,
}

/// The passport path of `model` with every passport layer folded into an affine norm, and the
/// fraction `fraction` of all their γ entries (taken together) negated, chosen from `seed`.
/// β is kept.
pub fn flip_gammas<M: Net>(model: M, fraction: f64, seed: u64) -> M {
    let paths = model.passport_paths();
    let folded = model.fold_route(Route::Private);
    let sizes: Vec<usize> = folded.blocks().iter().filter(|(p, _)| paths.contains(p)).map(|(_, b)| b.out_channels()).collect();
    let total: usize = sizes.iter().sum();
    let count = ((fraction.clamp(0.0, 1.0) * total as f64).round() as usize).min(total);
    let chosen: HashSet<usize> = sample(&mut ChaCha8Rng::seed_from_u64(seed), total, count).into_iter().collect();
    let mut offset = 0;
    folded
        .try_map_blocks::<std::convert::Infallible>(&mut |path, mut block| {
            if !paths.iter().any(|p| p == path) {
                return Ok(block);
            }
            let c = block.out_channels();
            if let Some(weight) = block.bn.weight.take() {
                let device = weight.val().device();
                let signs: Vec<f32> = (0..c).map(|i| if chosen.contains(&(offset + i)) { -1.0 } else { 1.0 }).collect();
                let flipped = weight.val().mul(Tensor::from_floats(signs.as_slice(), &device));
                block.bn.weight = Some(Param::from_tensor(flipped));
            }
            offset += c;
            Ok(block)
        })
        .unwrap_or_else(|e| match e {})
}

/// Flips a copy of `model` (the owner's passport model) at each of `fractions` and measures it.
///
/// # Errors
/// A test batch that cannot be read.
pub fn flip<M: Net>(model: &M, fractions: &[f64], test: &Loader, signatures: &[LayerSignature], seed: u64, device: &Device) -> Result<Vec<FlipRow>, AttackError> {
    let model = model.valid();
    let mut rows = Vec::with_capacity(fractions.len());
    for &fraction in fractions {
        let flipped = flip_gammas(model.clone(), fraction, seed);
        let accuracy = evaluate(&flipped, test, device)?.accuracy;
        let detection = check_signatures(&flipped, signatures).agreement;
        tracing::info!(fraction, accuracy, detection, "flipped");
        rows.push(FlipRow { fraction, accuracy, detection });
    }
    Ok(rows)
}
