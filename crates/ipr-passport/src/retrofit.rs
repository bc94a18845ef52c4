//! Retrofitting passports into a trained block, so that the passport layer starts out computing
//! exactly what the trained block computed.
//!
//! A passport's scale is linear in the passport: `γ_o = Σ_{c,u,v} W[o,c,u,v] · m[c,u,v](P)`, where
//! `m(P)` is the mean of the passport's windows under each kernel tap. Passports are
//! `n·c·h·w` numbers and a layer has at most a few hundred channels, so passports whose γ and
//! β equal the trained block's affine exist (the system is under-determined except for thin 1×1
//! layers, where the least-squares passport is taken). [`ConvBlock::retrofit`] moves a starting
//! passport (sampled activations, or noise) by the smallest change that reaches the trained
//! affine.
//!
//! The signature then asks for signs. Batch norm, instance norm and no norm are unchanged when a
//! channel's conv filter and scale are negated together (the normalised activation changes sign
//! with the filter): [`ConvBlock::align_signs`] negates the filter of every channel whose γ has the
//! wrong sign, which negates that γ through the passport, and solves `P_β` again so that β stays.
//! The scale passport `P_γ` is not touched by that step, which is what lets a bound signature,
//! the hash of `P_γ`, be drawn between the two steps. The running means of a negated channel are
//! negated too, so the block's function is the trained block's, in training and evaluation mode.
//! Group norm mixes channels in its statistics: there the negation is not exact, and the
//! fine-tune after the retrofit repairs it.

use burn::module::{Param, RunningState};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use crate::{ConvBlock, Norm, NormKind, PassportError};

/// How the passports of a retrofitted layer reproduce the trained block's affine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrofitFit {
    /// Largest `|γ − γ_trained|` over the channels, relative to the largest `|γ_trained|`.
    pub scale_error: f64,
    /// Largest `|β − β_trained|`, relative to the largest `|β_trained|` (or absolute when β is 0).
    pub shift_error: f64,
    /// `‖P_γ − P_γ,start‖ / ‖P_γ,start‖`: how far the solve moved the scale passport from its
    /// start (sampled activations, or noise).
    pub scale_passport_change: f64,
    /// The same for the bias passport `P_β`.
    pub shift_passport_change: f64,
}

/// Row-major values of a tensor.
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap_or_default()
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// A copy of `t` outside any autodiff graph (a detached parameter keeps requiring gradients, and
/// burn refuses to make a parameter of what was computed from it).
fn detached<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    signed_rows(t, &[])
}

/// A copy of `t` outside any autodiff graph, with row `i` (along the first axis) times
/// `signs[i]` (no rows changed when `signs` is empty).
fn signed_rows<const D: usize>(t: Tensor<D>, signs: &[f32]) -> Tensor<D> {
    let (device, shape) = (t.device(), t.dims());
    let mut v = values(t);
    if !signs.is_empty() {
        let row = (v.len() / signs.len()).max(1);
        for (chunk, s) in v.chunks_mut(row).zip(signs) {
            chunk.iter_mut().for_each(|x| *x *= s);
        }
    }
    tensor(v, shape, &device)
}

/// The geometry of a convolution seen from one passport channel: for every kernel tap, the
/// pixels its windows read.
struct Windows {
    /// `taps[u·kw + v]`: the pixel indices (`y·w + x`) that tap `(u, v)` reads, one per window
    /// inside the image (padding reads zeros).
    taps: Vec<Vec<usize>>,
    /// Output positions per image.
    positions: usize,
}

impl Windows {
    fn of(conv: &burn::nn::conv::Conv2d, [h, w]: [usize; 2]) -> Self {
        let [_, _, kh, kw] = conv.weight.dims();
        let (top, left, bottom, right) = match conv.padding {
            PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
            _ => (0, 0, 0, 0),
        };
        let [sh, sw] = conv.stride;
        let ho = (h + top + bottom).saturating_sub(kh) / sh + 1;
        let wo = (w + left + right).saturating_sub(kw) / sw + 1;
        let mut taps = vec![Vec::new(); kh * kw];
        for u in 0..kh {
            for v in 0..kw {
                for i in 0..ho {
                    for j in 0..wo {
                        let (y, x) = ((i * sh + u) as isize - top as isize, (j * sw + v) as isize - left as isize);
                        if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                            taps[u * kw + v].push(y as usize * w + x as usize);
                        }
                    }
                }
            }
        }
        Self { taps, positions: ho * wo }
    }
}

