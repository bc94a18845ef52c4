//! Transfer learning / fine-tuning: the attacker's copy of a protected model (every passport
//! layer an affine norm) trained on new data, with the last layer re-initialised (RTAL) or kept
//! (FTAL). After every epoch the signature is measured twice: from the signs of the fine-tuned
//! norm scales (V1, where they started as the passport-derived γ), and from γ computed with the
//! owner's passports through the fine-tuned conv weights.

use ipr_models::{LayerPassports, LayerSignature, Net};
use ipr_schemes::{PassportObjective, Run, TrainOutcome, train_probed};
use ipr_verify::{check_passports, check_signatures};
use serde::{Deserialize, Serialize};

use crate::surgery::attacker_copy;
use crate::AttackError;

/// What happens to the last layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinetuneMode {
    /// Re-initialise the last layer, train everything.
    #[default]
    Rtal,
    /// Keep the last layer, train everything.
    Ftal,
}

/// The signature measured after one epoch of fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneProbe {
    /// Bits carried by the signs of the fine-tuned norm scales (V1 only: a V2/V3 public model's
    /// norm scales never carried the signature).
    pub norm_detection: Option<f64>,
    /// Bits carried by γ computed from the owner's passports through the fine-tuned weights.
    pub passport_detection: f64,
}

/// Fine-tunes the attacker's copy of `model` (the owner's model, built on the autodiff
/// `run.device`) on `run.data`, into `run.dir`. `num_classes` is the target task's; FTAL needs it
/// to equal the model's. `passports` are the owner's genuine passports.
///
/// # Errors
/// Those of the training loop.
pub fn finetune<M: Net>(
    model: M,
    mode: FinetuneMode,
    num_classes: usize,
    passports: &[LayerPassports],
    signatures: &[LayerSignature],
    run: &Run<'_>,
) -> Result<TrainOutcome<M, FinetuneProbe>, AttackError> {
    let device = run.device;
    let private = model.is_private();
    let mut copy = attacker_copy(model);
    if mode == FinetuneMode::Rtal {
        device.seed(run.config.seed ^ 0x5eed_4ead);
        copy = copy.reset_head(num_classes, device);
    }
    let objective = PassportObjective::new(&[], 0.0, device);
    let mut probe = |m: &M| FinetuneProbe {
        norm_detection: (!private).then(|| check_signatures(m, signatures).agreement),
        passport_detection: check_passports(m, passports, signatures).agreement,
    };
    Ok(train_probed(copy, &objective, &[], run, &mut probe)?)
}
