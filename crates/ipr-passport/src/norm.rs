//! The normalisation of a conv block: batch, group or instance norm, or none, with its affine
//! scale and shift supplied either by its own parameters or by the caller (a passport layer).

use burn::module::{Flag, Param, RunningState};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

const EPSILON: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// Which normalisation a conv block uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// Batch norm with running statistics.
    #[default]
    Bn,
    /// Group norm with `max(1, C/16)` groups.
    Gn,
    /// Instance norm (one group per channel).
    In,
    /// No normalisation.
    None,
}

impl NormKind {
    /// Number of groups the statistics are taken over for group and instance norm.
    fn groups(self, channels: usize) -> usize {
        match self {
            NormKind::Gn => (channels / 16).max(1),
            _ => channels,
        }
    }
}

/// A normalisation layer. Its state-dict paths mirror PyTorch's (`weight`, `bias`,
/// `running_mean`, `running_var`).
///
/// The running variance is kept unbiased, as PyTorch keeps it, so checkpoints of the reference
/// implementation load with the same meaning.
#[derive(Module, Debug)]
pub struct Norm {
    /// Learnable affine scale, when the norm is affine.
    pub weight: Option<Param<Tensor<1>>>,
    /// Learnable affine shift, when the norm is affine.
    pub bias: Option<Param<Tensor<1>>>,
    /// Running mean (batch norm only).
    pub running_mean: Option<RunningState<Tensor<1>>>,
    /// Running unbiased variance (batch norm only).
    pub running_var: Option<RunningState<Tensor<1>>>,
    /// Whether batch statistics are used and running statistics updated on an autodiff device.
    pub training: Param<Flag>,
    /// The normalisation kind.
    #[module(skip)]
    pub kind: NormKind,
}

impl Norm {
    /// A norm over `channels` channels; `affine` adds a learnable scale (init 1) and shift (init 0).
    pub fn new(kind: NormKind, channels: usize, affine: bool, device: &Device) -> Self {
        let bn = kind == NormKind::Bn;
        Self {
            weight: affine.then(|| Param::from_tensor(Tensor::ones([channels], device))),
            bias: affine.then(|| Param::from_tensor(Tensor::zeros([channels], device))),
            running_mean: bn.then(|| RunningState::new(Tensor::zeros([channels], device))),
            running_var: bn.then(|| RunningState::new(Tensor::ones([channels], device))),
            training: Param::from_bool(true),
            kind,
        }
    }

