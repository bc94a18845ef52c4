//! Running a plan: each stage reads only the files earlier stages wrote into their folders
//! (`runs/<plan>/<stage>/`), and a stage whose `summary.json` exists is complete and skipped.
//! The run folder is locked for the run.

mod calibrate;
mod train;
mod verify;

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ipr_models::{AlexNet, Arch, Net, ResNet, write_atomic};
use serde::Serialize;

use crate::ctx::{Ctx, write_json};
use crate::data::Datasets;
use crate::owner::{Owner, OwnerRecord};
use crate::plan::{DataSection, ModelSection, Plan, Stage, StageKind};
use crate::report::{Headline, plan_report};

/// How a plan is run.
pub struct Options<'a> {
    /// Folder the plan's run folder is made in.
    pub runs: &'a Path,
    /// Whether an existing owner bundle may be replaced.
    pub force: bool,
    /// Whether to wait for another run of the same folder to finish.
    pub wait: bool,
}

/// Runs every stage of `plan` in order in `runs/<plan name>/`, skipping complete ones, and
/// writes the plan report.
///
/// # Errors
/// The run folder is in use or cannot be written, or a stage fails.
pub fn run_plan(plan: &Plan, options: &Options<'_>) -> Result<Vec<Headline>> {
    let run_dir = options.runs.join(&plan.name);
    fs::create_dir_all(&run_dir).with_context(|| format!("cannot create `{}`", run_dir.display()))?;
    let _lock = crate::lock::lock(&run_dir, options.wait)?;
    let device = crate::device::select(&plan.device).with_context(|| format!("plan `{}`", plan.name))?;
    let data = Datasets::load(&plan.data, plan.seed)?;
    tracing::info!(
        "plan `{}`: {} training / {} test images, shape {:?}, {} classes, device {}",
        plan.name,
        data.train_len(),
        data.test_len(),
        data.shape,
        data.num_classes,
        plan.device
    );
    let has_passports = plan.stages.iter().any(|s| matches!(&s.kind, StageKind::Train(t) if t.scheme.has_passports()));
    let owner = has_passports.then(|| Owner::load(&plan.owner, &crate::project_root())).transpose()?;
    let ctx = Ctx { seed: plan.seed, model: &plan.model, run_dir, device, data: &data, force: options.force, owner: owner.as_ref() };
    for stage in &plan.stages {
        if let StageKind::Train(t) = &stage.kind {
            match plan.model.arch {
                Arch::Alexnet => train::preflight::<AlexNet>(&ctx, &stage.name, t)?,
                Arch::Resnet9 | Arch::Resnet18 => train::preflight::<ResNet>(&ctx, &stage.name, t)?,
            }
        }
    }
    let mut headlines = Vec::new();
    for stage in &plan.stages {
        headlines.push(run_stage(&ctx, plan, stage)?);
    }
    let report = plan_report(&plan.name, &headlines, &ctx.run_dir);
    write_atomic(&ctx.run_dir.join("report.md"), report.as_bytes(), None)?;
    Ok(headlines)
}

/// The resolved settings of a stage, written to its `stage.toml`: a folder made with other
/// settings is not reused.
#[derive(Serialize)]
struct ResolvedStage<'a> {
    seed: u64,
    data: &'a DataSection,
    model: &'a ModelSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<OwnerRecord>,
    stage: &'a Stage,
}

fn run_stage(ctx: &Ctx<'_>, plan: &Plan, stage: &Stage) -> Result<Headline> {
    let dir = ctx.stage_dir(&stage.name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let owner = ctx.owner.map(Owner::record);
    let resolved = toml::to_string(&ResolvedStage { data: &plan.data, model: &plan.model, seed: plan.seed, owner, stage })?;
    let plan_path = dir.join("stage.toml");
    if let Ok(previous) = fs::read_to_string(&plan_path) {
        if previous != resolved {
            bail!(
                "`{}` was made with other settings (see its stage.toml); delete that folder to redo the stage, or give the stage a new name",
                dir.display()
            );
        }
    } else {
        write_atomic(&plan_path, resolved.as_bytes(), None)?;
    }
    ipr_models::remove_stale_temporaries(&dir);
    let summary_path = dir.join("summary.json");
    let headline_path = dir.join("headline.json");
    if summary_path.exists() && headline_path.exists() {
        tracing::info!("stage `{}` is complete; skipping (delete `{}` to run it again)", stage.name, dir.display());
        let text = fs::read_to_string(&headline_path)?;
        return serde_json::from_str(&text).context("headline.json is damaged; delete the stage folder to redo it");
    }
    tracing::info!("stage `{}` starting", stage.name);
    let started = Instant::now();
    let result = match plan.model.arch {
        Arch::Alexnet => dispatch::<AlexNet>(ctx, plan, stage, &dir)?,
        Arch::Resnet9 | Arch::Resnet18 => dispatch::<ResNet>(ctx, plan, stage, &dir)?,
    };
    let headline = Headline { stage: stage.name.clone(), kind: stage.kind.name().into(), result, seconds: started.elapsed().as_secs_f64() };
    write_json(&headline_path, &headline)?;
    tracing::info!("stage `{}` done in {:.0}s: {}", stage.name, headline.seconds, headline.result);
    Ok(headline)
}

fn dispatch<M: Net>(ctx: &Ctx<'_>, plan: &Plan, stage: &Stage, dir: &Path) -> Result<String> {
    match &stage.kind {
        StageKind::Train(t) => train::run::<M>(ctx, &stage.name, t, dir),
        StageKind::Verify { from } => verify::run::<M>(ctx, plan, from, dir),
        StageKind::Calibrate { from, models, config } => calibrate::run::<M>(ctx, from, *models, config, dir),
        StageKind::Attack { from, attack } => crate::attacks::run::<M>(ctx, &stage.name, from, attack, dir),
    }
}
