//! The training loop on a small synthetic task: it learns, it writes the signature, and an
//! interrupted run resumes to the same result as an uninterrupted one.

use std::sync::Arc;

use burn::prelude::*;
use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
use ipr_models::{AlexNet, Arch, LayerSignature, Layout, Net, NetConfig, weights_digest};
use ipr_schemes::{PassportObjective, Run, TrainConfig, TrainData, train};
use ipr_verify::check_signatures;

struct Setup {
    train: Loader,
    test: Loader,
    config: NetConfig,
    layout: Layout,
}

fn setup() -> Setup {
    let data = |seed| {
        Arc::new(
            synthetic(&SyntheticConfig {
                n: 256,
                height: 32,
                width: 32,
                num_classes: 4,
                seed,
                ..SyntheticConfig::default()
            })
            .unwrap(),
        )
    };
    let norm = Normalization { mean: vec![0.5], std: vec![0.25] };
    let mut config = NetConfig::new(Arch::Alexnet, 4);
    (config.in_channels, config.width) = (1, 0.125);
    Setup {
        train: Loader::new(data(1), Transform::new(norm.clone()), LoaderConfig::train(32, 3)).unwrap(),
        test: Loader::new(data(1), Transform::new(norm), LoaderConfig::eval(128)).unwrap(),
        config,
        layout: Layout::parse("4 = \"IPR\"\n5 = true\n", "test").unwrap(),
    }
}

fn run(s: &Setup, epochs: usize, dir: &std::path::Path) -> (String, Vec<ipr_schemes::EpochRow>, Vec<LayerSignature>, AlexNet) {
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = AlexNet::init(&s.config, &s.layout, &device).unwrap();
    let signatures: Vec<LayerSignature> = s
        .layout
        .signatures(&model, 9)
        .unwrap()
        .into_iter()
        .map(|(path, signature)| LayerSignature { path, signature })
        .collect();
    let objective = PassportObjective::new(&signatures, 0.1, &device);
    let config = TrainConfig { epochs, batch_size: 32, lr: 0.01, lr_steps: vec![10], seed: 3, ..TrainConfig::default() };
    let data = TrainData { train: &s.train, test: &s.test };
    let out = train(model, &objective, &signatures, &Run { config: &config, data, device: &device, dir }).unwrap();
    (weights_digest(&out.model.valid()), out.history, signatures, out.model)
}

#[test]
fn learns_embeds_the_signature_and_resumes_identically() {
    let _serial = crate::serial();
    let s = setup();
    let full = tempfile::tempdir().unwrap();
    let (digest_full, history_full, signatures, model) = run(&s, 12, full.path());
    let last = history_full.last().unwrap();
    assert!(last.test_acc > 0.6, "test accuracy {} on a 4-class task", last.test_acc);
    let det = check_signatures(&model.valid(), &signatures);
    assert_eq!(det.matched, det.total, "{det:?}");
    assert_eq!(det.layers[0].decoded.as_deref(), Some("IPR"));
    assert!(history_full[10].lr < history_full[9].lr, "lr steps at epoch 10");

    // Interrupted after three epochs, then run again with the full budget.
    let split = tempfile::tempdir().unwrap();
    run(&s, 3, split.path());
    let (digest_resumed, history_resumed, _, _) = run(&s, 12, split.path());
    assert_eq!(digest_resumed, digest_full, "resumed weights differ from an uninterrupted run");
    for (a, b) in history_resumed.iter().zip(&history_full) {
        assert_eq!(a.test_acc, b.test_acc);
        assert_eq!(a.train_loss, b.train_loss);
    }
    let csv = std::fs::read_to_string(split.path().join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13, "{csv}");
    // Only the last epoch's checkpoint is kept.
    let ckpt: Vec<String> = std::fs::read_dir(split.path().join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(ckpt.contains(&"epoch-12.bpk".to_string()) && !ckpt.contains(&"epoch-1.bpk".to_string()), "{ckpt:?}");

    // A checkpoint damaged on disk is an error naming the file and the way out, not a panic and
    // not a silent restart. (Here, in the same test: tests of one binary share the RNG.)
    let file = split.path().join("checkpoint/epoch-12.bpk");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let device = Device::flex().autodiff();
    let model = AlexNet::init(&s.config, &s.layout, &device).unwrap();
    let objective = PassportObjective::new(&[], 0.1, &device);
    let config = TrainConfig { epochs: 13, batch_size: 32, seed: 3, ..TrainConfig::default() };
    let data = TrainData { train: &s.train, test: &s.test };
    let Err(err) = train(model, &objective, &[], &Run { config: &config, data, device: &device, dir: split.path() }) else {
        panic!("a truncated checkpoint was accepted")
    };
    let msg = err.to_string();
    assert!(msg.contains("epoch-12.bpk") && msg.contains("to train the stage from the start"), "{msg}");
}

