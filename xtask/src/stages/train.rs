//! The `train` stage: schemes V0 and V1 through the one training loop.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use ipr_data::{Dataset, ImageSet, TRIGGER_LABELS_FILE, TriggerSetConfig, generate_trigger_set, write_trigger_set};
use ipr_models::{
    BUNDLE_FORMAT, LayerPassports, LayerSignature, Layout, Net, OwnerBundle, sample_passports, save_module,
    save_module_with_mode, weights_digest,
};
use ipr_passport::{KeyType, Route};
use ipr_schemes::{PassportObjective, Scheme, TrainData, eval_form, evaluate, train};
use ipr_verify::{check_passports, check_signatures};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{Ctx, ModelCard, rebuild, rebuild_public, write_json};
use crate::data::PASSPORT_SAMPLE;
use crate::plan::{PassportSource, TrainStage, TriggerSource};

#[derive(Serialize)]
struct Summary {
    scheme: Scheme,
    epochs: usize,
    train_images: usize,
    /// Test accuracy of the public path (the only path of V0/V1).
    test_acc: f64,
    best_test_acc: f64,
    train_acc: f64,
    /// V2/V3: test accuracy of the private (passport) path.
    private_test_acc: Option<f64>,
    /// V2/V3: test accuracy of `public.bpk` loaded into the model built without passports.
    public_model_test_acc: Option<f64>,
    /// V3: the trigger set.
    trigger: Option<TriggerSummary>,
    detection: ipr_verify::SignatureReport,
    seconds: f64,
    images_per_second: f64,
}

#[derive(Serialize)]
struct TriggerSummary {
    images: usize,
    per_batch: usize,
    /// Accuracy of the public model on the trigger set: the black-box check.
    public_acc: f64,
    /// Accuracy of the private path on the trigger set.
    private_acc: f64,
    /// Accuracy on the same set of the pretrained stage, never trained on it (the control).
    control: Option<(String, f64)>,
}

/// The passport layout a train stage uses (none for V0).
fn layout(name: &str, t: &TrainStage) -> Result<Layout> {
    if !t.scheme.has_passports() {
        return Ok(Layout::none());
    }
    let text = std::fs::read_to_string(&t.passport).with_context(|| {
        format!("stage `{name}`: cannot read passport layout `{}`; check `passport` in the plan", t.passport.display())
    })?;
    Ok(Layout::parse(&text, &t.passport.display().to_string())?.with_private(t.scheme.is_private()))
}

/// Checks, before anything runs, that the stage's layout fits the model and every text signature
/// fits its layer.
pub fn preflight<M: Net>(ctx: &Ctx<'_>, name: &str, t: &TrainStage) -> Result<()> {
    let layout = layout(name, t)?;
    let model = M::init(&ctx.net_config(), &layout, &ctx.device).with_context(|| format!("stage `{name}`"))?;
    layout.signatures(&model, ctx.plan.seed).with_context(|| format!("stage `{name}`"))?;
    if let Some(TriggerSource::Folder(folder)) = &t.trigger {
        ctx.data.read_triggers(folder).with_context(|| format!("stage `{name}`"))?;
    }
    Ok(())
}

/// The stage's trigger set (V3): read from its folder, or generated once into
/// `<stage>/trigger/` and always read back from there, so a resumed run trains on the same
/// pixels.
fn trigger_set(ctx: &Ctx<'_>, t: &TrainStage, dir: &Path) -> Result<Option<ImageSet>> {
    let folder = match &t.trigger {
        None => return Ok(None),
        Some(TriggerSource::Folder(folder)) => folder.clone(),
        Some(TriggerSource::Generate(n)) => {
            let folder = dir.join("trigger");
            if !folder.join(TRIGGER_LABELS_FILE).exists() {
                let [channels, size, _] = ctx.data.raw_shape();
                let config = TriggerSetConfig { n: *n, size, channels, num_classes: ctx.data.num_classes, seed: ctx.plan.seed ^ 0x7419_6e67 };
                write_trigger_set(&generate_trigger_set(&config)?, &folder, false)?;
                tracing::info!("generated a secret trigger set of {n} images in {}", folder.display());
            }
            folder
        }
    };
    Ok(Some(ctx.data.read_triggers(&folder)?))
}

