//! The epoch hook: training with a measurement after every epoch is the same run as training
//! without one, and a resumed run hands back every epoch's measurement without measuring again.

use std::sync::Arc;

use burn::prelude::*;
use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig, weights_digest};
use ipr_schemes::{PassportObjective, Run, TrainConfig, TrainData, train, train_probed};

#[test]
fn probed_training_equals_one_call_and_resumes_its_probes() {
    let _serial = crate::serial();
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
    let data = TrainData { train: &train_loader, test: &test_loader };

    let one = tempfile::tempdir().unwrap();
    let whole = train(build(), &objective, &[], &Run { config: &config, data, device: &device, dir: one.path() }).unwrap();
    let stepped = tempfile::tempdir().unwrap();
    let mut calls = 0;
    let mut probe = |m: &AlexNet| {
        calls += 1;
        weights_digest(m)
    };
    let run = Run { config: &config, data, device: &device, dir: stepped.path() };
    let out = train_probed(build(), &objective, &[], &run, &mut probe).unwrap();
    assert_eq!(weights_digest(&out.model.valid()), weights_digest(&whole.model.valid()));
    assert_eq!(out.history.len(), whole.history.len());
    for (a, b) in out.history.iter().zip(&whole.history) {
        assert_eq!((a.epoch, a.train_acc, a.test_acc, a.train_loss, a.test_loss), (b.epoch, b.train_acc, b.test_acc, b.train_loss, b.test_loss));
    }
    assert_eq!(out.probes.len(), 3);
    assert_eq!(out.probes[2], weights_digest(&whole.model.valid()));
    assert_eq!(calls, 3);
    // Run again: every epoch and probe is on disk, so nothing is measured again.
    let mut again = |_: &AlexNet| -> String { panic!("a complete run measures nothing again") };
    let rerun = train_probed(build(), &objective, &[], &run, &mut again).unwrap();
    assert_eq!(rerun.probes, out.probes);
    // Interrupted after one epoch, then resumed: the resumed run measures epochs 2 and 3 only,
    // and hands back all three measurements.
    let split = tempfile::tempdir().unwrap();
    let short = TrainConfig { epochs: 1, ..config.clone() };
    train_probed(build(), &objective, &[], &Run { config: &short, data, device: &device, dir: split.path() }, &mut |m: &AlexNet| weights_digest(m)).unwrap();
    let mut resumed_calls = 0;
    let mut count = |m: &AlexNet| {
        resumed_calls += 1;
        weights_digest(m)
    };
    let resumed = train_probed(build(), &objective, &[], &Run { config: &config, data, device: &device, dir: split.path() }, &mut count).unwrap();
    assert_eq!((resumed.resumed_after, resumed_calls), (Some(1), 2));
    assert_eq!(resumed.probes, out.probes);
    // A checkpoint of a run without a hook cannot feed a hooked run: it has no measurements.
    let plain = tempfile::tempdir().unwrap();
    train(build(), &objective, &[], &Run { config: &short, data, device: &device, dir: plain.path() }).unwrap();
    let Err(err) = train_probed(build(), &objective, &[], &Run { config: &config, data, device: &device, dir: plain.path() }, &mut |_: &AlexNet| 0) else {
        panic!("a checkpoint without measurements fed a probed run")
    };
    assert!(err.to_string().contains("0 measurements for 1 epochs"), "{err}");
}
