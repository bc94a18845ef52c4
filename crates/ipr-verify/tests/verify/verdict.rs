//! The decision rules of the verdict on a small model whose γ signs are known.

use burn::prelude::*;
use ipr_models::{AlexNet, Arch, LayerSignature, Layout, Net, NetConfig};
use ipr_passport::Signature;
use ipr_verify::{Claim, Decision, Evidence, Thresholds, verify};

/// The model, and the sign of γ of its passport layers 4 and 5.
fn model() -> (AlexNet, Vec<(String, Vec<i8>)>) {
    let device = Device::flex();
    device.seed(4);
    let mut config = NetConfig::new(Arch::Alexnet, 10);
    config.width = 0.25;
    let model = AlexNet::init(&config, &Layout::parse("4 = true\n5 = true\n", "test").unwrap(), &device).unwrap();
    let signs = model
        .blocks()
        .into_iter()
        .filter_map(|(path, b)| {
            let gamma = b.gamma().filter(|_| b.is_passport())?.into_data().try_to_vec::<f32>().unwrap();
            Some((path, gamma.iter().map(|&g| if g > 0.0 { 1 } else { -1 }).collect()))
        })
        .collect();
    (model, signs)
}

/// Claims the signs with every `flip_every`-th bit of layer `flipped` flipped (0: none).
fn decide(flipped: &str, flip_every: usize) -> (Decision, Vec<String>) {
    let (model, signs) = model();
    let layers: Vec<LayerSignature> = signs
        .into_iter()
        .map(|(path, bits)| {
            let bits = bits
                .iter()
                .enumerate()
                .map(|(i, &b)| if path == flipped && flip_every > 0 && i % flip_every == 0 { -b } else { b })
                .collect();
            LayerSignature { path, signature: Signature { bits, text: None, bound_from: None } }
        })
        .collect();
    let claim = Claim::new(&layers);
    let verdict = verify(&model, &claim, &Evidence::default(), &Thresholds::default()).unwrap();
    (verdict.decision, verdict.reasons)
}

#[test]
fn every_layer_agreeing_is_owned() {
    assert_eq!(decide("", 0).0, Decision::Owned);
}

#[test]
fn a_layer_at_chance_makes_a_strong_total_inconclusive() {
    // Layer 4 (96 bits) agrees fully, layer 5 (64 bits) on half its bits: 128 of 160 overall.
    let (decision, reasons) = decide("5", 2);
    assert_eq!(decision, Decision::Inconclusive, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("layers 5 agree no better than chance")), "{reasons:?}");
}

#[test]
fn opposite_signs_are_not_owned() {
    let (model, signs) = model();
    let layers: Vec<LayerSignature> = signs
        .into_iter()
        .map(|(path, bits)| LayerSignature { path, signature: Signature { bits: bits.iter().map(|b| -b).collect(), text: None, bound_from: None } })
        .collect();
    let claim = Claim::new(&layers);
    let verdict = verify(&model, &claim, &Evidence::default(), &Thresholds::default()).unwrap();
    assert_eq!(verdict.decision, Decision::NotOwned);
    assert_eq!(verdict.signature.matched, 0);
}
