//! `cargo xtask verify`: a third party's ownership check of a model file against one claim (an
//! owner bundle), or a verdict between several claimants. Exit status: 0 owned (one claim
//! supported), 1 not owned, inconclusive, no claim supported or ambiguous, 2 an error.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_models::{AlexNet, Arch, LayerSignature, Net, NetConfig, OwnerBundle, Receipt, ResNet, Scheme};
use ipr_verify::{Claim, Decision, Dispute, Evidence, LabelledBatches, ReferenceInfo, Thresholds, Verdict, inspect_reference, load_reference, verify};
use serde::Serialize;

use ipr_data::Loader;

use crate::data::{Batches, Datasets};
use crate::dispute::{Claimant, claimed_model, settle, table};
use crate::report::{decision_word, verdict_body};
use crate::sections::{DataSection, DatasetKind};

/// What the command was asked.
pub struct Request {
    /// The model file: a record of this tool (`.bpk`) or a PyTorch reference state dict.
    pub model: PathBuf,
    /// The claims: `(name, owner bundle)`; two or more make a dispute.
    pub owners: Vec<(String, PathBuf)>,
    /// Registration receipts of the claims.
    pub receipts: Vec<PathBuf>,
    /// Claimants' own published models: `(name, model file)`.
    pub originals: Vec<(String, PathBuf)>,
    /// Test data for the fidelity check.
    pub data: Option<DatasetKind>,
    /// Its folder.
    pub data_root: Option<PathBuf>,
    /// A trigger set for the black-box check.
    pub trigger: Option<PathBuf>,
    /// Forged-passport draws of the fidelity check.
    pub forged: usize,
    /// Print JSON instead of text.
    pub json: bool,
}

/// What the check found: whether it supports a claim (the exit status) and the report to print.
pub struct Outcome {
    /// Whether the model is owned by the (one supported) claimant.
    pub owned: bool,
    /// The verdict as text, or as JSON with `--json`.
    pub output: String,
}

/// The JSON report of one claim.
#[derive(Serialize)]
struct Report<'a> {
    model: &'a Path,
    owner: Option<&'a Path>,
    /// Where the passports and signatures came from.
    claim_source: &'a str,
    config: &'a NetConfig,
    scheme: Scheme,
    verdict: &'a Verdict,
}

/// Whether `path` holds a PyTorch checkpoint (a zip archive or a legacy pickle).
fn is_pytorch(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 2];
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read the model file `{}`", path.display()))?;
    let n = file.read(&mut head).with_context(|| format!("cannot read the model file `{}`", path.display()))?;
    Ok(n == 2 && (head == *b"PK" || head[0] == 0x80))
}

/// The model as the claim describes it: built from the bundle's config and loaded from the file.
struct Loaded<M> {
    model: M,
    config: NetConfig,
    scheme: Scheme,
    claim_source: &'static str,
    signatures: Vec<LayerSignature>,
    bundle: Option<OwnerBundle>,
}

/// What `run` read once: the owner bundle, and the description of a PyTorch checkpoint.
struct Inputs {
    bundle: Option<OwnerBundle>,
    reference: Option<ReferenceInfo>,
}

fn owner_path(request: &Request) -> &Path {
    request.owners.first().map_or(Path::new(""), |(_, p)| p.as_path())
}

fn load<M: Net>(request: &Request, inputs: Inputs, device: &Device) -> Result<Loaded<M>> {
    let Inputs { bundle, reference } = inputs;
    if let Some(info) = reference {
        let model: M = load_reference(&request.model, &info, device)?;
        if let Some(bundle) = bundle.as_ref().filter(|b| b.model.arch != info.config.arch) {
            bail!(
                "the owner bundle `{}` is for {}, but `{}` is a {} checkpoint; pass the bundle of this model",
                owner_path(request).display(),
                bundle.model.arch.name(),
                request.model.display(),
                info.config.arch.name()
            );
        }
        let (signatures, claim_source) = match &bundle {
            Some(b) => (b.layers.clone(), "the owner bundle"),
            None => (info.signatures.clone(), "the passports and signatures stored in the PyTorch checkpoint itself (no owner bundle given)"),
        };
        return Ok(Loaded { model, config: info.config, scheme: info.scheme, claim_source, signatures, bundle });
    }
    let bundle = bundle.context("a model record of this tool needs its owner bundle")?;
    let config = bundle.model.clone();
    match claimed_model::<M>(&request.model, &bundle, device)? {
        Ok((model, note)) => {
            if let Some(note) = note {
                tracing::warn!("{note}");
            }
            Ok(Loaded { model, config, scheme: bundle.scheme, claim_source: "the owner bundle", signatures: bundle.layers.clone(), bundle: Some(bundle) })
        }
        Err(diff) => bail!(
            "the owner bundle `{}` is for the model {} of width {} with {} classes, and `{}` is not that architecture ({diff}): \
             pass the model file the bundle was made for, or the owner bundle of this model",
            owner_path(request).display(),
            config.arch.name(),
            config.width,
            config.num_classes,
            request.model.display()
        ),
    }
}

