//! The mechanics of each attack on a tiny model: what it changes, and what it must leave alone.

use std::sync::Arc;

use burn::module::Param;
use burn::prelude::*;
use ipr_attacks::{
    Erb, ErbKind, FinetuneMode, dissimilarity, finetune, flip_gammas, flipped_signatures, optimise_passport, prune_weights, raw_gammas,
    reverse, substitute, substitute_setup,
};
use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
use ipr_models::{AlexNet, Arch, LayerPassports, LayerSignature, Layout, Net, NetConfig, param_values, tensor_values as values};
use ipr_passport::{Route, Signature};
use ipr_schemes::{Run, TrainConfig, TrainData};

/// Every float parameter by path, with its values.
fn params<M: Net>(model: &M) -> Vec<(String, Vec<f32>)> {
    param_values(model).into_iter().map(|(path, _, values)| (path, values)).collect()
}

fn is_weight(path: &str, len: usize) -> bool {
    path.ends_with(".weight") && !path.contains(".bn.") && len > 1
}

fn tiny(layout: &str, device: &Device) -> (AlexNet, Vec<LayerSignature>) {
    let mut config = NetConfig::new(Arch::Alexnet, 4);
    (config.in_channels, config.width) = (1, 0.125);
    let layout = Layout::parse(layout, "test").unwrap();
    let model = AlexNet::init(&config, &layout, device).unwrap();
    let signatures = layout.signatures(&model, 2).unwrap().into_iter().map(|(path, signature)| LayerSignature { path, signature }).collect();
    (model, signatures)
}

fn loaders() -> (Loader, Loader) {
    let data = Arc::new(synthetic(&SyntheticConfig { n: 64, height: 32, width: 32, num_classes: 4, seed: 1, ..Default::default() }).unwrap());
    let norm = Normalization { mean: vec![0.5], std: vec![0.25] };
    (
        Loader::new(data.clone(), Transform::new(norm.clone()), LoaderConfig::train(32, 1)).unwrap(),
        Loader::new(data, Transform::new(norm), LoaderConfig::eval(64)).unwrap(),
    )
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig { epochs, batch_size: 32, lr: 0.01, weight_decay: 5e-4, lr_steps: vec![], seed: 4, ..TrainConfig::default() }
}

/// The signature that the signs of the model's passport-derived γ carry.
fn own_signs(model: &AlexNet) -> Vec<LayerSignature> {
    model
        .blocks()
        .into_iter()
        .filter_map(|(path, b)| {
            let g = values(b.passport_gamma_beta()?.0);
            Some(LayerSignature { path, signature: Signature { bits: g.iter().map(|v| if *v >= 0.0 { 1 } else { -1 }).collect(), text: None, bound_from: None } })
        })
        .collect()
}

#[test]
fn pruning_zeroes_the_smallest_weights_and_nothing_else() {
    let device = Device::flex();
    let (model, _) = tiny("4 = true\n", &device);
    let before = params(&model);
    let none = params(&prune_weights(model.clone(), 0.0));
    assert_eq!(none, before, "pruning 0% changes nothing");
    let all = params(&prune_weights(model.clone(), 100.0));
    let half = params(&prune_weights(model, 50.0));
    let (mut weights, mut zero_half) = (0usize, 0usize);
    for (((path, b), (_, a)), (_, h)) in before.iter().zip(&all).zip(&half) {
        if is_weight(path, b.len()) {
            assert!(a.iter().all(|v| *v == 0.0), "{path}: pruning 100% must zero every weight");
            weights += b.len();
            zero_half += h.iter().filter(|v| **v == 0.0).count();
        } else {
            assert_eq!(a, b, "{path}: norms, biases and passports are not pruned");
        }
    }
    let ratio = zero_half as f64 / weights as f64;
    assert!((ratio - 0.5).abs() < 0.01, "pruning 50% zeroed {ratio}");
}

