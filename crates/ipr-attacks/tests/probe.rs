//! Training one epoch at a time through the probe driver is the same run as one call of the
//! training loop (its own test binary: it compares two runs, so no other test may draw from the
//! shared random generator meanwhile).

use std::sync::Arc;

use burn::prelude::*;
use ipr_attacks::train_probed;
use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig, weights_digest};
use ipr_schemes::{PassportObjective, TrainConfig, TrainData, train};

#[test]
fn probed_training_equals_one_call_and_resumes_its_probes() {
    let data = Arc::new(synthetic(&SyntheticConfig { n: 64, height: 32, width: 32, num_classes: 4, seed: 1, ..Default::default() }).unwrap());
    let norm = Normalization { mean: vec![0.5], std: vec![0.25] };
    let train_loader = Loader::new(data.clone(), Transform::new(norm.clone()), LoaderConfig::train(32, 1)).unwrap();
    let test_loader = Loader::new(data, Transform::new(norm), LoaderConfig::eval(64)).unwrap();
    let mut net = NetConfig::new(Arch::Alexnet, 4);
    (net.in_channels, net.width) = (1, 0.125);
    let device = Device::flex().autodiff();
    let build = || {
        device.seed(9);
        AlexNet::init(&net, &Layout::none(), &device).unwrap()
    };
    let objective = PassportObjective::new(&[], 0.0, &device);
    let config = TrainConfig { epochs: 3, batch_size: 32, lr_steps: vec![], seed: 2, ..TrainConfig::default() };
    let data = || TrainData { train: &train_loader, test: &test_loader };

    let one = tempfile::tempdir().unwrap();
    let whole = train(build(), &objective, &[], &config, data(), &device, one.path()).unwrap();
    let stepped = tempfile::tempdir().unwrap();
    let mut calls = 0;
    let mut probe = |m: &AlexNet| {
        calls += 1;
        weights_digest(m)
    };
    let out = train_probed(build(), &objective, &[], &config, data(), &device, stepped.path(), &mut probe).unwrap();
    assert_eq!(weights_digest(&out.model.valid()), weights_digest(&whole.model.valid()));
    // Earlier rows come back from the checkpoint's JSON, exact to about 1e-15.
    assert_eq!(out.history.len(), whole.history.len());
    for (a, b) in out.history.iter().zip(&whole.history) {
        assert_eq!((a.epoch, a.train_acc, a.test_acc), (b.epoch, b.train_acc, b.test_acc));
        assert!((a.train_loss - b.train_loss).abs() < 1e-12 && (a.test_loss - b.test_loss).abs() < 1e-12, "{a:?} vs {b:?}");
    }
    assert_eq!(out.probes.len(), 3);
    assert_eq!(out.probes[2], weights_digest(&whole.model.valid()));
    assert_eq!(calls, 3);
    // Run again: every epoch and probe is on disk, so nothing is measured again.
    let mut again = |_: &AlexNet| -> String { panic!("a complete run measures nothing again") };
    let rerun = train_probed(build(), &objective, &[], &config, data(), &device, stepped.path(), &mut again).unwrap();
    assert_eq!(rerun.probes, out.probes);
}
