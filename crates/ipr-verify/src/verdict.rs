//! The verdict: white-box signature evidence, optional fidelity and black-box evidence, and a
//! decision from documented thresholds.

use burn::prelude::*;
use ipr_models::{ClaimSignature, LayerPassports, LayerSignature, Net, OwnerBundle, noise_passports, restore_private, weights_digest};
use ipr_passport::{PassportValues, Route};
use serde::{Deserialize, Serialize};

use crate::{SignatureReport, check_passports, check_signatures, log10_binomial_tail};

/// What the owner claims: signatures, and for the private schemes the passports.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// The signature of every passport layer.
    pub layers: &'a [LayerSignature],
    /// The claimed passports: the private ones (V2/V3), or a V1 claim's own; empty when the
    /// passports are the model's (a V1 model, or a reference checkpoint that holds them).
    pub passports: &'a [LayerPassports],
    /// The digest of the weights the claim was made for, if known.
    pub weights_sha256: Option<&'a str>,
    /// The claimant's key and signature, for a signed claim.
    pub owner: Option<&'a ClaimSignature>,
    /// Whether the claimant's signature signs the claim (`None`: unsigned).
    pub signed: Option<bool>,
}

impl<'a> Claim<'a> {
    /// A claim of these signatures alone: the passports are the model's, nothing else is known.
    pub fn new(layers: &'a [LayerSignature]) -> Self {
        Self { layers, passports: &[], weights_sha256: None, owner: None, signed: None }
    }
}

impl<'a> From<&'a OwnerBundle> for Claim<'a> {
    fn from(bundle: &'a OwnerBundle) -> Self {
        Self {
            layers: &bundle.layers,
            passports: &bundle.passports,
            weights_sha256: Some(&bundle.weights_sha256),
            owner: bundle.owner.as_ref(),
            signed: bundle.signature_valid(),
        }
    }
}

/// Whether a claim's bound bits are the hash of its key and passports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "binding")]
pub enum Binding {
    /// No claimed layer has bound bits (random or reference signatures).
    Unbound,
    /// Bits are declared bound, but the claim names no key to check them with.
    NoKey {
        /// Bits declared bound.
        bits: usize,
    },
    /// Every bound bit is the hash of the claimant's key and the claimed passports.
    Holds {
        /// Bound bits.
        bits: usize,
    },
    /// Some bound bits are not: the signature was not made from these passports and this key.
    Fails {
        /// Bound bits.
        bits: usize,
        /// Of those, the ones equal to the hash.
        agree: usize,
        /// The layers that fail.
        layers: Vec<String>,
    },
}

/// Whether a claim is signed, and by whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "signature")]
pub enum ClaimCheck {
    /// No claimant signature.
    Unsigned,
    /// Signed by this key, and the signature verifies.
    Valid {
        /// The claimant's public key (hex).
        key: String,
    },
    /// The signature does not verify: the claim was changed after it was signed, or signed by
    /// another key than it names.
    Invalid {
        /// The key the claim names (hex).
        key: String,
    },
}

/// The binding of every claimed layer: its bound bits against the hash of the claim's key and
/// passports (the claim's, else the model's).
fn binding<M: Net>(model: &M, claim: &Claim<'_>) -> Binding {
    let bound: Vec<&LayerSignature> = claim.layers.iter().filter(|l| l.signature.bound_from.is_some()).collect();
    let bits: usize = bound.iter().map(|l| l.signature.len() - l.signature.bound_from.unwrap_or(0).min(l.signature.len())).sum();
    if bound.is_empty() {
        return Binding::Unbound;
    }
    let Some(owner) = claim.owner else {
        return Binding::NoKey { bits };
    };
    let own = if claim.passports.is_empty() { LayerPassports::of(model) } else { Vec::new() };
    let passports = if claim.passports.is_empty() { own.as_slice() } else { claim.passports };
    let (mut agree, mut failing) = (0, Vec::new());
    for layer in bound {
        let n = layer.signature.len() - layer.signature.bound_from.unwrap_or(0).min(layer.signature.len());
        let checked = passports.iter().find(|p| p.path == layer.path).and_then(|p| {
            p.check().ok()?;
            layer.signature.binding(&owner.public_key.0, &layer.path, PassportValues { shape: p.shape, skey: &p.skey })
        });
        let ok = checked.unwrap_or((0, n));
        agree += ok.0;
        if ok.0 != ok.1 {
            failing.push(layer.path.clone());
        }
    }
    if failing.is_empty() { Binding::Holds { bits } } else { Binding::Fails { bits, agree, layers: failing } }
}

