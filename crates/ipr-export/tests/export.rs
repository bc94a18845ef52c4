//! Exports compared with the state dicts of the reference's PyTorch modules, listed in
//! `fixtures/reference_keys.json` by `fixtures/make_keys.py`: the same keys, shapes and dtypes,
//! read back from the written safetensors file.

use std::collections::BTreeMap;

use burn::prelude::*;
use ipr_export::{ExportError, ExportInfo, KeyStyle, metadata, state_dict, write};
use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig, ResNet, Scheme};
use ipr_passport::NormKind;

type Keys = BTreeMap<String, (Vec<usize>, String)>;

fn reference(name: &str) -> Keys {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_keys.json");
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[name]
        .as_array()
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .iter()
        .map(|e| {
            let shape = e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (e[0].as_str().unwrap().to_string(), (shape, e[2].as_str().unwrap().to_string()))
        })
        .collect()
}

/// Writes the export of `model` and reads back its keys, shapes and dtypes.
fn exported<M: Net>(model: &M, info: &ExportInfo) -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write(&state_dict(model, info, KeyStyle::Reference).unwrap(), metadata(model, info, KeyStyle::Reference), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().as_ref().unwrap();
    assert_eq!(meta["format"], "pt");
    assert_eq!(meta["arch"], info.config.arch.name());
    assert_eq!(meta["num_classes"], info.config.num_classes.to_string());
    assert_eq!(meta["mean"], "[0.5]");
    let passports = model.blocks().iter().any(|(_, b)| b.is_passport());
    assert_eq!(meta["module"].ends_with("Passport"), passports, "{meta:?}");
    file.tensors()
        .into_iter()
        .map(|(name, t)| {
            let dtype = match t.dtype() {
                safetensors::Dtype::F32 => "float32",
                safetensors::Dtype::I64 => "int64",
                other => panic!("{name}: {other:?}"),
            };
            (name, (t.shape().to_vec(), dtype.to_string()))
        })
        .collect()
}

fn info(arch: Arch, in_channels: usize, norm: NormKind, scheme: Scheme) -> ExportInfo {
    let mut config = NetConfig::new(arch, 10);
    (config.in_channels, config.norm) = (in_channels, norm);
    ExportInfo { config, scheme, mean: vec![0.5], std: vec![0.25] }
}

#[test]
fn normal_models_have_the_reference_keys_shapes_and_dtypes() {
    let device = Device::flex();
    for (fixture, norm, channels) in [
        ("alexnet_bn_in1", NormKind::Bn, 1),
        ("alexnet_gn_in1", NormKind::Gn, 1),
        ("alexnet_in_in1", NormKind::In, 1),
        ("alexnet_none_in1", NormKind::None, 1),
        ("alexnet_bn_in3", NormKind::Bn, 3),
    ] {
        let info = info(Arch::Alexnet, channels, norm, Scheme::V0);
        let model = AlexNet::init(&info.config, &Layout::none(), &device).unwrap();
        assert_eq!(exported(&model, &info), reference(fixture), "{fixture}");
    }
    for (fixture, arch, norm) in [("resnet18_bn", Arch::Resnet18, NormKind::Bn), ("resnet18_gn", Arch::Resnet18, NormKind::Gn), ("resnet9_bn", Arch::Resnet9, NormKind::Bn)] {
        let info = info(arch, 3, norm, Scheme::V0);
        let model = ResNet::init(&info.config, &Layout::none(), &device).unwrap();
        assert_eq!(exported(&model, &info), reference(fixture), "{fixture}");
    }
}

#[test]
fn a_v1_model_has_the_passport_keys_but_not_the_owners_signature() {
    let device = Device::flex();
    let info = info(Arch::Alexnet, 1, NormKind::Bn, Scheme::V1);
    let layout = Layout::parse("4 = true\n5 = true\n6 = true\n", "t").unwrap();
    let model = AlexNet::init(&info.config, &layout, &device).unwrap();
    let mut expected = reference("alexnet_v1_bn_in1");
    let signature: Vec<String> = expected.keys().filter(|k| k.ends_with(".b")).cloned().collect();
    assert_eq!(signature.len(), 6, "b and sign_loss.b of three layers");
    for k in &signature {
        expected.remove(k);
    }
    assert_eq!(exported(&model, &info), expected);
    // The conv weight's alias holds the same values, the linear weight is [out, in].
    let tensors = state_dict(&model, &info, KeyStyle::Reference).unwrap();
    let get = |n: &str| tensors.iter().find(|t| t.name == n).unwrap().data.clone();
    assert_eq!(get("features.4.weight"), get("features.4.conv.weight"));
}

#[test]
fn an_owners_private_model_and_an_unrepresentable_norm_are_refused() {
    let device = Device::flex();
    let info = info(Arch::Alexnet, 1, NormKind::Bn, Scheme::V2);
    let layout = Layout::parse("4 = true\n", "t").unwrap().with_private(true);
    let owner = AlexNet::init(&info.config, &layout, &device).unwrap();
    let err = state_dict(&owner, &info, KeyStyle::Reference).unwrap_err();
    assert!(matches!(err, ExportError::Private(Scheme::V2)) && err.to_string().contains("public.bpk"), "{err}");
    // The public model exports.
    assert!(state_dict(&owner.fold_route(ipr_passport::Route::Public), &info, KeyStyle::Reference).is_ok());
    // Instance norm with a learnt affine cannot be the reference's InstanceNorm2d.
    let info = self::info(Arch::Alexnet, 1, NormKind::In, Scheme::V0);
    let model = AlexNet::init(&info.config, &Layout::none(), &device).unwrap();
    let moved = model.try_map_blocks::<std::convert::Infallible>(&mut |_, mut b| {
        b.bn.weight = b.bn.weight.take().map(|w| burn::module::Param::from_tensor(w.val().mul_scalar(2.0)));
        Ok(b)
    }).unwrap();
    let err = state_dict(&moved, &info, KeyStyle::Reference).unwrap_err();
    assert!(matches!(err, ExportError::InstanceAffine(_)), "{err}");
}
