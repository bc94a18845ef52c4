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

/// burn lists every tensor of a record that does not fit, which for a record of another model
/// is every tensor: the error keeps the file, the cause and the way out, and stays short.
#[test]
fn record_of_another_model_is_a_short_error_naming_the_file() {
    use ipr_models::{StoreError, load_module_bytes, save_module};
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet.bpk");
    save_module(&ResNet::init(&config(Arch::Resnet18, 0.125), &Layout::none(), &device).unwrap(), &path).unwrap();
    let alexnet = AlexNet::init(&config(Arch::Alexnet, 0.125), &Layout::none(), &device).unwrap();
    let err = load_module_bytes(alexnet, std::fs::read(&path).unwrap(), &path).unwrap_err();
    assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("resnet.bpk") && msg.contains("another architecture") && msg.contains('…'), "{msg}");
    assert!(msg.chars().count() < 600, "{} characters: {msg}", msg.chars().count());
}

/// The bytes-level bundle parser (what the fuzz target drives) names the file in its errors.
#[test]
fn bundle_json_errors_name_the_file() {
    use ipr_models::OwnerBundle;
    let path = std::path::Path::new("/d/owner.json");
    for bad in [&b"{"[..], b"[]", b"{\"format\": 7}", b"\xff"] {
        let msg = OwnerBundle::from_json(bad, path).unwrap_err().to_string();
        assert!(msg.contains("/d/owner.json") && msg.contains("not an owner bundle"), "{msg}");
    }
}

/// A private owner bundle of a tiny AlexNet (passports of features 4, 5, 6) as JSON.
fn private_bundle_json() -> serde_json::Value {
    use ipr_models::{BUNDLE_FORMAT, LayerPassports, OwnerBundle};
    let mut cfg = config(Arch::Alexnet, 1.0 / 32.0);
    cfg.in_channels = 1;
    let layout = Layout::parse("4 = true\n5 = true\n6 = true\n", "t").unwrap().with_private(true);
    let model = AlexNet::init(&cfg, &layout, &Device::flex()).unwrap();
    let bundle = OwnerBundle {
        format: BUNDLE_FORMAT,
        scheme: ipr_models::Scheme::V2,
        model: cfg,
        layers: vec![],
        weights_sha256: String::new(),
        passports: LayerPassports::of(&model),
        owner: None,
    };
    serde_json::to_value(&bundle).unwrap()
}

