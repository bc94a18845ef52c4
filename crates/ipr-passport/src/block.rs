//! The conv block every architecture is built from: conv → norm → affine → ReLU, where the
//! affine scale γ and shift β are either learnt parameters (a normal block) or computed from
//! the block's passports through its own conv weights (a passport layer).
//!
//! For a passport layer, with scale passport `P_γ` (`skey`) and bias passport `P_β` (`key`):
//! `γ = mean_{n,h,w} conv(P_γ; W)`, `β = mean_{n,h,w} conv(P_β; W)`,
//! `out = ReLU(γ ⊙ norm(conv(x; W)) + β)`.
//!
//! The same type serves both passport schemes:
//! - **public passports (V1)**: one path, the passport-derived one;
//! - **private passports (V2/V3)**: a *public* path with learnt γ_pub/β_pub (the norm's own
//!   affine parameters, init 1 and 0) and a *private* path whose γ/β come from the passports.
//!   Each path keeps its own normalisation statistics (`bn` for the public path, `private_bn`
//!   for the private one, as Passport-aware Normalization does), so neither path is evaluated
//!   with statistics of the other. The public path alone is an ordinary conv block: dropping the
//!   passports and `private_bn` leaves the model a licensee runs.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;

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
    /// With `passport`: a private passport layer (V2/V3) with a public path beside the
    /// passport path. Ignored for a normal block.
    #[config(default = false)]
    pub private: bool,
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
        let private = passport && self.private;
        // The public path of a private layer is a normal block's affine norm.
        let affine = (!passport && self.norm != NormKind::None) || private;
        let random_passport = |[h, w]: [usize; 2]| {
            let t = Tensor::random([1, self.in_channels, h, w], Distribution::Uniform(-1.0, 1.0), device);
            Param::from_tensor(t).set_require_grad(false)
        };
        ConvBlock {
            conv,
            bn: Norm::new(self.norm, self.out_channels, affine, device),
            key: self.passport.map(random_passport),
            skey: self.passport.map(random_passport),
            private_bn: private.then(|| Norm::new(self.norm, self.out_channels, false, device)),
        }
    }
}

/// Which path of a private passport layer a forward pass takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Route {
    /// The path that needs no secret: γ_pub/β_pub of a private layer. A public-passport (V1)
    /// layer and a normal block have only this path.
    #[default]
    Public,
    /// The passport path of a private layer (the same as `Public` for every other block).
    Private,
    /// Both at once: the batch holds the public path's activations in its first half and the
    /// private path's in its second, each half normalised with its own statistics, so one
    /// forward computes both paths and a shared prefix feeds them.
    Both,
}

