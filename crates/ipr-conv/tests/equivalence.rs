//! `ipr_conv::conv2d` against burn's own conv on the flex backend: the forward pass and the
//! gradients of the input, the weight and the bias, for the shapes the models use and odd ones.

use burn::tensor::{Device, Distribution, Tensor, module, ops::ConvOptions};

/// One case: batch, input channels, height, width, output channels, kernel, stride, padding.
#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    c: usize,
    hw: [usize; 2],
    o: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

const fn case(n: usize, c: usize, hw: [usize; 2], o: usize, k: usize, stride: usize, pad: usize) -> Case {
    Case { n, c, hw, o, k, stride, pad }
}

/// The models' layers (AlexNet 5×5 and 3×3, ResNet-18 3×3 stride 1 and 2, 1×1 shortcuts) at a
/// reduced width, and odd shapes: batch 1, channel counts not a multiple of 16, non-square
/// images, padding larger than the stride; 3×3 and 5×5 stride-1 layers with at least 64 channels
/// in and out and enough output blocks in the batch run Winograd's F(4×4, 3×3) and
/// F(2×2, 5×5), here with odd output sides and paddings 0 to 2 too, and two of AlexNet's layers at
/// full size (the last seven cases: gaps of 6e-6 to 2e-5 were seen).
const CASES: [Case; 17] = [
    case(4, 3, [32, 32], 32, 5, 1, 2),
    case(2, 48, [8, 8], 96, 3, 1, 1),
    case(3, 16, [16, 16], 16, 3, 1, 1),
    case(2, 16, [16, 16], 32, 3, 2, 1),
    case(2, 16, [16, 16], 32, 1, 2, 0),
    case(2, 24, [8, 8], 40, 1, 1, 0),
    case(1, 5, [7, 9], 7, 3, 1, 1),
    case(1, 3, [11, 6], 5, 5, 2, 2),
    case(3, 7, [5, 5], 3, 3, 1, 0),
    case(2, 2, [6, 6], 17, 3, 3, 2),
    case(16, 64, [16, 16], 64, 3, 1, 1),
    case(35, 192, [11, 9], 194, 3, 1, 1),
    case(35, 176, [7, 9], 176, 3, 1, 2),
    case(4, 64, [16, 16], 64, 5, 1, 2),
    case(9, 64, [9, 7], 72, 5, 1, 2),
    case(64, 64, [16, 16], 192, 5, 1, 2),
    case(64, 384, [8, 8], 256, 3, 1, 1),
];

fn options(c: &Case) -> ConvOptions<2> {
    ConvOptions::new([c.stride; 2], [c.pad; 2], [1, 1], 1)
}

fn inputs(c: &Case, device: &Device) -> (Tensor<4>, Tensor<4>, Tensor<1>) {
    let normal = Distribution::Normal(0.0, 1.0);
    (
        Tensor::random([c.n, c.c, c.hw[0], c.hw[1]], normal, device),
        Tensor::random([c.o, c.c, c.k, c.k], normal, device),
        Tensor::random([c.o], normal, device),
    )
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}

/// `max |a − b| / max |b|`.
fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn every_case_runs_our_kernel() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for c in CASES {
            let (x, w, _) = inputs(&c, &device);
            assert!(ipr_conv::supported(&x, &w, &options(&c)), "{c:?} on {device:?}");
        }
    }
}

#[test]
fn forward_matches_burn() {
    let device = Device::flex();
    for c in CASES {
        let (x, w, b) = inputs(&c, &device);
        let ours = ipr_conv::conv2d(x.clone(), w.clone(), Some(b.clone()), options(&c));
        let burns = module::conv2d(x, w, Some(b), options(&c));
        assert_eq!(ours.dims(), burns.dims(), "{c:?}");
        let gap = relative_gap(&values(ours), &values(burns));
        assert!(gap <= 1e-4, "{c:?}: forward relative gap {gap:e}");
    }
}

