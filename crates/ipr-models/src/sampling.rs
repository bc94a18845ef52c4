//! Passport sampling from a pretrained model (spec §4, `key_type` `image` and `shuffle`): the
//! passport of each passport layer is the activation at that layer's input, for sampled images
//! run through a pretrained model of the same architecture.

use burn::prelude::*;
use ipr_passport::select_passport;
use rand::Rng;

use crate::{ModelError, Net};

/// Replaces the passports of every passport layer of `target` with ones sampled through
/// `pretrained`: `P_γ` from the images `for_gamma`, `P_β` from the images `for_beta` (two
/// independent samples of `n` images each, `[n, C, H, W]`).
///
/// `pretrained` should be in evaluation mode (`valid()`), as the reference samples under
/// `no_grad` with frozen batch statistics.
///
/// # Errors
/// [`ModelError::Passport`] when a sampled activation does not fit its layer (a pretrained model
/// of another architecture or width).
pub fn sample_passports<M: Net>(
    target: M,
    pretrained: &M,
    for_gamma: Tensor<4>,
    for_beta: Tensor<4>,
    rng: &mut impl Rng,
) -> Result<M, ModelError> {
    let inputs_gamma = pretrained.block_inputs(for_gamma);
    let inputs_beta = pretrained.block_inputs(for_beta);
    let first = inputs_gamma.first().map(|(p, _)| p.clone());
    let device = target.devices().first().cloned().unwrap_or_else(Device::flex);
    let mut pick = |path: &str, inputs: &[(String, Tensor<4>)]| -> Option<Tensor<4>> {
        let (_, acts) = inputs.iter().find(|(p, _)| p == path)?;
        let dims = acts.dims();
        let values = acts.clone().into_data().convert::<f32>().try_to_vec::<f32>().ok()?;
        let sel = select_passport(&values, dims, first.as_deref() == Some(path), rng);
        Some(Tensor::from_data(TensorData::new(sel.values, [1, dims[1], dims[2], dims[3]]), &device))
    };
    target.try_map_blocks(&mut |path, block| {
        if !block.is_passport() {
            return Ok(block);
        }
        let skey = pick(path, &inputs_gamma);
        let key = pick(path, &inputs_beta);
        match (key, skey) {
            (Some(key), Some(skey)) => Ok(block.with_passports(path, key, skey)?),
            _ => Err(ModelError::Config(format!(
                "the pretrained model has no conv block `{path}` to sample a passport from"
            ))),
        }
    })
}