/// The passport `p` (`[n, c, h, w]`) moved by the smallest change (in the Euclidean norm) after
/// which `mean conv(p; weight)` equals `target` (least squares where no passport reaches it),
/// with the size of the change relative to `p`.
fn solve(conv: &burn::nn::conv::Conv2d, p: Tensor<4>, target: &[f32]) -> (Tensor<4>, f64) {
    let device = p.device();
    let [n, c, h, w] = p.dims();
    let [o, _, kh, kw] = conv.weight.dims();
    let taps = kh * kw;
    let windows = Windows::of(conv, [h, w]);
    let scale = 1.0 / (n * windows.positions) as f64;
    let weight: Vec<f64> = values(conv.weight.val()).into_iter().map(f64::from).collect();
    let start = values(p);
    // m[c, tap]: the passport's mean under each tap, over images and windows.
    let mut m = vec![0.0f64; c * taps];
    for image in 0..n {
        for ch in 0..c {
            let plane = &start[(image * c + ch) * h * w..][..h * w];
            for (t, pixels) in windows.taps.iter().enumerate() {
                m[ch * taps + t] += pixels.iter().map(|&q| f64::from(plane[q])).sum::<f64>() * scale;
            }
        }
    }
    let row = |oc: usize| &weight[oc * c * taps..][..c * taps];
    let residual: Vec<f64> =
        (0..o).map(|oc| f64::from(target[oc]) - row(oc).iter().zip(&m).map(|(a, b)| a * b).sum::<f64>()).collect();
    // The Gram matrix of one channel's taps: gram[a][b] = |pixels(a) ∩ pixels(b)| · scale² · n.
    let mut gram = vec![0.0f64; taps * taps];
    for a in 0..taps {
        for b in 0..taps {
            let shared = windows.taps[a].iter().filter(|q| windows.taps[b].binary_search(q).is_ok()).count();
            gram[a * taps + b] = shared as f64 * scale * scale * n as f64;
        }
    }
    // K = W (I ⊗ gram) Wᵀ, the Gram matrix of the map from passport to γ.
    let mut projected = vec![0.0f64; o * c * taps];
    for oc in 0..o {
        for ch in 0..c {
            let wrow = &row(oc)[ch * taps..][..taps];
            for b in 0..taps {
                projected[(oc * c + ch) * taps + b] = (0..taps).map(|a| wrow[a] * gram[a * taps + b]).sum();
            }
        }
    }
    let mut k = vec![0.0f64; o * o];
    for a in 0..o {
        let pa = &projected[a * c * taps..][..c * taps];
        for b in 0..=a {
            let v: f64 = pa.iter().zip(row(b)).map(|(x, y)| x * y).sum();
            k[a * o + b] = v;
            k[b * o + a] = v;
        }
    }
    // A small ridge keeps thin layers (more channels than passport taps) solvable: their
    // passport is the least-squares one.
    let ridge = 1e-9 * (0..o).map(|i| k[i * o + i]).sum::<f64>() / o as f64 + 1e-30;
    for i in 0..o {
        k[i * o + i] += ridge;
    }
    let y = cholesky_solve(&mut k, o, residual);
    // The change: Mᵀ Wᵀ y, the same for every image of the passport.
    let mut v = vec![0.0f64; c * taps];
    for (oc, yo) in y.iter().enumerate() {
        for (vi, wi) in v.iter_mut().zip(row(oc)) {
            *vi += wi * yo;
        }
    }
    let mut moved = start.clone();
    let mut change = vec![0.0f64; h * w];
    for ch in 0..c {
        change.iter_mut().for_each(|x| *x = 0.0);
        for (t, pixels) in windows.taps.iter().enumerate() {
            for &q in pixels {
                change[q] += v[ch * taps + t] * scale;
            }
        }
        for image in 0..n {
            let plane = &mut moved[(image * c + ch) * h * w..][..h * w];
            for (x, d) in plane.iter_mut().zip(&change) {
                *x += *d as f32;
            }
        }
    }
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let diff: Vec<f32> = moved.iter().zip(&start).map(|(a, b)| a - b).collect();
    let relative = norm(&diff) / norm(&start).max(1e-30);
    (tensor(moved, [n, c, h, w], &device), relative)
}

