//! The `calibrate` stage: the empirical null of a claim. It trains independent models of the
//! claim's architecture (V0, other seeds, the same data) through the one training loop and
//! checks the owner's claim against each: γ from the owner's passports through each model's
//! conv weights. The agreement an unrelated model reaches, and how often the verifier's
//! thresholds would call it owned, calibrate the verdict (Lukas et al., IEEE S&P 2022). Text
//! bits are not random bits, so they are measured apart from the rest.

use std::path::Path;

use anyhow::Result;
use ipr_models::{Layout, Net};
use ipr_schemes::{PassportObjective, Run, TrainConfig, TrainData, train};
use ipr_verify::{Claim, Decision, Evidence, Thresholds, log10_binomial_tail, passport_gamma, verify};
use serde::Serialize;

use crate::ctx::{Ctx, owner_bundle, write_json};
use crate::report::{MdTable, pct};

/// One independent model against the claim.
#[derive(Serialize)]
struct NullRow {
    seed: u64,
    test_acc: f64,
    matched: usize,
    total: usize,
    agreement: f64,
    log10_p: f64,
    decision: Decision,
    /// Agreement on the text bits alone, and on the others.
    text_agreement: Option<f64>,
    other_agreement: Option<f64>,
}

#[derive(Serialize)]
struct Null {
    from: String,
    rows: Vec<NullRow>,
    mean_agreement: f64,
    std_agreement: f64,
    /// Binomial spread of the agreement of random signs over the claim's bits.
    chance_std: f64,
    /// Fraction of the null the verifier calls owned.
    false_owned: f64,
    /// Fraction of the null at or below the owned threshold on the bits alone.
    false_conclusive: f64,
    thresholds: Thresholds,
}

/// Agreement of γ (from the claim's passports through `model`) with the claim's text bits
/// (`text`) or with its other bits; `None` when the claim has no such bits.
fn agreement<M: Net>(model: &M, claim: &Claim<'_>, text: bool) -> Option<f64> {
    let (mut agree, mut total) = (0usize, 0usize);
    for l in claim.layers {
        let n = l.signature.text.as_ref().map_or(0, |t| 8 * t.len()).min(l.signature.len());
        let range = if text { 0..n } else { n..l.signature.len() };
        let gamma = passport_gamma(model, claim.passports, &l.path);
        for i in range {
            let g = gamma.get(i).copied().unwrap_or(0.0);
            let b = l.signature.bits[i];
            agree += usize::from((g > 0.0 && b > 0) || (g < 0.0 && b < 0));
            total += 1;
        }
    }
    (total > 0).then(|| agree as f64 / total as f64)
}

/// Trains the null's models and checks the claim of stage `from` against each.
pub fn run<M: Net>(ctx: &Ctx<'_>, from: &str, models: usize, config: &TrainConfig, dir: &Path) -> Result<String> {
    let bundle = owner_bundle(&ctx.stage_dir(from), from)?;
    let claim = Claim { passports: &bundle.passports, ..Claim::new(&bundle.layers) };
    let device = ctx.device.clone().autodiff();
    let test = ctx.data.test_loader()?;
    let thresholds = Thresholds::default();
    let mut rows = Vec::new();
    for k in 1..=models {
        let seed = ctx.seed.wrapping_add(1_000 * k as u64);
        device.seed(seed);
        let model = M::init(&ctx.net_config(), &Layout::none(), &device)?;
        let config = TrainConfig { seed, ..config.clone() };
        let train_loader = ctx.data.train_loader(config.batch_size, seed)?;
        let folder = dir.join(format!("null-{k}"));
        let run = Run { config: &config, data: TrainData { train: &train_loader, test: &test }, device: &device, dir: &folder };
        let out = train(model, &PassportObjective::new(&[], 0.0, &device), &[], &run)?;
        let model = out.model.valid();
        let v = verify(&model, &claim, &Evidence::default(), &thresholds)?;
        let s = &v.signature;
        tracing::info!(k, agreement = s.agreement, "null model against the claim");
        rows.push(NullRow {
            seed,
            test_acc: out.history.last().map_or(f64::NAN, |r| r.test_acc),
            matched: s.matched,
            total: s.total,
            agreement: s.agreement,
            log10_p: s.log10_false_claim,
            decision: v.decision,
            text_agreement: agreement(&model, &claim, true),
            other_agreement: agreement(&model, &claim, false),
        });
    }
    let n = rows.len() as f64;
    let mean = rows.iter().map(|r| r.agreement).sum::<f64>() / n;
    let std = (rows.iter().map(|r| (r.agreement - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let total = rows.first().map_or(1, |r| r.total) as f64;
    let null = Null {
        from: from.into(),
        mean_agreement: mean,
        std_agreement: std,
        chance_std: 0.5 / total.sqrt(),
        false_owned: rows.iter().filter(|r| r.decision == Decision::Owned).count() as f64 / n,
        false_conclusive: rows.iter().filter(|r| r.log10_p <= thresholds.owned_log10_p).count() as f64 / n,
        thresholds,
        rows,
    };
    write_json(&dir.join("summary.json"), &null)?;
    ipr_models::write_atomic(&dir.join("report.md"), report(&null).as_bytes(), None)?;
    Ok(format!(
        "null of {models} independent models: agreement {} ± {} (chance ± {}), owned {} of them, conclusive {}",
        pct(null.mean_agreement),
        pct(null.std_agreement),
        pct(null.chance_std),
        pct(null.false_owned),
        pct(null.false_conclusive)
    ))
}

fn report(n: &Null) -> String {
    let mut table = MdTable::new(&["seed", "test acc", "bits", "agreement", "log10 p", "decision", "text bits", "other bits"]);
    for r in &n.rows {
        table.row(vec![
            r.seed.to_string(),
            pct(r.test_acc),
            format!("{}/{}", r.matched, r.total),
            pct(r.agreement),
            format!("{:.1}", r.log10_p),
            format!("{:?}", r.decision),
            r.text_agreement.map_or("–".into(), pct),
            r.other_agreement.map_or("–".into(), pct),
        ]);
    }
    let chance = log10_binomial_tail(n.rows.first().map_or(0, |r| r.total), n.rows.first().map_or(0, |r| r.total / 2), 0.5);
    format!(
        "## Stage calibrate of `{}`: the empirical null\n\nThe owner's claim (γ from the owner's passports through each model's conv weights) against {} independently trained models of the same architecture. Mean agreement {} ± {} (random signs: 50% ± {}; half the bits agreeing has p = 10^{chance:.1}). The verifier calls {} of them owned; {} reach the owned threshold (log10 p ≤ {}) on the bits alone. Text bits are ASCII: their high bit is always 0, so they agree with an unrelated model's signs more or less than random bits do, as the text column shows.\n\n{table}",
        n.from,
        n.rows.len(),
        pct(n.mean_agreement),
        pct(n.std_agreement),
        pct(n.chance_std),
        pct(n.false_owned),
        pct(n.false_conclusive),
        n.thresholds.owned_log10_p
    )
}
