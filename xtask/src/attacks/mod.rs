//! The attack stages (`kind = "attack"`): one module per attack of spec §8, each holding its
//! plan keys, defaults, resolution, run and report. Every attack runs through the library's
//! attacks (and so the one training loop) and ends with the verifier's verdict on the owner's
//! claim against the attacked model. A stage writes `summary.json`, `attack.json` (its line of
//! the plan's summary table), `report.md` and its PNG curves.
//!
//! Adding an attack: a module here implementing [`AttackKind`], and one line in the
//! [`attacks!`] list at the bottom of this file.

use std::path::Path;

use anyhow::{Context, Result};
use ipr_attacks::{AttackError, flipped_signatures};
use ipr_data::Loader;
use ipr_models::{LayerPassports, LayerSignature, Net, OwnerBundle, OwnerKey, Receipt, write_atomic};
use ipr_passport::PassportValues;
use ipr_passport::Route;
use ipr_schemes::{EpochRow, Run, TrainConfig, TrainData, TrainOutcome, eval_form, evaluate};
use ipr_verify::{Claim, Evidence, LabelledBatches, Status, Thresholds, Verdict, verify};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ctx::{Ctx, owner_bundle, rebuild, write_json};
use crate::data::{Batches, Datasets};
use crate::dispute::{Claimant, settle, table as dispute_table};
use crate::keys::{Table, fields_of, typed};
use crate::plot::{Series, curves};
pub use crate::report::{AttackLine, DisputeRow};
use crate::report::{MdTable, pct};

/// One attack: its plan keys, how they resolve, and how it runs.
pub trait AttackKind: Sized {
    /// `attack = "…"` in a plan (and in `stage.toml`).
    const NAME: &'static str;
    /// The attack's own keys as a plan writes them: every field optional, unknown ones refused.
    type Keys: DeserializeOwned;
    /// For an attack that trains, the paper's training settings that take precedence over
    /// `[train]` (a stage's own keys still override them); `None` for one that trains nothing.
    fn paper_training() -> Option<toml::Table> {
        None
    }
    /// The attack from its keys.
    ///
    /// # Errors
    /// A value out of range, naming the key and the fix.
    fn resolve(keys: Self::Keys, r: &Resolve<'_>) -> Result<Self>;
    /// Runs the attack against the owner's model.
    ///
    /// # Errors
    /// A file, data or training error.
    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome>;
}

/// What an attack's resolution reads besides its keys.
pub struct Resolve<'a> {
    /// The stage's table: `at(key)` names a key in errors.
    pub table: &'a Table,
    /// The resolved training settings (attacks that train).
    pub config: Option<TrainConfig>,
    /// The train stages before this one.
    pub train_stages: &'a [&'a str],
    /// The project root: relative paths resolve against it.
    pub root: &'a Path,
}

impl Resolve<'_> {
    /// `value`, a fraction in `[0, 1]`, or `default` when the key is absent.
    ///
    /// # Errors
    /// A value outside `[0, 1]`.
    pub fn fraction(&self, key: &str, value: Option<f64>, default: f64) -> Result<f64> {
        let v = value.unwrap_or(default);
        anyhow::ensure!((0.0..=1.0).contains(&v), "{}: {v} must be a fraction in [0, 1]", self.table.at(key));
        Ok(v)
    }

    /// The training settings of an attack that trains.
    pub fn config(&self) -> TrainConfig {
        self.config.clone().expect("an attack that trains has training settings")
    }
}

/// What an attack hands back to the stage runner.
pub struct Outcome {
    /// `summary.json`.
    pub summary: serde_json::Value,
    /// The stage's section of the report (Markdown).
    pub report: String,
    /// Its line of the summary table.
    pub line: AttackLine,
    /// The dispute between the owner and the attacker it made, if any.
    pub dispute: Option<Settled>,
}

/// The owner's side of an attack: the trained model, its bundle and genuine passports.
pub struct Owner<M> {
    /// The attacked train stage.
    pub stage: String,
    /// Its model (the owner's, with every passport).
    pub model: M,
    /// Its owner bundle.
    pub bundle: OwnerBundle,
    /// The genuine passports (from the bundle, or the model for V1).
    pub passports: Vec<LayerPassports>,
}

