//! Shapes, paths and passport sampling of the model zoo.

use burn::prelude::*;
use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig, ResNet, param_paths, sample_passports};
use rand::SeedableRng;

fn config(arch: Arch, width: f64) -> NetConfig {
    let mut c = NetConfig::new(arch, 10);
    c.width = width;
    c
}

#[test]
fn alexnet_paths_mirror_the_reference_state_dict() {
    let device = Device::flex();
    let layout = Layout::parse("4 = true\n5 = true\n6 = true\n", "alexnet.toml").unwrap();
    let net = AlexNet::init(&config(Arch::Alexnet, 0.25), &layout, &device).unwrap();
    let paths: Vec<String> = param_paths(&net).into_iter().map(|(p, _)| p).collect();
    for want in [
        "features.0.conv.weight",
        "features.0.bn.weight",
        "features.0.bn.running_var",
        "features.4.conv.weight",
        "features.4.key",
        "features.4.skey",
        "features.6.bn.running_mean",
        "classifier.weight",
    ] {
        assert!(paths.iter().any(|p| p == want), "missing {want} in {paths:?}");
    }
    // A passport layer's norm is not affine.
    assert!(!paths.iter().any(|p| p == "features.4.bn.weight"));
}

#[test]
fn resnet18_blocks_and_shapes() {
    let device = Device::flex();
    let layout = Layout::parse(
        "[layer4.0]\nconvbnrelu_1 = true\nconvbn_2 = true\nshortcut = \"IPR\"\n[layer4.1]\nconvbnrelu_1 = true\nconvbn_2 = true\n",
        "resnet18.toml",
    )
    .unwrap();
    let net = ResNet::init(&config(Arch::Resnet18, 0.125), &layout, &device).unwrap();
    assert_eq!(net.blocks().len(), 1 + 4 * 4 + 3);
    assert_eq!(
        net.passport_paths(),
        ["layer4.0.convbnrelu_1", "layer4.0.convbn_2", "layer4.0.shortcut", "layer4.1.convbnrelu_1", "layer4.1.convbn_2"]
    );
    let paths: Vec<String> = param_paths(&net).into_iter().map(|(p, _)| p).collect();
    assert!(paths.iter().any(|p| p == "layer4.0.shortcut.key"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "layer2.0.shortcut.conv.weight"));
    let out = net.forward(Tensor::zeros([2, 3, 32, 32], &device));
    assert_eq!(out.logits.dims(), [2, 10]);
    assert_eq!(out.gammas.len(), 5);
    // Passport of layer4.0.convbnrelu_1 is shaped like its input: [1, 32, 8, 8] at width 1/8.
    let (_, block) = net.blocks().into_iter().find(|(p, _)| p == "layer4.0.convbnrelu_1").unwrap();
    assert_eq!(block.skey.as_ref().unwrap().val().dims(), [1, 32, 8, 8]);
}

#[test]
fn resnet9_and_224_variants_run() {
    let device = Device::flex();
    let net = ResNet::init(&config(Arch::Resnet9, 0.125), &Layout::none(), &device).unwrap();
    assert_eq!(net.blocks().len(), 1 + 4 * 2 + 3);
    let mut c = config(Arch::Alexnet, 0.125);
    c.input_size = 224;
    let alex = AlexNet::init(&c, &Layout::none(), &device).unwrap();
    assert_eq!(alex.forward(Tensor::zeros([1, 3, 224, 224], &device)).logits.dims(), [1, 10]);
    let mut c = config(Arch::Resnet18, 0.125);
    c.input_size = 224;
    let res = ResNet::init(&c, &Layout::none(), &device).unwrap();
    assert_eq!(res.forward(Tensor::zeros([1, 3, 224, 224], &device)).logits.dims(), [1, 10]);
}

#[test]
fn unknown_layout_path_is_an_error_listing_valid_paths() {
    let layout = Layout::parse("[layer5.0]\nconvbn_2 = true\n", "resnet18.toml").unwrap();
    let err = ResNet::init(&config(Arch::Resnet18, 0.125), &layout, &Device::flex()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("layer5.0.convbn_2") && msg.contains("layer4.1.convbn_2"), "{msg}");
}

#[test]
fn text_signature_too_long_for_its_layer() {
    let layout = Layout::parse("4 = \"this text is far too long\"\n", "alexnet.toml").unwrap();
    let net = AlexNet::init(&config(Arch::Alexnet, 0.125), &layout, &Device::flex()).unwrap();
    let err = layout.signatures(&net, 1).unwrap_err().to_string();
    assert!(err.contains("`4`") && err.contains("48 channels") && err.contains("at most 6"), "{err}");
}

#[test]
fn sampled_passports_are_pretrained_activations() {
    let device = Device::flex();
    let cfg = config(Arch::Alexnet, 0.25);
    let pretrained = AlexNet::init(&cfg, &Layout::none(), &device).unwrap();
    let layout = Layout::parse("0 = true\n4 = true\n", "alexnet.toml").unwrap();
    let target = AlexNet::init(&cfg, &layout, &device).unwrap();
    let images = |seed| {
        device.seed(seed);
        Tensor::<4>::random([20, 3, 32, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &device)
    };
    let (ig, ib) = (images(1), images(2));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let target = sample_passports(target, &pretrained, ig.clone(), ib, &mut rng).unwrap();
    let blocks = target.blocks();
    // The input layer's scale passport is one whole image of the gamma sample.
    let skey0 = blocks[0].1.skey.as_ref().unwrap().val();
    assert_eq!(skey0.dims(), [1, 3, 32, 32]);
    let v = skey0.into_data().try_to_vec::<f32>().unwrap();
    let all = ig.into_data().try_to_vec::<f32>().unwrap();
    assert!(all.chunks(3 * 32 * 32).any(|img| img == v.as_slice()));
    // Layer 4's passport has its input's shape, [1, 48, 8, 8], and non-negative values (post-ReLU).
    let skey4 = blocks[2].1.skey.as_ref().unwrap().val();
    assert_eq!(skey4.dims(), [1, 48, 8, 8]);
    assert!(skey4.into_data().try_to_vec::<f32>().unwrap().iter().all(|&x| x >= 0.0));
}

#[test]
fn records_round_trip_and_bad_files_are_clear_errors() {
    use ipr_models::{load_module, save_module, weights_digest};
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::parse("4 = true\n", "alexnet.toml").unwrap();
    let cfg = config(Arch::Alexnet, 0.125);
    let net = AlexNet::init(&cfg, &layout, &device).unwrap();
    let path = dir.path().join("model.bpk");
    save_module(&net, &path).unwrap();
    let fresh = AlexNet::init(&cfg, &layout, &device).unwrap();
    assert_ne!(weights_digest(&fresh), weights_digest(&net));
    let loaded = load_module(fresh, &path).unwrap();
    assert_eq!(weights_digest(&loaded), weights_digest(&net));

    // Another architecture.
    let other = ResNet::init(&config(Arch::Resnet9, 0.125), &Layout::none(), &device).unwrap();
    let err = load_module(other, &path).unwrap_err().to_string();
    assert!(err.contains("model.bpk") && err.contains("another architecture"), "{err}");

    // Truncated.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.bpk");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let fresh = AlexNet::init(&cfg, &layout, &device).unwrap();
    let err = load_module(fresh, &cut).unwrap_err().to_string();
    assert!(err.contains("cut.bpk") && err.contains("truncated"), "{err}");
}