/// A conv block: `ReLU(affine(norm(conv(x))))`.
///
/// State-dict paths mirror the reference implementation: `conv.weight`, `bn.weight`,
/// `bn.running_mean`, and for a passport layer `key` (the bias passport `P_β`) and `skey` (the
/// scale passport `P_γ`). Passports are saved with the owner's model and never trained. A
/// private layer (V2/V3) adds `private_bn`, the private path's normalisation statistics; its
/// `bn` then holds γ_pub/β_pub and the public path's statistics.
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
    /// Normalisation statistics of the private path (private passport layers only).
    pub private_bn: Option<Norm>,
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
        ipr_conv::forward(&self.conv, passport).mean_dims(&[0, 2, 3]).reshape([c])
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

    /// Whether this block is a private passport layer (V2/V3): a public path beside the
    /// passport path.
    pub fn is_private(&self) -> bool {
        self.private_bn.is_some()
    }

    /// The norm and the caller-supplied affine (passport γ/β, else the norm's own) of a path.
    fn path(&self, route: Route, passport: &Option<(Tensor<1>, Tensor<1>)>) -> (&Norm, Option<(Tensor<1>, Tensor<1>)>) {
        match (&self.private_bn, route) {
            (Some(private), Route::Private) => (private, passport.clone()),
            (Some(_), _) => (&self.bn, None),
            (None, _) => (&self.bn, passport.clone()),
        }
    }

    /// Applies the block's public path (the only path of a normal or V1 block).
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output `out`: `[batch, out_channels, h', w']`; `gamma`: `[out_channels]`
    pub fn forward(&self, x: Tensor<4>) -> BlockOutput {
        self.forward_route(x, Route::Public)
    }

    /// Applies the block along `route`. `gamma` is the passport-derived γ whenever the passport
    /// path ran (always for V1, for `Private` and `Both` in a private layer).
    ///
    /// With [`Route::Both`], `x` holds `2·b` images: the public path's `b` then the private
    /// path's `b`. The conv runs once over both halves; each half is normalised with its own
    /// path's norm and batch statistics (batch norm), exactly as two separate passes would.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output `out`: `[batch, out_channels, h', w']`; `gamma`: `[out_channels]`
    pub fn forward_route(&self, x: Tensor<4>, route: Route) -> BlockOutput {
        let y = ipr_conv::forward(&self.conv, x); // [batch, out_channels, h', w']
        // A private layer's public path needs no passport work.
        let passport = if self.is_private() && route == Route::Public { None } else { self.passport_gamma_beta() };
        let gamma = passport.as_ref().map(|(g, _)| g.clone());
        // Batch statistics and a private layer's two affines both differ between halves.
        let split = route == Route::Both && (self.is_private() || self.bn.kind == NormKind::Bn);
        let out = if split {
            Norm::forward_relu(&[self.path(Route::Public, &passport), self.path(Route::Private, &passport)], y)
        } else {
            Norm::forward_relu(&[self.path(route, &passport)], y)
        };
        BlockOutput { out, gamma }
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

    /// Folds a passport layer into a normal block computing its public path (see
    /// [`ConvBlock::fold_route`]).
    pub fn fold(self) -> Self {
        self.fold_route(Route::Public)
    }

    /// Folds a passport layer into a normal block that computes the function of `route`, with
    /// no passport work per batch and no passport tensor left: a V1 layer's norm becomes affine
    /// with the passport-derived γ/β; a private layer keeps the public norm (`Public`) or takes
    /// the private statistics with the passport-derived γ/β (`Private`). A normal block is
    /// returned as is.
    ///
    /// The result has the structure of a block of a model built without passports (for norm
    /// `none`, γ and β are folded into the conv weight and bias), so its record loads into the
    /// normal model of the same architecture. It is how a passport model is evaluated,
    /// published, fine-tuned, or handed to an attacker who lacks the passports.
    pub fn fold_route(self, route: Route) -> Self {
        let Some((gamma, beta)) = self.passport_gamma_beta() else {
            return self;
        };
        let (norm, affine) = match (self.private_bn, route) {
            (Some(private), Route::Private | Route::Both) => (private, Some((gamma, beta))),
            (Some(_), Route::Public) => (self.bn, None),
            (None, _) => (self.bn, Some((gamma, beta))),
        };
        into_normal(self.conv, norm, affine)
    }
}

/// A normal block from a conv, a norm and the affine to give it (`None`: keep the norm's own).
fn into_normal(mut conv: Conv2d, mut norm: Norm, affine: Option<(Tensor<1>, Tensor<1>)>) -> ConvBlock {
    let affine = affine.or_else(|| match (norm.weight.take(), norm.bias.take()) {
        (Some(w), Some(b)) => Some((w.val(), b.val())),
        _ => None,
    });
    if let Some((gamma, beta)) = affine {
        let (gamma, beta) = (gamma.detach(), beta.detach());
        if norm.kind == NormKind::None {
            // A normal block without norm has a conv bias and no affine: fold γ/β into the conv.
            let c = gamma.dims()[0];
            let weight = conv.weight.val().mul(gamma.clone().reshape([c, 1, 1, 1]));
            let bias = match &conv.bias {
                Some(b) => b.val().mul(gamma).add(beta),
                None => beta,
            };
            conv.weight = Param::from_tensor(weight);
            conv.bias = Some(Param::from_tensor(bias));
        } else {
            norm.weight = Some(Param::from_tensor(gamma));
            norm.bias = Some(Param::from_tensor(beta));
        }
    }
    ConvBlock { conv, bn: norm, key: None, skey: None, private_bn: None }
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