impl<M: Net> Owner<M> {
    fn load(ctx: &Ctx<'_>, from: &str) -> Result<Self> {
        let src = ctx.stage_dir(from);
        let (model, _) = rebuild::<M>(&src, &ctx.device)?;
        let bundle = owner_bundle(&src, from)?;
        let passports = if bundle.passports.is_empty() { LayerPassports::of(&model) } else { bundle.passports.clone() };
        Ok(Self { stage: from.to_string(), model, bundle, passports })
    }

    /// The owner's signatures.
    pub fn signatures(&self) -> &[LayerSignature] {
        &self.bundle.layers
    }

    /// The verifier's white-box verdict on the owner's claim against `attacked`: γ from the
    /// owner's passports through the attacked weights, whatever passports the attacked model
    /// itself carries.
    pub fn verdict(&self, attacked: &M) -> Result<Verdict> {
        let claim = Claim { passports: &self.passports, ..Claim::from(&self.bundle) };
        Ok(verify(attacked, &claim, &Evidence::default(), &Thresholds::default())?)
    }
}

/// What an attack runs with: the shared context, its stage, the owner's side, the plan's test
/// split.
pub struct Session<'a, M> {
    /// The plan's context.
    pub ctx: &'a Ctx<'a>,
    /// The attack stage's name.
    pub stage: &'a str,
    /// The attack stage's folder.
    pub dir: &'a Path,
    /// The owner's side.
    pub owner: Owner<M>,
    /// The plan's test split.
    pub test: Loader,
}

impl<M: Net> Session<'_, M> {
    /// The forger's target signature: the owner's with a fraction `flip` of the bits flipped;
    /// `salt` keeps each attack's flipped bits its own.
    pub fn target(&self, flip: f64, salt: u64) -> Vec<LayerSignature> {
        flipped_signatures(self.owner.signatures(), flip, self.ctx.seed ^ salt)
    }

    /// Test accuracy of the owner's model along `route`, before any attack.
    ///
    /// # Errors
    /// A test batch that cannot be read.
    pub fn accuracy_before(&self, route: Route, test: &Loader) -> Result<f64> {
        Ok(evaluate(&eval_form(&self.owner.model, route), test, &self.ctx.device)?.accuracy)
    }

    /// The shared start of an attack that trains: the owner's model rebuilt on the autodiff
    /// device, the training batches of `data`, and the run in the stage folder, handed to
    /// `attack`.
    ///
    /// # Errors
    /// The owner's model cannot be rebuilt, or the attack fails.
    pub fn train<P>(
        &self,
        config: &TrainConfig,
        data: &Datasets,
        test: &Loader,
        attack: impl FnOnce(M, &Run<'_>) -> Result<TrainOutcome<M, P>, AttackError>,
    ) -> Result<TrainOutcome<M, P>> {
        let device = self.ctx.device.clone().autodiff();
        let (model, _) = rebuild::<M>(&self.ctx.stage_dir(&self.owner.stage), &device)?;
        let train = data.train_loader(config.batch_size, config.seed)?;
        let run = Run { config, data: TrainData { train: &train, test }, device: &device, dir: self.dir };
        Ok(attack(model, &run)?)
    }

    /// Draws a curve into the stage folder and returns the Markdown that shows it (or says why
    /// it is missing), with the path relative to the plan's run folder.
    pub fn figure(&self, file: &str, title: &str, x_label: &str, x: &[f64], series: &[Series<'_>]) -> String {
        match curves(&self.dir.join(file), title, x_label, x, series) {
            Ok(()) => format!("\n![{title}]({}/{file})\n", self.stage),
            Err(e) => {
                tracing::warn!("{e:#}");
                format!("\n(curve not drawn: {e:#})\n")
            }
        }
    }

    /// The per-epoch table and curve of an attack that trains: `accuracy` of each row, then
    /// one column per `(title, value per epoch)`.
    pub fn training_report(&self, title: &str, history: &[EpochRow], accuracy: &dyn Fn(&EpochRow) -> f64, columns: &[(&str, Vec<f64>)]) -> String {
        let mut header = vec!["epoch", "accuracy"];
        header.extend(columns.iter().map(|c| c.0));
        let mut table = MdTable::new(&header);
        for (i, row) in history.iter().enumerate() {
            let mut cells = vec![row.epoch.to_string(), pct(accuracy(row))];
            cells.extend(columns.iter().map(|c| c.1.get(i).map_or("–".into(), |v| pct(*v))));
            table.row(cells);
        }
        let x: Vec<f64> = history.iter().map(|r| r.epoch as f64).collect();
        let mut series = vec![Series { label: "accuracy", values: history.iter().map(accuracy).collect() }];
        series.extend(columns.iter().map(|c| Series { label: c.0, values: c.1.clone() }));
        table.to_string() + &self.figure("epochs.png", title, "epoch", &x, &series)
    }
}

/// The paper's settings of the attacks that train (spec §8), where they differ from a train
/// stage's: 100 epochs, weight decay 5e-4, no learning-rate steps (SGD with lr 0.01 and momentum
/// 0.9, as a train stage).
pub fn paper_training() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("epochs".into(), toml::Value::Integer(100));
    t.insert("weight_decay".into(), toml::Value::Float(5e-4));
    t.insert("lr_steps".into(), toml::Value::Array(vec![]));
    t
}

