//! What one training step minimises: the scheme hook of the one training loop.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use ipr_models::{LayerSignature, Net};
use ipr_passport::{Route, sign_loss};

/// The loss of one step and the logits it was computed from.
pub struct StepOutput {
    /// Scalar loss, `[1]`.
    pub loss: Tensor<1>,
    /// `[batch, classes]`, for the training accuracy.
    pub logits: Tensor<2>,
}

/// A training objective: schemes and attacks plug into the one training loop through it.
pub trait Objective<M: Net> {
    /// The loss of a batch.
    ///
    /// # Shapes
    /// - `images`: `[batch, c, h, w]`; `labels`: `[batch]`
    fn step(&self, model: &M, images: Tensor<4>, labels: Tensor<1, Int>) -> StepOutput;
}

/// Mean cross entropy of `logits` against class `labels`.
///
/// # Shapes
/// - `logits`: `[batch, classes]`; `labels`: `[batch]`; output `[1]`
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let n = labels.dims()[0];
    let logp = log_softmax(logits, 1);
    logp.gather(1, labels.reshape([n, 1])).mean().neg()
}

/// Every scheme's objective: `CE + Σ_layers L_s(γ_l, b_l)` for V0 (no sign loss, no passports)
/// and V1, and `CE(public) + CE(private) + Σ_layers L_s(γ_l, b_l)` for a model with private
/// passport layers (V2, and V3, whose batches carry trigger images).
///
/// The forward takes [`Route::Both`]: for a private model the layers before the first private
/// layer run once and feed both paths, and one backward covers both losses; for any other model
/// it is the ordinary forward.
pub struct PassportObjective {
    /// `(path, ±1 bits)` per passport layer.
    bits: Vec<(String, Tensor<1>)>,
    alpha: f64,
    route: Route,
}

impl PassportObjective {
    /// The objective for these signatures, on `device`, with sign-loss weight `alpha`.
    pub fn new(signatures: &[LayerSignature], alpha: f64, device: &Device) -> Self {
        let bits = signatures
            .iter()
            .map(|l| (l.path.clone(), Tensor::from_floats(l.signature.as_f32().as_slice(), device)))
            .collect();
        Self { bits, alpha, route: Route::Both }
    }

    /// The same objective along one path only (e.g. [`Route::Private`] when nothing the public
    /// path depends on is trained).
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }
}

impl<M: Net> Objective<M> for PassportObjective {
    fn step(&self, model: &M, images: Tensor<4>, labels: Tensor<1, Int>) -> StepOutput {
        let out = model.forward_route(images, self.route, &mut |_, _| {});
        let mut loss = cross_entropy(out.logits.clone(), labels.clone());
        if let Some(private) = out.private_logits {
            loss = loss.add(cross_entropy(private, labels));
        }
        if self.alpha > 0.0 {
            for (path, gamma) in out.gammas {
                if let Some((_, bits)) = self.bits.iter().find(|(p, _)| *p == path) {
                    loss = loss.add(sign_loss(gamma, bits.clone(), self.alpha));
                }
            }
        }
        StepOutput { loss, logits: out.logits }
    }
}
