//! Passports retrofitted into a model trained without them: the trained model becomes a V1 or
//! V2/V3 model that computes what it computed, with passports chosen (not only sampled) so that
//! γ and β reproduce each layer's trained affine ([`ipr_passport::ConvBlock::retrofit`]), then
//! the signature's signs put into γ by negating filters ([`ipr_passport::ConvBlock::align_signs`]).

use ipr_passport::{RetrofitFit, Signature};

use crate::{ModelError, Net};

/// `trained` (a model without passports) rebuilt as the passport model `template` describes:
/// every conv block and layer of `trained` is kept, and each block that is a passport layer in
/// `template` becomes one, public or private as there, starting from `template`'s passports
/// (sampled or random) moved to reproduce the trained affine. Returns the model and, for each
/// passport layer, how well its passports fit.
///
/// # Errors
/// [`ModelError::Config`] when `trained` has passport layers or its blocks differ in shape from
/// `template`'s (another architecture, width or input); [`ModelError::Passport`] from the layer.
pub fn retrofit<M: Net>(trained: M, template: &M) -> Result<(M, Vec<(String, RetrofitFit)>), ModelError> {
    let targets = template.blocks();
    if let Some((path, _)) = trained.blocks().into_iter().find(|(_, b)| b.is_passport()) {
        return Err(ModelError::Config(format!(
            "the model to retrofit has a passport layer `{path}` already; start from a model trained without passports (scheme v0)"
        )));
    }
    let mut fits = Vec::new();
    let model = trained.try_map_blocks(&mut |path, block| {
        let Some((_, target)) = targets.iter().find(|(p, _)| p == path) else {
            return Err(ModelError::Config(format!("the passport model has no conv block `{path}`: the trained model is another architecture")));
        };
        if target.conv.weight.dims() != block.conv.weight.dims() {
            return Err(ModelError::Config(format!(
                "conv block `{path}` has weights {:?} in the trained model but {:?} in the passport model: another width or input channels",
                block.conv.weight.dims(),
                target.conv.weight.dims()
            )));
        }
        let (Some(key), Some(skey)) = (&target.key, &target.skey) else {
            return Ok(block);
        };
        let (block, fit) = block.retrofit(path, key.val(), skey.val(), target.is_private())?;
        fits.push((path.to_string(), fit));
        Ok(block)
    })?;
    Ok((model, fits))
}

/// `model` with the signs of every signed layer's γ turned to its signature
/// ([`ipr_passport::ConvBlock::align_signs`]): the function and the scale passports stay, so
/// a bound signature drawn from them still holds. Returns the model and the channels negated.
///
/// # Errors
/// [`ModelError::Passport`] when a signature does not fit its layer.
pub fn align_signs<M: Net>(model: M, signatures: &[(String, Signature)]) -> Result<(M, usize), ModelError> {
    let mut negated = 0;
    let model = model.try_map_blocks(&mut |path, block| match signatures.iter().find(|(p, _)| p == path) {
        Some((_, signature)) => {
            let (block, n) = block.align_signs(path, &signature.bits)?;
            negated += n;
            Ok::<_, ModelError>(block)
        }
        None => Ok(block),
    })?;
    Ok((model, negated))
}
