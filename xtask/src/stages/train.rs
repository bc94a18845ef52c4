//! The `train` stage: schemes V0 and V1 through the one training loop.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use ipr_models::{
    BUNDLE_FORMAT, LayerSignature, Layout, Net, OwnerBundle, sample_passports, save_module, weights_digest,
};
use ipr_passport::KeyType;
use ipr_schemes::{PassportObjective, Scheme, TrainData, train};
use ipr_verify::check_signatures;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{Ctx, ModelCard, rebuild, write_json};
use crate::plan::TrainStage;

#[derive(Serialize)]
struct Summary {
    scheme: Scheme,
    epochs: usize,
    train_images: usize,
    test_acc: f64,
    best_test_acc: f64,
    train_acc: f64,
    detection: ipr_verify::SignatureReport,
    seconds: f64,
    images_per_second: f64,
}

/// The passport layout a train stage uses (none for V0).
fn layout(name: &str, t: &TrainStage) -> Result<Layout> {
    Ok(match t.scheme {
        Scheme::V0 => Layout::none(),
        Scheme::V1 => {
            let text = std::fs::read_to_string(&t.passport).with_context(|| {
                format!("stage `{name}`: cannot read passport layout `{}`; check `passport` in the plan", t.passport.display())
            })?;
            Layout::parse(&text, &t.passport.display().to_string())?
        }
    })
}

/// Checks, before anything runs, that the stage's layout fits the model and every text signature
/// fits its layer.
pub fn preflight<M: Net>(ctx: &Ctx<'_>, name: &str, t: &TrainStage) -> Result<()> {
    let layout = layout(name, t)?;
    let model = M::init(&ctx.net_config(), &layout, &ctx.device).with_context(|| format!("stage `{name}`"))?;
    layout.signatures(&model, ctx.plan.seed).with_context(|| format!("stage `{name}`"))?;
    Ok(())
}

/// Trains, then writes `model.bpk`, `model.json`, `owner.json` (passport schemes),
/// `summary.json` and `report.md`.
pub fn run<M: Net>(ctx: &Ctx<'_>, name: &str, t: &TrainStage, dir: &Path) -> Result<String> {
    let started = Instant::now();
    let seed = ctx.plan.seed;
    let config = ctx.net_config();
    let layout = layout(name, t)?;
    let device = ctx.device.clone().autodiff();
    device.seed(seed);
    let mut model = M::init(&config, &layout, &device)
        .with_context(|| format!("stage `{name}`: building the model"))?;
    if t.scheme != Scheme::V0 && t.key_type != KeyType::Random {
        let source = t.pretrained.as_deref().context("a sampled key_type needs a pretrained stage")?;
        let (pretrained, _) = rebuild::<M>(&ctx.stage_dir(source), &ctx.device)?;
        let samples = ctx.data.passport_samples(seed)?;
        let n = t.key_type.images();
        let mut batches = samples.epoch(0);
        let mut next = || -> Result<Tensor<4>> {
            let batch = batches.next().context("the test split is too small to sample passports")??;
            Ok(batch.to_tensors(&ctx.device).0.narrow(0, 0, n))
        };
        let (for_gamma, for_beta) = (next()?, next()?);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        model = sample_passports(model, &pretrained.valid(), for_gamma, for_beta, &mut rng)?;
        tracing::info!("passports sampled through stage `{source}` ({:?}, {n} images each)", t.key_type);
    }
    let signatures: Vec<LayerSignature> = layout
        .signatures(&model, seed)?
        .into_iter()
        .map(|(path, signature)| LayerSignature { path, signature })
        .collect();

    let objective = PassportObjective::new(&signatures, t.config.sign_loss, &device);
    let train_loader = ctx.data.train_loader(t.config.batch_size, seed)?;
    let test_loader = ctx.data.test_loader()?;
    let data = TrainData { train: &train_loader, test: &test_loader };
    let outcome = train(model, &objective, &signatures, &t.config, data, &device, dir)?;

    let model = outcome.model.valid();
    save_module(&model, &dir.join("model.bpk"))?;
    let card = ModelCard { scheme: t.scheme.name().into(), model: config.clone(), passport_layers: model.passport_paths() };
    write_json(&dir.join("model.json"), &card)?;
    if t.scheme != Scheme::V0 {
        let bundle = OwnerBundle {
            format: BUNDLE_FORMAT,
            scheme: t.scheme.name().into(),
            model: config,
            layers: signatures.clone(),
            weights_sha256: weights_digest(&model),
        };
        let path = dir.join("owner.json");
        // A rerun after an interruption writes the same signatures: replacing them loses nothing.
        let same_secret = OwnerBundle::load(&path).map(|old| old.layers == bundle.layers).unwrap_or(false);
        bundle.save(&path, ctx.force || same_secret)?;
    }
    let detection = check_signatures(&model, &signatures);
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
        detection: detection.clone(),
        seconds,
        images_per_second: (trained_epochs * train_loader.num_batches() * t.config.batch_size) as f64
            / outcome.history.iter().rev().take(trained_epochs).map(|r| r.seconds).sum::<f64>().max(1e-9),
    };
    write_json(&dir.join("summary.json"), &summary)?;
    std::fs::write(dir.join("report.md"), report(name, &summary, &outcome.history))?;

    let mut headline = format!("{} test accuracy {:.2}%", t.scheme.name().to_uppercase(), 100.0 * last.test_acc);
    if !signatures.is_empty() {
        write!(headline, ", detection {}/{} bits ({:.1}%)", detection.matched, detection.total, 100.0 * detection.agreement)?;
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
    out += "\n| epoch | lr | train loss | train acc | test acc | detection | s |\n| --- | --- | --- | --- | --- | --- | --- |\n";
    for r in history {
        out += &format!(
            "| {} | {} | {:.4} | {:.2}% | {:.2}% | {} | {:.0} |\n",
            r.epoch,
            r.lr,
            r.train_loss,
            100.0 * r.train_acc,
            100.0 * r.test_acc,
            r.detection.map_or("-".into(), |d| format!("{:.1}%", 100.0 * d)),
            r.seconds
        );
    }
    out
}