#[test]
fn gradients_match_burn() {
    let device = Device::flex().autodiff();
    for c in CASES {
        let (x, w, b) = inputs(&c, &device);
        let probe = |y: &Tensor<4>| Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
        let grads = |conv: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>, r: Option<Tensor<4>>| {
            let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
            let y = conv(x.clone(), w.clone(), Some(b.clone()), options(&c));
            let r = r.unwrap_or_else(|| probe(&y));
            let g = (y * r.clone()).sum().backward();
            let grad = |t: &Tensor<4>| values(t.grad(&g).expect("a gradient"));
            (grad(&x), grad(&w), values(b.grad(&g).expect("a bias gradient")), r)
        };
        let (bx, bw, bb, r) = grads(module::conv2d, None);
        let (ox, ow, ob, _) = grads(ipr_conv::conv2d, Some(r));
        for (name, ours, burns) in [("input", ox, bx), ("weight", ow, bw), ("bias", ob, bb)] {
            let gap = relative_gap(&ours, &burns);
            assert!(gap <= 1e-4, "{c:?}: {name} gradient relative gap {gap:e}");
        }
    }
}

#[test]
fn a_dilated_or_grouped_conv_falls_back_on_burn() {
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
    for (w, options) in [
        (Tensor::<4>::random([6, 4, 3, 3], Distribution::Normal(0.0, 1.0), &device), ConvOptions::new([1, 1], [2, 2], [2, 2], 1)),
        (Tensor::<4>::random([6, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device), ConvOptions::new([1, 1], [1, 1], [1, 1], 2)),
    ] {
        assert!(!ipr_conv::supported(&x, &w, &options));
        let ours = ipr_conv::conv2d(x.clone(), w.clone(), None, options.clone());
        let burns = module::conv2d(x.clone(), w, None, options);
        assert_eq!(values(ours), values(burns));
    }
}

#[test]
fn max_pooling_and_its_gradient_match_burn() {
    // AlexNet's 2×2 stride 2 (32 px) and 3×3 stride 2 (224 px), an odd side, a single plane.
    for (shape, kernel, stride) in [([4, 6, 32, 32], 2, 2), ([2, 5, 13, 13], 3, 2), ([1, 1, 7, 9], 2, 2), ([3, 17, 5, 5], 3, 1)] {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let options = burn::tensor::ops::MaxPoolOptions::new([kernel; 2]).with_stride([stride; 2]);
            let track = |t: Tensor<4>| if device.is_autodiff() { t.require_grad() } else { t };
            let (x_ours, x_burns) = (track(x.clone()), track(x));
            let ours = ipr_conv::max_pool2d(x_ours.clone(), [kernel; 2], [stride; 2]);
            let burns = module::max_pool2d(x_burns.clone(), options);
            assert_eq!(ours.dims(), burns.dims(), "{shape:?} k{kernel} s{stride}");
            if device.is_autodiff() {
                let r = Tensor::<4>::random(burns.dims(), Distribution::Normal(0.0, 1.0), &device);
                let g_ours = (ours.clone() * r.clone()).sum().backward();
                let g_burns = (burns.clone() * r).sum().backward();
                let (a, b) = (values(x_ours.grad(&g_ours).expect("a gradient")), values(x_burns.grad(&g_burns).expect("a gradient")));
                assert_eq!(a, b, "{shape:?} k{kernel} s{stride}: gradient");
            }
            assert_eq!(values(ours), values(burns), "{shape:?} k{kernel} s{stride}");
        }
    }
}

/// Burn's batch norm on the batch's statistics then ReLU, segment by segment: the reference for
/// `ipr_conv::batch_norm_relu`.
fn burns_norm_relu(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, segments: usize) -> [Tensor<4>; 1] {
    let [n, c, _, _] = x.dims();
    let per = n / segments;
    let parts = (0..segments)
        .map(|s| {
            let part = |t: &Tensor<1>| t.clone().narrow(0, s * c, c);
            module::batch_norm_train(x.clone().narrow(0, s * per, per), part(&gamma), part(&beta), 1e-5).output
        })
        .collect();
    [burn::tensor::activation::relu(Tensor::cat(parts, 0))]
}

