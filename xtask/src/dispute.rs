//! Settling a dispute: several claims (owner bundles) on one model file, each checked as the
//! verifier checks one claim, against the model read as the architecture the claim names (a
//! record of another architecture is reported, not loaded), with its receipt and against the
//! other claimants' original models, then resolved by `ipr_verify::resolve`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use ipr_models::{Layout, Net, OwnerBundle, Receipt, block_specs, load_module, load_module_without, param_paths, record_tensors};
use ipr_verify::{Claim, ClaimEvidence, Dispute, Evidence, OnOriginal, Registration, Status, Thresholds, structure_diff, verify};

use crate::report::{MdTable, pct};

/// One claimant: a name for the reports, the claim, and what else it handed in.
pub struct Claimant {
    /// How the reports name the claimant.
    pub name: String,
    /// The claim.
    pub bundle: OwnerBundle,
    /// The claimant's own published model, if given.
    pub original: Option<PathBuf>,
}

/// The model at `path` read as the architecture `bundle` names: with its passport layers (a V1
/// model, an owner's V2/V3 model) or without (a V2/V3 public model, or any model a claim that
/// carries its passports reads through its conv weights). A record holding tensors the
/// architecture lacks loads without them when none of them changes a tensor the claim's
/// evidence is read from (an accessory block on a norm's scale changes the scale, not the
/// conv weights); what was left out is returned with the model. `Err` says how the record
/// differs from the architecture.
///
/// # Errors
/// The file cannot be read, or the bundle's config is not valid.
pub fn claimed_model<M: Net>(path: &Path, bundle: &OwnerBundle, device: &Device) -> Result<std::result::Result<(M, Option<String>), String>> {
    let found = record_tensors(path)?;
    let passport = Layout::structure(bundle.layers.iter().map(|l| l.path.clone()), bundle.scheme.is_private());
    let carries = !bundle.passports.is_empty();
    let layouts = if carries { vec![Layout::none(), passport] } else { vec![passport, Layout::none()] };
    let specs = block_specs(&bundle.model);
    let prefix = |layer: &str| specs.iter().find(|s| s.path == layer).map_or_else(|| layer.to_string(), |s| s.record_prefix.clone());
    let mut first_diff = None;
    for layout in layouts {
        let passports_inside = !layout.is_empty();
        let evidence: Vec<String> = bundle
            .layers
            .iter()
            .flat_map(|l| {
                let p = prefix(&l.path);
                match (passports_inside, carries) {
                    (true, _) => vec![format!("{p}.conv.weight"), format!("{p}.skey"), format!("{p}.key")],
                    (false, true) => vec![format!("{p}.conv.weight")],
                    (false, false) => vec![format!("{p}.bn.weight")],
                }
            })
            .collect();
        let model = M::init(&bundle.model, &layout, device).context("the owner bundle's model config is not valid")?;
        match structure_diff(&param_paths(&model), &found) {
            None => return Ok(Ok((load_module(model, path)?, None))),
            Some(diff) if diff.spares(&evidence) => {
                let note = format!("the record also holds {}, which the claim's evidence does not read", diff.describe());
                return Ok(Ok((load_module_without(model, path, &diff.extra)?, Some(note))));
            }
            Some(diff) => {
                // Say how the record differs from the nearest of the architectures tried.
                let size = diff.extra.len() + diff.missing.len() + diff.reshaped.len();
                if first_diff.as_ref().is_none_or(|(n, _)| size < *n) {
                    first_diff = Some((size, diff.describe()));
                }
            }
        }
    }
    Ok(Err(first_diff.map(|(_, d)| d).unwrap_or_default()))
}

