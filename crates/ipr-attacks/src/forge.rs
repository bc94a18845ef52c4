//! Ambiguity attack 1 ("fake 1"): replace the passports with forged ones and measure what the
//! model still does. The forged passports are sampled exactly as an owner samples genuine ones
//! (20 random validation images through a public pretrained model, channels shuffled), or are
//! `U(-1, 1)` noise; each of `draws` draws is evaluated on the test split.

use burn::prelude::*;
use ipr_data::Loader;
use ipr_models::{LayerSignature, Net, noise_passports, sample_passports};
use ipr_passport::Route;
use ipr_schemes::{eval_form, evaluate};
use ipr_verify::{Claim, Decision, Evidence, Thresholds, verify};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::AttackError;

/// Where forged passports come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeSource {
    /// Random validation images through a pretrained model (the reference attack).
    #[default]
    Pretrained,
    /// `U(-1, 1)` noise.
    Noise,
}

/// One forged draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgeRow {
    /// Draw number, from 1.
    pub draw: usize,
    /// Test accuracy with the forged passports.
    pub accuracy: f64,
    /// Fraction of the owner's signature bits the forged γ still carries.
    pub detection: f64,
    /// The verifier's white-box decision on the owner's claim against the model carrying the
    /// forged passports.
    pub owner_claim: Decision,
}

/// How a forger makes passports: from `samples` of validation images through `pretrained` (a
/// public model, needed for [`ForgeSource::Pretrained`]; the first two batches of each epoch of
/// `samples` are the γ and β samples of a draw), or from noise.
pub struct Forger<'a, M> {
    /// Where forged passports come from.
    pub source: ForgeSource,
    /// The public pretrained model the images pass through.
    pub pretrained: Option<&'a M>,
    /// Validation images to sample from.
    pub samples: &'a Loader,
    /// Draws.
    pub draws: usize,
    /// Seed of the draws.
    pub seed: u64,
}

/// Runs the forger's draws against `model` (a passport model, evaluation form not required),
/// each evaluated on `test` and checked against the owner's `signatures`.
///
/// # Errors
/// A data error, or a pretrained model that does not fit.
pub fn forge<M: Net>(model: &M, forger: &Forger<'_, M>, test: &Loader, signatures: &[LayerSignature], device: &Device) -> Result<Vec<ForgeRow>, AttackError> {
    let mut rows = Vec::with_capacity(forger.draws);
    for_each_forgery(model, forger, device, &mut |draw, forged| {
        let accuracy = evaluate(&eval_form(forged, Route::Private), test, device)?.accuracy;
        // The verifier's white-box check reads the forged γ once, for the detection and the decision.
        let verdict = verify(forged, &Claim::new(signatures), &Evidence::default(), &Thresholds::default())?;
        let (detection, owner_claim) = (verdict.signature.agreement, verdict.decision);
        tracing::info!(draw, accuracy, detection, "forged passport draw");
        rows.push(ForgeRow { draw, accuracy, detection, owner_claim });
        Ok(true)
    })?;
    Ok(rows)
}

/// Calls `f(draw, model with forged passports)` for each of the forger's draws (from 1), in
/// order, while it returns `true`: the models [`forge`] measures.
///
/// # Errors
/// A data error, a pretrained model that does not fit, or `f`'s error.
pub fn for_each_forgery<M: Net>(
    model: &M,
    forger: &Forger<'_, M>,
    device: &Device,
    f: &mut dyn FnMut(usize, &M) -> Result<bool, AttackError>,
) -> Result<(), AttackError> {
    let Forger { source, pretrained, samples, draws, seed } = *forger;
    let model = model.valid();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for draw in 1..=draws {
        let forged = match source {
            ForgeSource::Pretrained => {
                let pretrained = pretrained.ok_or(AttackError::NeedsPretrained)?;
                let mut batches = samples.epoch(draw as u64);
                let mut next = || -> Result<Tensor<4>, AttackError> {
                    let batch = batches.next().ok_or(AttackError::TooFewImages)??;
                    Ok(batch.to_tensors(device).0)
                };
                let (for_gamma, for_beta) = (next()?, next()?);
                sample_passports(model.clone(), &pretrained.valid(), for_gamma, for_beta, &mut rng)?
            }
            ForgeSource::Noise => noise_passports(model.clone(), seed.wrapping_add(draw as u64), device),
        };
        if !f(draw, &forged)? {
            break;
        }
    }
    Ok(())
}