    /// The affine a path applies: `affine` when given (a passport layer's γ, β), else the norm's
    /// own parameters, else none.
    fn affine(&self, affine: Option<(Tensor<1>, Tensor<1>)>) -> Option<(Tensor<1>, Tensor<1>)> {
        affine.or_else(|| match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => Some((w.val(), b.val())),
            _ => None,
        })
    }

    /// Whether the norm uses batch statistics (and updates its running ones) on `device`.
    fn on_batch(&self, device: &Device) -> bool {
        device.is_autodiff() && self.training.is_enabled()
    }

    /// Normalises `x` and applies the affine map: `affine` when given (a passport layer's γ, β),
    /// else the norm's own parameters, else none.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`
    /// - `affine`: `([channels], [channels])`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>, affine: Option<(Tensor<1>, Tensor<1>)>) -> Tensor<4> {
        let affine = self.affine(affine);
        match self.kind {
            NormKind::Bn => self.batch_norm(x, affine),
            NormKind::Gn | NormKind::In => {
                let [n, c, h, w] = x.dims();
                let groups = self.kind.groups(c);
                let grouped = x.reshape([n, groups, (c / groups) * h * w]);
                let (var, mean) = grouped.clone().var_mean_bias(2);
                let normed = grouped
                    .sub(mean)
                    .div(var.add_scalar(EPSILON).sqrt())
                    .reshape([n, c, h, w]);
                apply_affine(normed, affine)
            }
            NormKind::None => apply_affine(x, affine),
        }
    }

    /// `ReLU(norm(x))` of a batch made of equal segments, segment `i` through the norm and
    /// affine of `segments[i]` (see [`Norm::forward`]): what a conv block does after its conv.
    /// Batch norms run as one fused kernel (`ipr_conv::batch_norm_relu`, each segment on its own
    /// batch statistics, updating its norm's running ones) in training, and a single batch norm
    /// on its running statistics in inference; other norms as [`Norm::forward`] then ReLU.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`, `batch` a multiple of `segments.len()`
    /// - output: `[batch, channels, height, width]`
    pub fn forward_relu(segments: &[(&Norm, Option<(Tensor<1>, Tensor<1>)>)], x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let device = x.device();
        let k = segments.len();
        let bn = segments.iter().all(|(norm, _)| norm.kind == NormKind::Bn);
        let scale_shift = |(norm, affine): &(&Norm, Option<(Tensor<1>, Tensor<1>)>)| {
            norm.affine(affine.clone()).unwrap_or_else(|| (Tensor::ones([c], &device), Tensor::zeros([c], &device)))
        };
        if bn && segments.iter().all(|(norm, _)| norm.on_batch(&device)) {
            let (gammas, betas) = segments.iter().map(scale_shift).unzip();
            let out = ipr_conv::batch_norm_relu(x, Tensor::cat(gammas, 0), Tensor::cat(betas, 0), k, EPSILON);
            for (i, (norm, _)) in segments.iter().enumerate() {
                let part = |t: &Tensor<1>| t.clone().narrow(0, i * c, c);
                norm.update_running(part(&out.mean), part(&out.variance), n / k * h * w);
            }
            return out.output;
        }
        if let [segment @ (norm, _)] = segments
            && bn
            && !norm.on_batch(&device)
        {
            let (gamma, beta) = scale_shift(segment);
            let (mean, var) = norm.running();
            return ipr_conv::batch_norm_relu_eval(x, gamma, beta, mean.to_device(&device), var.to_device(&device), EPSILON);
        }
        let per = n / k;
        let parts = segments.iter().enumerate().map(|(i, (norm, affine))| norm.forward(x.clone().narrow(0, i * per, per), affine.clone()));
        relu(Tensor::cat(parts.collect(), 0))
    }

    /// The running mean and variance of a batch norm.
    fn running(&self) -> (Tensor<1>, Tensor<1>) {
        let (Some(running_mean), Some(running_var)) = (&self.running_mean, &self.running_var) else {
            unreachable!("a batch norm is always built with running statistics")
        };
        (running_mean.value(), running_var.value())
    }

    /// Moves the running statistics towards a batch's `mean` and biased `variance` over `count`
    /// values a channel (the variance kept unbiased).
    fn update_running(&self, mean: Tensor<1>, variance: Tensor<1>, count: usize) {
        let (Some(running_mean), Some(running_var)) = (&self.running_mean, &self.running_var) else {
            unreachable!("a batch norm is always built with running statistics")
        };
        let device = mean.device();
        let count = count as f64;
        let unbiased = variance.detach().mul_scalar(count / (count - 1.0).max(1.0));
        let mean = running_mean.value_sync().to_device(&device).mul_scalar(1.0 - MOMENTUM).add(mean.detach().mul_scalar(MOMENTUM));
        let var = running_var.value_sync().to_device(&device).mul_scalar(1.0 - MOMENTUM).add(unbiased.mul_scalar(MOMENTUM));
        running_mean.update(mean.detach());
        running_var.update(var.detach());
    }

    fn batch_norm(&self, x: Tensor<4>, affine: Option<(Tensor<1>, Tensor<1>)>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let device = x.device();
        let (gamma, beta) =
            affine.unwrap_or_else(|| (Tensor::ones([c], &device), Tensor::zeros([c], &device)));
        if self.on_batch(&device) {
            let out = burn::tensor::module::batch_norm_train(x, gamma, beta, EPSILON);
            self.update_running(out.mean, out.variance, n * h * w);
            out.output
        } else {
            let (mean, var) = self.running();
            burn::tensor::module::batch_norm(x, gamma, beta, mean.to_device(&device), var.to_device(&device), EPSILON)
        }
    }
}

fn apply_affine(x: Tensor<4>, affine: Option<(Tensor<1>, Tensor<1>)>) -> Tensor<4> {
    match affine {
        Some((gamma, beta)) => {
            let c = gamma.dims()[0];
            x.mul(gamma.reshape([1, c, 1, 1])).add(beta.reshape([1, c, 1, 1]))
        }
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn batch_norm_trains_on_batch_statistics_and_keeps_unbiased_running_variance() {
        let device = Device::flex().autodiff();
        let norm = Norm::new(NormKind::Bn, 2, false, &device);
        // Channel 0 holds 1, 2, 3, 4; channel 1 holds 10 everywhere.
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0]], [[10.0, 10.0]]], [[[3.0, 4.0]], [[10.0, 10.0]]]], &device);
        let y = values(norm.forward(x, None));
        let ch0: Vec<f32> = [0, 1, 4, 5].iter().map(|&i| y[i]).collect();
        let mean: f32 = ch0.iter().sum::<f32>() / 4.0;
        let var: f32 = ch0.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "{ch0:?}");
        // Running stats: 0.9·init + 0.1·batch, the variance unbiased (5/3 for 1..4).
        let rm = values(norm.running_mean.as_ref().unwrap().value_sync());
        let rv = values(norm.running_var.as_ref().unwrap().value_sync());
        assert!((rm[0] - 0.25).abs() < 1e-5 && (rm[1] - 1.0).abs() < 1e-5, "{rm:?}");
        assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-5 && (rv[1] - 0.9).abs() < 1e-5, "{rv:?}");
    }

    #[test]
    fn group_norm_normalises_each_group_of_each_sample() {
        let device = Device::flex();
        let norm = Norm::new(NormKind::Gn, 32, true, &device); // 2 groups of 16 channels
        let x = Tensor::<4>::random([2, 32, 3, 3], burn::tensor::Distribution::Normal(5.0, 3.0), &device);
        let y = values(norm.forward(x, None));
        for group in y.chunks(16 * 9) {
            let mean: f32 = group.iter().sum::<f32>() / group.len() as f32;
            let var: f32 = group.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / group.len() as f32;
            assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-2, "mean {mean} var {var}");
        }
    }
}