/// Solves `a x = b` for a symmetric positive-definite `a` (`n × n`, row-major, overwritten by its
/// Cholesky factor).
fn cholesky_solve(a: &mut [f64], n: usize, mut b: Vec<f64>) -> Vec<f64> {
    for j in 0..n {
        let d = a[j * n + j] - (0..j).map(|k| a[j * n + k] * a[j * n + k]).sum::<f64>();
        let d = d.max(1e-300).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>();
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        b[i] = (b[i] - (0..i).map(|k| a[i * n + k] * b[k]).sum::<f64>()) / a[i * n + i];
    }
    for i in (0..n).rev() {
        b[i] = (b[i] - (i + 1..n).map(|k| a[k * n + i] * b[k]).sum::<f64>()) / a[i * n + i];
    }
    b
}

/// Largest `|got − want|` relative to the largest `|want|` (absolute when `want` is 0).
fn relative_error(got: &[f32], want: &[f32]) -> f64 {
    let top = want.iter().map(|x| f64::from(x.abs())).fold(0.0, f64::max);
    let err = got.iter().zip(want).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
    if top > 0.0 { err / top } else { err }
}

impl ConvBlock {
    /// A trained normal block turned into a passport layer computing the same function: the
    /// conv weights and normalisation statistics are kept, and the passports `key` (`P_β`) and
    /// `skey` (`P_γ`), `[n, in_channels, h, w]`, are moved by the smallest change after which
    /// their γ and β equal the trained affine (the norm's scale and shift; 1 and the conv bias
    /// without a norm). `private`: a private layer (V2/V3), whose public path keeps the trained
    /// affine and whose private path starts with the same statistics.
    ///
    /// # Errors
    /// [`PassportError::Retrofit`] when the block is already a passport layer or has no trained
    /// affine; [`PassportError::Shape`] for passports of another shape.
    pub fn retrofit(self, layer: &str, key: Tensor<4>, skey: Tensor<4>, private: bool) -> Result<(Self, RetrofitFit), PassportError> {
        if self.is_passport() {
            return Err(PassportError::Retrofit { layer: layer.into(), why: "it is a passport layer already; retrofit a model trained without passports (V0)".into() });
        }
        for p in [&key, &skey] {
            if p.dims()[1] != self.in_channels() {
                return Err(PassportError::Shape { layer: layer.into(), got: p.dims().to_vec(), channels: self.in_channels() });
            }
        }
        let device = self.conv.weight.device();
        let c = self.out_channels();
        let ConvBlock { mut conv, mut bn, .. } = self;
        // The trained affine: the norm's own, or, without a norm, a unit scale and the conv bias.
        let (gamma, beta) = match (bn.weight.take(), bn.bias.take(), conv.bias.take()) {
            (Some(g), Some(b), _) => (detached(g.val()), detached(b.val())),
            (None, None, bias) if bn.kind == NormKind::None => {
                (Tensor::ones([c], &device), bias.map_or_else(|| Tensor::zeros([c], &device), |b| detached(b.val())))
            }
            _ => return Err(PassportError::Retrofit { layer: layer.into(), why: "its norm has no trained scale and shift".into() }),
        };
        let (gamma_v, beta_v) = (values(gamma.clone()), values(beta.clone()));
        let (skey, scale_passport_change) = solve(&conv, skey, &gamma_v);
        let (key, shift_passport_change) = solve(&conv, key, &beta_v);
        conv.bias = None;
        let private_bn = private.then(|| Norm {
            weight: None,
            bias: None,
            running_mean: bn.running_mean.as_ref().map(|s| RunningState::new(s.value())),
            running_var: bn.running_var.as_ref().map(|s| RunningState::new(s.value())),
            training: Param::from_bool(true),
            kind: bn.kind,
        });
        if private {
            bn.weight = Some(Param::from_tensor(gamma));
            bn.bias = Some(Param::from_tensor(beta));
        }
        let block = ConvBlock {
            conv,
            bn,
            key: Some(Param::from_tensor(key).set_require_grad(false)),
            skey: Some(Param::from_tensor(skey).set_require_grad(false)),
            private_bn,
        };
        let (g, b) = block.passport_gamma_beta().expect("the block has passports");
        let fit = RetrofitFit {
            scale_error: relative_error(&values(g), &gamma_v),
            shift_error: relative_error(&values(b), &beta_v),
            scale_passport_change,
            shift_passport_change,
        };
        Ok((block, fit))
    }