/// Found by review and reproduced with the `bundle` fuzz target: passports with a side of 0
/// (and no values, so that they "filled" their shape) reached the verifier's convolution,
/// where burn's output-size arithmetic underflows (a panic with overflow checks, a huge
/// allocation without).
#[test]
fn bundle_with_an_empty_passport_side_is_an_error_naming_the_layer() {
    use ipr_models::{BundleError, OwnerBundle};
    let path = std::path::Path::new("/d/owner.json");
    for shape in [[1, 6, 1, 0], [0, 6, 8, 8], [1, 0, 8, 8]] {
        let mut json = private_bundle_json();
        json["passports"][0]["shape"] = serde_json::json!(shape);
        json["passports"][0]["key"] = serde_json::json!([]);
        json["passports"][0]["skey"] = serde_json::json!([]);
        let err = OwnerBundle::from_json(&serde_json::to_vec(&json).unwrap(), path).unwrap_err();
        assert!(matches!(err, BundleError::Malformed { .. }), "{shape:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("/d/owner.json") && msg.contains("layer `4`") && msg.contains("at least 1"), "{msg}");
    }
}

/// Found by review and reproduced with the `bundle` fuzz target: a passport shape whose size
/// overflows `usize` (`[2^32, 2^32, 1, 1]`) panicked computing it with overflow checks, and
/// wrapped to 0 without, passing an empty passport off as a huge one.
#[test]
fn bundle_with_a_passport_shape_overflowing_usize_is_an_error() {
    use ipr_models::OwnerBundle;
    let path = std::path::Path::new("/d/owner.json");
    let mut json = private_bundle_json();
    json["passports"][1]["shape"] = serde_json::json!([1u64 << 32, 1u64 << 32, 1, 1]);
    json["passports"][1]["key"] = serde_json::json!([]);
    json["passports"][1]["skey"] = serde_json::json!([]);
    let msg = OwnerBundle::from_json(&serde_json::to_vec(&json).unwrap(), path).unwrap_err().to_string();
    assert!(msg.contains("/d/owner.json") && msg.contains("layer `5`") && msg.contains("fit in memory"), "{msg}");
    // Values that do not fill a valid shape, and private statistics of two lengths.
    let mut json = private_bundle_json();
    json["passports"][2]["key"].as_array_mut().unwrap().pop();
    let msg = OwnerBundle::from_json(&serde_json::to_vec(&json).unwrap(), path).unwrap_err().to_string();
    assert!(msg.contains("layer `6`") && msg.contains("values"), "{msg}");
    let mut json = private_bundle_json();
    json["passports"][0]["running_var"].as_array_mut().unwrap().pop();
    let msg = OwnerBundle::from_json(&serde_json::to_vec(&json).unwrap(), path).unwrap_err().to_string();
    assert!(msg.contains("layer `4`") && msg.contains("variances"), "{msg}");
    // The bundle as written loads, its scheme written as before the scheme was typed.
    assert_eq!(private_bundle_json()["scheme"], "v2");
    assert!(OwnerBundle::from_json(&serde_json::to_vec(&private_bundle_json()).unwrap(), path).is_ok());
}

/// Found with the `record` fuzz target: a record whose tensor holds `i32` values of the right
/// shape (as a damaged or hand-made file can) made burn panic applying it ("Expected float
/// dtype, got I32") instead of the verifier refusing the file.
#[test]
fn record_with_a_tensor_of_another_element_type_is_an_error_naming_the_file() {
    use ipr_models::{StoreError, load_module_bytes, save_module};
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    let cfg = config(Arch::Alexnet, 1.0 / 32.0);
    save_module(&AlexNet::init(&cfg, &Layout::none(), &device).unwrap(), &path).unwrap();
    let bytes = burn::tensor::Bytes::from_bytes_vec(std::fs::read(&path).unwrap());
    let mut tensors = burn_pack::Reader::from_bytes(bytes).unwrap().into_tensors().unwrap();
    let victim = tensors.iter_mut().find(|t| t.name == "features.0.conv.weight").unwrap();
    victim.dtype = burn::tensor::DType::I32; // same size as f32: the bytes still fill the shape
    let damaged = burn_pack::Writer::new(tensors).into_bytes().unwrap().to_vec();

    let fresh = AlexNet::init(&cfg, &Layout::none(), &device).unwrap();
    let err = load_module_bytes(fresh, damaged, &path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("model.bpk") && msg.contains("features.0.conv.weight") && msg.contains("I32"), "{msg}");
}

/// A "trained" AlexNet without passports: every norm given a scale of either sign and a shift,
/// as training leaves them.
fn trained_alexnet(width: f64, device: &Device) -> AlexNet {
    let net = AlexNet::init(&config(Arch::Alexnet, width), &Layout::none(), device).unwrap();
    net.try_map_blocks::<std::convert::Infallible>(&mut |_, mut block| {
        let c = block.out_channels();
        let random = |lo, hi| burn::module::Param::from_tensor(Tensor::<1>::random([c], burn::tensor::Distribution::Uniform(lo, hi), device));
        block.bn.weight = Some(random(-1.5, 1.5));
        block.bn.bias = Some(random(-0.5, 0.5));
        Ok(block)
    })
    .unwrap()
}

/// Retrofitted V1 and V2 models compute what the trained model computes, before and after the
/// signature is put into γ's signs, and their bound bits are the hash of their final passports.
#[test]
fn retrofitted_models_compute_the_trained_model_and_carry_a_bound_signature() {
    let device = Device::flex();
    device.seed(17);
    let trained = trained_alexnet(0.25, &device);
    let x = Tensor::<4>::random([4, 3, 32, 32], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let want = trained.forward(x.clone()).logits;
    let owner = ipr_models::PublicKey([9; 32]);
    for private in [false, true] {
        let layout = Layout::parse("4 = \"IPR\"\n5 = true\n6 = true\n", "layout.toml").unwrap().with_private(private).with_owner(Some(owner));
        let template = AlexNet::init(&config(Arch::Alexnet, 0.25), &layout, &device).unwrap();
        let (model, fits) = ipr_models::retrofit(trained.clone(), &template).unwrap();
        assert_eq!(fits.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["4", "5", "6"]);
        assert!(fits.iter().all(|(_, f)| f.scale_error < 1e-3 && f.shift_error < 1e-3), "{fits:?}");
        if private {
            // The public path of a private model is the trained model's, operation for operation.
            let public = model.forward(x.clone()).logits;
            public.into_data().assert_approx_eq::<f32>(&want.clone().into_data(), burn::tensor::Tolerance::absolute(1e-5));
        }
        let signatures = layout.signatures(&model, 1).unwrap();
        let (model, negated) = ipr_models::align_signs(model, &signatures).unwrap();
        assert!(negated > 0);
        let tolerance = burn::tensor::Tolerance::absolute(1e-3);
        for out in [model.forward_private(x.clone()).logits, model.forward(x.clone()).logits] {
            out.into_data().assert_approx_eq::<f32>(&want.clone().into_data(), tolerance);
        }
        for (path, signature) in &signatures {
            let (_, block) = model.blocks().into_iter().find(|(p, _)| p == path).unwrap();
            let (gamma, _) = block.passport_gamma_beta().unwrap();
            let gamma = gamma.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(ipr_passport::matching_bits(&gamma, signature), signature.len(), "layer {path}");
            let skey = block.skey.as_ref().unwrap().val();
            let shape = skey.dims();
            let skey = skey.into_data().try_to_vec::<f32>().unwrap();
            let (agree, total) = signature.binding(&owner.0, path, ipr_passport::PassportValues { shape, skey: &skey }).unwrap();
            assert_eq!(agree, total, "layer {path}: the bits are the hash of the final scale passport");
        }
    }
}

#[test]
fn retrofit_of_another_width_or_of_a_passport_model_is_refused() {
    let device = Device::flex();
    let layout = Layout::parse("4 = true\n", "layout.toml").unwrap();
    let template = AlexNet::init(&config(Arch::Alexnet, 0.25), &layout, &device).unwrap();
    let err = ipr_models::retrofit(trained_alexnet(0.5, &device), &template).unwrap_err().to_string();
    assert!(err.contains("another width"), "{err}");
    let err = ipr_models::retrofit(template.clone(), &template).unwrap_err().to_string();
    assert!(err.contains("passport layer `4` already") && err.contains("v0"), "{err}");
}
