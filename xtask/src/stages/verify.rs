//! The `verify` stage: the white-box signature check of a trained model, and its fidelity.

use std::path::Path;

use anyhow::Result;
use ipr_models::{Net, weights_digest};
use ipr_passport::Route;
use ipr_schemes::{eval_form, evaluate};
use ipr_verify::{check_passports, check_signatures};
use serde::Serialize;

use super::{Ctx, owner_bundle, rebuild, rebuild_public, write_json};

#[derive(Serialize)]
struct Summary {
    from: String,
    weights_match_bundle: bool,
    test_acc_genuine_passport: f64,
    signature: ipr_verify::SignatureReport,
}

/// Checks the signature of stage `from` against its owner bundle.
pub fn run<M: Net>(ctx: &Ctx<'_>, from: &str, dir: &Path) -> Result<String> {
    let src = ctx.stage_dir(from);
    let (model, _) = rebuild::<M>(&src, &ctx.device)?;
    let bundle = owner_bundle(&src, from)?;
    // V1: the distributed model carries the passports. V2/V3: the distributed model is the
    // public one, and the passports come from the owner's bundle.
    let (weights_match_bundle, signature) = if bundle.passports.is_empty() {
        (weights_digest(&model) == bundle.weights_sha256, check_signatures(&model, &bundle.layers))
    } else {
        let (public, _) = rebuild_public::<M>(&src, &ctx.device)?;
        (weights_digest(&public) == bundle.weights_sha256, check_passports(&public, &bundle.passports, &bundle.layers))
    };
    let accuracy = evaluate(&eval_form(&model, Route::Private), &ctx.data.test_loader()?, &ctx.device)?.accuracy;
    let summary = Summary {
        from: from.into(),
        weights_match_bundle,
        test_acc_genuine_passport: accuracy,
        signature: signature.clone(),
    };
    write_json(&dir.join("summary.json"), &summary)?;
    let mut out = format!(
        "## Stage verify of `{from}`\n\n- weights match the owner bundle's digest: {}\n- test accuracy with the genuine passports: {:.2}%\n- bit agreement: {}/{} ({:.2}%), false-claim probability 10^{:.1}\n\n| passport layer | bits | detected | claimed text | read back |\n| --- | --- | --- | --- | --- |\n",
        if weights_match_bundle { "yes" } else { "NO" },
        100.0 * accuracy,
        signature.matched,
        signature.total,
        100.0 * signature.agreement,
        signature.log10_false_claim
    );
    for l in &signature.layers {
        out += &format!(
            "| {} | {} | {:.1}% | {} | {} |\n",
            l.path,
            l.bits,
            100.0 * l.rate,
            l.expected_text.as_deref().map_or("-".into(), |t| format!("`{t}`")),
            l.decoded.as_deref().map_or("-".into(), |t| format!("`{t}`")),
        );
    }
    std::fs::write(dir.join("report.md"), out)?;
    let texts: Vec<String> = signature.layers.iter().filter_map(|l| l.decoded.as_ref().map(|d| format!("\"{d}\""))).collect();
    Ok(format!(
        "{}/{} bits ({:.1}%), p(false claim) = 10^{:.1}{}",
        signature.matched,
        signature.total,
        100.0 * signature.agreement,
        signature.log10_false_claim,
        if texts.is_empty() { String::new() } else { format!(", text {}", texts.join(" ")) }
    ))
}
