//! The `train` stage: schemes V0, V1, V2 and V3 through the one training loop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use ipr_data::{Dataset, ImageSet, Loader, TRIGGER_LABELS_FILE, TriggerSetConfig, generate_trigger_set, write_trigger_set};
use ipr_models::{
    BUNDLE_FORMAT, LayerPassports, LayerSignature, Layout, Net, NetConfig, OwnerBundle, Receipt, Scheme, align_signs, retrofit, sample_passports, save_module,
    save_module_with_mode, weights_digest,
};
use ipr_passport::{RetrofitFit, Route};
use ipr_schemes::{EpochRow, PassportObjective, Run, TrainData, TrainOutcome, eval_form, evaluate, train};
use ipr_verify::{SignatureReport, check_passports, check_signatures};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::ctx::{Ctx, ModelCard, rebuild, rebuild_public, write_json};
use crate::data::PASSPORT_SAMPLE;
use crate::owner::Owner;
use crate::plan::{Init, PassportSource, Passports, TrainStage, TriggerSource};
use crate::report::{detection_table, history_table, pct};

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
    /// `init`: how the passports were retrofitted into the trained model.
    #[serde(skip_serializing_if = "Option::is_none")]
    retrofit: Option<Retrofit>,
    detection: SignatureReport,
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

/// How passports were retrofitted into a trained model (`init`).
#[derive(Serialize)]
struct Retrofit {
    /// The V0 stage, or the reference `.pth`.
    from: String,
    /// Each passport layer's fit of the trained affine.
    layers: LayerFits,
    /// Channels whose filter was negated to carry the signature.
    negated: usize,
    /// Test accuracy before any training: the passport path, and the public path.
    private_acc: f64,
    public_acc: f64,
}

/// Each retrofitted layer's path and fit.
type LayerFits = Vec<(String, RetrofitFit)>;

/// `model` retrofitted into the trained model `init` names, when the stage has one: that
/// model's weights, with `model`'s passports moved to reproduce its affine.
fn retrofitted<M: Net>(ctx: &Ctx<'_>, name: &str, model: M, t: &TrainStage, device: &Device) -> Result<(M, Option<LayerFits>)> {
    let Some(init) = &t.init else { return Ok((model, None)) };
    let (trained, file) = trained_model::<M>(ctx, name, init, device)?;
    let (model, fits) = retrofit(trained, &model).with_context(|| format!("stage `{name}`: retrofitting passports into `{}`", file.display()))?;
    for (path, fit) in &fits {
        tracing::info!(
            "retrofit `{path}`: γ within {:.1e} and β within {:.1e} of the trained affine; passports moved by {:.0}% (P_γ) and {:.0}% (P_β) of their norm",
            fit.scale_error,
            fit.shift_error,
            100.0 * fit.scale_passport_change,
            100.0 * fit.shift_passport_change
        );
    }
    Ok((model, Some(fits)))
}

/// A retrofitted model with its signature's signs in place, and how it starts: the bits are
/// drawn from the solved scale passports, then put into γ's signs. Not in a private model: its
/// public path normalises the same filters, so its scale would turn with them and the
/// distributed model would show the signature; there the sign loss writes it during the
/// fine-tune.
fn retrofit_start<M: Net>(
    ctx: &Ctx<'_>,
    name: &str,
    t: &TrainStage,
    model: M,
    layers: LayerFits,
    signed: &[(String, ipr_passport::Signature)],
    test: &Loader,
) -> Result<(M, Retrofit)> {
    let (model, negated) = if t.scheme.is_private() {
        (model, 0)
    } else {
        align_signs(model, signed).with_context(|| format!("stage `{name}`: retrofitting the signature"))?
    };
    let start = model.valid();
    let private_acc = evaluate(&eval_form(&start, Route::Private), test, &ctx.device)?.accuracy;
    // A V1 model has one path.
    let public_acc = if t.scheme.is_private() { evaluate(&eval_form(&start, Route::Public), test, &ctx.device)?.accuracy } else { private_acc };
    let from = t.init.as_ref().map(Init::written).unwrap_or_default();
    tracing::info!("retrofitted into `{from}`: before training, passport path {:.2}%, public path {:.2}%", 100.0 * private_acc, 100.0 * public_acc);
    Ok((model, Retrofit { from, layers, negated, private_acc, public_acc }))
}