/// What a receipt says of `bundle`'s claim, from the receipts given.
fn registration(bundle: &OwnerBundle, receipts: &[Receipt]) -> Registration {
    let Some(owner) = &bundle.owner else { return Registration::None };
    let mine: Vec<&Receipt> = receipts.iter().filter(|r| r.public_key == owner.public_key).collect();
    if let Some(r) = mine.iter().find(|r| r.is_for(bundle)) {
        if r.is_valid() {
            return Registration::Registered { created: r.created };
        }
        return Registration::Mismatch { why: "its signature does not verify".into() };
    }
    match mine.first() {
        Some(_) => Registration::Mismatch { why: format!("the receipt of key {} commits to another claim", owner.public_key.short()) },
        None => Registration::None,
    }
}

/// Checks every claim of `claimants` on the model at `model` and resolves the dispute.
///
/// # Errors
/// A file that cannot be read, or evidence data that cannot be read.
pub fn settle<M: Net>(model: &Path, claimants: &[Claimant], receipts: &[Receipt], evidence: &Evidence<'_>, device: &Device) -> Result<Dispute> {
    let thresholds = Thresholds::default();
    let mut claims = Vec::new();
    for c in claimants {
        let claim = Claim::from(&c.bundle);
        let (verdict, structure) = match claimed_model::<M>(model, &c.bundle, device)? {
            Ok((m, note)) => {
                let mut v = verify(&m, &claim, evidence, &thresholds)?;
                v.reasons.extend(note);
                (Some(v), None)
            }
            Err(diff) => (None, Some(diff)),
        };
        let mut on_originals = Vec::new();
        for other in claimants.iter().filter(|o| o.name != c.name) {
            let Some(path) = &other.original else { continue };
            if let Ok((m, _)) = claimed_model::<M>(path, &c.bundle, device)? {
                let v = verify(&m, &claim, &Evidence::default(), &thresholds)?;
                on_originals.push(OnOriginal { of: other.name.clone(), decision: v.decision, agreement: v.signature.agreement });
            }
        }
        claims.push(ClaimEvidence {
            name: c.name.clone(),
            verdict,
            structure,
            layers: c.bundle.layers.clone(),
            registration: registration(&c.bundle, receipts),
            on_originals,
        });
    }
    Ok(ipr_verify::resolve(claims, &thresholds))
}

/// The dispute's table: one row per claim, then the conclusion.
pub fn table(d: &Dispute) -> MdTable {
    let mut t = MdTable::new(&["claimant", "verdict", "bits", "binding", "claim signature", "registered", "reason"]);
    for (c, status) in &d.claims {
        let (verdict, why) = match status {
            Status::Supported => ("supported", d.reasons.first().cloned().unwrap_or_default()),
            Status::Ambiguous => ("ambiguous", d.reasons.first().cloned().unwrap_or_default()),
            Status::Derived { why } => ("derived", why.clone()),
            Status::Rejected { why } => ("rejected", why.clone()),
        };
        let bits = c.verdict.as_ref().map_or("–".into(), |v| format!("{}/{} ({})", v.signature.matched, v.signature.total, pct(v.signature.agreement)));
        let binding = c.verdict.as_ref().map_or("–".into(), |v| match &v.binding {
            ipr_verify::Binding::Unbound => "unbound".into(),
            ipr_verify::Binding::NoKey { .. } => "no key".into(),
            ipr_verify::Binding::Holds { bits } => format!("holds ({bits} bits)"),
            ipr_verify::Binding::Fails { bits, agree, .. } => format!("fails ({agree}/{bits})"),
        });
        let signed = c.verdict.as_ref().map_or("–".into(), |v| match &v.claim_signature {
            ipr_verify::ClaimCheck::Unsigned => "unsigned".into(),
            ipr_verify::ClaimCheck::Valid { key } => format!("valid ({})", &key[..16]),
            ipr_verify::ClaimCheck::Invalid { .. } => "invalid".into(),
        });
        let registered = match &c.registration {
            Registration::None => "–".into(),
            Registration::Registered { created } => format!("at {created}"),
            Registration::Mismatch { .. } => "mismatch".into(),
        };
        t.row(vec![c.name.clone(), verdict.into(), bits, binding, signed, registered, why]);
    }
    t
}
