//! Ambiguity attack 2 ("fake 2"): reverse-engineer γ/β. The attacker's copy keeps every weight
//! frozen; each passport layer's affine scale starts as the ±1 sign vector of the signature the
//! forger claims (the owner's with a fraction flipped) and its shift at 0, and only these train.

use burn::module::Param;
use burn::prelude::*;
use ipr_models::{LayerSignature, Net};
use ipr_schemes::{PassportObjective, Run, TrainOutcome, train_probed};
use ipr_verify::check_signatures;
use serde::{Deserialize, Serialize};

use crate::surgery::{attacker_copy, norm_affine_ids, train_only};
use crate::AttackError;

/// The signature of the attacked model after one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureProbe {
    /// Bits of the owner's signature the model's γ carries.
    pub owner_detection: f64,
    /// Bits of the forger's target signature the model's γ carries.
    pub forger_detection: f64,
}

/// The attacker's copy of `model` with the norm of every layer of `target` reset to
/// `γ = target bits (±1)`, `β = 0`, and only those trainable.
///
/// # Errors
/// [`AttackError::Config`] when a passport layer has no affine norm (norm `none`).
pub fn reverse_setup<M: Net>(model: M, target: &[LayerSignature], device: &Device) -> Result<M, AttackError> {
    let copy = attacker_copy(model);
    let copy = copy.try_map_blocks(&mut |path, mut block| {
        let Some(layer) = target.iter().find(|l| l.path == path) else {
            return Ok(block);
        };
        if block.bn.weight.is_none() {
            return Err(AttackError::Config(format!(
                "layer `{path}` has no affine norm to reverse-engineer (norm = \"none\"); attack 2 needs norm bn, gn or in"
            )));
        }
        let bits = Tensor::<1>::from_floats(layer.signature.as_f32().as_slice(), device);
        block.bn.weight = Some(Param::from_tensor(bits.clone()));
        block.bn.bias = Some(Param::from_tensor(bits.zeros_like()));
        Ok(block)
    })?;
    let paths: Vec<String> = target.iter().map(|l| l.path.clone()).collect();
    let ids = norm_affine_ids(&copy, &paths);
    Ok(train_only(copy, &ids))
}

/// Runs attack 2 on `model` (the owner's model, on the autodiff `run.device`) with the forger's
/// `target` signature, into `run.dir`.
///
/// # Errors
/// Those of [`reverse_setup`] and of the training loop.
pub fn reverse<M: Net>(
    model: M,
    owner: &[LayerSignature],
    target: &[LayerSignature],
    run: &Run<'_>,
) -> Result<TrainOutcome<M, SignatureProbe>, AttackError> {
    let copy = reverse_setup(model, target, run.device)?;
    let objective = PassportObjective::new(&[], 0.0, run.device);
    let mut probe = |m: &M| SignatureProbe {
        owner_detection: check_signatures(m, owner).agreement,
        forger_detection: check_signatures(m, target).agreement,
    };
    Ok(train_probed(copy, &objective, &[], run, &mut probe)?)
}