/// The trained model without passports that `init` names, checked against the plan's
/// `[model]`, with its file.
fn trained_model<M: Net>(ctx: &Ctx<'_>, name: &str, init: &Init, device: &Device) -> Result<(M, PathBuf)> {
    let want = ctx.net_config();
    match init {
        Init::Stage(stage) => {
            let dir = ctx.stage_dir(stage);
            let (trained, card) = rebuild::<M>(&dir, device).with_context(|| format!("stage `{name}`: reading the model of stage `{stage}` (init)"))?;
            let file = dir.join("model.bpk");
            same_model(name, &file, &card.model, &want)?;
            Ok((trained, file))
        }
        Init::Reference(path) => {
            let info = reference_info(name, path)?;
            same_model(name, path, &info.config, &want)?;
            let trained = ipr_verify::load_reference::<M>(path, &info, device).with_context(|| format!("stage `{name}`: init"))?;
            Ok((trained, path.clone()))
        }
    }
}

/// Refuses an `init` model of another shape than the plan's `[model]`, naming both.
fn same_model(name: &str, file: &Path, config: &NetConfig, want: &NetConfig) -> Result<()> {
    let describe = |c: &NetConfig| {
        let norm = format!("{:?}", c.norm).to_lowercase();
        format!("{} ({} classes, {} input channels, width {}, norm {norm})", c.arch.name(), c.num_classes, c.in_channels, c.width)
    };
    anyhow::ensure!(
        config == want,
        "stage `{name}`: init `{}` holds {}, but the plan's [model] is {}; set [model] to match it, or retrain it with this [model]",
        file.display(),
        describe(config),
        describe(want)
    );
    Ok(())
}

/// What a reference `.pth` named by `init` holds; only a normal model (no passport) will do.
fn reference_info(name: &str, path: &Path) -> Result<ipr_verify::ReferenceInfo> {
    let info = ipr_verify::inspect_reference(path).with_context(|| format!("stage `{name}`: init"))?;
    anyhow::ensure!(
        info.scheme == Scheme::V0,
        "stage `{name}`: init `{}` is a {} checkpoint with passport layers ({}); init takes a normal model (the reference's AlexNetNormal, ResNet18 or ResNet-9)",
        path.display(),
        info.scheme.name().to_uppercase(),
        info.passport_paths.join(", ")
    );
    Ok(info)
}

/// The passport layout a train stage uses (none for V0).
fn layout(name: &str, t: &TrainStage) -> Result<Layout> {
    if !t.scheme.has_passports() {
        return Ok(Layout::none());
    }
    let text = std::fs::read_to_string(&t.layout)
        .with_context(|| format!("stage `{name}`: cannot read passport layout `{}`; check `passport` in the plan", t.layout.display()))?;
    Ok(Layout::parse(&text, &t.layout.display().to_string())?.with_private(t.scheme.is_private()))
}

/// Checks, before anything runs, that the stage's layout fits the model and every text signature
/// fits its layer.
pub fn preflight<M: Net>(ctx: &Ctx<'_>, name: &str, t: &TrainStage) -> Result<()> {
    let layout = layout(name, t)?;
    let model = M::init(&ctx.net_config(), &layout, &ctx.device).with_context(|| format!("stage `{name}`"))?;
    layout.signatures(&model, ctx.seed).with_context(|| format!("stage `{name}`"))?;
    if let Some(Init::Reference(path)) = &t.init {
        same_model(name, path, &reference_info(name, path)?.config, &ctx.net_config())?;
    }
    if let Some(TriggerSource::Folder(folder)) = t.trigger.as_ref().map(|t| &t.source) {
        ctx.data.read_triggers(folder).with_context(|| format!("stage `{name}`"))?;
    }
    Ok(())
}

/// The stage's trigger set (V3): read from its folder, or generated once into
/// `<stage>/trigger/` and always read back from there, so a resumed run trains on the same
/// pixels.
fn trigger_set(ctx: &Ctx<'_>, t: &TrainStage, dir: &Path) -> Result<Option<ImageSet>> {
    let folder = match t.trigger.as_ref().map(|t| &t.source) {
        None => return Ok(None),
        Some(TriggerSource::Folder(folder)) => folder.clone(),
        Some(TriggerSource::Generate(n)) => {
            let folder = dir.join("trigger");
            if !folder.join(TRIGGER_LABELS_FILE).exists() {
                let [channels, size, _] = ctx.data.raw_shape();
                let config = TriggerSetConfig { n: *n, size, channels, num_classes: ctx.data.num_classes, seed: ctx.seed ^ 0x7419_6e67 };
                write_trigger_set(&generate_trigger_set(&config)?, &folder, false)?;
                tracing::info!("generated a secret trigger set of {n} images in {}", folder.display());
            }
            folder
        }
    };
    Ok(Some(ctx.data.read_triggers(&folder)?))
}

