//! Evaluation: accuracy on a split, and signature detection per passport layer.

use burn::prelude::*;
use ipr_data::{DataError, Loader};
use ipr_models::Net;
use ipr_passport::Route;
pub use ipr_verify::correct_count;
use serde::{Deserialize, Serialize};

use crate::objective::cross_entropy;

/// Loss and accuracy over a whole split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Mean cross entropy.
    pub loss: f64,
    /// Fraction of images classified correctly.
    pub accuracy: f64,
    /// Images evaluated.
    pub count: usize,
}

/// Evaluates `model` (already in evaluation form: `valid()`, passports folded) on every batch of
/// `loader`, for its epoch 0.
///
/// # Errors
/// A batch that could not be read.
pub fn evaluate<M: Net>(model: &M, loader: &Loader, device: &Device) -> Result<EvalResult, DataError> {
    let (mut loss, mut correct, mut count) = (0.0f64, 0usize, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let n = batch.labels.len();
        let (images, labels) = batch.to_tensors(device);
        let logits = model.forward(images).logits;
        correct += correct_count(logits.clone(), labels.clone());
        loss += scalar(cross_entropy(logits, labels)) * n as f64;
        count += n;
    }
    let count_f = count.max(1) as f64;
    Ok(EvalResult { loss: loss / count_f, accuracy: correct as f64 / count_f, count })
}

/// The model as it is evaluated along `route`: no autodiff, batch norm on running statistics,
/// and every passport layer folded so γ/β are computed once rather than per batch.
pub fn eval_form<M: Net>(model: &M, route: Route) -> M {
    model.valid().fold_route(route)
}

/// The value of a one-element tensor.
pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f32>().try_to_vec::<f32>().map_or(f64::NAN, |v| f64::from(v[0]))
}