#[test]
fn flipping_every_gamma_negates_it_and_the_signature() {
    let device = Device::flex();
    let (model, _) = tiny("4 = true\n5 = true\n", &device);
    let signs = own_signs(&model);
    let gamma = |m: &AlexNet| -> Vec<f32> { m.blocks().iter().filter(|(p, _)| p == "4" || p == "5").flat_map(|(_, b)| values(b.gamma().unwrap())).collect() };
    let genuine = gamma(&model.clone().fold_route(Route::Private));
    let none = flip_gammas(model.clone(), 0.0, 1);
    let all = flip_gammas(model.clone(), 1.0, 1);
    assert_eq!(gamma(&none), genuine);
    let negated: Vec<f32> = genuine.iter().map(|g| -g).collect();
    assert_eq!(gamma(&all), negated);
    assert_eq!(ipr_verify::check_signatures(&none, &signs).agreement, 1.0);
    assert_eq!(ipr_verify::check_signatures(&all, &signs).agreement, 0.0);
    let half = ipr_verify::check_signatures(&flip_gammas(model, 0.5, 1), &signs).agreement;
    assert!((half - 0.5).abs() < 0.02, "flipping half leaves {half}");
}

#[test]
fn flipped_signatures_flip_exactly_the_fraction() {
    let device = Device::flex();
    let (_, owner) = tiny("4 = true\n5 = true\n6 = true\n", &device);
    let total: usize = owner.iter().map(|l| l.signature.len()).sum();
    for flip in [0.0, 0.1, 0.5, 1.0] {
        let forged = flipped_signatures(&owner, flip, 7);
        let differ: usize = owner
            .iter()
            .zip(&forged)
            .map(|(a, b)| a.signature.bits.iter().zip(&b.signature.bits).filter(|(x, y)| x != y).count())
            .sum();
        assert_eq!(differ, (flip * total as f64).round() as usize);
    }
}

#[test]
fn erb_shapes_and_identity_at_the_start() {
    let device = Device::flex();
    let gamma = Tensor::<1>::from_floats([0.5, -1.0, 2.0, 0.1, -0.3, 0.7, 1.1, -2.0, 0.0, 0.4, 0.9, -0.8, 0.2, 0.3, -0.6, 1.5], &device);
    let ierb = Erb::new(ErbKind::Ierb, 16, &device);
    assert_eq!((ierb.w1.dims(), ierb.b1.dims(), ierb.w2.dims(), ierb.b2.dims()), ([16, 10], [16, 10], [16, 10], [16]));
    let cerb = Erb::new(ErbKind::Cerb, 16, &device);
    assert_eq!((cerb.w1.dims(), cerb.b1.dims(), cerb.w2.dims(), cerb.b2.dims()), ([16, 2], [1, 2], [2, 16], [16]));
    for erb in [&ierb, &cerb] {
        let out = erb.forward(gamma.clone());
        assert_eq!(out.dims(), [16]);
        assert_eq!(values(out), values(gamma.clone()), "the ERB starts as the identity");
    }
    // An IERB moves each channel on its own: a change to channel 3's output row moves channel 3 only.
    let mut moved = Erb::new(ErbKind::Ierb, 16, &device);
    let mut w2 = vec![0.0f32; 160];
    w2[30..40].fill(1.0);
    moved.w2 = Param::from_tensor(Tensor::<1>::from_floats(w2.as_slice(), &device).reshape([16, 10]));
    let (before, after) = (values(gamma.clone()), values(moved.forward(gamma)));
    let changed: Vec<usize> = (0..16).filter(|&i| before[i] != after[i]).collect();
    assert_eq!(changed, vec![3], "channel 3, and only channel 3, moves");
}

#[test]
fn attack_3_changes_only_the_passports() {
    let device = Device::flex().autodiff();
    let (model, owner) = tiny("4 = true\n5 = \"a\"\n", &device);
    let before = params(&model.valid());
    let target = flipped_signatures(&owner, 0.1, 3);
    let (train, test) = loaders();
    let dir = tempfile::tempdir().unwrap();
    let c = TrainConfig { grad_clip: Some(2.0), ..config(2) };
    let out = optimise_passport(model, &owner, &target, &Run { config: &c, data: TrainData { train: &train, test: &test }, device: &device, dir: dir.path() }).unwrap();
    assert_eq!(out.probes.len(), 2);
    assert!(out.probes.iter().all(|p| p.cosine > 0.0 && p.cosine <= 1.0 + 1e-9), "{:?}", out.probes);
    let after = params(&out.model.valid());
    let mut changed = 0;
    for ((path, b), (_, a)) in before.iter().zip(&after) {
        if path.ends_with("key") {
            changed += usize::from(a != b);
        } else {
            assert_eq!(a, b, "{path} changed, but attack 3 trains only passports");
        }
    }
    assert_eq!(changed, 4, "every passport (key and skey of two layers) is trained");
}