/// `model` with passports sampled through the stage named by `passports`, when they are.
fn with_sampled_passports<M: Net>(ctx: &Ctx<'_>, name: &str, model: M, t: &TrainStage, triggers: Option<&ImageSet>) -> Result<M> {
    let Some(Passports::Sampled { through, key_type, images }) = &t.passports else {
        return Ok(model);
    };
    let (pretrained, _) = rebuild::<M>(&ctx.stage_dir(through), &ctx.device)?;
    let samples = match (images, triggers) {
        (PassportSource::Trigger, Some(set)) => {
            anyhow::ensure!(
                set.len() >= 2 * PASSPORT_SAMPLE,
                "stage `{name}`: the trigger set has {} images, but passport_source = \"trigger\" draws two samples of {PASSPORT_SAMPLE}; use a set of at least {} images (trigger_images)",
                set.len(),
                2 * PASSPORT_SAMPLE
            );
            ctx.data.passport_samples_from(set.clone(), ctx.seed)?
        }
        _ => ctx.data.passport_samples(ctx.seed)?,
    };
    let n = key_type.images();
    let mut batches = samples.epoch(0);
    let mut next = || -> Result<Tensor<4>> {
        let batch = batches.next().context("too few images to sample passports from (two batches of 20 are needed)")??;
        Ok(batch.to_tensors(&ctx.device).0.narrow(0, 0, n))
    };
    let (for_gamma, for_beta) = (next()?, next()?);
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let model = sample_passports(model, &pretrained.valid(), for_gamma, for_beta, &mut rng)?;
    tracing::info!("passports sampled through stage `{through}` ({key_type:?} of {images:?} images, {n} each)");
    Ok(model)
}

/// Trains, then writes `model.bpk` (the owner's full model), `model.json`, `summary.json`,
/// `report.md`, and for passport schemes `owner.json`; V2/V3 add `public.bpk` and `public.json`,
/// the model a licensee receives.
pub fn run<M: Net>(ctx: &Ctx<'_>, name: &str, t: &TrainStage, dir: &Path) -> Result<String> {
    let started = Instant::now();
    let layout = layout(name, t)?.with_owner(ctx.owner.and_then(Owner::binding));
    let device = ctx.device.clone().autodiff();
    device.seed(ctx.seed);
    let model = M::init(&ctx.net_config(), &layout, &device).with_context(|| format!("stage `{name}`: building the model"))?;
    let triggers = trigger_set(ctx, t, dir)?;
    let model = with_sampled_passports(ctx, name, model, t, triggers.as_ref())?;
    let (model, fits) = retrofitted(ctx, name, model, t, &device)?;
    let signed = layout.signatures(&model, ctx.seed)?;
    let test_loader = ctx.data.test_loader()?;
    let (model, retrofit) = match fits {
        Some(layers) => {
            let (model, retrofit) = retrofit_start(ctx, name, t, model, layers, &signed, &test_loader)?;
            (model, Some(retrofit))
        }
        None => (model, None),
    };
    let signatures: Vec<LayerSignature> = signed.into_iter().map(|(path, signature)| LayerSignature { path, signature }).collect();

    let objective = PassportObjective::new(&signatures, t.config.sign_loss, &device);
    let train_loader = match (&triggers, &t.trigger) {
        (Some(set), Some(trigger)) => ctx.data.train_loader_with_triggers(t.config.batch_size, ctx.seed, set.clone(), trigger.per_batch)?,
        _ => ctx.data.train_loader(t.config.batch_size, ctx.seed)?,
    };
    let run = Run { config: &t.config, data: TrainData { train: &train_loader, test: &test_loader }, device: &device, dir };
    let outcome = train(model, &objective, &signatures, &run)?;
    let model = outcome.model.valid();
    let published = publish(ctx, t, &model, &signatures, dir, &test_loader)?;
    let trigger = match &triggers {
        Some(set) => Some(trigger_summary(ctx, t, &model, set)?),
        None => None,
    };
    let summary = summarise(t, &outcome, &published, trigger, retrofit, train_loader.num_batches(), started);
    write_json(&dir.join("summary.json"), &summary)?;
    ipr_models::write_atomic(&dir.join("report.md"), report(name, &summary, &outcome.history).as_bytes(), None)?;
    headline(t, &summary, &outcome.history, !signatures.is_empty())
}

