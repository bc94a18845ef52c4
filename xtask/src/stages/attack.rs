//! The `attack` stage: one robustness evaluation of spec §8 against a trained model, through the
//! library's attacks (and so the one training loop), ending with the verifier's verdict on the
//! attacked model. Each stage writes `summary.json`, `attack.json` (its line of the plan's
//! summary table), `report.md` and its PNG curves.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_attacks::{
    FinetuneMode, ForgeSource, Probed, finetune, flip, flip_gammas, flipped_signatures, forge, optimise_passport, prune, prune_weights,
    reverse, substitute,
};
use ipr_models::{LayerPassports, LayerSignature, Net, OwnerBundle, write_atomic};
use ipr_passport::Route;
use ipr_schemes::{EpochRow, TrainConfig, TrainData, eval_form, evaluate};
use ipr_verify::{Claim, Evidence, LabelledBatches, Thresholds, Verdict, verify};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Ctx, owner_bundle, rebuild, write_json};
use crate::data::Datasets;
use crate::plan::{Attack, FinetuneTarget};
use crate::plot::{Series, curves};
use crate::verify::Batches;

/// One row of the plan report's summary table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttackLine {
    /// Stage name.
    pub stage: String,
    /// Attack name.
    pub attack: String,
    /// The attacked train stage.
    pub from: String,
    /// Test accuracy before the attack (the path it attacks).
    pub before: f64,
    /// Test accuracy after it.
    pub after: f64,
    /// Fraction of the owner's signature bits the attacked model still carries.
    pub detection: f64,
    /// The verifier's decision on the owner's claim against the attacked model.
    pub verdict: String,
    /// What the numbers are, in a few words.
    pub note: String,
}

/// What an attack hands back to the stage runner.
struct Outcome {
    summary: serde_json::Value,
    report: String,
    line: AttackLine,
}

/// The owner's side of an attack: the trained model, its bundle and genuine passports.
struct Owner<M> {
    stage: String,
    model: M,
    bundle: OwnerBundle,
    passports: Vec<LayerPassports>,
}

impl<M: Net> Owner<M> {
    fn load(ctx: &Ctx<'_>, from: &str) -> Result<Self> {
        let src = ctx.stage_dir(from);
        let (model, _) = rebuild::<M>(&src, &ctx.device)?;
        let bundle = owner_bundle(&src, from)?;
        let passports = if bundle.passports.is_empty() { LayerPassports::of(&model) } else { bundle.passports.clone() };
        Ok(Self { stage: from.to_string(), model, bundle, passports })
    }

    fn signatures(&self) -> &[LayerSignature] {
        &self.bundle.layers
    }

    /// The verifier's white-box verdict on the owner's claim against `attacked`: γ from the
    /// owner's passports through the attacked weights (the passports inside a model that still
    /// holds passport layers).
    fn verdict(&self, attacked: &M) -> Result<Verdict> {
        let holds_passports = attacked.blocks().iter().any(|(_, b)| b.is_passport());
        let claim = Claim {
            layers: &self.bundle.layers,
            passports: if holds_passports { &[] } else { &self.passports },
            weights_sha256: Some(&self.bundle.weights_sha256),
        };
        verify(attacked, &claim, &Evidence::default(), &Thresholds::default()).map_err(anyhow::Error::msg)
    }
}

/// Where an attack that trains starts: the forger's target signature (the owner's with a
/// fraction of its bits flipped), the test accuracy before the attack along the attacked path,
/// and the owner's model rebuilt on the autodiff device.
struct Start<M> {
    target: Vec<LayerSignature>,
    before: f64,
    model: M,
    device: Device,
}

