//! A 2-D convolution for burn's `flex` CPU backend, with a kernel of its own: the forward pass and
//! both gradients are each one well-shaped GEMM per image (`gemm`, AVX-512 when the CPU has it,
//! chosen at run time), images in parallel. burn's own `flex` conv computes the weight gradient as
//! a convolution with batch and channels swapped, a thin GEMM with several copies; here it is
//! `dY · colsᵀ`. The 3×3 and 5×5 stride-1 layers with enough channels and images run Winograd's
//! F(4×4, 3×3) and F(2×2, 5×5) instead: 36 GEMMs on transformed 6×6 tiles, a quarter (3×3) or
//! 9/25 (5×5) of the multiply-adds.
//!
//! [`conv2d`] has the signature of `burn::tensor::module::conv2d` and falls back on it wherever
//! the kernel does not apply: other backends (CUDA, Vulkan), other float types, groups or
//! dilation other than 1, or an autodiff device when the `autodiff` feature is off. The feature
//! adds the backward pass; the verifier's crates leave it off and stay free of autodiff.
//! [`max_pool2d`], and [`batch_norm_relu`] / [`batch_norm_relu_eval`] (a conv block's batch norm
//! and ReLU as one kernel, in training and in inference), fall back on burn's ops the same way.
//!
//! # Example
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor, ops::ConvOptions};
//!
//! let device = Device::flex();
//! let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
//! let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Normal(0.0, 1.0), &device);
//! let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
//! let ours = ipr_conv::conv2d(x.clone(), w.clone(), None, options.clone());
//! let burns = burn::tensor::module::conv2d(x, w, None, options);
//! assert_eq!(ours.dims(), [2, 4, 8, 8]);
//! let gap: f32 = (ours - burns).abs().max().into_scalar();
//! assert!(gap < 1e-4);
//! ```
#![deny(missing_docs)]

mod kernel;
mod op;
mod norm;
mod pool;
mod simd;
mod winograd;

use burn::backend::Dispatch;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::activation::relu;
use burn::tensor::{DType, Device, Tensor};

pub use op::CpuKernels;

/// Whether this crate's kernels can run on `x`: an `f32` tensor on flex (and, on an autodiff
/// device, with the `autodiff` feature).
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    let device = x.device();
    device == Device::flex() && x.dtype() == DType::F32 && (!device.is_autodiff() || cfg!(feature = "autodiff"))
}

/// Whether the norm kernels can run on `x` and its per-channel vectors: all on flex, on the same
/// (autodiff or plain) device.
fn norm_on_flex(x: &Tensor<4>, vectors: &[&Tensor<1>]) -> bool {
    let autodiff = x.device().is_autodiff();
    on_flex(x) && vectors.iter().all(|t| on_flex(*t) && t.device().is_autodiff() == autodiff)
}

/// Whether [`conv2d`] runs its own kernel for these tensors and options.
pub fn supported(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    on_flex(x)
        && on_flex(weight)
        && x.device().is_autodiff() == weight.device().is_autodiff()
        && options.groups == 1
        && options.dilation == [1, 1]
        && x.dims()[1] == weight.dims()[1]
}

/// `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]`, plus `bias` `[O]`: `[N, O, Ho, Wo]`.
/// Our kernel where [`supported`], burn's conv elsewhere.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    if !supported(&x, &weight, &options) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let y = Tensor::<4>::from_dispatch(<Dispatch as CpuKernels>::fast_conv2d(x.into_dispatch(), weight.into_dispatch(), options));
    match bias {
        Some(b) => {
            let o = b.dims()[0];
            y + b.reshape([1, o, 1, 1])
        }
        None => y,
    }
}

/// [`Conv2d::forward`] through [`conv2d`]: the same padding, stride and parameters
/// (`PaddingConfig2d::Same` is left to burn's conv).
pub fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (rows, cols) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        PaddingConfig2d::Same => return conv.forward(x),
    };
    let options = ConvOptions::new_with_padding(conv.stride, [rows, cols], conv.dilation, conv.groups);
    conv2d(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options)
}

