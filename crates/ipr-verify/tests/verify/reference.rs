//! Reading state dicts of the PyTorch reference implementation: the fixtures in
//! `tests/fixtures/` (see its README) load into our models with the reference's γ, β,
//! detection rates and eval-mode logits, and bad files end in errors naming the file.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ipr_models::{AlexNet, Arch, Net, ResNet};
use ipr_passport::{NormKind, detection_rate};
use ipr_verify::{Binding, Claim, ClaimCheck, Evidence, ReferenceError, ReferenceInfo, Thresholds, check_signatures, inspect_reference, load_reference, verify};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Our block path of a reference module name (`features.4` → `4`).
fn our_path(reference: &str) -> &str {
    reference.strip_prefix("features.").unwrap_or(reference)
}

/// Inspects and loads a fixture and checks everything its JSON records.
fn check_fixture<M: Net>(name: &str, arch: Arch, width: f64, passports: &[&str]) {
    let json = expected(name);
    let scheme = json["scheme"].as_str().unwrap();
    let path = fixture(&format!("{name}.pth"));
    let info = inspect_reference(&path).unwrap();
    assert_eq!(info.config.arch, arch, "{name}");
    assert_eq!(info.config.width, width, "{name}");
    assert_eq!(info.config.num_classes, 10, "{name}");
    assert_eq!(info.config.in_channels, 3, "{name}");
    assert_eq!(info.config.input_size, 32, "{name}");
    assert_eq!(info.config.norm, NormKind::Bn, "{name}");
    assert_eq!(info.scheme.name(), scheme, "{name}");
    assert_eq!(info.passport_paths, passports, "{name}");

    let device = Device::flex();
    let model: M = load_reference(&path, &info, &device).unwrap();
    assert_eq!(model.passport_paths(), passports, "{name}");
    assert_eq!(model.is_private(), scheme == "v2", "{name}");
    // The reference's signatures are random bits: the verdict says they are unbound and unsigned.
    let verdict = verify(&model, &Claim::new(&info.signatures), &Evidence::default(), &Thresholds::default()).unwrap();
    assert_eq!((&verdict.binding, &verdict.claim_signature), (&Binding::Unbound, &ClaimCheck::Unsigned), "{name}");
    assert!(verdict.reasons.iter().any(|r| r.contains("unbound")), "{name}: {:?}", verdict.reasons);

    let layers = json["layers"].as_object().unwrap();
    assert_eq!(layers.len(), passports.len(), "{name}");
    let report = check_signatures(&model, &info.signatures);
    for (reference, layer) in layers {
        let path = our_path(reference);
        let (_, block) = model.blocks().into_iter().find(|(p, _)| p == path).unwrap();
        let (gamma, beta) = block.passport_gamma_beta().unwrap();
        let (gamma, beta) = (values(gamma), values(beta));
        assert!(max_diff(&gamma, &floats(&layer["gamma"])) < 1e-4, "{name} {path}: γ");
        assert!(max_diff(&beta, &floats(&layer["beta"])) < 1e-4, "{name} {path}: β");

        let signature = &info.signatures.iter().find(|s| s.path == path).unwrap().signature;
        let bits: Vec<i8> = floats(&layer["bits"]).iter().map(|&b| b as i8).collect();
        assert_eq!(signature.bits, bits, "{name} {path}: bits");
        let detection = layer["detection"].as_f64().unwrap();
        assert_eq!(detection_rate(&gamma, signature), detection as f32, "{name} {path}: detection");
        let from_report = report.layers.iter().find(|l| l.path == path).unwrap();
        assert!((from_report.rate - detection).abs() < 1e-6, "{name} {path}: {} vs {detection}", from_report.rate);

        if scheme == "v2" {
            let scale = values(block.bn.weight.as_ref().unwrap().val());
            let bias = values(block.bn.bias.as_ref().unwrap().val());
            assert_eq!(scale, floats(&layer["public_scale"]), "{name} {path}: γ_pub");
            assert_eq!(bias, floats(&layer["public_bias"]), "{name} {path}: β_pub");
        }
    }

    let shape: Vec<usize> =
        json["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let x = Tensor::<4>::from_data(TensorData::new(floats(&json["input"]), shape), &device);
    let model = model.valid();
    let public = values(model.forward(x.clone()).logits);
    if scheme == "v1" {
        let diff = max_diff(&public, &floats(&json["logits"]));
        assert!(diff < 1e-3, "{name}: logits differ by {diff}");
    } else {
        let diff = max_diff(&public, &floats(&json["logits_public"]));
        assert!(diff < 1e-3, "{name}: public logits differ by {diff}");
        let private = values(model.forward_private(x).logits);
        let diff = max_diff(&private, &floats(&json["logits_private"]));
        assert!(diff < 1e-3, "{name}: private logits differ by {diff}");
    }
}

const RESNET_PASSPORTS: [&str; 5] =
    ["layer4.0.convbnrelu_1", "layer4.0.convbn_2", "layer4.0.shortcut", "layer4.1.convbnrelu_1", "layer4.1.convbn_2"];

#[test]
fn alexnet_v1_loads_with_the_reference_values() {
    check_fixture::<AlexNet>("alexnet_v1", Arch::Alexnet, 0.5, &["4", "5", "6"]);
}

#[test]
fn alexnet_v2_loads_with_the_reference_values() {
    check_fixture::<AlexNet>("alexnet_v2", Arch::Alexnet, 0.5, &["4", "5", "6"]);
}

#[test]
fn resnet18_v1_loads_with_the_reference_values() {
    check_fixture::<ResNet>("resnet18_v1", Arch::Resnet18, 0.25, &RESNET_PASSPORTS);
}

#[test]
fn resnet18_v2_loads_with_the_reference_values() {
    check_fixture::<ResNet>("resnet18_v2", Arch::Resnet18, 0.25, &RESNET_PASSPORTS);
}

/// Asserts that `result` failed with a message naming `file` and containing `words`.
fn assert_error<T>(result: Result<T, ReferenceError>, file: &str, words: &[&str]) -> String {
    let Err(error) = result else { panic!("{file}: expected an error") };
    let message = error.to_string();
    assert!(message.contains(file), "{message}");
    for word in words {
        assert!(message.contains(word), "`{word}` missing from: {message}");
    }
    message
}

fn load_both(path: &Path, info: &ReferenceInfo) -> [Result<(), ReferenceError>; 2] {
    let device = Device::flex();
    [
        load_reference::<AlexNet>(path, info, &device).map(|_| ()),
        load_reference::<ResNet>(path, info, &device).map(|_| ()),
    ]
}

#[test]
fn broken_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let info = inspect_reference(&fixture("alexnet_v1.pth")).unwrap();
    let bytes = std::fs::read(fixture("alexnet_v1.pth")).unwrap();
    let cases: [(&str, &[u8]); 4] = [
        ("truncated.pth", &bytes[..bytes.len() / 2]),
        ("tail_cut.pth", &bytes[..bytes.len() - 100]),
        ("empty.pth", b""),
        ("notes.pth", b"these are not weights\n"),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        assert_error(inspect_reference(&path), name, &[]);
        for result in load_both(&path, &info) {
            assert_error(result, name, &[]);
        }
    }
    // Storage bytes overwritten: the archive still opens, but the data fails its checksum.
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 64].iter_mut().for_each(|b| *b = !*b);
    let path = dir.path().join("corrupt.pth");
    std::fs::write(&path, &corrupt).unwrap();
    for result in load_both(&path, &info) {
        assert_error(result, "corrupt.pth", &[]);
    }

    let message = assert_error(inspect_reference(&dir.path().join("empty.pth")), "empty.pth", &[]);
    assert!(message.contains("torch.save"), "{message}");
    assert_error(inspect_reference(&dir.path().join("missing.pth")), "missing.pth", &[]);
}

