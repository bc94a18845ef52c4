//! Pruning: global magnitude pruning of every conv and linear weight of a protected model at a
//! list of percentages; the accuracy and the signature detection at each.

use burn::prelude::*;
use ipr_data::Loader;
use ipr_models::{LayerSignature, Net};
use ipr_passport::Route;
use ipr_schemes::{eval_form, evaluate};
use ipr_verify::check_signatures;
use serde::{Deserialize, Serialize};

use crate::AttackError;
use crate::surgery::{map_weights, weight_values};

/// One pruning level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PruneRow {
    /// Percentage of all conv and linear weights set to zero.
    pub percent: f64,
    /// Test accuracy with the passports (the private path of a V2/V3 model).
    pub accuracy: f64,
    /// Test accuracy of the public path (V2/V3).
    pub public_accuracy: Option<f64>,
    /// Fraction of the owner's signature bits that γ, computed from the passports through the
    /// pruned weights, still carries.
    pub detection: f64,
}

/// `model` with the `percent` % of all conv and linear weights of smallest magnitude (taken
/// together, over every layer) set to zero. Norm parameters and passports are untouched.
pub fn prune_weights<M: Net>(model: M, percent: f64) -> M {
    let mut magnitudes: Vec<f32> = weight_values(&model).into_iter().flatten().map(f32::abs).collect();
    let count = ((percent.clamp(0.0, 100.0) / 100.0 * magnitudes.len() as f64).round() as usize).min(magnitudes.len());
    if count == 0 {
        return model;
    }
    magnitudes.sort_unstable_by(f32::total_cmp);
    let threshold = magnitudes[count - 1];
    map_weights(model, &mut |w| {
        let keep = w.clone().abs().greater_elem(threshold);
        w.mask_fill(keep.bool_not(), 0.0)
    })
}

/// Prunes a copy of `model` (the owner's passport model) at each of `percents` and measures it.
///
/// # Errors
/// A test batch that cannot be read.
pub fn prune<M: Net>(model: &M, percents: &[f64], test: &Loader, signatures: &[LayerSignature], device: &Device) -> Result<Vec<PruneRow>, AttackError> {
    let model = model.valid();
    let mut rows = Vec::with_capacity(percents.len());
    for &percent in percents {
        let pruned = prune_weights(model.clone(), percent);
        let accuracy = evaluate(&eval_form(&pruned, Route::Private), test, device)?.accuracy;
        let public_accuracy =
            pruned.is_private().then(|| evaluate(&eval_form(&pruned, Route::Public), test, device)).transpose()?.map(|r| r.accuracy);
        let detection = check_signatures(&pruned, signatures).agreement;
        tracing::info!(percent, accuracy, detection, "pruned");
        rows.push(PruneRow { percent, accuracy, public_accuracy, detection });
    }
    Ok(rows)
}