#[test]
fn batch_norm_relu_and_its_gradients_match_burn() {
    // Two segments (a private layer's two paths), planes not a multiple of the 16 lanes, 1×1
    // planes, a single image, and a block of ResNet-18's layer4 shape.
    for (shape, segments) in [([8, 6, 5, 7], 2), ([4, 32, 4, 4], 1), ([6, 3, 1, 1], 2), ([1, 5, 9, 9], 1), ([16, 512, 4, 4], 1)] {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let c = shape[1];
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device);
            let gamma = Tensor::<1>::random([segments * c], Distribution::Normal(0.0, 1.0), &device);
            let beta = Tensor::<1>::random([segments * c], Distribution::Normal(0.0, 1.0), &device);
            let track = |t: Tensor<1>| if device.is_autodiff() { t.require_grad() } else { t };
            let inputs = || (if device.is_autodiff() { x.clone().require_grad() } else { x.clone() }, track(gamma.clone()), track(beta.clone()));
            let (xo, go, bo) = inputs();
            let ours = ipr_conv::batch_norm_relu(xo.clone(), go.clone(), bo.clone(), segments, 1e-5);
            let (xb, gb, bb) = inputs();
            let [burns] = burns_norm_relu(xb.clone(), gb.clone(), bb.clone(), segments);
            let gap = relative_gap(&values(ours.output.clone()), &values(burns.clone()));
            assert!(gap <= 1e-4, "{shape:?}: output relative gap {gap:e}");
            // The statistics: those of each segment's channel, the variance biased.
            let per = shape[0] / segments;
            for s in 0..segments {
                let part = x.clone().narrow(0, s * per, per).swap_dims(0, 1).reshape([c, per * shape[2] * shape[3]]);
                let (var, mean) = part.var_mean_bias(1);
                let got = |t: &Tensor<1>| values(t.clone().narrow(0, s * c, c));
                assert!(relative_gap(&got(&ours.mean), &values(mean.reshape([c]))) <= 1e-5, "{shape:?} mean");
                assert!(relative_gap(&got(&ours.variance), &values(var.reshape([c]))) <= 1e-5, "{shape:?} variance");
            }
            if device.is_autodiff() {
                let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let g_ours = (ours.output * r.clone()).sum().backward();
                let g_burns = (burns * r).sum().backward();
                let gap = relative_gap(&values(xo.grad(&g_ours).expect("dx")), &values(xb.grad(&g_burns).expect("dx")));
                assert!(gap <= 1e-4, "{shape:?}: input gradient relative gap {gap:e}");
                for (name, a, b) in [("scale", go, gb), ("shift", bo, bb)] {
                    let gap = relative_gap(&values(a.grad(&g_ours).expect("a gradient")), &values(b.grad(&g_burns).expect("a gradient")));
                    assert!(gap <= 1e-4, "{shape:?}: {name} gradient relative gap {gap:e}");
                }
            }
        }
    }
}

#[test]
fn batch_norm_relu_eval_and_its_gradients_match_burn() {
    for shape in [[3, 6, 5, 7], [1, 64, 4, 4], [2, 3, 1, 1]] {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let c = shape[1];
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device);
            let vector = |mean: f64| Tensor::<1>::random([c], Distribution::Normal(mean, 1.0), &device);
            let (gamma, beta, mean, var) = (vector(0.0), vector(0.0), vector(0.0), vector(3.0).abs());
            let track = |t: Tensor<4>| if device.is_autodiff() { t.require_grad() } else { t };
            let track1 = |t: Tensor<1>| if device.is_autodiff() { t.require_grad() } else { t };
            let (xo, go, bo) = (track(x.clone()), track1(gamma.clone()), track1(beta.clone()));
            let (xb, gb, bb) = (track(x), track1(gamma), track1(beta));
            let ours = ipr_conv::batch_norm_relu_eval(xo.clone(), go.clone(), bo.clone(), mean.clone(), var.clone(), 1e-5);
            let burns = burn::tensor::activation::relu(module::batch_norm(xb.clone(), gb.clone(), bb.clone(), mean, var, 1e-5));
            let gap = relative_gap(&values(ours.clone()), &values(burns.clone()));
            assert!(gap <= 1e-4, "{shape:?}: output relative gap {gap:e}");
            if device.is_autodiff() {
                let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let (g_ours, g_burns) = ((ours * r.clone()).sum().backward(), (burns * r).sum().backward());
                let gap = relative_gap(&values(xo.grad(&g_ours).expect("dx")), &values(xb.grad(&g_burns).expect("dx")));
                assert!(gap <= 1e-4, "{shape:?}: input gradient relative gap {gap:e}");
                for (name, a, b) in [("scale", go, gb), ("shift", bo, bb)] {
                    let gap = relative_gap(&values(a.grad(&g_ours).expect("a gradient")), &values(b.grad(&g_burns).expect("a gradient")));
                    assert!(gap <= 1e-4, "{shape:?}: {name} gradient relative gap {gap:e}");
                }
            }
        }
    }
}