impl<M: Net> Owner<M> {
    /// `salt` keeps each attack's flipped bits its own.
    fn start(&self, ctx: &Ctx<'_>, flip: f64, salt: u64, route: Route, test: &ipr_data::Loader) -> Result<Start<M>> {
        let target = flipped_signatures(self.signatures(), flip, ctx.plan.seed ^ salt);
        let before = evaluate(&eval_form(&self.model, route), test, &ctx.device)?.accuracy;
        let device = ctx.device.clone().autodiff();
        let (model, _) = rebuild::<M>(&ctx.stage_dir(&self.stage), &device)?;
        Ok(Start { target, before, model, device })
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn verdict_text(v: &Verdict) -> String {
    format!("{:?} ({}/{} bits, p = 10^{:.1})", v.decision, v.signature.matched, v.signature.total, v.signature.log10_false_claim)
}

/// Runs the attack of stage `name` on stage `from`.
pub fn run<M: Net>(ctx: &Ctx<'_>, name: &str, from: &str, attack: &Attack, dir: &Path) -> Result<String> {
    let owner = Owner::<M>::load(ctx, from)?;
    let test = ctx.data.test_loader()?;
    let outcome = match attack {
        Attack::Prune { percents } => run_prune(ctx, &owner, percents, &test, name)?,
        Attack::Flip { fractions } => run_flip(ctx, &owner, fractions, &test, name)?,
        Attack::Forge { draws, source, pretrained } => run_forge(ctx, &owner, *draws, *source, pretrained.as_deref(), &test)?,
        Attack::Finetune { mode, target, config } => run_finetune(ctx, &owner, *mode, target, config, name, dir)?,
        Attack::Reverse { flip, config } => run_reverse(ctx, &owner, *flip, config, &test, name, dir)?,
        Attack::OptimisePassport { flip, config } => run_optimise(ctx, &owner, *flip, config, &test, name, dir)?,
        Attack::Substitute { erb, data_fraction, flip, config } => {
            run_substitute(ctx, &owner, *erb, *data_fraction, *flip, config, &test, name, dir)?
        }
    };
    let line = AttackLine { stage: name.into(), attack: attack.name().into(), from: from.into(), ..outcome.line };
    write_json(&dir.join("summary.json"), &outcome.summary)?;
    write_json(&dir.join("attack.json"), &line)?;
    let report = format!("## Stage `{name}`: attack `{}` on `{from}`\n\n{}", attack.name(), outcome.report);
    write_atomic(&dir.join("report.md"), report.as_bytes(), None)?;
    Ok(format!(
        "{}: accuracy {} → {}, owner's bits {}, verdict {}",
        line.note,
        pct(line.before),
        pct(line.after),
        pct(line.detection),
        line.verdict
    ))
}

/// Draws a curve into the stage folder and returns the markdown that shows it (or says why it
/// is missing), with the path relative to the plan's run folder.
fn figure(ctx: &Ctx<'_>, stage: &str, file: &str, title: &str, x_label: &str, x: &[f64], series: &[Series<'_>]) -> String {
    let path = ctx.stage_dir(stage).join(file);
    match curves(&path, title, x_label, x, series) {
        Ok(()) => format!("\n![{title}]({stage}/{file})\n"),
        Err(e) => {
            tracing::warn!("{e:#}");
            format!("\n(curve not drawn: {e:#})\n")
        }
    }
}

/// The row closest to `x` of `(x, row)` pairs.
fn nearest<T>(rows: &[T], x: f64, key: impl Fn(&T) -> f64) -> Option<&T> {
    rows.iter().min_by(|a, b| (key(a) - x).abs().total_cmp(&(key(b) - x).abs()))
}

fn run_prune<M: Net>(ctx: &Ctx<'_>, owner: &Owner<M>, percents: &[f64], test: &ipr_data::Loader, stage: &str) -> Result<Outcome> {
    let rows = prune(&owner.model, percents, test, owner.signatures(), &ctx.device)?;
    let mut report = String::from(
        "Global magnitude pruning of every conv and linear weight; accuracy along the passport path, detection from γ computed with the passports through the pruned weights.\n\n| pruned | accuracy | public path | owner's bits |\n| --- | --- | --- | --- |\n",
    );
    for r in &rows {
        report += &format!("| {:.0}% | {} | {} | {} |\n", r.percent, pct(r.accuracy), r.public_accuracy.map_or("–".into(), pct), pct(r.detection));
    }
    let x: Vec<f64> = rows.iter().map(|r| r.percent).collect();
    report += &figure(ctx, stage, "prune.png", "Pruning", "weights pruned (%)", &x, &[
        Series { label: "accuracy", values: rows.iter().map(|r| r.accuracy).collect() },
        Series { label: "owner's bits detected", values: rows.iter().map(|r| r.detection).collect() },
    ]);
    let at = nearest(&rows, 50.0, |r| r.percent).context("prune has no level")?;
    let verdict = owner.verdict(&prune_weights(owner.model.clone(), at.percent))?;
    report += &format!("\nVerdict on the owner's claim at {:.0}% pruned: {}.\n", at.percent, verdict_text(&verdict));
    let before = nearest(&rows, 0.0, |r| r.percent).map_or(f64::NAN, |r| r.accuracy);
    Ok(Outcome {
        summary: json!({ "rows": rows, "verdict_at": at.percent, "verdict": verdict }),
        report,
        line: line(before, at.accuracy, at.detection, &verdict, format!("{:.0}% of weights pruned", at.percent)),
    })
}

fn line(before: f64, after: f64, detection: f64, verdict: &Verdict, note: String) -> AttackLine {
    AttackLine {
        stage: String::new(),
        attack: String::new(),
        from: String::new(),
        before,
        after,
        detection,
        verdict: format!("{:?}", verdict.decision),
        note,
    }
}

fn run_flip<M: Net>(ctx: &Ctx<'_>, owner: &Owner<M>, fractions: &[f64], test: &ipr_data::Loader, stage: &str) -> Result<Outcome> {
    let rows = flip(&owner.model, fractions, test, owner.signatures(), ctx.plan.seed, &ctx.device)?;
    let mut report = String::from(
        "A fraction of all γ entries of the passport layers negated (passport path, folded); detection from the signs of the flipped γ.\n\n| flipped | accuracy | owner's bits |\n| --- | --- | --- |\n",
    );
    for r in &rows {
        report += &format!("| {:.0}% | {} | {} |\n", 100.0 * r.fraction, pct(r.accuracy), pct(r.detection));
    }
    let x: Vec<f64> = rows.iter().map(|r| 100.0 * r.fraction).collect();
    report += &figure(ctx, stage, "flip.png", "Sign flipping", "γ signs flipped (%)", &x, &[
        Series { label: "accuracy", values: rows.iter().map(|r| r.accuracy).collect() },
        Series { label: "owner's bits in γ", values: rows.iter().map(|r| r.detection).collect() },
    ]);
    let at = nearest(&rows, 0.5, |r| r.fraction).context("flip has no level")?;
    let verdict = owner.verdict(&flip_gammas(owner.model.clone(), at.fraction, ctx.plan.seed))?;
    report += &format!(
        "\nVerdict on the owner's claim at {:.0}% flipped (γ from the passports through the unchanged conv weights): {}.\n",
        100.0 * at.fraction,
        verdict_text(&verdict)
    );
    let before = nearest(&rows, 0.0, |r| r.fraction).map_or(f64::NAN, |r| r.accuracy);
    Ok(Outcome {
        summary: json!({ "rows": rows, "verdict_at": at.fraction, "verdict": verdict }),
        report,
        line: line(before, at.accuracy, at.detection, &verdict, format!("{:.0}% of γ signs flipped", 100.0 * at.fraction)),
    })
}

fn run_forge<M: Net>(
    ctx: &Ctx<'_>,
    owner: &Owner<M>,
    draws: usize,
    source: ForgeSource,
    pretrained: Option<&str>,
    test: &ipr_data::Loader,
) -> Result<Outcome> {
    let pretrained = pretrained.map(|p| rebuild::<M>(&ctx.stage_dir(p), &ctx.device)).transpose()?.map(|(m, _)| m);
    let genuine = evaluate(&eval_form(&owner.model, Route::Private), test, &ctx.device)?.accuracy;
    // Different images than the owner's own sample: another seed for the sample stream.
    let samples = ctx.data.passport_samples(ctx.plan.seed ^ 0x00f0_46e5)?;
    let rows = forge(&owner.model, pretrained.as_ref(), source, draws, &samples, test, owner.signatures(), ctx.plan.seed, &ctx.device)?;
    let mean = |f: &dyn Fn(&ipr_attacks::ForgeRow) -> f64| rows.iter().map(f).sum::<f64>() / rows.len().max(1) as f64;
    let (acc, det) = (mean(&|r| r.accuracy), mean(&|r| r.detection));
    let min = rows.iter().map(|r| r.accuracy).fold(f64::INFINITY, f64::min);
    let max = rows.iter().map(|r| r.accuracy).fold(f64::NEG_INFINITY, f64::max);
    let mut report = format!(
        "Forged passports ({source:?}) in place of the genuine ones. Genuine passports: {}; forged: mean {}, range {}–{} over {} draws.\n\n| draw | accuracy | owner's bits still carried | owner's claim |\n| --- | --- | --- | --- |\n",
        pct(genuine),
        pct(acc),
        pct(min),
        pct(max),
        rows.len()
    );
    for r in &rows {
        report += &format!("| {} | {} | {} | {:?} |\n", r.draw, pct(r.accuracy), pct(r.detection), r.owner_claim);
    }
    report += "\nThe last column is the verifier's decision on the owner's claim against the model carrying the forged passports: forged passports that keep the owner's bits still name the owner.\n";
    let decisions: Vec<String> = rows.iter().map(|r| format!("{:?}", r.owner_claim)).collect();
    let verdict = if decisions.iter().all(|d| *d == decisions[0]) {
        decisions[0].clone()
    } else {
        format!("mixed: {}", decisions.join(", "))
    };
    Ok(Outcome {
        summary: json!({ "source": source, "genuine_test_acc": genuine, "forged": rows, "mean_acc": acc, "min_acc": min, "max_acc": max }),
        report,
        line: AttackLine { verdict, ..line(genuine, acc, det, &owner.verdict(&owner.model)?, format!("forged passports ({source:?}), mean of {draws} draws")) },
    })
}

/// The per-epoch table and curve of an attack that trains.
fn training_report(
    ctx: &Ctx<'_>,
    stage: &str,
    title: &str,
    history: &[EpochRow],
    accuracy: &dyn Fn(&EpochRow) -> f64,
    columns: &[(&str, Vec<f64>)],
) -> String {
    let mut out = format!("| epoch | accuracy |{}\n| --- | --- |{}\n", columns.iter().map(|c| format!(" {} |", c.0)).collect::<String>(), " --- |".repeat(columns.len()));
    for (i, row) in history.iter().enumerate() {
        let cells: String = columns.iter().map(|c| format!(" {} |", c.1.get(i).map_or("–".into(), |v| pct(*v)))).collect();
        out += &format!("| {} | {} |{cells}\n", row.epoch, pct(accuracy(row)));
    }
    let x: Vec<f64> = history.iter().map(|r| r.epoch as f64).collect();
    let mut series = vec![Series { label: "accuracy", values: history.iter().map(accuracy).collect() }];
    series.extend(columns.iter().map(|c| Series { label: c.0, values: c.1.clone() }));
    out + &figure(ctx, stage, "epochs.png", title, "epoch", &x, &series)
}

fn last<T: Clone>(probes: &[T]) -> Result<T> {
    probes.last().cloned().context("the attack trained no epoch")
}

fn run_finetune<M: Net>(
    ctx: &Ctx<'_>,
    owner: &Owner<M>,
    mode: FinetuneMode,
    target: &FinetuneTarget,
    config: &TrainConfig,
    stage: &str,
    dir: &Path,
) -> Result<Outcome> {
    let (data, what): (Datasets, String) = match target {
        FinetuneTarget::Classes(classes) => (ctx.data.only_classes(classes).with_context(|| format!("stage `{stage}`, key `classes`"))?, format!("classes {classes:?}")),
        FinetuneTarget::Dataset(section) => {
            let data = Datasets::load(section, ctx.plan.seed).with_context(|| format!("stage `{stage}`, key `dataset`: reading the new task's data"))?;
            if data.shape != ctx.data.shape {
                bail!("stage `{stage}`, key `dataset`: its images are {:?}, but the model takes {:?}; pick a dataset of the same shape", data.shape, ctx.data.shape);
            }
            (data, format!("{:?}", section.dataset))
        }
    };
    // The attacked model was built for the plan's dataset, so it has the plan's classes.
    let num_classes = ctx.data.num_classes;
    if mode == FinetuneMode::Ftal && data.num_classes != num_classes {
        bail!("stage `{stage}`, key `mode`: FTAL keeps the last layer, but the new task has {} classes and the model {num_classes}; use mode = \"rtal\"", data.num_classes);
    }
    let test = data.test_loader()?;
    let before = evaluate(&eval_form(&owner.model, Route::Public), &test, &ctx.device)?.accuracy;
    let device = ctx.device.clone().autodiff();
    let (model, _) = rebuild::<M>(&ctx.stage_dir(&owner.stage), &device)?;
    let train = data.train_loader(config.batch_size, config.seed)?;
    let Probed { model, history, probes } =
        finetune(model, mode, data.num_classes, &owner.passports, owner.signatures(), config, TrainData { train: &train, test: &test }, &device, dir)?;
    let mut columns = vec![("owner's bits, passports through the weights", probes.iter().map(|p| p.passport_detection).collect::<Vec<_>>())];
    if probes.iter().all(|p| p.norm_detection.is_some()) {
        columns.push(("owner's bits in the norm scales", probes.iter().filter_map(|p| p.norm_detection).collect()));
    }
    let mut report = format!(
        "{mode:?} transfer learning of the attacker's copy (passport layers folded into affine norms) to {what}; accuracy on the new task's test split. Before: the copy scores {} there.\n\n",
        pct(before)
    );
    report += &training_report(ctx, stage, "Transfer learning", &history, &|r| r.test_acc, &columns);
    let verdict = owner.verdict(&model.valid())?;
    report += &format!("\nVerdict on the owner's claim against the fine-tuned model: {}.\n", verdict_text(&verdict));
    let end = last(&probes)?;
    let after = history.last().map_or(f64::NAN, |r| r.test_acc);
    Ok(Outcome {
        summary: json!({ "mode": mode, "target": what, "history": history, "probes": probes, "verdict": verdict }),
        report,
        line: line(before, after, end.passport_detection, &verdict, format!("{mode:?} to {what}, {} epochs", history.len())),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_reverse<M: Net>(
    ctx: &Ctx<'_>,
    owner: &Owner<M>,
    flip_fraction: f64,
    config: &TrainConfig,
    test: &ipr_data::Loader,
    stage: &str,
    dir: &Path,
) -> Result<Outcome> {
    let Start { target, before, model, device } = owner.start(ctx, flip_fraction, 0x0f4e_0002, Route::Public, test)?;
    let train = ctx.data.train_loader(config.batch_size, config.seed)?;
    let Probed { model, history, probes } = reverse(model, owner.signatures(), &target, config, TrainData { train: &train, test }, &device, dir)?;
    let mut report = format!(
        "The attacker's copy with every weight frozen; each passport layer's γ set to the forger's signature (the owner's with {:.0}% of the bits flipped) as ±1 and β to 0, then only γ/β trained. Before: {} with the genuine γ/β.\n\n",
        100.0 * flip_fraction,
        pct(before)
    );
    report += &training_report(ctx, stage, "Ambiguity attack 2 (reverse-engineered γ/β)", &history, &|r| r.test_acc, &[
        ("owner's bits in γ", probes.iter().map(|p| p.owner_detection).collect()),
        ("forger's bits in γ", probes.iter().map(|p| p.forger_detection).collect()),
    ]);
    let verdict = owner.verdict(&model.valid())?;
    report += &format!(
        "\nVerdict on the owner's claim against the attacked copy (γ from the owner's passports through its unchanged conv weights): {}.\n",
        verdict_text(&verdict)
    );
    let end = last(&probes)?;
    let after = history.last().map_or(f64::NAN, |r| r.test_acc);
    Ok(Outcome {
        summary: json!({ "flip": flip_fraction, "history": history, "probes": probes, "verdict": verdict }),
        report,
        line: line(before, after, end.owner_detection, &verdict, format!("γ/β retrained to a signature {:.0}% flipped", 100.0 * flip_fraction)),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_optimise<M: Net>(
    ctx: &Ctx<'_>,
    owner: &Owner<M>,
    flip_fraction: f64,
    config: &TrainConfig,
    test: &ipr_data::Loader,
    stage: &str,
    dir: &Path,
) -> Result<Outcome> {
    let Start { target, before, model, device } = owner.start(ctx, flip_fraction, 0x0f4e_0003, Route::Private, test)?;
    let train = ctx.data.train_loader(config.batch_size, config.seed)?;
    let Probed { model, history, probes } = optimise_passport(model, owner.signatures(), &target, config, TrainData { train: &train, test }, &device, dir)?;
    let accuracy = |r: &EpochRow| r.private_acc.unwrap_or(r.test_acc);
    let mut report = format!(
        "The owner's model with every weight frozen; its passports trained from the genuine ones + N(0, 0.001²) towards the forger's signature (the owner's with {:.0}% of the bits flipped) with CE + sign loss + 2·Σ 1/MSE(genuine, forged), gradients clipped to norm {}. Accuracy along the passport path; before: {} with the genuine passports.\n\n",
        100.0 * flip_fraction,
        config.grad_clip.map_or("–".into(), |c| c.to_string()),
        pct(before)
    );
    report += &training_report(ctx, stage, "Ambiguity attack 3 (optimised passports)", &history, &accuracy, &[
        ("owner's bits", probes.iter().map(|p| p.owner_detection).collect()),
        ("forger's bits", probes.iter().map(|p| p.forger_detection).collect()),
        ("cosine to the genuine passports", probes.iter().map(|p| p.cosine).collect()),
    ]);
    let model = model.valid();
    // The owner's claim against the model carrying the forged passports, and the forger's
    // claim: the forged passports and the target signature, with the fidelity check.
    let verdict = owner.verdict(&model)?;
    let batches = Batches(test);
    let evidence = Evidence { test: Some(&batches as &dyn LabelledBatches), triggers: None, forged_draws: 3, seed: ctx.plan.seed };
    let forger = verify(&model, &Claim { layers: &target, passports: &[], weights_sha256: None }, &evidence, &Thresholds::default()).map_err(anyhow::Error::msg)?;
    report += &format!(
        "\nVerdict on the owner's claim against the model carrying the forged passports: {}.\nVerdict on the forger's claim (forged passports, their signature, fidelity checked on the test split): {}.\n",
        verdict_text(&verdict),
        verdict_text(&forger)
    );
    for reason in &forger.reasons {
        report += &format!("- {reason}\n");
    }
    let end = last(&probes)?;
    let after = history.last().map_or(f64::NAN, accuracy);
    Ok(Outcome {
        summary: json!({ "flip": flip_fraction, "history": history, "probes": probes, "verdict": verdict, "forger_verdict": forger }),
        report,
        line: line(
            before,
            after,
            end.owner_detection,
            &verdict,
            format!("passports optimised to a signature {:.0}% flipped (forger's claim: {:?})", 100.0 * flip_fraction, forger.decision),
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_substitute<M: Net>(
    ctx: &Ctx<'_>,
    owner: &Owner<M>,
    erb: ipr_attacks::ErbKind,
    data_fraction: f64,
    flip_fraction: f64,
    config: &TrainConfig,
    test: &ipr_data::Loader,
    stage: &str,
    dir: &Path,
) -> Result<Outcome> {
    let Start { target, before, model, device } = owner.start(ctx, flip_fraction, 0x0f4e_0004, Route::Public, test)?;
    let share = ctx.data.train_fraction(data_fraction, ctx.plan.seed ^ 0x0f4e_0005);
    let train = share.train_loader(config.batch_size, config.seed)?;
    let Probed { model, history, probes } = substitute(model, erb, owner.signatures(), &target, config, TrainData { train: &train, test }, &device, dir)?;
    let mut report = format!(
        "Chen et al.'s substitution: the attacker's copy with every weight frozen; each passport layer's scale stored as γ_raw (the owner's magnitudes with the forger's signs, {:.0}% of the owner's bits flipped) and applied as γ_raw + {erb:?}(γ_raw); γ_raw, β and the {erb:?} trained on {} training images ({:.0}% of the plan's). The forger claims the signs of γ_raw. Before: {}.\n\n",
        100.0 * flip_fraction,
        share.train_len(),
        100.0 * data_fraction,
        pct(before)
    );
    report += &training_report(ctx, stage, "Substitution attack (ERB)", &history, &|r| r.test_acc, &[
        ("bits of γ_raw dissimilar to the owner's", probes.iter().map(|p| p.dissimilarity).collect()),
        ("owner's bits in the effective γ", probes.iter().map(|p| p.effective_detection).collect()),
    ]);
    let verdict = owner.verdict(&model.valid())?;
    let end = last(&probes)?;
    report += &format!(
        "\nVerdict on the owner's claim against the attacked copy (γ from the owner's passports through its unchanged conv weights): {}. The forger's claim (the signs of γ_raw, {} dissimilar) names no passport: this verifier derives every claimed γ from passports through the conv weights of the standard architecture, so a claim that needs the accessory block cannot be stated to it.\n",
        verdict_text(&verdict),
        pct(end.dissimilarity)
    );
    let after = history.last().map_or(f64::NAN, |r| r.test_acc);
    Ok(Outcome {
        summary: json!({ "erb": erb, "data_fraction": data_fraction, "train_images": share.train_len(), "flip": flip_fraction, "history": history, "probes": probes, "verdict": verdict }),
        report,
        line: line(
            before,
            after,
            1.0 - end.dissimilarity,
            &verdict,
            format!("{erb:?} on {:.0}% of the data; forger's γ_raw {} dissimilar", 100.0 * data_fraction, pct(end.dissimilarity)),
        ),
    })
}
