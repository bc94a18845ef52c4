//! Running a plan: each stage reads only the files earlier stages wrote into their folders
//! (`runs/<plan>/<stage>/`), and a stage whose `summary.json` exists is complete and skipped.

mod attack;
mod train;
mod verify;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig, OwnerBundle, load_module, write_atomic};
use serde::{Deserialize, Serialize};

use crate::data::Datasets;
use crate::plan::{Plan, Stage, StageKind};

/// What every stage shares.
pub struct Ctx<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// `runs/<plan>/`.
    pub run_dir: PathBuf,
    /// The device the plan runs on.
    pub device: Device,
    /// The plan's data.
    pub data: &'a Datasets,
    /// Whether an existing owner bundle may be replaced.
    pub force: bool,
}

impl Ctx<'_> {
    /// The model config the plan's model section and data imply.
    pub fn net_config(&self) -> NetConfig {
        let m = &self.plan.model;
        NetConfig {
            arch: m.arch,
            num_classes: self.data.num_classes,
            in_channels: self.data.shape[0],
            input_size: self.data.shape[1],
            width: m.width,
            norm: m.norm,
        }
    }

    /// The folder of stage `name`.
    pub fn stage_dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }
}

/// The public description of a trained model, enough to rebuild its structure: `model.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    /// Scheme it was trained with.
    pub scheme: String,
    /// Its config.
    pub model: NetConfig,
    /// Its passport layers.
    pub passport_layers: Vec<String>,
}

/// One line of the plan report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Headline {
    /// Stage name.
    pub stage: String,
    /// Stage kind.
    pub kind: String,
    /// The result in one line.
    pub result: String,
    /// Wall time of the stage in seconds (0 when skipped).
    pub seconds: f64,
}

/// Writes JSON atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    write_atomic(path, &bytes, None)?;
    Ok(())
}

/// Reads the model card and record of a train stage and rebuilds the model on `device`.
pub fn rebuild<M: Net>(dir: &Path, device: &Device) -> Result<(M, ModelCard)> {
    read_card(dir, "model", "run the train stage that writes it first")
        .and_then(|card| {
            let layout = Layout::structure(card.passport_layers.iter().cloned(), private_scheme(&card.scheme));
            let model = M::init(&card.model, &layout, device)?;
            Ok((load_module(model, &dir.join("model.bpk"))?, card))
        })
}

/// Whether a scheme name (of a model card or an owner bundle) has private passport layers.
pub fn private_scheme(name: &str) -> bool {
    matches!(name, "v2" | "v3")
}

/// Reads the public model of a V2/V3 train stage (`public.bpk`) into the model of its
/// architecture built without passports, as a licensee runs it.
pub fn rebuild_public<M: Net>(dir: &Path, device: &Device) -> Result<(M, ModelCard)> {
    read_card(dir, "public", "only a v2/v3 train stage writes a public model").and_then(|card| {
        let model = M::init(&card.model, &Layout::none(), device)?;
        Ok((load_module(model, &dir.join("public.bpk"))?, card))
    })
}