/// Trains, then writes `model.bpk` (the owner's full model), `model.json`, `summary.json`,
/// `report.md`, and for passport schemes `owner.json`; V2/V3 add `public.bpk` and `public.json`,
/// the model a licensee receives.
pub fn run<M: Net>(ctx: &Ctx<'_>, name: &str, t: &TrainStage, dir: &Path) -> Result<String> {
    let started = Instant::now();
    let seed = ctx.plan.seed;
    let config = ctx.net_config();
    let layout = layout(name, t)?;
    let device = ctx.device.clone().autodiff();
    device.seed(seed);
    let mut model = M::init(&config, &layout, &device)
        .with_context(|| format!("stage `{name}`: building the model"))?;
    let triggers = trigger_set(ctx, t, dir)?;
    if t.scheme.has_passports() && t.key_type != KeyType::Random {
        let source = t.pretrained.as_deref().context("a sampled key_type needs a pretrained stage")?;
        let (pretrained, _) = rebuild::<M>(&ctx.stage_dir(source), &ctx.device)?;
        let samples = match (t.passport_source, &triggers) {
            (PassportSource::Trigger, Some(set)) => {
                anyhow::ensure!(
                    set.len() >= 2 * PASSPORT_SAMPLE,
                    "stage `{name}`: the trigger set has {} images, but passport_source = \"trigger\" draws two samples of {PASSPORT_SAMPLE}; use a set of at least {} images (trigger_images)",
                    set.len(),
                    2 * PASSPORT_SAMPLE
                );
                ctx.data.passport_samples_from(set.clone(), seed)?
            }
            _ => ctx.data.passport_samples(seed)?,
        };
        let n = t.key_type.images();
        let mut batches = samples.epoch(0);
        let mut next = || -> Result<Tensor<4>> {
            let batch = batches.next().context("too few images to sample passports from (two batches of 20 are needed)")??;
            Ok(batch.to_tensors(&ctx.device).0.narrow(0, 0, n))
        };
        let (for_gamma, for_beta) = (next()?, next()?);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        model = sample_passports(model, &pretrained.valid(), for_gamma, for_beta, &mut rng)?;
        tracing::info!("passports sampled through stage `{source}` ({:?} of {:?} images, {n} each)", t.key_type, t.passport_source);
    }
    let signatures: Vec<LayerSignature> = layout
        .signatures(&model, seed)?
        .into_iter()
        .map(|(path, signature)| LayerSignature { path, signature })
        .collect();

    let objective = PassportObjective::new(&signatures, t.config.sign_loss, &device);
    let train_loader = match &triggers {
        Some(set) => ctx.data.train_loader_with_triggers(t.config.batch_size, seed, set.clone(), t.triggers_per_batch.unwrap_or(2))?,
        None => ctx.data.train_loader(t.config.batch_size, seed)?,
    };
    let test_loader = ctx.data.test_loader()?;
    let data = TrainData { train: &train_loader, test: &test_loader };
    let outcome = train(model, &objective, &signatures, &t.config, data, &device, dir)?;

    let model = outcome.model.valid();
    let private = t.scheme.is_private();
    save_module_with_mode(&model, &dir.join("model.bpk"), private.then_some(0o600))?;
    let card = ModelCard { scheme: t.scheme.name().into(), model: config.clone(), passport_layers: model.passport_paths() };
    write_json(&dir.join("model.json"), &card)?;
    // What is distributed: the model itself for V1, the public path alone for V2/V3.
    let public = private.then(|| model.clone().fold_route(Route::Public));
    let mut public_model_test_acc = None;
    if let Some(public) = &public {
        save_module(public, &dir.join("public.bpk"))?;
        let public_card = ModelCard { scheme: t.scheme.name().into(), model: config.clone(), passport_layers: vec![] };
        write_json(&dir.join("public.json"), &public_card)?;
        let (reloaded, _) = rebuild_public::<M>(dir, &ctx.device)?;
        public_model_test_acc = Some(evaluate(&reloaded, &test_loader, &ctx.device)?.accuracy);
    }
    let bundle = if t.scheme.has_passports() {
        let bundle = OwnerBundle {
            format: BUNDLE_FORMAT,
            scheme: t.scheme.name().into(),
            model: config,
            layers: signatures.clone(),
            weights_sha256: weights_digest(public.as_ref().unwrap_or(&model)),
            passports: if private { LayerPassports::of(&model) } else { vec![] },
        };
        let path = dir.join("owner.json");
        // A rerun after an interruption writes the same secrets: replacing them loses nothing.
        let same_secret = OwnerBundle::load(&path)
            .map(|old| old.layers == bundle.layers && old.passports == bundle.passports)
            .unwrap_or(false);
        bundle.save(&path, ctx.force || same_secret)?;
        Some(bundle)
    } else {
        None
    };
    let detection = match (&public, &bundle) {
        // The owner's proof for a private scheme: the distributed public model plus the bundle.
        (Some(public), Some(bundle)) => check_passports(public, &bundle.passports, &signatures),
        _ => check_signatures(&model, &signatures),
    };
    let trigger = match &triggers {
        Some(set) => {
            let loader = ctx.data.loader_for(set.clone())?;
            let public_acc = evaluate(&eval_form(&model, Route::Public), &loader, &ctx.device)?.accuracy;
            let private_acc = evaluate(&eval_form(&model, Route::Private), &loader, &ctx.device)?.accuracy;
            let control = match &t.pretrained {
                Some(source) => {
                    let (other, _) = rebuild::<M>(&ctx.stage_dir(source), &ctx.device)?;
                    Some((source.clone(), evaluate(&eval_form(&other, Route::Public), &loader, &ctx.device)?.accuracy))
                }
                None => None,
            };
            Some(TriggerSummary { images: set.len(), per_batch: t.triggers_per_batch.unwrap_or(2), public_acc, private_acc, control })
        }
        None => None,
    };
    let last = outcome.history.last().context("training ran no epoch")?;
    let trained_epochs = outcome.history.len() - outcome.resumed_after.unwrap_or(0);
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        scheme: t.scheme,
        epochs: outcome.history.len(),
        train_images: train_loader.num_batches() * t.config.batch_size,
        test_acc: last.test_acc,
        best_test_acc: outcome.best_acc,
        train_acc: last.train_acc,
        private_test_acc: last.private_acc,
        public_model_test_acc,
        trigger,
        detection: detection.clone(),
        seconds,
        images_per_second: (trained_epochs * train_loader.num_batches() * t.config.batch_size) as f64
            / outcome.history.iter().rev().take(trained_epochs).map(|r| r.seconds).sum::<f64>().max(1e-9),
    };
    write_json(&dir.join("summary.json"), &summary)?;
    ipr_models::write_atomic(&dir.join("report.md"), report(name, &summary, &outcome.history).as_bytes(), None)?;

    let mut headline = format!("{} test accuracy {:.2}%", t.scheme.name().to_uppercase(), 100.0 * last.test_acc);
    if let Some(p) = last.private_acc {
        write!(headline, " public / {:.2}% private", 100.0 * p)?;
    }
    if !signatures.is_empty() {
        write!(headline, ", detection {}/{} bits ({:.1}%)", detection.matched, detection.total, 100.0 * detection.agreement)?;
    }
    if let Some(tr) = &summary.trigger {
        write!(headline, ", trigger set {:.0}% (public model)", 100.0 * tr.public_acc)?;
        if let Some((stage, acc)) = &tr.control {
            write!(headline, " vs {:.0}% on `{stage}`", 100.0 * acc)?;
        }
    }
    Ok(headline)
}

