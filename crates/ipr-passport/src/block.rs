//! The conv block every architecture is built from: conv → norm → affine → ReLU, where the
//! affine scale γ and shift β are either learnt parameters (a normal block) or computed from
//! the block's passports through its own conv weights (a passport layer, scheme V1).
//!
//! For a passport layer, with scale passport `P_γ` (`skey`) and bias passport `P_β` (`key`):
//! `γ = mean_{n,h,w} conv(P_γ; W)`, `β = mean_{n,h,w} conv(P_β; W)`,
//! `out = ReLU(γ ⊙ norm(conv(x; W)) + β)`.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;

use crate::{Norm, NormKind, PassportError};

/// Configuration of a [`ConvBlock`].
#[derive(Config, Debug)]
pub struct ConvBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (and signature bits, for a passport layer).
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on every side.
    #[config(default = 0)]
    pub padding: usize,
    /// Normalisation.
    #[config(default = "NormKind::Bn")]
    pub norm: NormKind,
    /// `Some([h, w])`: a passport layer whose input is `h × w`; its passports start as
    /// `U(-1, 1)` tensors of shape `[1, in_channels, h, w]`. `None`: a normal block.
    #[config(default = "None")]
    pub passport: Option<[usize; 2]>,
}

impl ConvBlockConfig {
    /// Builds the block. The conv uses Kaiming-normal init (fan out, ReLU gain); it has a bias only
    /// in a normal block without normalisation.
    pub fn init(&self, device: &Device) -> ConvBlock {
        let passport = self.passport.is_some();
        let conv = Conv2dConfig::new([self.in_channels, self.out_channels], [self.kernel; 2])
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(
                self.padding,
                self.padding,
                self.padding,
                self.padding,
            ))
            .with_bias(!passport && self.norm == NormKind::None)
            .with_initializer(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: true,
            })
            .init(device);
        let affine = !passport && self.norm != NormKind::None;
        let random_passport = |[h, w]: [usize; 2]| {
            let t = Tensor::random([1, self.in_channels, h, w], Distribution::Uniform(-1.0, 1.0), device);
            Param::from_tensor(t).set_require_grad(false)
        };
        ConvBlock {
            conv,
            bn: Norm::new(self.norm, self.out_channels, affine, device),
            key: self.passport.map(random_passport),
            skey: self.passport.map(random_passport),
        }
    }
}

/// A conv block: `ReLU(affine(norm(conv(x))))`.
///
/// State-dict paths mirror the reference implementation: `conv.weight`, `bn.weight`,
/// `bn.running_mean`, and for a passport layer `key` (the bias passport `P_β`) and `skey` (the
/// scale passport `P_γ`). Passports are saved with the model and never trained.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// The normalisation (non-affine in a passport layer).
    pub bn: Norm,
    /// Bias passport `P_β`, `[n, in_channels, h, w]`.
    pub key: Option<Param<Tensor<4>>>,
    /// Scale passport `P_γ`, `[n, in_channels, h, w]`.
    pub skey: Option<Param<Tensor<4>>>,
}

/// What a block's forward returns.
#[derive(Debug, Clone)]
pub struct BlockOutput {
    /// The activation, `[batch, out_channels, h', w']`.
    pub out: Tensor<4>,
    /// The passport-derived scale γ, `[out_channels]`, for a passport layer.
    pub gamma: Option<Tensor<1>>,
}

impl ConvBlock {
    /// Whether this block is a passport layer.
    pub fn is_passport(&self) -> bool {
        self.skey.is_some()
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.conv.weight.dims()[1]
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.dims()[0]
    }

    /// `mean_{n,h,w} conv(passport; W)`: the per-channel value a passport yields.
    ///
    /// # Shapes
    /// - `passport`: `[n, in_channels, h, w]`
    /// - output: `[out_channels]`
    pub fn passport_affine(&self, passport: Tensor<4>) -> Tensor<1> {
        let c = self.out_channels();
        self.conv.forward(passport).mean_dims(&[0, 2, 3]).reshape([c])
    }

    /// The passport-derived `(γ, β)`, for a passport layer.
    pub fn passport_gamma_beta(&self) -> Option<(Tensor<1>, Tensor<1>)> {
        match (&self.skey, &self.key) {
            (Some(skey), Some(key)) => {
                Some((self.passport_affine(skey.val()), self.passport_affine(key.val())))
            }
            _ => None,
        }
    }

    /// The scale this block applies: passport-derived for a passport layer, else the norm's own.
    pub fn gamma(&self) -> Option<Tensor<1>> {
        match self.passport_gamma_beta() {
            Some((gamma, _)) => Some(gamma),
            None => self.bn.weight.as_ref().map(|w| w.val()),
        }
    }

    /// Applies the block.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output `out`: `[batch, out_channels, h', w']`; `gamma`: `[out_channels]`
    pub fn forward(&self, x: Tensor<4>) -> BlockOutput {
        let y = self.conv.forward(x); // [batch, out_channels, h', w']
        let affine = self.passport_gamma_beta();
        let gamma = affine.as_ref().map(|(g, _)| g.clone());
        BlockOutput { out: relu(self.bn.forward(y, affine)), gamma }
    }

