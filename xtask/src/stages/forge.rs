//! The `forge` stage: ambiguity attack 1, forged passports against a trained model.

use std::path::Path;

use anyhow::Result;
use ipr_attacks::{ForgeRow, ForgeSource, forge};
use ipr_models::Net;
use ipr_passport::Route;
use ipr_schemes::{eval_form, evaluate};
use serde::Serialize;

use super::{Ctx, owner_bundle, rebuild, write_json};

#[derive(Serialize)]
struct Summary {
    from: String,
    source: ForgeSource,
    genuine_test_acc: f64,
    forged: Vec<ForgeRow>,
    mean_acc: f64,
    min_acc: f64,
    max_acc: f64,
}

/// Runs `draws` forged-passport draws against stage `from`.
pub fn run<M: Net>(
    ctx: &Ctx<'_>,
    from: &str,
    draws: usize,
    source: ForgeSource,
    pretrained: Option<&str>,
    dir: &Path,
) -> Result<String> {
    let src = ctx.stage_dir(from);
    let (model, _) = rebuild::<M>(&src, &ctx.device)?;
    let bundle = owner_bundle(&src, from)?;
    let pretrained = pretrained.map(|p| rebuild::<M>(&ctx.stage_dir(p), &ctx.device)).transpose()?.map(|(m, _)| m);
    let test = ctx.data.test_loader()?;
    let genuine = evaluate(&eval_form(&model, Route::Private), &test, &ctx.device)?.accuracy;
    // Different images than the owner's own sample: another seed for the sample stream.
    let samples = ctx.data.passport_samples(ctx.plan.seed ^ 0x00f0_46e5)?;
    let rows = forge(&model, pretrained.as_ref(), source, draws, &samples, &test, &bundle.layers, ctx.plan.seed, &ctx.device)?;
    let accs: Vec<f64> = rows.iter().map(|r| r.accuracy).collect();
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    let min = accs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = accs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let summary = Summary { from: from.into(), source, genuine_test_acc: genuine, forged: rows.clone(), mean_acc: mean, min_acc: min, max_acc: max };
    write_json(&dir.join("summary.json"), &summary)?;
    let mut out = format!(
        "## Stage forge of `{from}` (ambiguity attack 1, {source:?} passports)\n\n- genuine passports: {:.2}% test accuracy\n- forged passports: mean {:.2}%, range {:.2}%–{:.2}% over {} draws\n\n| draw | test accuracy | owner's bits still carried |\n| --- | --- | --- |\n",
        100.0 * genuine,
        100.0 * mean,
        100.0 * min,
        100.0 * max,
        rows.len()
    );
    for r in &rows {
        out += &format!("| {} | {:.2}% | {:.1}% |\n", r.draw, 100.0 * r.accuracy, 100.0 * r.detection);
    }
    ipr_models::write_atomic(&dir.join("report.md"), out.as_bytes(), None)?;
    Ok(format!(
        "forged passports: mean {:.2}% (range {:.2}–{:.2}%) vs genuine {:.2}%",
        100.0 * mean,
        100.0 * min,
        100.0 * max,
        100.0 * genuine
    ))
}
