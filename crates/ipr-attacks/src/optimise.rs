//! Ambiguity attack 3 ("fake 3"): optimise a passport. The owner's model keeps every weight
//! frozen; its passports become trainable, starting from the genuine ones plus `N(0, 0.001²)`
//! noise, and are trained towards the forger's target signature (the owner's with an optional
//! fraction flipped) with `CE + sign loss(target) + 2·Σ 1/MSE(genuine, forged)` and gradient
//! clipping: the last term pushes the forged passports away from the genuine ones.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use ipr_models::{LayerSignature, Net};
use ipr_passport::Route;
use ipr_models::tensor_values;
use ipr_schemes::{Objective, PassportObjective, Run, StepOutput, TrainOutcome, train_probed};
use ipr_verify::check_signatures;
use serde::{Deserialize, Serialize};

use crate::surgery::{passport_ids, train_only};
use crate::AttackError;

/// Standard deviation of the noise added to the genuine passports at the start.
pub const START_NOISE: f64 = 0.001;
/// Weight of the `Σ 1/MSE(genuine, forged)` term.
pub const DISTANCE_WEIGHT: f64 = 2.0;

/// The forged passports after one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassportProbe {
    /// Bits of the owner's signature that γ from the forged passports carries.
    pub owner_detection: f64,
    /// Bits of the forger's target signature that γ from the forged passports carries.
    pub forger_detection: f64,
    /// Mean cosine similarity between forged and genuine passports (over layers, `key` and
    /// `skey`).
    pub cosine: f64,
}

/// `(path, P_β, P_γ)` of every passport layer.
type Passports = Vec<(String, Tensor<4>, Tensor<4>)>;

fn passports_of<M: Net>(model: &M) -> Passports {
    model
        .blocks()
        .into_iter()
        .filter_map(|(path, b)| Some((path, b.key.as_ref()?.val(), b.skey.as_ref()?.val())))
        .collect()
}

/// The attack's objective: the passport objective towards the target signature along the
/// passport path, plus `2·Σ 1/MSE` between the genuine and the model's passports.
pub struct ForgeryObjective {
    inner: PassportObjective,
    genuine: Passports,
}

impl<M: Net> Objective<M> for ForgeryObjective {
    fn step(&self, model: &M, images: Tensor<4>, labels: Tensor<1, Int>) -> StepOutput {
        let mut out = self.inner.step(model, images, labels);
        for (path, key, skey) in passports_of(model) {
            if let Some((_, gkey, gskey)) = self.genuine.iter().find(|(p, _, _)| *p == path) {
                for (genuine, forged) in [(gkey, key), (gskey, skey)] {
                    let mse = forged.sub(genuine.clone()).square().mean();
                    out.loss = out.loss.add(mse.recip().mul_scalar(DISTANCE_WEIGHT));
                }
            }
        }
        out
    }
}

/// Mean cosine similarity between the passports of `model` and `genuine`.
fn cosine(model: &Passports, genuine: &Passports) -> f64 {
    let mut sims = Vec::new();
    for (path, key, skey) in model {
        if let Some((_, gkey, gskey)) = genuine.iter().find(|(p, _, _)| p == path) {
            for (a, b) in [(key, gkey), (skey, gskey)] {
                let n = a.dims().iter().product::<usize>();
                let (a, b) = (tensor_values(a.clone().reshape([n])), tensor_values(b.clone().reshape([n])));
                let dot: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
                let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                sims.push(dot / (norm(&a) * norm(&b)).max(f64::MIN_POSITIVE));
            }
        }
    }
    sims.iter().sum::<f64>() / sims.len().max(1) as f64
}

/// The owner's `model` (on the autodiff `device`) with its passports replaced by the genuine
/// ones plus noise and made the only trainable parameters.
pub fn optimise_setup<M: Net>(model: M, seed: u64, device: &Device) -> M {
    device.seed(seed);
    let noisy = |p: Option<Param<Tensor<4>>>| {
        p.map(|p| {
            let v = p.val().detach();
            let noise = Tensor::random(v.dims(), Distribution::Normal(0.0, START_NOISE), device);
            Param::from_tensor(v.add(noise))
        })
    };
    let model = model
        .try_map_blocks::<std::convert::Infallible>(&mut |_, mut block| {
            block.key = noisy(block.key.take());
            block.skey = noisy(block.skey.take());
            Ok(block)
        })
        .unwrap_or_else(|e| match e {});
    let ids = passport_ids(&model);
    train_only(model, &ids)
}

/// Runs attack 3 on `model` (the owner's passport model, on the autodiff `run.device`) towards
/// `target`, into `run.dir`. `run.config.grad_clip` should be set (the reference clips to norm 2).
///
/// # Errors
/// Those of the training loop.
pub fn optimise_passport<M: Net>(
    model: M,
    owner: &[LayerSignature],
    target: &[LayerSignature],
    run: &Run<'_>,
) -> Result<TrainOutcome<M, PassportProbe>, AttackError> {
    let (config, device) = (run.config, run.device);
    // The genuine passports as data (for the probe), and on the training device for the loss.
    let genuine = passports_of(&model.valid());
    let forged = optimise_setup(model, config.seed ^ 0x0f4e_0003, device);
    let objective = ForgeryObjective {
        inner: PassportObjective::new(target, config.sign_loss, device).with_route(Route::Private),
        genuine: genuine.iter().map(|(p, k, s)| (p.clone(), k.clone().to_device(device), s.clone().to_device(device))).collect(),
    };
    let mut probe = |m: &M| PassportProbe {
        owner_detection: check_signatures(m, owner).agreement,
        forger_detection: check_signatures(m, target).agreement,
        cosine: cosine(&passports_of(m), &genuine),
    };
    Ok(train_probed(forged, &objective, &[], run, &mut probe)?)
}