    /// Negates the conv filter (and running mean) of every channel whose passport-derived γ
    /// disagrees in sign with `bits`, so that γ carries them, and solves the bias passport again
    /// so that β is unchanged: under batch norm, instance norm or no norm the block computes the
    /// same function as before (a private layer's public scale is negated with it). The scale
    /// passport is left as it is. Returns the block and the number of channels negated.
    ///
    /// # Errors
    /// [`PassportError::Retrofit`] when the block is not a passport layer or `bits` does not
    /// have one bit per channel.
    pub fn align_signs(self, layer: &str, bits: &[i8]) -> Result<(Self, usize), PassportError> {
        let Some((gamma, beta)) = self.passport_gamma_beta() else {
            return Err(PassportError::Retrofit { layer: layer.into(), why: "it is not a passport layer".into() });
        };
        let c = self.out_channels();
        if bits.len() != c {
            return Err(PassportError::Retrofit { layer: layer.into(), why: format!("the signature has {} bits for {c} channels", bits.len()) });
        }
        let flip: Vec<f32> = values(gamma).iter().zip(bits).map(|(g, &b)| if g * f32::from(b) > 0.0 { 1.0 } else { -1.0 }).collect();
        let negated = flip.iter().filter(|&&f| f < 0.0).count();
        if negated == 0 {
            return Ok((self, 0));
        }
        // β must stay: under the negated filter the bias passport must give flip ⊙ β through the
        // current one.
        let target: Vec<f32> = values(beta).iter().zip(&flip).map(|(b, f)| b * f).collect();
        let ConvBlock { mut conv, mut bn, key, skey, mut private_bn } = self;
        let key = key.expect("a passport layer has a bias passport");
        let (solved, _) = solve(&conv, key.val(), &target);
        conv.weight = Param::from_tensor(signed_rows(conv.weight.val(), &flip));
        let negate = |norm: &mut Norm| {
            if let Some(mean) = &norm.running_mean {
                norm.running_mean = Some(RunningState::new(signed_rows(mean.value(), &flip)));
            }
        };
        negate(&mut bn);
        if let Some(private) = private_bn.as_mut() {
            negate(private);
            // The public path normalises the negated activation too: its scale turns with it.
            if let Some(w) = bn.weight.take() {
                bn.weight = Some(Param::from_tensor(signed_rows(w.val(), &flip)));
            }
        }
        let block = ConvBlock { conv, bn, key: Some(Param::from_tensor(solved).set_require_grad(false)), skey, private_bn };
        Ok((block, negated))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance};

    use super::*;
    use crate::{ConvBlockConfig, Route};

    /// A normal block with a trained-looking affine and statistics.
    fn trained(norm: NormKind, cin: usize, cout: usize, k: usize, stride: usize, pad: usize, device: &Device) -> ConvBlock {
        let mut block = ConvBlockConfig::new(cin, cout, k).with_stride(stride).with_padding(pad).with_norm(norm).init(device);
        let random = |lo: f64, hi: f64| Tensor::<1>::random([cout], Distribution::Uniform(lo, hi), device);
        if norm != NormKind::None {
            block.bn.weight = Some(Param::from_tensor(random(-1.5, 1.5)));
            block.bn.bias = Some(Param::from_tensor(random(-0.5, 0.5)));
        } else {
            block.conv.bias = Some(Param::from_tensor(random(-0.5, 0.5)));
        }
        if norm == NormKind::Bn {
            block.bn.running_mean = Some(RunningState::new(random(-1.0, 1.0)));
            block.bn.running_var = Some(RunningState::new(random(0.5, 2.0)));
        }
        block
    }