/// What a train stage distributes and keeps, once trained.
struct Published {
    public_model_test_acc: Option<f64>,
    detection: SignatureReport,
}

/// Writes the owner's model and card, the V2/V3 public model, and the owner bundle; returns the
/// public model's accuracy and the owner's detection from what is distributed.
fn publish<M: Net>(ctx: &Ctx<'_>, t: &TrainStage, model: &M, signatures: &[LayerSignature], dir: &Path, test: &Loader) -> Result<Published> {
    let config = ctx.net_config();
    let private = t.scheme.is_private();
    save_module_with_mode(model, &dir.join("model.bpk"), private.then_some(0o600))?;
    write_json(&dir.join("model.json"), &ModelCard { scheme: t.scheme, model: config.clone(), passport_layers: model.passport_paths(), normalization: Some(ctx.data.normalization().clone()) })?;
    // What is distributed: the model itself for V1, the public path alone for V2/V3.
    let public = private.then(|| model.clone().fold_route(Route::Public));
    let mut public_model_test_acc = None;
    if let Some(public) = &public {
        save_module(public, &dir.join("public.bpk"))?;
        write_json(&dir.join("public.json"), &ModelCard { scheme: t.scheme, model: config.clone(), passport_layers: vec![], normalization: Some(ctx.data.normalization().clone()) })?;
        let (reloaded, _) = rebuild_public::<M>(dir, &ctx.device)?;
        public_model_test_acc = Some(evaluate(&reloaded, test, &ctx.device)?.accuracy);
    }
    if !t.scheme.has_passports() {
        return Ok(Published { public_model_test_acc, detection: check_signatures(model, signatures) });
    }
    let mut bundle = OwnerBundle {
        format: BUNDLE_FORMAT,
        scheme: t.scheme,
        model: config,
        layers: signatures.to_vec(),
        weights_sha256: weights_digest(public.as_ref().unwrap_or(model)),
        // V1 passports are public (they ship with the model); the claim names them all the same.
        passports: LayerPassports::of(model),
        owner: None,
    };
    let owner = ctx.owner.context("a passport scheme needs the plan's owner key")?;
    bundle.sign(&owner.key, crate::owner::now());
    let path = dir.join("owner.json");
    // A rerun after an interruption writes the same secrets: replacing them loses nothing.
    let same_secret = OwnerBundle::load(&path).map(|old| old.layers == bundle.layers && old.passports == bundle.passports).unwrap_or(false);
    bundle.save(&path, ctx.force || same_secret)?;
    // What the owner publishes before releasing the model: it reveals no passport and no bit.
    write_json(&dir.join("receipt.json"), &Receipt::of(&bundle)?)?;
    let detection = match &public {
        // The owner's proof for a private scheme: the distributed public model plus the bundle.
        Some(public) => check_passports(public, &bundle.passports, signatures),
        None => check_signatures(model, signatures),
    };
    Ok(Published { public_model_test_acc, detection })
}

/// The black-box check of V3: the trigger set through the public model, the private path and
/// the pretrained stage (the control, never trained on it).
fn trigger_summary<M: Net>(ctx: &Ctx<'_>, t: &TrainStage, model: &M, set: &ImageSet) -> Result<TriggerSummary> {
    let loader = ctx.data.loader_for(set.clone())?;
    let public_acc = evaluate(&eval_form(model, Route::Public), &loader, &ctx.device)?.accuracy;
    let private_acc = evaluate(&eval_form(model, Route::Private), &loader, &ctx.device)?.accuracy;
    let control = match &t.pretrained {
        Some(source) => {
            let (other, _) = rebuild::<M>(&ctx.stage_dir(source), &ctx.device)?;
            Some((source.clone(), evaluate(&eval_form(&other, Route::Public), &loader, &ctx.device)?.accuracy))
        }
        None => None,
    };
    let per_batch = t.trigger.as_ref().map_or(0, |tr| tr.per_batch);
    Ok(TriggerSummary { images: set.len(), per_batch, public_acc, private_acc, control })
}

