//! The kernels as a burn backend extension: the forward passes on `Flex`, and on
//! `Autodiff<Flex>` (feature `autodiff`) nodes whose backward passes call the kernels' gradients.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;

use crate::kernel::{self, Geometry};
use crate::norm::{self, Layout};
use crate::pool::{self, Window};

/// The operations with a kernel of this crate.
#[backend_extension(Flex, Autodiff: cfg(feature = "autodiff"))]
pub trait CpuKernels: burn::backend::Backend {
    /// A 2-D convolution without bias, `x` `[N, C, H, W]`, `weight` `[O, C, kh, kw]` →
    /// `[N, O, Ho, Wo]`, for options that [`crate::supported`] accepts (groups 1, dilation 1).
    fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;

    /// Max pooling without padding, floor mode: `[N, C, H, W]` → `[N, C, Ho, Wo]`.
    fn fast_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2]) -> FloatTensor<Self>;

    /// Batch norm on batch statistics, then ReLU, of `x` `[N, C, H, W]` made of `segments` equal
    /// parts of the batch, each with its own statistics and its own scale and shift (`gamma`,
    /// `beta`: `[segments · C]`): the output, and the mean and biased variance `[segments · C]`.
    fn fast_batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        segments: usize,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `ReLU(a x + b)` of `x` `[N, C, H, W]` with `a`, `b` `[C]`: an inference batch norm with its
    /// statistics folded in.
    fn fast_scale_shift_relu(x: FloatTensor<Self>, a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The normalisation layout of `x` (`[N, C, H, W]`).
fn layout(x: &[usize], segments: usize) -> Layout {
    Layout { n: x[0], c: x[1], hw: x[2] * x[3], segments }
}

/// The pooling window of `x` (`[N, C, H, W]`).
fn window(x: &[usize], kernel: [usize; 2], stride: [usize; 2]) -> Window {
    Window::new(x[0] * x[1], [x[2], x[3]], kernel, stride)
}

/// The geometry of `x` `[N, C, H, W]` under `weight` of shape `w` `[O, C, kh, kw]`.
fn geometry(x: &[usize], w: &[usize], options: &ConvOptions<2>) -> Geometry {
    let [pt, pl] = options.padding_begin();
    let [pb, pr] = options.padding_end();
    let out = |size: usize, k: usize, s: usize, before: usize, after: usize| (size + before + after - k) / s + 1;
    Geometry {
        n: x[0],
        c: x[1],
        h: x[2],
        w: x[3],
        o: w[0],
        kh: w[2],
        kw: w[3],
        stride: options.stride,
        pad: [pt, pl],
        ho: out(x[2], w[2], options.stride[0], pt, pb),
        wo: out(x[3], w[3], options.stride[1], pl, pr),
    }
}

/// `t`'s values, row-major (a copy only when `t` is a strided view).
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor (checked by `supported`)")
}

fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

impl CpuKernels for Flex {
    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let (x, weight) = (values(&x), values(&weight));
        let g = geometry(&x.shape(), &weight.shape(), &options);
        tensor(kernel::forward(slice(&x), slice(&weight), &g), [g.n, g.o, g.ho, g.wo])
    }

    fn fast_max_pool2d(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2]) -> FlexTensor {
        let x = values(&x);
        let shape = x.shape();
        let w = window(&shape, kernel, stride);
        tensor(pool::forward(slice(&x), &w), [shape[0], shape[1], w.output[0], w.output[1]])
    }

    fn fast_batch_norm_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        segments: usize,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let x = values(&x);
        let shape = x.shape();
        let (gamma, beta) = (values(&gamma), values(&beta));
        let (y, mean, var) = norm::forward(slice(&x), slice(&gamma), slice(&beta), &layout(&shape, segments), epsilon);
        let stats = mean.len();
        (tensor(y, [shape[0], shape[1], shape[2], shape[3]]), tensor(mean, [stats]), tensor(var, [stats]))
    }

    fn fast_scale_shift_relu(x: FlexTensor, a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let x = values(&x);
        let shape = x.shape();
        let (a, b) = (values(&a), values(&b));
        let y = norm::scale_shift_relu(slice(&x), slice(&a), slice(&b), &layout(&shape, 1));
        tensor(y, [shape[0], shape[1], shape[2], shape[3]])
    }
}

#[cfg(feature = "autodiff")]
mod backward {
    use super::*;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::autodiff::{Autodiff, NodeId};
    use burn::backend::AutodiffBackend;
    use std::sync::Arc;

    /// The conv node: its parents are `x` and the weight, both checkpointed.
    #[derive(Debug)]
    struct ConvBackward;