#[test]
fn attack_2_trains_only_the_passport_layers_norm_affine() {
    let device = Device::flex().autodiff();
    let (model, owner) = tiny("4 = true\n", &device);
    let copy = params(&model.valid().fold_route(Route::Public));
    let target = flipped_signatures(&owner, 0.5, 3);
    let (train, test) = loaders();
    let dir = tempfile::tempdir().unwrap();
    let out = reverse(model, &owner, &target, &Run { config: &config(1), data: TrainData { train: &train, test: &test }, device: &device, dir: dir.path() }).unwrap();
    let after = params(&out.model.valid());
    for ((path, b), (_, a)) in copy.iter().zip(&after) {
        if path.starts_with("features.4.bn.") && !path.contains("running") {
            assert_ne!(a, b, "{path} trains");
        } else {
            assert_eq!(a, b, "{path} changed, but attack 2 trains only γ/β of the passport layers");
        }
    }
    assert_eq!(out.probes.len(), 1);
}

#[test]
fn substitution_reads_the_forgers_signature_before_the_erb() {
    let device = Device::flex().autodiff();
    let (model, owner) = tiny("4 = true\n5 = true\n", &device);
    let target = flipped_signatures(&owner, 0.5, 3);
    let paths = vec!["4".to_string(), "5".to_string()];
    let setup = substitute_setup(model.clone(), ErbKind::Cerb, &target, &device).unwrap();
    assert_eq!(dissimilarity(&raw_gammas(&setup, &paths), &owner), 0.5, "γ_raw starts with the forger's signs");
    let conv_before: Vec<_> = params(&model.valid()).into_iter().filter(|(p, v)| is_weight(p, v.len())).collect();
    let (train, test) = loaders();
    let dir = tempfile::tempdir().unwrap();
    // Two epochs: the second resumes from a checkpoint holding the ERBs.
    let out = substitute(model, ErbKind::Ierb, &owner, &target, &Run { config: &config(2), data: TrainData { train: &train, test: &test }, device: &device, dir: dir.path() }).unwrap();
    let conv_after: Vec<_> = params(&out.model.valid()).into_iter().filter(|(p, v)| is_weight(p, v.len()) && !p.contains("erb")).collect();
    assert_eq!(conv_before, conv_after, "conv and linear weights stay frozen");
    assert!(params(&out.model.valid()).iter().any(|(p, _)| p.contains("erb")), "the ERB is part of the model");
    assert_eq!(out.probes.len(), 2);
    assert!(out.probes[1].dissimilarity > 0.3, "{:?}", out.probes);
}

#[test]
fn rtal_resets_the_head_for_the_target_classes() {
    let device = Device::flex().autodiff();
    let (model, owner) = tiny("4 = true\n", &device);
    let passports = LayerPassports::of(&model.valid());
    let (train, test) = loaders();
    let dir = tempfile::tempdir().unwrap();
    let out = finetune(model, FinetuneMode::Rtal, 4, &passports, &owner, &Run { config: &config(1), data: TrainData { train: &train, test: &test }, device: &device, dir: dir.path() }).unwrap();
    assert!(out.model.blocks().iter().all(|(_, b)| !b.is_passport()), "the attacker's copy has no passport");
    let probe = &out.probes[0];
    assert!(probe.norm_detection.is_some() && probe.passport_detection > 0.0);
    let reset = out.model.valid().reset_head(7, &Device::flex());
    assert_eq!(reset.forward(Tensor::zeros([2, 1, 32, 32], &Device::flex())).logits.dims(), [2, 7]);
}
