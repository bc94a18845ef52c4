//! `cargo xtask verify`: a third party's ownership check of a model file against an owner
//! bundle, with a verdict and an exit status (0 owned, 1 not owned or inconclusive, 2 error).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_models::{AlexNet, Arch, LayerSignature, Layout, Net, NetConfig, OwnerBundle, ResNet, Scheme, load_module};
use ipr_verify::{
    Claim, Decision, Evidence, LabelledBatches, ReferenceInfo, Thresholds, Verdict, inspect_reference, load_reference, verify,
};
use serde::Serialize;

use crate::data::{Batches, Datasets};
use crate::report::{decision_word, verdict_body};
use crate::sections::{DataSection, DatasetKind};

/// What the command was asked.
pub struct Request {
    /// The model file: a record of this tool (`.bpk`) or a PyTorch reference state dict.
    pub model: PathBuf,
    /// The owner bundle.
    pub owner: Option<PathBuf>,
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

/// The JSON report.
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

fn load<M: Net>(request: &Request, inputs: Inputs, device: &Device) -> Result<Loaded<M>> {
    let Inputs { bundle, reference } = inputs;
    if let Some(info) = reference {
        let model: M = load_reference(&request.model, &info, device)?;
        if let Some(bundle) = bundle.as_ref().filter(|b| b.model.arch != info.config.arch) {
            bail!(
                "the owner bundle `{}` is for {}, but `{}` is a {} checkpoint; pass the bundle of this model",
                request.owner.as_deref().unwrap_or(Path::new("")).display(),
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
    let passport_layout = Layout::structure(bundle.layers.iter().map(|l| l.path.clone()), bundle.scheme.is_private());
    // A V2/V3 public model is a model without passports; a V1 model or an owner's model has them.
    let layouts = if bundle.passports.is_empty() { vec![passport_layout] } else { vec![Layout::none(), passport_layout] };
    let mut first_error = None;
    for layout in layouts {
        let model = M::init(&config, &layout, device).context("the owner bundle's model config is not valid")?;
        match load_module(model, &request.model) {
            Ok(model) => {
                let signatures = bundle.layers.clone();
                let scheme = bundle.scheme;
                return Ok(Loaded { model, config, scheme, claim_source: "the owner bundle", signatures, bundle: Some(bundle) });
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let e = first_error.context("no layout to try")?;
    Err(anyhow::Error::new(e).context(format!(
        "the owner bundle `{}` is for the model {} of width {} with {} classes, and `{}` is not that model: \
         pass the model file the bundle was made for, or the owner bundle of this model",
        request.owner.as_deref().unwrap_or(Path::new("")).display(),
        config.arch.name(),
        config.width,
        config.num_classes,
        request.model.display()
    )))
}

/// What the check found: the decision (the exit status) and the report to print.
pub struct Outcome {
    /// The verifier's decision.
    pub decision: Decision,
    /// The verdict as text, or as JSON with `--json`.
    pub output: String,
}

/// Runs the check.
///
/// # Errors
/// A file that cannot be read, or a model the claim does not describe.
pub fn run(request: &Request) -> Result<Outcome> {
    let device = Device::flex();
    let bundle = request.owner.as_deref().map(OwnerBundle::load).transpose()?;
    let reference = if is_pytorch(&request.model)? { Some(inspect_reference(&request.model)?) } else { None };
    let arch = match (&reference, &bundle) {
        (Some(info), _) => info.config.arch,
        (None, Some(bundle)) => bundle.model.arch,
        (None, None) => bail!("`{}` is a model record of this tool: pass the owner bundle that claims it with --owner PATH", request.model.display()),
    };
    let inputs = Inputs { bundle, reference };
    match arch {
        Arch::Alexnet => run_for::<AlexNet>(request, inputs, &device),
        Arch::Resnet9 | Arch::Resnet18 => run_for::<ResNet>(request, inputs, &device),
    }
}

fn run_for<M: Net>(request: &Request, inputs: Inputs, device: &Device) -> Result<Outcome> {
    let loaded = load::<M>(request, inputs, device)?;
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
    let test_batches = test.as_ref().map(Batches);
    let trigger_batches = triggers.as_ref().map(Batches);
    let evidence = Evidence {
        test: test_batches.as_ref().map(|b| b as &dyn LabelledBatches),
        triggers: trigger_batches.as_ref().map(|b| (b as &dyn LabelledBatches, loaded.config.num_classes)),
        forged_draws: request.forged,
        seed: 0x5eed,
    };
    let claim = match &loaded.bundle {
        Some(bundle) => Claim::from(bundle),
        None => Claim { layers: &loaded.signatures, passports: &[], weights_sha256: None },
    };
    let verdict = verify(&loaded.model, &claim, &evidence, &Thresholds::default())?;
    if request.json {
        let report = Report {
            model: &request.model,
            owner: request.owner.as_deref(),
            claim_source: loaded.claim_source,
            config: &loaded.config,
            scheme: loaded.scheme,
            verdict: &verdict,
        };
        Ok(Outcome { decision: verdict.decision, output: format!("{}\n", serde_json::to_string_pretty(&report)?) })
    } else {
        Ok(Outcome { decision: verdict.decision, output: text(request, &loaded, &verdict) })
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
        request.owner.as_ref().map_or(String::new(), |o| format!(" `{}`", o.display()))
    );
    header + &verdict_body(verdict)
}