#[test]
fn a_checkpoint_loaded_as_another_model_is_an_error() {
    let device = Device::flex();
    let alexnet = fixture("alexnet_v1.pth");
    let resnet = fixture("resnet18_v1.pth");
    let alexnet_info = inspect_reference(&alexnet).unwrap();
    let resnet_info = inspect_reference(&resnet).unwrap();
    // The AlexNet file and its info, into a ResNet.
    assert_error(
        load_reference::<ResNet>(&alexnet, &alexnet_info, &device),
        "alexnet_v1.pth",
        &["AlexNet", "`ResNet`"],
    );
    // The ResNet file and its info, into an AlexNet.
    assert_error(
        load_reference::<AlexNet>(&resnet, &resnet_info, &device),
        "resnet18_v1.pth",
        &["ResNet-18", "`AlexNet`"],
    );
    // A ResNet-18 read as a ResNet-9: the second block of every stage is left over.
    let mut resnet9 = resnet_info.clone();
    resnet9.config.arch = Arch::Resnet9;
    resnet9.passport_paths.retain(|p| p.starts_with("layer4.0."));
    assert_error(load_reference::<ResNet>(&resnet, &resnet9, &device), "resnet18_v1.pth", &["`layer1.1."]);
    // The AlexNet file read with the ResNet's info.
    assert_error(
        load_reference::<ResNet>(&alexnet, &resnet_info, &device),
        "alexnet_v1.pth",
        &["convbnrelu_1.conv.weight"],
    );
}

