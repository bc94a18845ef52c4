//! A 2-D convolution for burn's `flex` CPU backend, with a kernel of its own: the forward pass and
//! both gradients are each one well-shaped GEMM per image (`gemm`, AVX-512 when the CPU has it,
//! chosen at run time), images in parallel. burn's own `flex` conv computes the weight gradient as
//! a convolution with batch and channels swapped, a thin GEMM with several copies; here it is
//! `dY · colsᵀ`.
//!
//! [`conv2d`] has the signature of `burn::tensor::module::conv2d` and falls back on it wherever
//! the kernel does not apply: other backends (CUDA, Vulkan), other float types, groups or
//! dilation other than 1, or an autodiff device when the `autodiff` feature is off. The feature
//! adds the backward pass; the verifier's crates leave it off and stay free of autodiff.
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
mod pool;
mod winograd;

use burn::backend::Dispatch;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Tensor};

pub use op::CpuKernels;

/// Whether this crate's kernels can run on `x`: an `f32` tensor on flex (and, on an autodiff
/// device, with the `autodiff` feature).
fn on_flex(x: &Tensor<4>) -> bool {
    let device = x.device();
    device == Device::flex() && x.dtype() == DType::F32 && (!device.is_autodiff() || cfg!(feature = "autodiff"))
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