/// A dispute an attack stage settled: its report section and its summary (its rows are in
/// `dispute.json`).
pub struct Settled {
    /// The Markdown section.
    pub report: String,
    /// The dispute as JSON.
    pub summary: serde_json::Value,
    /// Who is supported, in a few words.
    pub line: String,
}

impl<M: Net> Session<'_, M> {
    /// A simulated attacker's key, its own per stage: `salt` keeps attackers apart.
    pub fn attacker_key(&self, salt: u64) -> OwnerKey {
        OwnerKey::from_seed(self.ctx.seed ^ salt ^ 0xa77a_c4e5)
    }

    /// The owner's model as the owner distributes it: the V1 model, or the V2/V3 public model.
    pub fn published(&self) -> M {
        let model = self.owner.model.clone();
        if self.owner.bundle.scheme.is_private() { model.fold_route(Route::Public) } else { model }
    }

    /// Passports of the attacker's own, shaped as the owner's: `U(-1, 1)` noise drawn from
    /// `salt`, with neutral private statistics for a private layer.
    pub fn own_passports(&self, salt: u64) -> Vec<LayerPassports> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.ctx.seed ^ salt);
        self.owner
            .passports
            .iter()
            .map(|p| {
                let n: usize = p.shape.iter().product();
                let mut noise = || (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<f32>>();
                let (key, skey) = (noise(), noise());
                let c = p.running_mean.len();
                LayerPassports { path: p.path.clone(), shape: p.shape, key, skey, running_mean: vec![0.0; c], running_var: vec![1.0; c] }
            })
            .collect()
    }

    /// The attacker's claim on `model`, the owner's architecture: `layers` and `passports`,
    /// signed with `key`, dated a day before the owner's claim (an attacker states whatever
    /// time suits it).
    pub fn attacker_claim(&self, model: &M, layers: Vec<LayerSignature>, passports: Vec<LayerPassports>, key: &OwnerKey) -> OwnerBundle {
        let owner = &self.owner.bundle;
        let mut claim = OwnerBundle {
            format: owner.format,
            scheme: owner.scheme,
            model: owner.model.clone(),
            layers,
            weights_sha256: ipr_models::weights_digest(model),
            passports,
            owner: None,
        };
        let created = owner.owner.as_ref().map_or(0, |o| o.created).saturating_sub(86_400);
        claim.sign(key, created);
        claim
    }

    /// Bound signatures of `passports` under `key`, shaped like the owner's layers: what an
    /// attacker following the protocol under its own key claims.
    pub fn bound_signatures(&self, passports: &[LayerPassports], key: &OwnerKey) -> Vec<LayerSignature> {
        self.owner
            .signatures()
            .iter()
            .filter_map(|l| {
                let p = passports.iter().find(|p| p.path == l.path)?;
                let values = PassportValues { shape: p.shape, skey: &p.skey };
                let spec = ipr_passport::SignatureSpec::Random;
                let signature = ipr_passport::Signature::bound(&spec, l.signature.len(), &l.path, &key.public().0, values).ok()?;
                Some(LayerSignature { path: l.path.clone(), signature })
            })
            .collect()
    }

    /// The dispute over `model`, a copy the attacker took and changed, with the attacker
    /// claiming it under its own key with passports of its own and their bound signature.
    pub fn thief_dispute(&self, model: &M, salt: u64) -> Result<Settled> {
        let key = self.attacker_key(salt);
        let passports = self.own_passports(salt);
        let claim = self.attacker_claim(model, self.bound_signatures(&passports, &key), passports, &key);
        self.dispute(model, &claim)
    }

    /// Settles the dispute over `disputed` (the model the attacker publishes, written to
    /// `disputed.bpk`) between the owner's claim and `attacker`'s (written to `attacker.json`,
    /// mode 0600, with its receipt): each checked against the model, with the test split, the
    /// receipts, and each side's original (the owner's distributed model, the attacker's
    /// published one).
    pub fn dispute(&self, disputed: &M, attacker: &OwnerBundle) -> Result<Settled> {
        let disputed_path = self.dir.join("disputed.bpk");
        ipr_models::save_module(disputed, &disputed_path)?;
        attacker.save(&self.dir.join("attacker.json"), true)?;
        write_json(&self.dir.join("attacker_receipt.json"), &Receipt::of(attacker)?)?;
        let src = self.ctx.stage_dir(&self.owner.stage);
        let owner_original = src.join(if self.owner.bundle.scheme.is_private() { "public.bpk" } else { "model.bpk" });
        let claimants = [
            Claimant { name: "owner".into(), bundle: self.owner.bundle.clone(), original: Some(owner_original) },
            Claimant { name: "attacker".into(), bundle: attacker.clone(), original: Some(disputed_path.clone()) },
        ];
        let receipts = [Receipt::load(&src.join("receipt.json"))?, Receipt::of(attacker)?];
        let batches = Batches(&self.test);
        let evidence = Evidence { test: Some(&batches as &dyn LabelledBatches), triggers: None, forged_draws: 1, seed: self.ctx.seed };
        let d = settle::<M>(&disputed_path, &claimants, &receipts, &evidence, &self.ctx.device)?;
        let rows: Vec<DisputeRow> = d
            .claims
            .iter()
            .map(|(c, status)| {
                let (verdict, reason) = match status {
                    Status::Supported => ("supported", d.reasons.first().cloned().unwrap_or_default()),
                    Status::Ambiguous => ("ambiguous", d.reasons.first().cloned().unwrap_or_default()),
                    Status::Derived { why } => ("derived", why.clone()),
                    Status::Rejected { why } => ("rejected", why.clone()),
                };
                DisputeRow { scenario: self.stage.to_string(), claimant: c.name.clone(), verdict: verdict.into(), reason }
            })
            .collect();
        let line = d.supported.as_ref().map_or("no claim supported".into(), |n| format!("{n} supported"));
        let report = format!("
### Dispute: the owner's claim against the attacker's

{}
{}
", dispute_table(&d), d.reasons.join(" "));
        write_json(&self.dir.join("dispute.json"), &rows)?;
        Ok(Settled { report, summary: serde_json::to_value(&d)?, line })
    }
}

