//! The `verify` stage: the verifier's verdict on a trained model, as a third party reaches it
//! from the distributed model (for V2/V3 the public model), the owner bundle, the test split for
//! fidelity, and for V3 the trigger set.

use std::path::Path;

use anyhow::Result;
use ipr_models::Net;
use ipr_verify::{Claim, Evidence, LabelledBatches, Thresholds, verify};

use crate::ctx::{Ctx, owner_bundle, rebuild, rebuild_public, write_json};
use crate::data::Batches;
use crate::plan::{Plan, StageKind, TriggerSource};
use crate::report::verify_report;

/// Verifies stage `from` against its owner bundle.
pub fn run<M: Net>(ctx: &Ctx<'_>, plan: &Plan, from: &str, dir: &Path) -> Result<String> {
    let src = ctx.stage_dir(from);
    let bundle = owner_bundle(&src, from)?;
    // What a third party holds: the model itself (V1) or the public model (V2/V3).
    let model: M = if bundle.scheme.is_private() { rebuild_public(&src, &ctx.device)?.0 } else { rebuild(&src, &ctx.device)?.0 };
    let test = ctx.data.test_loader()?;
    let trigger_dir = plan.stages.iter().find(|s| s.name == from).and_then(|s| match &s.kind {
        StageKind::Train(t) => t.trigger.as_ref().map(|tr| match &tr.source {
            TriggerSource::Folder(folder) => folder.clone(),
            TriggerSource::Generate(_) => src.join("trigger"),
        }),
        _ => None,
    });
    let triggers = trigger_dir.map(|d| ctx.data.read_triggers(&d).and_then(|set| ctx.data.loader_for(set))).transpose()?;
    let (test_batches, trigger_batches) = (Batches(&test), triggers.as_ref().map(Batches));
    let evidence = Evidence {
        test: Some(&test_batches as &dyn LabelledBatches),
        triggers: trigger_batches.as_ref().map(|b| (b as &dyn LabelledBatches, ctx.data.num_classes)),
        forged_draws: 3,
        seed: ctx.seed,
    };
    let verdict = verify(&model, &Claim::from(&bundle), &evidence, &Thresholds::default())?;
    write_json(&dir.join("summary.json"), &verdict)?;
    ipr_models::write_atomic(&dir.join("report.md"), verify_report(from, &verdict).as_bytes(), None)?;
    let s = &verdict.signature;
    let texts: Vec<String> = s.layers.iter().filter_map(|l| l.decoded.as_ref().map(|d| format!("\"{d}\""))).collect();
    Ok(format!(
        "{:?}: {}/{} bits ({:.1}%), p(false claim) = 10^{:.1}{}{}",
        verdict.decision,
        s.matched,
        s.total,
        100.0 * s.agreement,
        s.log10_false_claim,
        if texts.is_empty() { String::new() } else { format!(", text {}", texts.join(" ")) },
        verdict.black_box.as_ref().map_or(String::new(), |b| format!(", trigger set {}/{} (p = 10^{:.1})", b.correct, b.images, b.log10_false_claim))
    ))
}