/// Runs the check.
///
/// # Errors
/// A file that cannot be read, or a model the claim does not describe.
pub fn run(request: &Request) -> Result<Outcome> {
    let device = Device::flex();
    let bundles = request.owners.iter().map(|(_, p)| OwnerBundle::load(p)).collect::<Result<Vec<_>, _>>()?;
    let reference = if is_pytorch(&request.model)? { Some(inspect_reference(&request.model)?) } else { None };
    let arch = match (&reference, bundles.first()) {
        (Some(info), _) => info.config.arch,
        (None, Some(bundle)) => bundle.model.arch,
        (None, None) => bail!("`{}` is a model record of this tool: pass the owner bundle that claims it with --owner PATH", request.model.display()),
    };
    if bundles.len() > 1 {
        anyhow::ensure!(reference.is_none(), "a dispute is settled on a model record of this tool; `{}` is a PyTorch checkpoint", request.model.display());
        return match arch {
            Arch::Alexnet => dispute::<AlexNet>(request, bundles, &device),
            Arch::Resnet9 | Arch::Resnet18 => dispute::<ResNet>(request, bundles, &device),
        };
    }
    let inputs = Inputs { bundle: bundles.into_iter().next(), reference };
    match arch {
        Arch::Alexnet => run_for::<AlexNet>(request, inputs, &device),
        Arch::Resnet9 | Arch::Resnet18 => run_for::<ResNet>(request, inputs, &device),
    }
}

/// The test split and the trigger set the request names, as loaders.
fn data(request: &Request) -> Result<(Option<Loader>, Option<Loader>)> {
    let data = match request.data {
        Some(kind) => Some(Datasets::load(&DataSection::new(kind, request.data_root.clone(), &crate::project_root()), 0)?),
        None if request.trigger.is_some() => bail!("--trigger needs --data: the trigger images are read at the dataset's size and normalisation"),
        None => None,
    };
    let test = data.as_ref().map(Datasets::test_loader).transpose()?;
    let triggers = match (&data, &request.trigger) {
        (Some(d), Some(dir)) => Some(d.loader_for(d.read_triggers(dir)?)?),
        _ => None,
    };
    Ok((test, triggers))
}

fn run_for<M: Net>(request: &Request, inputs: Inputs, device: &Device) -> Result<Outcome> {
    let loaded = load::<M>(request, inputs, device)?;
    let (test, triggers) = data(request)?;
    let (test_batches, trigger_batches) = (test.as_ref().map(Batches), triggers.as_ref().map(Batches));
    let evidence = Evidence {
        test: test_batches.as_ref().map(|b| b as &dyn LabelledBatches),
        triggers: trigger_batches.as_ref().map(|b| (b as &dyn LabelledBatches, loaded.config.num_classes)),
        forged_draws: request.forged,
        seed: 0x5eed,
    };
    let claim = match &loaded.bundle {
        Some(bundle) => Claim::from(bundle),
        None => Claim::new(&loaded.signatures),
    };
    let verdict = verify(&loaded.model, &claim, &evidence, &Thresholds::default())?;
    let owned = verdict.decision == Decision::Owned;
    if request.json {
        let report = Report {
            model: &request.model,
            owner: request.owners.first().map(|(_, p)| p.as_path()),
            claim_source: loaded.claim_source,
            config: &loaded.config,
            scheme: loaded.scheme,
            verdict: &verdict,
        };
        Ok(Outcome { owned, output: format!("{}\n", serde_json::to_string_pretty(&report)?) })
    } else {
        Ok(Outcome { owned, output: text(request, &loaded, &verdict) })
    }
}

fn text<M>(request: &Request, loaded: &Loaded<M>, verdict: &Verdict) -> String {
    let c = &loaded.config;
    let header = format!(
        "verdict: {}\nmodel:   {} ({}, width {}, {} classes, scheme {})\nclaim:   {}{}\n\n",
        decision_word(verdict.decision),
        request.model.display(),
        c.arch.name(),
        c.width,
        c.num_classes,
        loaded.scheme,
        loaded.claim_source,
        request.owners.first().map_or(String::new(), |(_, o)| format!(" `{}`", o.display()))
    );
    header + &verdict_body(verdict)
}

/// The JSON report of a dispute.
#[derive(Serialize)]
struct DisputeReport<'a> {
    model: &'a Path,
    dispute: &'a Dispute,
}

fn dispute<M: Net>(request: &Request, bundles: Vec<OwnerBundle>, device: &Device) -> Result<Outcome> {
    let receipts = request.receipts.iter().map(|p| Receipt::load(p)).collect::<Result<Vec<_>, _>>()?;
    for (name, _) in &request.originals {
        anyhow::ensure!(
            request.owners.iter().any(|(n, _)| n == name),
            "--original {name}=…: no claim is named `{name}`; name the claims with --owner NAME=PATH"
        );
    }
    let claimants: Vec<Claimant> = request
        .owners
        .iter()
        .zip(bundles)
        .map(|((name, _), bundle)| Claimant {
            name: name.clone(),
            bundle,
            original: request.originals.iter().find(|(n, _)| n == name).map(|(_, p)| p.clone()),
        })
        .collect();
    let (test, _) = data(request)?;
    let test_batches = test.as_ref().map(Batches);
    let evidence = Evidence { test: test_batches.as_ref().map(|b| b as &dyn LabelledBatches), triggers: None, forged_draws: request.forged, seed: 0x5eed };
    let d = settle::<M>(&request.model, &claimants, &receipts, &evidence, device)?;
    let owned = d.supported.is_some();
    let output = if request.json {
        format!("{}\n", serde_json::to_string_pretty(&DisputeReport { model: &request.model, dispute: &d })?)
    } else {
        let mut out = format!(
            "dispute: {}\nmodel:   {}\n\n{}\n",
            d.supported.as_ref().map_or("no claim supported".into(), |n| format!("`{n}` supported")),
            request.model.display(),
            table(&d)
        );
        for (c, _) in &d.claims {
            out += &format!("\n`{}`:\n", c.name);
            for reason in c.verdict.iter().flat_map(|v| &v.reasons) {
                out += &format!("- {reason}\n");
            }
            if let Some(diff) = &c.structure {
                out += &format!("- the model is not the claimed architecture: {diff}\n");
            }
        }
        out + &format!("\n{}\n", d.reasons.join("\n"))
    };
    Ok(Outcome { owned, output })
}