/// The row closest to `x` of rows keyed by `key`.
pub fn nearest<T>(rows: &[T], x: f64, key: impl Fn(&T) -> f64) -> Option<&T> {
    rows.iter().min_by(|a, b| (key(a) - x).abs().total_cmp(&(key(b) - x).abs()))
}

/// The last measurement of an attack that trains.
pub fn last<T: Clone>(probes: &[T]) -> Result<T> {
    probes.last().cloned().context("the attack trained no epoch")
}

/// Runs the attack of stage `name` on the train stage `from` and writes its files; returns the
/// stage's headline.
pub fn run<M: Net>(ctx: &Ctx<'_>, name: &str, from: &str, attack: &Attack, dir: &Path) -> Result<String> {
    let session = Session { ctx, stage: name, dir, owner: Owner::<M>::load(ctx, from)?, test: ctx.data.test_loader()? };
    let Outcome { mut summary, mut report, line, dispute } = attack.run(&session)?;
    let mut line = AttackLine { stage: name.into(), attack: attack.name().into(), from: from.into(), ..line };
    if let Some(settled) = dispute {
        summary["dispute"] = settled.summary;
        report += &settled.report;
        line.dispute = Some(settled.line);
    }
    write_json(&dir.join("summary.json"), &summary)?;
    write_json(&dir.join("attack.json"), &line)?;
    let report = format!("## Stage `{name}`: attack `{}` on `{from}`\n\n{report}", attack.name());
    write_atomic(&dir.join("report.md"), report.as_bytes(), None)?;
    Ok(format!(
        "{}: accuracy {} → {}, owner's bits {}, verdict {}{}",
        line.note,
        pct(line.before),
        pct(line.after),
        pct(line.detection),
        line.verdict,
        line.dispute.as_ref().map_or(String::new(), |d| format!(", dispute: {d}"))
    ))
}

