//! `attack = "finetune"`: transfer learning (RTAL or FTAL) of the attacker's copy to a class
//! split of the plan's dataset or to another dataset, with the signature measured after every
//! epoch.

use anyhow::{Context, Result, bail};
use ipr_attacks::{FinetuneMode, finetune};
use ipr_models::Net;
use ipr_passport::Route;
use ipr_schemes::TrainConfig;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, last};
use crate::data::Datasets;
use crate::report::{pct, verdict_text};
use crate::sections::{DataSection, DatasetKind};

/// Where a fine-tuning attack's data comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// These classes of the plan's dataset (train and test), labels kept.
    Classes(Vec<usize>),
    /// Another dataset.
    Dataset(DataSection),
}

/// Transfer learning of the attacker's copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finetune {
    /// RTAL or FTAL.
    pub mode: FinetuneMode,
    /// The new task's data.
    pub target: Target,
    /// Training settings.
    pub config: TrainConfig,
}

/// The keys of a fine-tuning stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `rtal` (default) or `ftal`.
    mode: Option<FinetuneMode>,
    /// A class split of the plan's dataset.
    classes: Option<Vec<usize>>,
    /// Another dataset.
    dataset: Option<DatasetKind>,
    /// That dataset's folder.
    root: Option<std::path::PathBuf>,
}

impl AttackKind for Finetune {
    const NAME: &'static str = "finetune";
    type Keys = Keys;

    fn paper_training() -> Option<toml::Table> {
        Some(super::paper_training())
    }

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        let target = match (keys.classes, keys.dataset) {
            (Some(classes), None) => {
                if classes.is_empty() {
                    bail!("{}: name at least one class", r.table.at("classes"));
                }
                if keys.root.is_some() {
                    bail!("{}: only applies with `dataset`", r.table.at("root"));
                }
                Target::Classes(classes)
            }
            (None, Some(dataset)) => Target::Dataset(DataSection::new(dataset, keys.root, r.root)),
            _ => bail!(
                "{}: fine-tuning needs its new task: either classes = [5, 6, 7, 8, 9] (a class split of the plan's dataset) or dataset = \"cifar100\" (another dataset), not both",
                r.table.at("classes")
            ),
        };
        Ok(Self { mode: keys.mode.unwrap_or_default(), target, config: r.config() })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let (ctx, owner, mode, stage) = (s.ctx, &s.owner, self.mode, s.stage);
        let (data, what) = self.data(s)?;
        // The attacked model was built for the plan's dataset, so it has the plan's classes.
        let num_classes = ctx.data.num_classes;
        if mode == FinetuneMode::Ftal && data.num_classes != num_classes {
            bail!("stage `{stage}`, key `mode`: FTAL keeps the last layer, but the new task has {} classes and the model {num_classes}; use mode = \"rtal\"", data.num_classes);
        }
        let test = data.test_loader()?;
        let before = s.accuracy_before(Route::Public, &test)?;
        let out = s.train(&self.config, &data, &test, |model, run| finetune(model, mode, data.num_classes, &owner.passports, owner.signatures(), run))?;
        let mut columns = vec![("owner's bits, passports through the weights", out.probes.iter().map(|p| p.passport_detection).collect::<Vec<_>>())];
        if out.probes.iter().all(|p| p.norm_detection.is_some()) {
            columns.push(("owner's bits in the norm scales", out.probes.iter().filter_map(|p| p.norm_detection).collect()));
        }
        let mut report = format!(
            "{mode:?} transfer learning of the attacker's copy (passport layers folded into affine norms) to {what}; accuracy on the new task's test split. Before: the copy scores {} there.\n\n",
            pct(before)
        );
        report += &s.training_report("Transfer learning", &out.history, &|r| r.test_acc, &columns);
        let model = out.model.valid();
        let verdict = owner.verdict(&model)?;
        report += &format!("\nVerdict on the owner's claim against the fine-tuned model: {}.\n", verdict_text(&verdict));
        let end = last(&out.probes)?;
        let after = out.history.last().map_or(f64::NAN, |r| r.test_acc);
        let note = format!("{mode:?} to {what}, {} epochs", out.history.len());
        Ok(Outcome {
            summary: json!({ "mode": mode, "target": what, "history": out.history, "probes": out.probes, "verdict": verdict }),
            report,
            line: AttackLine::new(before, after, end.passport_detection, &verdict, note),
            dispute: Some(s.thief_dispute(&model, 0xf1e7)?),
        })
    }
}

impl Finetune {
    /// The new task's data, and its description.
    fn data<M: Net>(&self, s: &Session<'_, M>) -> Result<(Datasets, String)> {
        let (ctx, stage) = (s.ctx, s.stage);
        Ok(match &self.target {
            Target::Classes(classes) => {
                (ctx.data.only_classes(classes).with_context(|| format!("stage `{stage}`, key `classes`"))?, format!("classes {classes:?}"))
            }
            Target::Dataset(section) => {
                let data = Datasets::load(section, ctx.seed).with_context(|| format!("stage `{stage}`, key `dataset`: reading the new task's data"))?;
                if data.shape != ctx.data.shape {
                    bail!("stage `{stage}`, key `dataset`: its images are {:?}, but the model takes {:?}; pick a dataset of the same shape", data.shape, ctx.data.shape);
                }
                (data, format!("{:?}", section.dataset))
            }
        })
    }
}