#[test]
fn a_file_that_does_not_fit_the_info_names_the_key() {
    let device = Device::flex();
    let path = fixture("alexnet_v2.pth");
    let info = inspect_reference(&path).unwrap();

    let mut narrow = info.clone();
    narrow.config.width = 0.25;
    assert_error(load_reference::<AlexNet>(&path, &narrow, &device), "alexnet_v2.pth", &["`features.0.conv.weight`"]);

    let mut fewer = info.clone();
    fewer.passport_paths.pop();
    assert_error(load_reference::<AlexNet>(&path, &fewer, &device), "alexnet_v2.pth", &["`features.6.bn.weight`"]);

    let mut public = info.clone();
    public.scheme = ipr_models::Scheme::V1;
    assert_error(load_reference::<AlexNet>(&path, &public, &device), "alexnet_v2.pth", &["`features.4.key`"]);

    let mut classes = info;
    classes.config.num_classes = 100;
    assert_error(load_reference::<AlexNet>(&path, &classes, &device), "alexnet_v2.pth", &["`classifier.weight`"]);
}

/// A normal model saved by PyTorch (what a retrofit's `init` reads): found to be V0, every
/// parameter filled from the file, and PyTorch's eval-mode logits.
#[test]
fn alexnet_v0_loads_every_parameter_with_pytorchs_logits() {
    let json = expected("alexnet_v0");
    let path = fixture("alexnet_v0.pth");
    let info = inspect_reference(&path).unwrap();
    let c = &info.config;
    assert_eq!((c.arch, c.width, c.in_channels, c.num_classes, c.input_size, c.norm), (Arch::Alexnet, 0.125, 1, 10, 32, NormKind::Bn));
    assert_eq!(info.scheme.name(), "v0");
    assert!(info.passport_paths.is_empty() && info.signatures.is_empty());
    let device = Device::flex();
    let model: AlexNet = load_reference(&path, &info, &device).unwrap();
    let floats_in_file = json["state_dict"].as_array().unwrap().iter().filter(|e| e[2] == "float32").count();
    assert_eq!(ipr_models::param_paths(&model).len(), floats_in_file, "one parameter per float tensor of the file");
    let shape: Vec<usize> = json["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let x = Tensor::<4>::from_data(TensorData::new(floats(&json["input"]), shape), &device);
    let logits = values(model.valid().forward(x).logits);
    let diff = max_diff(&logits, &floats(&json["logits"]));
    assert!(diff < 1e-4, "logits differ by {diff}");
}