/// Labelled images for the fidelity and black-box checks: the verifier reads batches through
/// this trait and depends on no data crate.
pub trait LabelledBatches {
    /// Calls `f(images, labels)` for every batch (`[n, c, h, w]`, `[n]`), on `device`.
    ///
    /// # Errors
    /// Why the data could not be read (naming the file).
    fn for_each_batch(&self, device: &Device, f: &mut dyn FnMut(Tensor<4>, Tensor<1, Int>)) -> Result<(), BatchError>;
}

/// Why labelled data could not be read: the data source's own error.
pub type BatchError = Box<dyn std::error::Error + Send + Sync>;

/// What stops a verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The test data or the trigger set could not be read.
    #[error("cannot read the {what} for the verdict: {source}")]
    Data {
        /// `test data` or `trigger set`.
        what: &'static str,
        /// The data source's error.
        source: BatchError,
    },
}

/// The decision thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Evidence is conclusive when log10 of its false-claim probability is at most this (for the
    /// white-box evidence, only when no claimed layer agrees at chance level).
    pub owned_log10_p: f64,
    /// The white-box evidence, or one claimed layer's, is what chance gives when log10 p is
    /// above this.
    pub chance_log10_p: f64,
    /// Fidelity holds when the genuine passports' accuracy is at least this fraction of the
    /// public path's (V2/V3)…
    pub fidelity_ratio: f64,
    /// …and exceeds the mean accuracy with forged passports by at least this much.
    pub forged_gap: f64,
}

impl Default for Thresholds {
    /// log10 p ≤ −9 is conclusive, log10 p > −2 is chance; fidelity needs 90% of the public
    /// path's accuracy and a 10-point lead over forged passports.
    fn default() -> Self {
        Self { owned_log10_p: -9.0, chance_log10_p: -2.0, fidelity_ratio: 0.9, forged_gap: 0.1 }
    }
}

/// What the verifier concludes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Conclusive evidence, and the passports make the model work.
    Owned,
    /// The evidence is what chance gives.
    NotOwned,
    /// Neither.
    Inconclusive,
}

/// Accuracy with the genuine passports against the public path and against forged passports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// Accuracy with the genuine passports (V1) or of the private path (V2/V3).
    pub genuine_acc: f64,
    /// Accuracy of the public path (V2/V3).
    pub public_acc: Option<f64>,
    /// Accuracy with each draw of forged (noise) passports.
    pub forged_acc: Vec<f64>,
    /// Whether the thresholds' fidelity conditions hold.
    pub holds: bool,
}

/// The trigger-set evidence of V3: predictions only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlackBox {
    /// Trigger images.
    pub images: usize,
    /// Trigger images classified as their secret labels by the public model.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
    /// log10 of the chance that a model agrees on at least `correct` images by guessing
    /// uniformly among the classes.
    pub log10_false_claim: f64,
}

/// The verifier's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Per-layer detection, bit agreement and its false-claim probability.
    pub signature: SignatureReport,
    /// Whether the weights are the ones the claim was made for (`None`: no digest claimed).
    /// A modified copy (fine-tuned, pruned) differs and may still carry the signature.
    pub weights_match: Option<bool>,
    /// Fidelity, when test data was supplied.
    pub fidelity: Option<Fidelity>,
    /// Black-box evidence, when a trigger set was supplied.
    pub black_box: Option<BlackBox>,
    /// Whether the claim's bound bits are the hash of its key and passports.
    #[serde(default = "unbound")]
    pub binding: Binding,
    /// Whether the claim is signed, and whether the signature verifies.
    #[serde(default = "unsigned")]
    pub claim_signature: ClaimCheck,
    /// The thresholds applied.
    pub thresholds: Thresholds,
    /// Why, in sentences.
    pub reasons: Vec<String>,
}

fn unbound() -> Binding {
    Binding::Unbound
}

fn unsigned() -> ClaimCheck {
    ClaimCheck::Unsigned
}

/// What a verification is given besides the model and the claim.
#[derive(Default)]
pub struct Evidence<'a> {
    /// Test data for the fidelity check.
    pub test: Option<&'a dyn LabelledBatches>,
    /// The trigger set and its number of classes, for the black-box check.
    pub triggers: Option<(&'a dyn LabelledBatches, usize)>,
    /// Forged-passport draws of the fidelity check.
    pub forged_draws: usize,
    /// Seed of the forged draws.
    pub seed: u64,
}

/// Number of rows of `logits` whose arg-max is the label.
pub fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    let n = labels.dims()[0];
    let hits = logits.argmax(1).reshape([n]).equal(labels).int().sum();
    hits.into_data().convert::<i64>().try_to_vec::<i64>().map_or(0, |v| v[0] as usize)
}