/// Max pooling of `x` `[N, C, H, W]` by `kernel` with `stride`, no padding, floor mode:
/// `[N, C, (H − kh) / sh + 1, (W − kw) / sw + 1]`. Our kernel on flex, burn's pooling elsewhere.
pub fn max_pool2d(x: Tensor<4>, kernel: [usize; 2], stride: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if !on_flex(&x) || h < kernel[0] || w < kernel[1] || kernel.contains(&0) || stride.contains(&0) {
        let options = MaxPoolOptions::new(kernel).with_stride(stride);
        return burn::tensor::module::max_pool2d(x, options);
    }
    Tensor::<4>::from_dispatch(<Dispatch as CpuKernels>::fast_max_pool2d(x.into_dispatch(), kernel, stride))
}

/// The output of [`batch_norm_relu`].
#[derive(Debug)]
pub struct NormRelu {
    /// `[N, C, H, W]`.
    pub output: Tensor<4>,
    /// The batch mean of each (segment, channel), `[segments · C]`.
    pub mean: Tensor<1>,
    /// The biased batch variance of each (segment, channel), `[segments · C]`.
    pub variance: Tensor<1>,
}

/// Batch norm on the batch's statistics with scale `gamma` and shift `beta`, then ReLU, of `x`
/// `[N, C, H, W]` made of `segments` equal parts of the batch (`segments` divides `N`), each
/// normalised over its own images and pixels with its own scale and shift (`[segments · C]`,
/// segment-major). One fused kernel on flex (`f32`), burn's `batch_norm_train` and ReLU per
/// segment elsewhere.
///
/// # Panics
/// When `segments` is 0 or does not divide the batch, or `gamma`, `beta` are not `[segments · C]`.
pub fn batch_norm_relu(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, segments: usize, epsilon: f64) -> NormRelu {
    let [n, c, _, _] = x.dims();
    assert!(segments > 0 && n % segments == 0, "{segments} segments of a batch of {n}");
    assert!(gamma.dims() == [segments * c] && beta.dims() == [segments * c], "scale and shift of {segments}·{c}");
    if norm_on_flex(&x, &[&gamma, &beta]) {
        let (y, mean, variance) =
            <Dispatch as CpuKernels>::fast_batch_norm_relu(x.into_dispatch(), gamma.into_dispatch(), beta.into_dispatch(), segments, epsilon);
        return NormRelu { output: Tensor::from_dispatch(y), mean: Tensor::from_dispatch(mean), variance: Tensor::from_dispatch(variance) };
    }
    let per = n / segments;
    let (mut outputs, mut means, mut variances) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..segments {
        let part = |t: &Tensor<1>| t.clone().narrow(0, s * c, c);
        let out = burn::tensor::module::batch_norm_train(x.clone().narrow(0, s * per, per), part(&gamma), part(&beta), epsilon);
        outputs.push(out.output);
        means.push(out.mean);
        variances.push(out.variance);
    }
    NormRelu { output: relu(Tensor::cat(outputs, 0)), mean: Tensor::cat(means, 0), variance: Tensor::cat(variances, 0) }
}

/// Batch norm on given statistics (`mean`, and the `variance` it divides by, all `[C]`) with scale `gamma` and shift `beta`, then ReLU, of `x` `[N, C, H, W]`: how a trained
/// block is evaluated. One fused kernel on flex (`f32`), burn's `batch_norm` and ReLU elsewhere.
pub fn batch_norm_relu_eval(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    epsilon: f64,
) -> Tensor<4> {
    if !norm_on_flex(&x, &[&gamma, &beta, &mean, &variance]) {
        return relu(burn::tensor::module::batch_norm(x, gamma, beta, mean, variance, epsilon));
    }
    let scale = gamma.div(variance.add_scalar(epsilon).sqrt());
    let shift = beta.sub(mean.mul(scale.clone()));
    Tensor::from_dispatch(<Dispatch as CpuKernels>::fast_scale_shift_relu(x.into_dispatch(), scale.into_dispatch(), shift.into_dispatch()))
}