    /// Replaces the passports (`key` = `P_β`, `skey` = `P_γ`), e.g. with ones sampled from a
    /// pretrained model, or with forged ones.
    ///
    /// # Errors
    /// [`PassportError::Shape`] when a passport is not `[n, in_channels, h, w]`.
    pub fn with_passports(
        mut self,
        layer: &str,
        key: Tensor<4>,
        skey: Tensor<4>,
    ) -> Result<Self, PassportError> {
        for p in [&key, &skey] {
            if p.dims()[1] != self.in_channels() {
                return Err(PassportError::Shape {
                    layer: layer.into(),
                    got: p.dims().to_vec(),
                    channels: self.in_channels(),
                });
            }
        }
        self.key = Some(Param::from_tensor(key).set_require_grad(false));
        self.skey = Some(Param::from_tensor(skey).set_require_grad(false));
        Ok(self)
    }

    /// Folds a passport layer into a normal block: the norm becomes affine with `γ, β` set to the
    /// passport-derived values, and the passports are dropped. A normal block is returned as is.
    ///
    /// The folded block computes the same function, with no passport work per batch: it is how a
    /// passport model is evaluated, fine-tuned, or handed to an attacker who lacks the passports.
    pub fn fold(self) -> Self {
        let Some((gamma, beta)) = self.passport_gamma_beta() else {
            return self;
        };
        let mut bn = self.bn;
        bn.weight = Some(Param::from_tensor(gamma.detach()));
        bn.bias = Some(Param::from_tensor(beta.detach()));
        Self { conv: self.conv, bn, key: None, skey: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// γ/β must equal the mean of a convolution computed here by plain loops.
    #[test]
    fn gamma_beta_equal_mean_of_conv_computed_independently() {
        let device = Device::flex();
        device.seed(11);
        let (cin, cout, k, s, p, h, w) = (3, 5, 3, 2, 1, 7, 6);
        let block = ConvBlockConfig::new(cin, cout, k)
            .with_stride(s)
            .with_padding(p)
            .with_passport(Some([h, w]))
            .init(&device);
        let weight = block.conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let (gamma, beta) = block.passport_gamma_beta().unwrap();
        for (passport, got) in [(&block.skey, values(gamma)), (&block.key, values(beta))] {
            let pass = passport.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            for (o, &g) in got.iter().enumerate() {
                let mut total = 0.0f64;
                for i in 0..ho {
                    for j in 0..wo {
                        for c in 0..cin {
                            for u in 0..k {
                                for v in 0..k {
                                    let (y, x) = ((i * s + u) as isize - p as isize, (j * s + v) as isize - p as isize);
                                    if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                                        continue;
                                    }
                                    let pv = pass[(c * h + y as usize) * w + x as usize];
                                    let wv = weight[((o * cin + c) * k + u) * k + v];
                                    total += f64::from(pv) * f64::from(wv);
                                }
                            }
                        }
                    }
                }
                let mean = total / (ho * wo) as f64;
                assert!((f64::from(g) - mean).abs() < 1e-4, "channel {o}: {g} vs {mean}");
            }
        }
    }

    #[test]
    fn folded_block_computes_the_same_function() {
        let device = Device::flex();
        device.seed(3);
        for norm in [NormKind::Bn, NormKind::Gn, NormKind::In, NormKind::None] {
            let block = ConvBlockConfig::new(4, 32, 3)
                .with_padding(1)
                .with_norm(norm)
                .with_passport(Some([6, 6]))
                .init(&device);
            let x = Tensor::<4>::random([2, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
            let before = block.forward(x.clone());
            let folded = block.clone().fold();
            assert!(!folded.is_passport());
            let after = folded.forward(x);
            assert!(after.gamma.is_none());
            before.out.into_data().assert_approx_eq::<f32>(&after.out.into_data(), Default::default());
        }
    }

    #[test]
    fn passports_are_not_trained() {
        let device = Device::flex().autodiff();
        let block = ConvBlockConfig::new(2, 16, 3).with_padding(1).with_passport(Some([4, 4])).init(&device);
        let out = block.forward(Tensor::ones([1, 2, 4, 4], &device));
        let grads = out.out.sum().backward();
        assert!(block.skey.as_ref().unwrap().val().grad(&grads).is_none());
        assert!(block.conv.weight.val().grad(&grads).is_some());
    }

    #[test]
    fn wrong_passport_shape_is_an_error() {
        let device = Device::flex();
        let block = ConvBlockConfig::new(2, 16, 3).with_passport(Some([4, 4])).init(&device);
        let bad = Tensor::zeros([1, 3, 4, 4], &device);
        let err = block.with_passports("layer4.0.shortcut", bad.clone(), bad).unwrap_err();
        assert!(err.to_string().contains("layer4.0.shortcut"));
    }
}