fn summarise<M>(
    t: &TrainStage,
    outcome: &TrainOutcome<M>,
    published: &Published,
    trigger: Option<TriggerSummary>,
    retrofit: Option<Retrofit>,
    batches: usize,
    started: Instant,
) -> Summary {
    let last = outcome.history.last();
    let trained_epochs = outcome.history.len() - outcome.resumed_after.unwrap_or(0);
    let train_seconds: f64 = outcome.history.iter().rev().take(trained_epochs).map(|r| r.seconds).sum();
    Summary {
        scheme: t.scheme,
        epochs: outcome.history.len(),
        train_images: batches * t.config.batch_size,
        test_acc: last.map_or(f64::NAN, |r| r.test_acc),
        best_test_acc: outcome.best_acc,
        train_acc: last.map_or(f64::NAN, |r| r.train_acc),
        private_test_acc: last.and_then(|r| r.private_acc),
        public_model_test_acc: published.public_model_test_acc,
        trigger,
        retrofit,
        detection: published.detection.clone(),
        seconds: started.elapsed().as_secs_f64(),
        images_per_second: (trained_epochs * batches * t.config.batch_size) as f64 / train_seconds.max(1e-9),
    }
}

fn headline(t: &TrainStage, s: &Summary, history: &[EpochRow], passports: bool) -> Result<String> {
    let last = history.last().context("training ran no epoch")?;
    let mut headline = format!("{} test accuracy {:.2}%", t.scheme.name().to_uppercase(), 100.0 * last.test_acc);
    if let Some(p) = last.private_acc {
        write!(headline, " public / {:.2}% private", 100.0 * p)?;
    }
    if passports {
        write!(headline, ", detection {}/{} bits ({:.1}%)", s.detection.matched, s.detection.total, 100.0 * s.detection.agreement)?;
    }
    if let Some(tr) = &s.trigger {
        write!(headline, ", trigger set {:.0}% (public model)", 100.0 * tr.public_acc)?;
        if let Some((stage, acc)) = &tr.control {
            write!(headline, " vs {:.0}% on `{stage}`", 100.0 * acc)?;
        }
    }
    Ok(headline)
}

fn report(name: &str, s: &Summary, history: &[EpochRow]) -> String {
    let mut out = format!(
        "## Stage `{name}` (train, scheme {})\n\n- test accuracy after the last epoch: {} (best epoch {})\n- training images per epoch: {}, {:.0} images/s\n",
        s.scheme.name(),
        pct(s.test_acc),
        pct(s.best_test_acc),
        s.train_images,
        s.images_per_second
    );
    if let Some(p) = s.private_test_acc {
        out += &format!("- private (passport) path: {} test accuracy\n", pct(p));
    }
    if let Some(p) = s.public_model_test_acc {
        out += &format!("- `public.bpk` in the model built without passports: {} test accuracy\n", pct(p));
    }
    if let Some(tr) = &s.trigger {
        out += &format!(
            "- trigger set ({} images, {} per batch): public model {}, private path {}{}\n",
            tr.images,
            tr.per_batch,
            pct(tr.public_acc),
            pct(tr.private_acc),
            tr.control.as_ref().map_or(String::new(), |(st, a)| format!("; `{st}` (never trained on it) {}", pct(*a)))
        );
    }
    if let Some(r) = &s.retrofit {
        out += &format!(
            "- retrofitted into `{}`: before training, passport path {}, public path {}; {} filters negated to carry the signature\n",
            r.from,
            pct(r.private_acc),
            pct(r.public_acc),
            r.negated
        );
        for (path, fit) in &r.layers {
            out += &format!(
                "  - `{path}`: γ within {:.1e}, β within {:.1e} of the trained affine; passports moved by {:.0}% (P_γ) and {:.0}% (P_β) of their norm\n",
                fit.scale_error,
                fit.shift_error,
                100.0 * fit.scale_passport_change,
                100.0 * fit.shift_passport_change
            );
        }
    }
    if !s.detection.layers.is_empty() {
        out += &format!("\n{}", detection_table(&s.detection));
    }
    out + &format!("\n{}", history_table(history))
}
