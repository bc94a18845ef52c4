//! The substitution attack of Chen et al. (CVPR 2023, arXiv 2303.11595): an accessory block in
//! front of each passport layer's scale. The attacker's copy keeps every weight frozen; each
//! passport layer's affine scale is stored as `γ_raw`, which starts as the owner's γ with the
//! signs of the forger's target signature, and the layer applies
//! `γ = γ_raw + ERB(γ_raw)`, where the ERB is a small residual MLP:
//! - **IERB**: every channel through its own MLP, `1 → 10 → 1`;
//! - **CERB**: across channels, `C → C/8 → C`.
//!
//! The ERB's output layer starts at zero (the block starts as the identity). `γ_raw`, β and the
//! ERBs train, with the sign loss holding `γ_raw` on the target signature. The forger then claims
//! the signs of `γ_raw` as their signature. The ERB is a burn parameter reparameterization of
//! the norm's scale, so the model keeps its structure and its training loop.

use burn::module::{Module, Param, ParamId, Reparameterization, Reparameterizer};
use burn::tensor::Distribution;
use burn::prelude::*;
use burn::tensor::activation::relu;
use ipr_models::{LayerSignature, Net};
use ipr_models::tensor_values;
use ipr_schemes::{Objective, PassportObjective, Run, StepOutput, TrainOutcome, train_probed};
use serde::{Deserialize, Serialize};

use crate::surgery::{attacker_copy, dissimilarity, norm_affine_ids, train_only};
use crate::AttackError;

/// Which accessory block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErbKind {
    /// Per channel, hidden size 10.
    #[default]
    Ierb,
    /// Across channels, hidden size `C/8`.
    Cerb,
}

/// An expanded residual block: `γ ↦ γ + ERB(γ)`, a two-layer MLP with ReLU.
///
/// - IERB: every channel has its own MLP `1 → 10 → 1` (rows of `w1`, `b1`, `w2`, entries of
///   `b2`), so it can move each channel's scale on its own;
/// - CERB: one MLP across channels, `C → C/8 → C`.
///
/// The output layer starts at zero, so the block starts as the identity.
#[derive(Module, Debug)]
pub struct Erb {
    /// Input weights: `[C, 10]` (IERB, one row per channel) or `[C, C/8]` (CERB).
    pub w1: Param<Tensor<2>>,
    /// Hidden biases: `[C, 10]` (IERB) or `[1, C/8]` (CERB).
    pub b1: Param<Tensor<2>>,
    /// Output weights, zero at the start: `[C, 10]` (IERB) or `[C/8, C]` (CERB).
    pub w2: Param<Tensor<2>>,
    /// Output biases, zero at the start: `[C]`.
    pub b2: Param<Tensor<1>>,
    /// Which block.
    #[module(skip)]
    pub kind: ErbKind,
}

/// Hidden units of an IERB.
pub const IERB_HIDDEN: usize = 10;

impl Erb {
    /// An ERB of `kind` for a scale of `channels` entries; the input layer is initialised as a
    /// PyTorch linear layer is (`U(±1/√fan_in)`).
    pub fn new(kind: ErbKind, channels: usize, device: &Device) -> Self {
        let (w1, b1, w2, fan_in) = match kind {
            ErbKind::Ierb => ([channels, IERB_HIDDEN], [channels, IERB_HIDDEN], [channels, IERB_HIDDEN], 1),
            ErbKind::Cerb => {
                let hidden = (channels / 8).max(1);
                ([channels, hidden], [1, hidden], [hidden, channels], channels)
            }
        };
        let bound = 1.0 / (fan_in as f64).sqrt();
        let uniform = |shape: [usize; 2]| Param::from_tensor(Tensor::random(shape, Distribution::Uniform(-bound, bound), device));
        Self {
            w1: uniform(w1),
            b1: uniform(b1),
            w2: Param::from_tensor(Tensor::zeros(w2, device)),
            b2: Param::from_tensor(Tensor::zeros([channels], device)),
            kind,
        }
    }

    /// `γ + ERB(γ)`.
    ///
    /// # Shapes
    /// - `gamma`: `[channels]`; output `[channels]`
    pub fn forward(&self, gamma: Tensor<1>) -> Tensor<1> {
        let c = gamma.dims()[0];
        let y: Tensor<2> = match self.kind {
            // Each channel's scalar through its own row: [C, 1] ⊙ [C, 10] → [C, 10] → [C, 1].
            ErbKind::Ierb => {
                let hidden = relu(gamma.clone().reshape([c, 1]).mul(self.w1.val()).add(self.b1.val()));
                hidden.mul(self.w2.val()).sum_dim(1)
            }
            // The vector through one MLP: [1, C] → [1, C/8] → [1, C].
            ErbKind::Cerb => relu(gamma.clone().reshape([1, c]).matmul(self.w1.val()).add(self.b1.val())).matmul(self.w2.val()),
        };
        gamma.add(y.reshape([c])).add(self.b2.val())
    }
}

impl Reparameterization for Erb {
    const NAME: &'static str = "erb";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        if D != 1 {
            return base;
        }
        let shape = base.shape();
        let n = shape.num_elements();
        self.forward(base.reshape([n])).reshape(shape)
    }
}

/// Attaches an ERB to the norm scales whose parameter ids are given.
struct AttachErb {
    kind: ErbKind,
    scales: Vec<ParamId>,
    device: Device,
}

impl Reparameterizer for AttachErb {
    type Reparam = Erb;