    fn passport(n: usize, c: usize, side: usize, device: &Device) -> Tensor<4> {
        Tensor::random([n, c, side, side], Distribution::Uniform(-1.0, 1.0), device)
    }

    #[test]
    fn retrofitted_layer_computes_the_trained_block_and_carries_the_signature() {
        let device = Device::flex();
        device.seed(5);
        // Shapes of the models: 3×3 same, 5×5 stride 2, and a thin 1×1 stride-2 shortcut.
        for (norm, cin, cout, k, stride, pad, side, private) in [
            (NormKind::Bn, 8, 32, 3, 1, 1, 6, false),
            (NormKind::Bn, 6, 16, 5, 2, 2, 9, true),
            (NormKind::In, 8, 24, 3, 1, 1, 5, false),
            (NormKind::None, 4, 16, 3, 1, 1, 6, false),
            (NormKind::Bn, 16, 32, 1, 2, 0, 8, true),
        ] {
            let block = trained(norm, cin, cout, k, stride, pad, &device);
            let x = Tensor::<4>::random([3, cin, side, side], Distribution::Normal(0.0, 1.0), &device);
            let want = block.forward(x.clone()).out;
            let same = |got: Tensor<4>, want: &Tensor<4>| got.into_data().assert_approx_eq::<f32>(&want.clone().into_data(), Tolerance::absolute(2e-3));
            let (fitted, fit) = block.retrofit("l", passport(1, cin, side, &device), passport(1, cin, side, &device), private).unwrap();
            assert!(fitted.is_passport() && fitted.is_private() == private);
            assert!(fit.scale_passport_change > 0.0 && fit.shift_passport_change > 0.0);
            // The thin shortcut (16 taps for 32 channels) is a least-squares fit; the rest exact.
            let exact = k * k * cin >= cout;
            if exact {
                assert!(fit.scale_error < 1e-3 && fit.shift_error < 1e-3, "{norm:?} k{k}: {fit:?}");
                same(fitted.forward_route(x.clone(), Route::Private).out, &want);
            }
            if private {
                same(fitted.forward_route(x.clone(), Route::Public).out, &want);
            }
            // Signs: the channels whose γ disagrees negated, the skey kept, the function unchanged.
            let bits: Vec<i8> = (0..cout).map(|i| if i % 3 == 0 { 1 } else { -1 }).collect();
            let skey = values(fitted.skey.as_ref().unwrap().val());
            let before = fitted.forward_route(x.clone(), Route::Private).out;
            let (aligned, negated) = fitted.align_signs("l", &bits).unwrap();
            assert!(negated > 0);
            assert_eq!(values(aligned.skey.as_ref().unwrap().val()), skey, "the scale passport is kept");
            let gamma = values(aligned.passport_gamma_beta().unwrap().0);
            assert!(gamma.iter().zip(&bits).all(|(g, &b)| g * f32::from(b) > 0.0), "{norm:?}: every sign carries its bit");
            if exact {
                same(aligned.forward_route(x.clone(), Route::Private).out, &before);
            }
            if private {
                same(aligned.forward_route(x.clone(), Route::Public).out, &want);
            }
        }
    }

    #[test]
    fn a_passport_layer_or_a_block_without_affine_is_refused() {
        let device = Device::flex();
        let layer = ConvBlockConfig::new(2, 8, 3).with_passport(Some([4, 4])).init(&device);
        let err = layer.retrofit("features.4", passport(1, 2, 4, &device), passport(1, 2, 4, &device), false).unwrap_err();
        assert!(err.to_string().contains("features.4") && err.to_string().contains("V0"), "{err}");
        let normal = ConvBlockConfig::new(2, 8, 3).init(&device);
        let err = normal.align_signs("features.5", &[1; 8]).unwrap_err();
        assert!(err.to_string().contains("not a passport layer"), "{err}");
    }
}
