//! Private passports (V2/V3): the shared-prefix step equals two full passes, the public model
//! carries no secret and runs in the normal model, and the two paths keep their own statistics.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use ipr_models::{AlexNet, Arch, LayerSignature, Layout, Net, NetConfig, ResNet, load_module, param_paths, save_module};
use ipr_passport::{NormKind, Route, sign_loss};
use ipr_schemes::{Objective, PassportObjective, cross_entropy, eval_form};

/// Every float parameter's gradient (zeros where none flowed), by visiting order.
struct GradCollector<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        let grad = value.grad(self.grads).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        self.out.push(grad.unwrap_or_else(|| vec![0.0; n]));
    }
}

fn grads_of<M: Net>(model: &M, loss: Tensor<1>) -> (f32, Vec<Vec<f32>>) {
    let value = loss.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
    let grads = loss.backward();
    let mut collector = GradCollector { grads: &grads, out: vec![] };
    model.visit(&mut collector);
    (value, collector.out)
}

fn signatures<M: Net>(layout: &Layout, model: &M) -> Vec<LayerSignature> {
    layout.signatures(model, 4).unwrap().into_iter().map(|(path, signature)| LayerSignature { path, signature }).collect()
}

/// The loss and every parameter gradient of the shared-prefix step equal those of two full
/// forward passes (public, then private) within 1e-5.
fn shared_prefix_equals_two_passes<M: Net>(config: &NetConfig, layout: &str) {
    let device = Device::flex().autodiff();
    device.seed(21);
    let layout = Layout::parse(layout, "test").unwrap().with_private(true);
    let model = M::init(config, &layout, &device).unwrap();
    assert!(model.is_private());
    let sigs = signatures(&layout, &model);
    let size = config.input_size;
    let images = Tensor::<4>::random([6, config.in_channels, size, size], Distribution::Normal(0.0, 1.0), &device);
    let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 1, 2], &device);

    let objective = PassportObjective::new(&sigs, 0.1, &device);
    let shared = objective.step(&model, images.clone(), labels.clone());
    let (loss_a, grads_a) = grads_of(&model, shared.loss);

    let public = model.forward(images.clone());
    let private = model.forward_private(images);
    assert!(public.gammas.is_empty(), "the public path computes no passport γ");
    assert_eq!(private.gammas.len(), sigs.len());
    let mut loss = cross_entropy(public.logits, labels.clone()).add(cross_entropy(private.logits, labels));
    for ((path, gamma), sig) in private.gammas.into_iter().zip(&sigs) {
        assert_eq!(path, sig.path);
        let bits = Tensor::from_floats(sig.signature.as_f32().as_slice(), &device);
        loss = loss.add(sign_loss(gamma, bits, 0.1));
    }
    let (loss_b, grads_b) = grads_of(&model, loss);

    assert!((loss_a - loss_b).abs() < 1e-5, "loss {loss_a} vs {loss_b}");
    let paths = param_paths(&model);
    assert_eq!(grads_a.len(), grads_b.len());
    let mut nonzero = 0;
    for ((a, b), (path, _)) in grads_a.iter().zip(&grads_b).zip(&paths) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{path}: gradient {x} vs {y}");
        }
        nonzero += usize::from(a.iter().any(|v| *v != 0.0));
    }
    // Conv weights, public γ/β, the classifier: the comparison covered real gradients.
    assert!(nonzero >= 6, "only {nonzero} parameters received a gradient");
}

fn alexnet_config(norm: NormKind) -> NetConfig {
    let mut config = NetConfig::new(Arch::Alexnet, 4);
    (config.in_channels, config.width, config.norm) = (1, 0.125, norm);
    config
}

#[test]
fn shared_prefix_step_equals_two_full_passes_alexnet_bn() {
    let _serial = crate::serial();
    shared_prefix_equals_two_passes::<AlexNet>(&alexnet_config(NormKind::Bn), "4 = \"IPR\"\n5 = true\n6 = true\n");
}

#[test]
fn shared_prefix_step_equals_two_full_passes_alexnet_gn() {
    let _serial = crate::serial();
    shared_prefix_equals_two_passes::<AlexNet>(&alexnet_config(NormKind::Gn), "5 = true\n");
}

/// A private layer in the middle of a residual stage: normal batch-norm blocks after the split
/// (and the shortcut) see the two halves separately.
#[test]
fn shared_prefix_step_equals_two_full_passes_resnet() {
    let _serial = crate::serial();
    let mut config = NetConfig::new(Arch::Resnet9, 4);
    config.width = 0.125;
    shared_prefix_equals_two_passes::<ResNet>(&config, "[layer3.0]\nconvbnrelu_1 = true\n[layer4.0]\nshortcut = true\n");
}