fn report(name: &str, s: &Summary, history: &[ipr_schemes::EpochRow]) -> String {
    let mut out = format!(
        "## Stage `{name}` (train, scheme {})\n\n- test accuracy after the last epoch: {:.2}% (best epoch {:.2}%)\n- training images per epoch: {}, {:.0} images/s\n",
        s.scheme.name(),
        100.0 * s.test_acc,
        100.0 * s.best_test_acc,
        s.train_images,
        s.images_per_second
    );
    if let Some(p) = s.private_test_acc {
        out += &format!("- private (passport) path: {:.2}% test accuracy\n", 100.0 * p);
    }
    if let Some(p) = s.public_model_test_acc {
        out += &format!("- `public.bpk` in the model built without passports: {:.2}% test accuracy\n", 100.0 * p);
    }
    if let Some(tr) = &s.trigger {
        out += &format!(
            "- trigger set ({} images, {} per batch): public model {:.2}%, private path {:.2}%{}\n",
            tr.images,
            tr.per_batch,
            100.0 * tr.public_acc,
            100.0 * tr.private_acc,
            tr.control.as_ref().map_or(String::new(), |(st, a)| format!("; `{st}` (never trained on it) {:.2}%", 100.0 * a))
        );
    }
    if !s.detection.layers.is_empty() {
        out += "\n| passport layer | bits | detected | text |\n| --- | --- | --- | --- |\n";
        for l in &s.detection.layers {
            let text = match (&l.expected_text, &l.decoded) {
                (Some(e), Some(d)) => format!("`{e}` → `{d}`"),
                _ => "-".into(),
            };
            out += &format!("| {} | {} | {:.1}% | {text} |\n", l.path, l.bits, 100.0 * l.rate);
        }
    }
    out += "\n| epoch | lr | train loss | train acc | test acc | private acc | detection | s |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for r in history {
        out += &format!(
            "| {} | {} | {:.4} | {:.2}% | {:.2}% | {} | {} | {:.0} |\n",
            r.epoch,
            r.lr,
            r.train_loss,
            100.0 * r.train_acc,
            100.0 * r.test_acc,
            r.private_acc.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            r.detection.map_or("-".into(), |d| format!("{:.1}%", 100.0 * d)),
            r.seconds
        );
    }
    out
}