/// What the plan parser knows of one attack.
pub struct Spec {
    /// Its name.
    pub name: &'static str,
    /// Its own keys.
    pub keys: &'static [&'static str],
    /// The paper's training settings, for an attack that trains.
    pub paper_training: Option<toml::Table>,
}

fn resolve_as<A: AttackKind>(r: &Resolve<'_>) -> Result<A> {
    A::resolve(typed(r.table.entries())?, r)
}

/// Declares the attacks: their modules, the [`Attack`] enum that a stage holds (serialised with
/// `attack = "<name>"` and the attack's fields), and the dispatch from names and values.
macro_rules! attacks {
    ($($variant:ident($module:ident::$ty:ident)),* $(,)?) => {
        $(pub mod $module;)*
        $(pub use $module::$ty;)*

        /// An attack and its settings (spec §8).
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(tag = "attack", rename_all = "kebab-case")]
        pub enum Attack {
            $(
                #[doc = concat!("See [`", stringify!($ty), "`].")]
                $variant($ty),
            )*
        }

        impl Attack {
            /// The name used in plans.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Attack::$variant(_) => $ty::NAME,)*
                }
            }

            /// What the plan parser knows of every attack, in the order of the list.
            pub fn specs() -> Vec<Spec> {
                vec![$(Spec { name: $ty::NAME, keys: fields_of::<<$ty as AttackKind>::Keys>(), paper_training: $ty::paper_training() },)*]
            }

            /// The attack `name` from a stage's keys (`name` is one of [`Attack::specs`]).
            ///
            /// # Errors
            /// A key whose value does not fit, or is out of range.
            pub fn resolve(name: &str, r: &Resolve<'_>) -> Result<Self> {
                $(if name == $ty::NAME {
                    return Ok(Attack::$variant(resolve_as::<$ty>(r)?));
                })*
                anyhow::bail!("unknown attack `{name}`")
            }

            fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
                match self {
                    $(Attack::$variant(a) => a.run(s),)*
                }
            }
        }
    };
}

attacks! {
    Finetune(finetune::Finetune),
    Prune(prune::Prune),
    Flip(flip::Flip),
    Forge(forge::Forge),
    Reverse(reverse::Reverse),
    OptimisePassport(optimise::OptimisePassport),
    Substitute(substitute::Substitute),
    Steal(steal::Steal),
    Overwrite(overwrite::Overwrite),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name a plan writes is the name `stage.toml` records.
    #[test]
    fn every_attack_is_written_under_its_plan_name() {
        let config = TrainConfig::default();
        let attacks = [
            Attack::Prune(Prune { percents: vec![] }),
            Attack::Flip(Flip { fractions: vec![] }),
            Attack::Forge(Forge { draws: 1, source: ipr_attacks::ForgeSource::Noise, pretrained: None }),
            Attack::Reverse(Reverse { flip: 0.5, config: config.clone() }),
            Attack::OptimisePassport(OptimisePassport { flip: 0.0, attacker_bits: optimise::AttackerBits::Flipped, config: config.clone() }),
            Attack::Substitute(Substitute { erb: ipr_attacks::ErbKind::Ierb, data_fraction: 0.1, flip: 0.5, config: config.clone() }),
            Attack::Finetune(Finetune { mode: ipr_attacks::FinetuneMode::Rtal, target: finetune::Target::Classes(vec![1]), config: config.clone() }),
            Attack::Steal(Steal {}),
            Attack::Overwrite(Overwrite { config }),
        ];
        assert_eq!(attacks.len(), Attack::specs().len());
        for attack in attacks {
            let value = serde_json::to_value(&attack).unwrap();
            assert_eq!(value["attack"], attack.name());
            assert!(Attack::specs().iter().any(|s| s.name == attack.name()));
        }
    }
}