    fn reparameterize<const D: usize>(&mut self, _path: &str, param: Param<Tensor<D>>) -> (Param<Tensor<D>>, Option<Erb>) {
        if D != 1 || !self.scales.contains(&param.id) {
            return (param, None);
        }
        let channels = param.lazy_shape().num_elements();
        (param, Some(Erb::new(self.kind, channels, &self.device)))
    }
}

/// The scale `γ_raw` before the ERB (`base`) of every layer of `paths`.
pub fn raw_gammas<M: Net>(model: &M, paths: &[String]) -> Vec<(String, Vec<f32>)> {
    model
        .blocks()
        .into_iter()
        .filter(|(p, _)| paths.contains(p))
        .filter_map(|(p, b)| Some((p, tensor_values(b.bn.weight.as_ref()?.base()))))
        .collect()
}

/// The attacker's copy of `model` with `γ_raw = |γ| · target bits`, an ERB of `kind` on each
/// layer of `target`, and only `γ_raw`, β and the ERBs trainable.
///
/// # Errors
/// [`AttackError::Config`] when a passport layer has no affine norm (norm `none`).
pub fn substitute_setup<M: Net>(model: M, kind: ErbKind, target: &[LayerSignature], device: &Device) -> Result<M, AttackError> {
    let copy = attacker_copy(model).try_map_blocks(&mut |path, mut block| {
        let Some(layer) = target.iter().find(|l| l.path == path) else {
            return Ok(block);
        };
        let Some(weight) = block.bn.weight.take() else {
            return Err(AttackError::Config(format!(
                "layer `{path}` has no affine norm to substitute (norm = \"none\"); the ERB attack needs norm bn, gn or in"
            )));
        };
        let bits = Tensor::<1>::from_floats(layer.signature.as_f32().as_slice(), device);
        // A fresh leaf: the magnitudes as data, not as a result of the folded graph.
        let magnitude = Tensor::<1>::from_data(weight.val().into_data(), device).abs();
        block.bn.weight = Some(Param::from_tensor(Tensor::from_data(magnitude.mul(bits).into_data(), device)));
        Ok(block)
    })?;
    let paths: Vec<String> = target.iter().map(|l| l.path.clone()).collect();
    let affine = norm_affine_ids(&copy, &paths);
    let scales: Vec<ParamId> =
        copy.blocks().iter().filter(|(p, _)| paths.contains(p)).filter_map(|(_, b)| b.bn.weight.as_ref().map(|w| w.id)).collect();
    let copy = copy.apply_reparameterization(AttachErb { kind, scales, device: device.clone() });
    // γ_raw, β and every ERB parameter train; everything else is frozen.
    let mut trainable = affine;
    trainable.extend(erb_ids(&copy));
    Ok(train_only(copy, &trainable))
}

/// The ids of every ERB parameter of `model`.
fn erb_ids<M: Net>(model: &M) -> std::collections::HashSet<ParamId> {
    let mut ids = std::collections::HashSet::new();
    for (_, block) in model.blocks() {
        if let Some(erb) = block.bn.weight.as_ref().and_then(|w| w.reparameterization::<Erb>()) {
            ids.extend([erb.w1.id, erb.b1.id, erb.w2.id, erb.b2.id]);
        }
    }
    ids
}

/// The objective of the substitution attack: cross entropy, plus the sign loss holding each
/// `γ_raw` on the forger's target.
struct SubstituteObjective {
    ce: PassportObjective,
    target: Vec<(String, Tensor<1>)>,
    alpha: f64,
}

impl<M: Net> Objective<M> for SubstituteObjective {
    fn step(&self, model: &M, images: Tensor<4>, labels: Tensor<1, Int>) -> StepOutput {
        let mut out = self.ce.step(model, images, labels);
        for (path, block) in model.blocks() {
            if let (Some((_, bits)), Some(weight)) = (self.target.iter().find(|(p, _)| *p == path), block.bn.weight.as_ref()) {
                out.loss = out.loss.add(ipr_passport::sign_loss(weight.base(), bits.clone(), self.alpha));
            }
        }
        out
    }
}

/// Bit dissimilarity of the forger's claim after one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubstituteProbe {
    /// Fraction of the owner's signature bits that the signs of `γ_raw` disagree with.
    pub dissimilarity: f64,
    /// Fraction of the owner's bits that the effective scale `γ_raw + ERB(γ_raw)` carries.
    pub effective_detection: f64,
}

/// Runs the substitution attack on `model` (the owner's model, on the autodiff `run.device`) with
/// the forger's `target` signature, into `run.dir`. `run.data` is the attacker's share of the
/// training data (the paper uses at most 10%).
///
/// # Errors
/// Those of [`substitute_setup`] and of the training loop.
pub fn substitute<M: Net>(
    model: M,
    kind: ErbKind,
    owner: &[LayerSignature],
    target: &[LayerSignature],
    run: &Run<'_>,
) -> Result<TrainOutcome<M, SubstituteProbe>, AttackError> {
    let (config, device) = (run.config, run.device);
    let copy = substitute_setup(model, kind, target, device)?;
    let objective = SubstituteObjective {
        ce: PassportObjective::new(&[], 0.0, device),
        target: target.iter().map(|l| (l.path.clone(), Tensor::from_floats(l.signature.as_f32().as_slice(), device))).collect(),
        alpha: config.sign_loss,
    };
    let paths: Vec<String> = owner.iter().map(|l| l.path.clone()).collect();
    let mut probe = |m: &M| SubstituteProbe {
        dissimilarity: dissimilarity(&raw_gammas(m, &paths), owner),
        effective_detection: ipr_verify::check_signatures(m, owner).agreement,
    };
    Ok(train_probed(copy, &objective, &[], run, &mut probe)?)
}