fn accuracy<M: Net>(model: &M, data: &dyn LabelledBatches, what: &'static str, device: &Device) -> Result<(usize, usize), VerifyError> {
    let (mut correct, mut count) = (0, 0);
    data.for_each_batch(device, &mut |images, labels| {
        count += labels.dims()[0];
        correct += correct_count(model.forward(images).logits, labels);
    })
    .map_err(|source| VerifyError::Data { what, source })?;
    Ok((correct, count))
}

const TEST: &str = "test data";

fn rate((correct, count): (usize, usize)) -> f64 {
    correct as f64 / count.max(1) as f64
}

/// `model` (holding passport layers) with the passports of `claimed` in place of its own, where
/// the claim names any.
fn with_passports<M: Net>(model: M, claimed: &[LayerPassports]) -> Result<M, String> {
    if claimed.is_empty() {
        return Ok(model);
    }
    let device = model.devices().first().cloned().unwrap_or_else(Device::flex);
    model
        .try_map_blocks(&mut |path, block| match claimed.iter().find(|p| p.path == path) {
            Some(p) if block.is_passport() => {
                let (key, skey) = p.tensors(&device).ok_or_else(|| format!("the claimed passports of layer `{path}` are damaged"))?;
                block.with_passports(path, key, skey).map_err(|e| e.to_string())
            }
            _ => Ok(block),
        })
}