/// The public model holds no passport, signature or private statistic, loads into the model
/// built without passports, and computes the public path exactly.
#[test]
fn public_model_is_a_normal_model_without_secrets() {
    let _serial = crate::serial();
    for norm in [NormKind::Bn, NormKind::Gn, NormKind::None] {
        let device = Device::flex();
        device.seed(8);
        let config = alexnet_config(norm);
        let layout = Layout::parse("4 = true\n5 = true\n", "test").unwrap().with_private(true);
        let owner = AlexNet::init(&config, &layout, &device).unwrap();
        let public = eval_form(&owner, Route::Public);
        for (path, _) in param_paths(&public) {
            assert!(!path.contains("key") && !path.contains("private"), "{norm:?}: `{path}` in the public model");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("public.bpk");
        save_module(&public, &file).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        for secret in [&b"skey"[..], b"private_bn"] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{norm:?}: the record file names {secret:?}");
        }
        let normal = load_module(AlexNet::init(&config, &Layout::none(), &device).unwrap(), &file).unwrap();
        let x = Tensor::<4>::random([3, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let want = owner.valid().forward(x.clone()).logits;
        let got = normal.forward(x.clone()).logits;
        want.into_data().assert_approx_eq::<f32>(&got.into_data(), Default::default());
        // The private path differs from the public one: the passports matter.
        let private = eval_form(&owner, Route::Private).forward(x.clone()).logits;
        let public_logits = normal.forward(x).logits;
        let diff = (private - public_logits).abs().max().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
        assert!(diff > 1e-4, "{norm:?}: private and public paths coincide");
    }
}

/// Training updates each path's batch-norm statistics from that path's activations only.
#[test]
fn each_path_keeps_its_own_running_statistics() {
    let _serial = crate::serial();
    let device = Device::flex().autodiff();
    device.seed(2);
    let layout = Layout::parse("5 = true\n", "test").unwrap().with_private(true);
    let model = AlexNet::init(&alexnet_config(NormKind::Bn), &layout, &device).unwrap();
    let block = model.blocks().into_iter().find(|(p, _)| p == "5").unwrap().1.clone();
    let stats = |n: &ipr_passport::Norm| n.running_mean.as_ref().unwrap().value_sync().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let x = Tensor::<4>::random([4, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    // A public-only forward moves the public statistics and leaves the private ones.
    let (pub0, priv0) = (stats(&block.bn), stats(block.private_bn.as_ref().unwrap()));
    let _ = model.forward(x.clone());
    let (pub1, priv1) = (stats(&block.bn), stats(block.private_bn.as_ref().unwrap()));
    assert_ne!(pub0, pub1);
    assert_eq!(priv0, priv1);
    let _ = model.forward_private(x);
    assert_ne!(priv1, stats(block.private_bn.as_ref().unwrap()));
    assert_eq!(pub1, stats(&block.bn));
}

/// The owner's private path, rebuilt from the public model and the owner's passports and
/// statistics, computes what the owner's model computes.
#[test]
fn private_path_is_rebuilt_from_the_public_model_and_the_bundle() {
    let _serial = crate::serial();
    let device = Device::flex().autodiff();
    device.seed(6);
    let layout = Layout::parse("4 = true\n6 = true\n", "test").unwrap().with_private(true);
    let owner = AlexNet::init(&alexnet_config(NormKind::Bn), &layout, &device).unwrap();
    for _ in 0..3 {
        // Training-mode forwards move both paths' running statistics away from their init.
        let x = Tensor::<4>::random([8, 1, 32, 32], Distribution::Normal(0.5, 2.0), &device);
        let _ = owner.forward_route(x, Route::Both, &mut |_, _| {});
    }
    let owner = owner.valid();
    let public = owner.clone().fold_route(Route::Public);
    let rebuilt = ipr_models::restore_private(public, &ipr_models::LayerPassports::of(&owner)).unwrap();
    let x = Tensor::<4>::random([4, 1, 32, 32], Distribution::Normal(0.5, 2.0), &owner.devices()[0]);
    let want = owner.clone().fold_route(Route::Private).forward(x.clone()).logits;
    let got = rebuilt.fold_route(Route::Private).forward(x).logits;
    want.into_data().assert_approx_eq::<f32>(&got.into_data(), Default::default());
}