    impl Backward<Flex, 2> for ConvBackward {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_w] = ops.parents;
            let dy = values(&grads.consume::<Flex>(&ops.node));
            let (x_id, w_id, options) = ops.state;
            let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x_id));
            let w = values(&checkpointer.retrieve_node_output::<FlexTensor>(w_id));
            let g = geometry(&x.shape(), &w.shape(), &options);
            if let Some(node) = node_x {
                let dx = kernel::input_grad(slice(&dy), slice(&w), &g);
                grads.register::<Flex>(node.id, tensor(dx, [g.n, g.c, g.h, g.w]));
            }
            if let Some(node) = node_w {
                let dw = kernel::weight_grad(slice(&x), slice(&dy), &g);
                grads.register::<Flex>(node.id, tensor(dw, [g.o, g.c, g.kh, g.kw]));
            }
        }
    }

    /// The pooling node: the index of each output's maximum, and the input's shape.
    #[derive(Debug)]
    struct PoolBackward;

    impl Backward<Flex, 1> for PoolBackward {
        type State = (Arc<Vec<u32>>, Window, [usize; 4]);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x] = ops.parents;
            let dy = values(&grads.consume::<Flex>(&ops.node));
            let (arg, w, shape) = ops.state;
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, tensor(pool::backward(slice(&dy), &arg, &w), shape));
            }
        }
    }

    /// Registers each gradient whose parent is tracked (`Some` node id).
    fn register<const N: usize>(grads: &mut Gradients, parents: [(Option<NodeId>, FlexTensor); N]) {
        for (node, grad) in parents {
            if let Some(id) = node {
                grads.register::<Flex>(id, grad);
            }
        }
    }

    /// A per-channel vector as a 1-D tensor.
    fn vector_tensor(v: Vec<f32>) -> FlexTensor {
        let len = v.len();
        tensor(v, [len])
    }

    /// The batch norm + ReLU node: its input checkpointed; the scale, shift, mean and variance of
    /// the forward pass (`[segments · C]` each); the segments and ε.
    #[derive(Debug)]
    struct BatchNormReluBackward;

    impl Backward<Flex, 3> for BatchNormReluBackward {
        type State = (NodeId, [FlexTensor; 4], usize, f64);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_gamma, node_beta] = ops.parents.map(|node| node.map(|n| n.id));
            let dy = values(&grads.consume::<Flex>(&ops.node));
            let (x_id, [gamma, beta, mean, var], segments, epsilon) = ops.state;
            let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x_id));
            let shape = x.shape();
            let (dx, dgamma, dbeta) = norm::backward(
                slice(&x),
                slice(&dy),
                [slice(&gamma), slice(&beta)],
                [slice(&mean), slice(&var)],
                &layout(&shape, segments),
                epsilon,
            );
            let dx = tensor(dx, [shape[0], shape[1], shape[2], shape[3]]);
            register(grads, [(node_x, dx), (node_gamma, vector_tensor(dgamma)), (node_beta, vector_tensor(dbeta))]);
        }
    }

    /// The `ReLU(a x + b)` node: its input checkpointed, `a` and `b`.
    #[derive(Debug)]
    struct ScaleShiftReluBackward;

    impl Backward<Flex, 3> for ScaleShiftReluBackward {
        type State = (NodeId, [FlexTensor; 2]);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_a, node_b] = ops.parents.map(|node| node.map(|n| n.id));
            let dy = values(&grads.consume::<Flex>(&ops.node));
            let (x_id, [a, b]) = ops.state;
            let x = values(&checkpointer.retrieve_node_output::<FlexTensor>(x_id));
            let shape = x.shape();
            let (dx, da, db) = norm::scale_shift_relu_backward(slice(&x), slice(&dy), slice(&a), slice(&b), &layout(&shape, 1));
            let dx = tensor(dx, [shape[0], shape[1], shape[2], shape[3]]);
            register(grads, [(node_x, dx), (node_a, vector_tensor(da)), (node_b, vector_tensor(db))]);
        }
    }

    impl<C: CheckpointStrategy> CpuKernels for Autodiff<Flex, C> {
        fn fast_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
            match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let x_id = prep.checkpoint(&x);
                    let w_id = prep.checkpoint(&weight);
                    let y = <Flex as CpuKernels>::fast_conv2d(x.into_primitive(), weight.into_primitive(), options.clone());
                    prep.finish((x_id, w_id, options), y)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(<Flex as CpuKernels>::fast_conv2d(x.into_primitive(), weight.into_primitive(), options))
                }
            }
        }

        fn fast_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2]) -> FloatTensor<Self> {
            match PoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let x = values(&x.into_primitive());
                    let s = x.shape();
                    let w = window(&s, kernel, stride);
                    let (y, arg) = pool::forward_with_indices(slice(&x), &w);
                    let y = tensor(y, [s[0], s[1], w.output[0], w.output[1]]);
                    prep.finish((Arc::new(arg), w, [s[0], s[1], s[2], s[3]]), y)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(<Flex as CpuKernels>::fast_max_pool2d(x.into_primitive(), kernel, stride))
                }
            }
        }

        fn fast_batch_norm_relu(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            segments: usize,
            epsilon: f64,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            let untracked = |t: FlexTensor| <Self as AutodiffBackend>::from_inner(t);
            match BatchNormReluBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let x_id = prep.checkpoint(&x);
                    let (gamma, beta) = (values(gamma.primitive()), values(beta.primitive()));
                    let (y, mean, var) = <Flex as CpuKernels>::fast_batch_norm_relu(x.into_primitive(), gamma.clone(), beta.clone(), segments, epsilon);
                    let y = prep.finish((x_id, [gamma, beta, mean.clone(), var.clone()], segments, epsilon), y);
                    (y, untracked(mean), untracked(var))
                }
                OpsKind::UnTracked(prep) => {
                    let (y, mean, var) = <Flex as CpuKernels>::fast_batch_norm_relu(
                        x.into_primitive(),
                        gamma.into_primitive(),
                        beta.into_primitive(),
                        segments,
                        epsilon,
                    );
                    (prep.finish(y), untracked(mean), untracked(var))
                }
            }
        }

        fn fast_scale_shift_relu(x: FloatTensor<Self>, a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
            match ScaleShiftReluBackward.prepare::<C>([x.node(), a.node(), b.node()]).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let x_id = prep.checkpoint(&x);
                    let (a, b) = (values(a.primitive()), values(b.primitive()));
                    let y = <Flex as CpuKernels>::fast_scale_shift_relu(x.into_primitive(), a.clone(), b.clone());
                    prep.finish((x_id, [a, b]), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(<Flex as CpuKernels>::fast_scale_shift_relu(
                    x.into_primitive(),
                    a.into_primitive(),
                    b.into_primitive(),
                )),
            }
        }
    }
}