/// Reads the card `<name>.json` of a train stage; `missing` says what to do when it is absent.
fn read_card(dir: &Path, name: &str, missing: &str) -> Result<ModelCard> {
    let card_path = dir.join(format!("{name}.json"));
    let text = fs::read_to_string(&card_path).with_context(|| format!("cannot read `{}`: {missing}", card_path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is not a model card; re-run its train stage", card_path.display()))
}

/// Reads the owner bundle of a train stage.
pub fn owner_bundle(dir: &Path, stage: &str) -> Result<OwnerBundle> {
    let path = dir.join("owner.json");
    if !path.exists() {
        bail!("stage `{stage}` has no owner bundle (`{}`): only a passport scheme (v1, v2, v3) has a signature to verify or attack", path.display());
    }
    Ok(OwnerBundle::load(&path)?)
}

/// Runs every stage of `plan` in order in `runs/<plan name>/`, skipping complete ones, and
/// writes the plan report.
pub fn run_plan(plan: &Plan, runs: &Path, force: bool) -> Result<Vec<Headline>> {
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
    let run_dir = runs.join(&plan.name);
    fs::create_dir_all(&run_dir).with_context(|| format!("cannot create `{}`", run_dir.display()))?;
    let ctx = Ctx { plan, run_dir, device, data: &data, force };
    for stage in &plan.stages {
        if let StageKind::Train(t) = &stage.kind {
            match plan.model.arch {
                Arch::Alexnet => train::preflight::<AlexNet>(&ctx, &stage.name, t)?,
                Arch::Resnet9 | Arch::Resnet18 => train::preflight::<ipr_models::ResNet>(&ctx, &stage.name, t)?,
            }
        }
    }
    let mut headlines = Vec::new();
    for stage in &plan.stages {
        headlines.push(run_stage(&ctx, stage)?);
    }
    let report = plan_report(plan, &headlines, &ctx.run_dir);
    write_atomic(&ctx.run_dir.join("report.md"), report.as_bytes(), None)?;
    Ok(headlines)
}

fn run_stage(ctx: &Ctx<'_>, stage: &Stage) -> Result<Headline> {
    let dir = ctx.stage_dir(&stage.name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    // The resolved settings of the stage: a folder made with other settings is not reused.
    let resolved = toml::to_string(&ResolvedStage { data: &ctx.plan.data, model: &ctx.plan.model, seed: ctx.plan.seed, stage })?;
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
    let result = match ctx.plan.model.arch {
        Arch::Alexnet => dispatch::<AlexNet>(ctx, stage, &dir)?,
        Arch::Resnet9 | Arch::Resnet18 => dispatch::<ipr_models::ResNet>(ctx, stage, &dir)?,
    };
    let headline = Headline {
        stage: stage.name.clone(),
        kind: kind_name(&stage.kind).into(),
        result,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&headline_path, &headline)?;
    tracing::info!("stage `{}` done in {:.0}s: {}", stage.name, headline.seconds, headline.result);
    Ok(headline)
}

fn dispatch<M: Net>(ctx: &Ctx<'_>, stage: &Stage, dir: &Path) -> Result<String> {
    match &stage.kind {
        StageKind::Train(t) => train::run::<M>(ctx, &stage.name, t, dir),
        StageKind::Verify { from } => verify::run::<M>(ctx, from, dir),
        StageKind::Attack { from, attack } => attack::run::<M>(ctx, &stage.name, from, attack, dir),
    }
}

fn kind_name(kind: &StageKind) -> &'static str {
    match kind {
        StageKind::Train(_) => "train",
        StageKind::Verify { .. } => "verify",
        StageKind::Attack { .. } => "attack",
    }
}

#[derive(Serialize)]
struct ResolvedStage<'a> {
    seed: u64,
    data: &'a crate::plan::DataSection,
    model: &'a crate::plan::ModelSection,
    stage: &'a Stage,
}

fn plan_report(plan: &Plan, headlines: &[Headline], run_dir: &Path) -> String {
    let mut out = format!("# Plan `{}`\n\n| stage | kind | result | time |\n| --- | --- | --- | --- |\n", plan.name);
    for h in headlines {
        out += &format!("| {} | {} | {} | {:.0} s |\n", h.stage, h.kind, h.result, h.seconds);
    }
    let attacks: Vec<attack::AttackLine> = headlines
        .iter()
        .filter_map(|h| fs::read(run_dir.join(&h.stage).join("attack.json")).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    if !attacks.is_empty() {
        out += "\n## Attacks\n\nAccuracy before and after each attack, the owner's signature bits the attacked model still carries, and the verifier's decision on the owner's claim against it.\n\n| stage | attack | on | what | accuracy before | after | owner's bits | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for a in &attacks {
            out += &format!(
                "| {} | {} | {} | {} | {:.2}% | {:.2}% | {:.1}% | {} |\n",
                a.stage,
                a.attack,
                a.from,
                a.note,
                100.0 * a.before,
                100.0 * a.after,
                100.0 * a.detection,
                a.verdict
            );
        }
    }
    for h in headlines {
        if let Ok(section) = fs::read_to_string(run_dir.join(&h.stage).join("report.md")) {
            out += "\n";
            out += &section;
        }
    }
    out
}
