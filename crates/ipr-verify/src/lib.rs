//! The verifier of DeepIPR ownership claims, for anyone to run: given a model and the owner's
//! claim (signatures, and for the private schemes the passports), it computes every claimed
//! passport layer's scale `γ = mean conv(P_γ; W)` from the passports and the layer's weights,
//! compares its signs with the signature, and returns a [`Verdict`]: per-layer detection, the
//! text read back, the bit agreement and its false-claim probability, optional fidelity and
//! black-box (trigger-set) evidence, and a [`Decision`] from documented [`Thresholds`].
//!
//! Models trained by the PyTorch reference implementation are read directly from their state
//! dicts ([`inspect_reference`], [`load_reference`]).
//!
//! This crate is what downstream users take alone: it depends on the model and passport crates,
//! burn without its training parts, and a PyTorch-checkpoint reader; nothing for training,
//! optimisers, datasets, plotting, command lines or async runtimes (a test checks the tree).
//!
//! # Example
//! ```
//! use burn::prelude::*;
//! use ipr_models::{AlexNet, Arch, LayerSignature, Layout, Net, NetConfig};
//! use ipr_passport::Signature;
//! use ipr_verify::{Claim, Decision, Evidence, Thresholds, verify};
//!
//! let device = Device::flex();
//! let mut config = NetConfig::new(Arch::Alexnet, 10);
//! config.width = 0.25;
//! let layout = Layout::parse("4 = \"owner\"\n", "example").unwrap();
//! let model = AlexNet::init(&config, &layout, &device).unwrap();
//!
//! // The owner's claimed signature: here, the signs the layer actually carries.
//! let gamma = model.blocks()[2].1.gamma().unwrap().into_data().try_to_vec::<f32>().unwrap();
//! let bits = gamma.iter().map(|&g| if g > 0.0 { 1 } else { -1 }).collect();
//! let layers = vec![LayerSignature { path: "4".into(), signature: Signature { bits, text: None, bound_from: None } }];
//! let claim = Claim::new(&layers);
//!
//! let verdict = verify(&model, &claim, &Evidence::default(), &Thresholds::default()).unwrap();
//! assert_eq!(verdict.decision, Decision::Owned);
//! assert_eq!(verdict.signature.matched, 96);
//! assert!(verdict.signature.log10_false_claim < -28.0); // 96 bits all agreeing: p = 2^-96
//! ```
#![deny(missing_docs)]

mod dispute;
mod reference;
mod stats;
mod verdict;

pub use dispute::{ClaimEvidence, Dispute, OnOriginal, Registration, Status, StructureDiff, resolve, structure_diff};
pub use reference::{ReferenceError, ReferenceInfo, inspect_reference, load_reference};
pub use stats::log10_binomial_tail;
pub use verdict::{BatchError, Binding, BlackBox, Claim, ClaimCheck, Decision, Evidence, Fidelity, LabelledBatches, Thresholds, Verdict, VerifyError, correct_count, verify};

use ipr_models::{LayerPassports, LayerSignature, Net, tensor_values as values};
use ipr_passport::{decode_text, matching_bits};
use serde::{Deserialize, Serialize};

/// Signature detection of one passport layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Block path.
    pub path: String,
    /// Bits whose sign of γ matches the signature.
    pub matched: usize,
    /// Signature length.
    pub bits: usize,
    /// `matched / bits`.
    pub rate: f64,
    /// The text the owner claims, when the signature is text.
    pub expected_text: Option<String>,
    /// The text read back from γ, when the signature is text.
    pub decoded: Option<String>,
}

/// The white-box signature check over every passport layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureReport {
    /// One entry per claimed layer.
    pub layers: Vec<LayerReport>,
    /// Matching bits over all layers.
    pub matched: usize,
    /// Bits over all layers.
    pub total: usize,
    /// `matched / total`.
    pub agreement: f64,
    /// log10 of the chance that random signs agree on at least `matched` of `total` bits.
    pub log10_false_claim: f64,
}

impl SignatureReport {
    /// Mean detection rate over layers (1.0 when there are none).
    pub fn mean_rate(&self) -> f64 {
        if self.layers.is_empty() {
            return 1.0;
        }
        self.layers.iter().map(|l| l.rate).sum::<f64>() / self.layers.len() as f64
    }
}

/// Reads the signs of γ of every claimed layer of `model` (passport-derived for a passport
/// layer, the norm's scale for a folded or fine-tuned one) and compares them with the claim.
/// A claimed layer the model lacks counts as matching no bits.
pub fn check_signatures<M: Net>(model: &M, claim: &[LayerSignature]) -> SignatureReport {
    let blocks = model.blocks();
    report(claim, |path| {
        blocks.iter().find(|(p, _)| p == path).and_then(|(_, b)| b.gamma()).map(values).unwrap_or_default()
    })
}

/// `γ = mean conv(P_γ; W)` of the layer at `path`: the passports of `passports` for that layer
/// through its conv weights in `model`; empty when the model lacks the layer or the passports do
/// not fit it.
pub fn passport_gamma<M: Net>(model: &M, passports: &[LayerPassports], path: &str) -> Vec<f32> {
    let device = model.devices().first().cloned().unwrap_or_else(burn::prelude::Device::flex);
    let blocks = model.blocks();
    let block = blocks.iter().find(|(p, _)| p == path).map(|(_, b)| *b);
    let passport = passports.iter().find(|p| p.path == path);
    match (block, passport.and_then(|p| p.tensors(&device))) {
        (Some(block), Some((_, skey))) if skey.dims()[1] == block.in_channels() => values(block.passport_affine(skey)),
        _ => Vec::new(),
    }
}

/// Computes `γ = mean conv(P_γ; W)` of every claimed layer from the owner's passports and the
/// layer's conv weights in `model` (any form: the public model of a private scheme included)
/// and compares its signs with the claim. A claimed layer without passports, or one the model
/// lacks or whose passports do not fit it, matches no bits.
pub fn check_passports<M: Net>(model: &M, passports: &[LayerPassports], claim: &[LayerSignature]) -> SignatureReport {
    report(claim, |path| passport_gamma(model, passports, path))
}

fn report(claim: &[LayerSignature], mut gamma_of: impl FnMut(&str) -> Vec<f32>) -> SignatureReport {
    let layers: Vec<LayerReport> = claim
        .iter()
        .map(|l| {
            let gamma = gamma_of(&l.path);
            let matched = matching_bits(&gamma, &l.signature);
            let bits = l.signature.len();
            LayerReport {
                path: l.path.clone(),
                matched,
                bits,
                rate: matched as f64 / bits.max(1) as f64,
                expected_text: l.signature.text.clone(),
                decoded: l.signature.text.as_ref().map(|t| decode_text(&gamma, t.len())),
            }
        })
        .collect();
    let matched = layers.iter().map(|l| l.matched).sum();
    let total = layers.iter().map(|l| l.bits).sum();
    SignatureReport {
        layers,
        matched,
        total,
        agreement: matched as f64 / usize::max(total, 1) as f64,
        log10_false_claim: log10_binomial_tail(total, matched, 0.5),
    }
}