/// Verifies `claim` against `model`: a V1 model (its passports inside), a V2/V3 public model
/// (the passports from the claim), or a model that holds private passports itself.
///
/// The white-box check computes `γ = mean conv(P_γ; W)` of each claimed layer from its
/// passports and conv weights alone, with no forward through the network. The fidelity check
/// (with `evidence.test`) and the black-box check (with `evidence.triggers`) run the model.
///
/// A claim whose passports do not fit the model is not an error: its layers match no bits,
/// and the reasons say why fidelity could not be measured.
///
/// # Errors
/// [`VerifyError::Data`] when the test data or the trigger set cannot be read.
pub fn verify<M: Net>(model: &M, claim: &Claim<'_>, evidence: &Evidence<'_>, thresholds: &Thresholds) -> Result<Verdict, VerifyError> {
    let model = model.valid();
    let device = model.devices().first().cloned().unwrap_or_else(Device::flex);
    let binding = binding(&model, claim);
    let claim_signature = match (claim.owner, claim.signed) {
        (Some(o), Some(true)) => ClaimCheck::Valid { key: o.public_key.hex() },
        (Some(o), _) => ClaimCheck::Invalid { key: o.public_key.hex() },
        (None, _) => ClaimCheck::Unsigned,
    };
    let signature = if claim.passports.is_empty() {
        check_signatures(&model, claim.layers)
    } else {
        check_passports(&model, claim.passports, claim.layers)
    };
    let weights_match = claim.weights_sha256.map(|d| weights_digest(&model) == d);
    let mut reasons = Vec::new();
    reasons.push(format!(
        "{} of {} signature bits agree ({:.2}%); by chance that has probability 10^{:.1}",
        signature.matched,
        signature.total,
        100.0 * signature.agreement,
        signature.log10_false_claim
    ));
    match weights_match {
        Some(true) => reasons.push("the weights are exactly those the owner bundle was made for".into()),
        Some(false) => reasons.push("the weights differ from those the owner bundle was made for (a modified copy, or another model)".into()),
        None => {}
    }

    match &claim_signature {
        ClaimCheck::Valid { key } => reasons.push(format!("the claim is signed by key {} and the signature verifies", &key[..16])),
        ClaimCheck::Invalid { key } => reasons.push(format!(
            "the claim's signature does not verify under the key it names ({}): the claim was changed after it was signed",
            &key[..16]
        )),
        ClaimCheck::Unsigned => {}
    }
    match &binding {
        Binding::Unbound => reasons.push("the signature is unbound (random bits): nothing ties it to the claimed passports".into()),
        Binding::NoKey { bits } => reasons.push(format!("{bits} bits are declared bound, but the claim names no key to check them")),
        Binding::Holds { bits } => reasons.push(format!("all {bits} bound bits are the hash of the claimant's key and the claimed passports")),
        Binding::Fails { bits, agree, layers } => reasons.push(format!(
            "only {agree} of {bits} bound bits are the hash of the claimant's key and the claimed passports (layers {}): the signature was not made from these passports and this key",
            layers.join(", ")
        )),
    }
    // The owner's genuine model: the model itself when it holds passports (with the claimed
    // ones in place when the claim names its own), else the public model with the claimed
    // private passports restored.
    let genuine = match evidence.test {
        None => Ok(None),
        Some(_) if model.blocks().iter().any(|(_, b)| b.is_passport()) => with_passports(model.clone(), claim.passports).map(Some),
        Some(_) if claim.passports.is_empty() => Err("neither the model nor the claim holds passports".to_string()),
        Some(_) => restore_private(model.clone(), claim.passports).map(Some).map_err(|e| e.to_string()),
    };
    let fidelity = match (evidence.test, &genuine) {
        (Some(test), Ok(Some(genuine))) => {
            let genuine_acc = rate(accuracy(&genuine.clone().fold_route(Route::Private), test, TEST, &device)?);
            let public_acc = genuine
                .is_private()
                .then(|| accuracy(&genuine.clone().fold_route(Route::Public), test, TEST, &device).map(rate))
                .transpose()?;
            let mut forged_acc = Vec::new();
            for draw in 0..evidence.forged_draws {
                let forged = noise_passports(genuine.clone(), evidence.seed.wrapping_add(draw as u64), &device);
                forged_acc.push(rate(accuracy(&forged.fold_route(Route::Private), test, TEST, &device)?));
            }
            let forged_mean = (!forged_acc.is_empty()).then(|| forged_acc.iter().sum::<f64>() / forged_acc.len() as f64);
            let holds = public_acc.is_none_or(|p| genuine_acc >= thresholds.fidelity_ratio * p)
                && forged_mean.is_none_or(|f| genuine_acc - f >= thresholds.forged_gap);
            reasons.push(format!(
                "with the genuine passports the model scores {:.2}%{}{}: fidelity {}",
                100.0 * genuine_acc,
                public_acc.map_or(String::new(), |p| format!(", its public path {:.2}%", 100.0 * p)),
                forged_mean.map_or(String::new(), |f| format!(", with forged passports {:.2}% on average", 100.0 * f)),
                if holds { "holds" } else { "does not hold" }
            ));
            Some(Fidelity { genuine_acc, public_acc, forged_acc, holds })
        }
        (_, Err(why)) => {
            reasons.push(format!("fidelity not measured: {why}"));
            None
        }
        _ => None,
    };
    let black_box = match evidence.triggers {
        Some((triggers, classes)) => {
            let public = model.clone().fold_route(Route::Public);
            let (correct, images) = accuracy(&public, triggers, "trigger set", &device)?;
            let log10_false_claim = log10_binomial_tail(images, correct, 1.0 / classes.max(1) as f64);
            reasons.push(format!(
                "the public model labels {correct} of {images} trigger images as the owner's secret labels; by guessing among {classes} classes that has probability 10^{log10_false_claim:.1}"
            ));
            Some(BlackBox { images, correct, accuracy: rate((correct, images)), log10_false_claim })
        }
        None => None,
    };

    // A genuine claim holds on every layer it names: a layer agreeing no better than chance
    // contradicts it, however well the other layers agree (e.g. a copied text signature).
    let at_chance: Vec<&str> = signature
        .layers
        .iter()
        .filter(|l| log10_binomial_tail(l.bits, l.matched, 0.5) > thresholds.chance_log10_p)
        .map(|l| l.path.as_str())
        .collect();
    if !at_chance.is_empty() && at_chance.len() < signature.layers.len() {
        reasons.push(format!("claimed layers {} agree no better than chance", at_chance.join(", ")));
    }
    let white = signature.log10_false_claim;
    let conclusive = (white <= thresholds.owned_log10_p && at_chance.is_empty())
        || black_box.as_ref().is_some_and(|b| b.log10_false_claim <= thresholds.owned_log10_p);
    let chance = white > thresholds.chance_log10_p
        && black_box.as_ref().is_none_or(|b| b.log10_false_claim > thresholds.chance_log10_p);
    // Fidelity is what the claimed model owes: a modified copy (fine-tuned, pruned, given
    // accessory blocks) keeps the owner's signature in its conv weights while its statistics
    // and scales move, so there it is reported, and the white-box evidence decides.
    let modified = weights_match == Some(false);
    let fidelity_holds = fidelity.as_ref().is_none_or(|f| f.holds) || modified;
    if modified && fidelity.as_ref().is_some_and(|f| !f.holds) {
        reasons.push("the weights differ from the claim's, so fidelity is reported and not required: the signature in the conv weights decides".into());
    }
    // A claim changed after signing, or whose bound bits are not its own, proves nothing.
    let sound = !matches!(claim_signature, ClaimCheck::Invalid { .. }) && !matches!(binding, Binding::Fails { .. });
    let decision = if conclusive && fidelity_holds && sound {
        Decision::Owned
    } else if chance {
        Decision::NotOwned
    } else {
        Decision::Inconclusive
    };
    Ok(Verdict { decision, signature, weights_match, fidelity, black_box, binding, claim_signature, thresholds: thresholds.clone(), reasons })
}
