//! The experiment plan: a TOML file that names the data, the model and the stages to run.
//!
//! Parsing is strict: an unknown key, a value of the wrong type, a stage that refers to an
//! unknown or later stage, or a key that does not apply to a stage's kind is an error naming the
//! file, the line and the key. `raw.rs` reads the TOML, `train.rs` resolves train stages and the
//! training settings, `attack.rs` attack stages; this file drives them.

mod attack;
mod raw;
mod train;

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub use self::train::{
    DEFAULT_TRIGGER_IMAGES, DEFAULT_TRIGGERS_PER_BATCH, Init, PassportSource, Passports, TrainKeys, TrainStage, Trigger, TriggerSource,
    training_config, training_keys,
};
use crate::attacks::Attack;
use crate::keys::{Entry, Table, fields_of, line_of};
pub use crate::owner::{OwnerSection, SignatureKind};
pub use crate::sections::{DataSection, DatasetKind, ModelSection};

/// A stage's work.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StageKind {
    /// Train a model.
    Train(TrainStage),
    /// Verify the signature of a trained model.
    Verify {
        /// The train stage to verify.
        from: String,
    },
    /// The empirical null of a claim: independently trained models of the same architecture
    /// (other seeds), each checked against the claim.
    Calibrate {
        /// The train stage whose claim is checked.
        from: String,
        /// Independent models.
        models: usize,
        /// Their training settings.
        config: ipr_schemes::TrainConfig,
    },
    /// An attack on a trained model.
    Attack {
        /// The train stage to attack.
        from: String,
        /// Which attack, with its settings.
        #[serde(flatten)]
        attack: Attack,
    },
}

impl StageKind {
    /// `train`, `verify` or `attack`.
    pub fn name(&self) -> &'static str {
        match self {
            StageKind::Train(_) => "train",
            StageKind::Verify { .. } => "verify",
            StageKind::Calibrate { .. } => "calibrate",
            StageKind::Attack { .. } => "attack",
        }
    }
}

/// A resolved stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    /// Name, also its folder under the plan's run folder.
    pub name: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: StageKind,
}

/// A parsed, checked plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// Name, also its folder under `runs/`.
    pub name: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// `cpu`, `cuda`, `cuda:N` or `vulkan`.
    pub device: String,
    /// The data.
    pub data: DataSection,
    /// The model.
    pub model: ModelSection,
    /// Who owns the models, and how their signatures are made.
    pub owner: OwnerSection,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// What the parser wants the user to know (settings taken from elsewhere than they might
    /// think), printed before the plan runs.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The train stages before the stage being resolved.
pub(crate) struct Earlier<'a>(&'a [Stage]);

impl Earlier<'_> {
    fn names(&self) -> Vec<&str> {
        self.0.iter().filter(|s| matches!(s.kind, StageKind::Train(_))).map(|s| s.name.as_str()).collect()
    }

    /// `target`, the value of `key`, if it names a train stage before this one.
    fn train_stage(&self, table: &Table, key: &str, target: &str) -> Result<String> {
        table.refer(key, target, &self.names())
    }

    /// The scheme of the earlier train stage `name`.
    fn scheme(&self, name: &str) -> Option<ipr_models::Scheme> {
        self.0.iter().find_map(|s| match &s.kind {
            StageKind::Train(t) if s.name == name => Some(t.scheme),
            _ => None,
        })
    }
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Independent models a calibrate stage trains when `models` is not set.
pub const DEFAULT_NULL_MODELS: usize = 5;

/// The keys every stage has.
const COMMON: [&str; 2] = ["name", "kind"];

/// Every key a stage of any kind takes: what a key left over is checked against.
fn every_stage_key() -> Vec<&'static str> {
    let mut keys: Vec<&str> = COMMON.into_iter().chain(["from", "attack", "models"]).collect();
    keys.extend(fields_of::<TrainKeys>());
    keys.extend(training_keys());
    keys.extend(Attack::specs().iter().flat_map(|s| s.keys.iter().copied()));
    keys
}

/// Refuses the first key of `table` not in `allowed`: one of another kind does not apply here,
/// any other is unknown.
fn only(table: &Table, allowed: &[&str], kind: &str) -> Result<()> {
    let Some(e) = table.entries().iter().find(|e| !allowed.contains(&e.key.as_str())) else {
        return Ok(());
    };
    if every_stage_key().contains(&e.key.as_str()) {
        bail!("{}: does not apply to a stage of kind = \"{kind}\"; remove it", e.at);
    }
    let mut known: Vec<&str> = allowed.to_vec();
    known.sort_unstable();
    bail!("{}: unknown key; a stage of kind = \"{kind}\" takes {}", e.at, known.join(", "))
}

impl Plan {
    /// Reads and checks the plan at `path`. Relative layout paths are resolved against `root`.
    ///
    /// # Errors
    /// The file cannot be read, or any mistake in it (naming the line and key).
    pub fn load(path: &Path, root: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read plan `{}`; check the path", path.display()))?;
        Self::parse(&text, &path.display().to_string(), root)
    }

    /// Parses and checks a plan; `file` names it in errors.
    ///
    /// # Errors
    /// Any mistake in the plan, naming the file, the line and the key.
    pub fn parse(text: &str, file: &str, root: &Path) -> Result<Self> {
        let raw: raw::RawPlan = toml::from_str(text).map_err(|e| anyhow::anyhow!("plan `{file}`: {e}"))?;
        if !is_safe_name(&raw.name) {
            bail!("plan `{file}`: `name` = {:?} must be 1-64 letters, digits, `-` or `_` (it names the run folder)", raw.name);
        }
        if raw.stages.is_empty() {
            bail!("plan `{file}` has no [[stage]]; add at least one (kind = \"train\", \"verify\" or \"attack\")");
        }
        let defaults = match &raw.train {
            Some(t) => Table::new(t.get_ref(), text, file, "[train]", line_of(text, t.span().start)),
            None => Table::new(&Default::default(), text, file, "[train]", 1),
        };
        if let Some(e) = defaults.entries().iter().find(|e| !training_keys().contains(&e.key.as_str())) {
            bail!("{}: not a training key; [train] takes {}", e.at, training_keys().join(", "));
        }
        let mut stages: Vec<Stage> = Vec::new();
        let mut notes = Vec::new();
        for (i, spanned) in raw.stages.iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let placeholder = format!("stage {}", i + 1);
            let table = Table::new(spanned.get_ref(), text, file, &placeholder, line);
            let name: String = table.get("name")?.with_context(|| format!("{}: set name = \"…\" (it names the stage folder)", table.place))?;
            let table = Table::new(spanned.get_ref(), text, file, &format!("stage `{name}`"), line);
            let cx = StageContext { raw: &raw, root, defaults: defaults.entries() };
            let kind = resolve_stage(table, &name, &Earlier(&stages), &cx, &mut notes)?;
            if stages.iter().any(|st| st.name == name) {
                bail!("plan `{file}`, line {line}, stage `{name}`, key `name`: another stage is already named `{name}`; stage names must be unique");
            }
            stages.push(Stage { name, kind });
        }
        if !matches!(raw.device.as_str(), "cpu" | "cuda" | "vulkan") && !raw.device.starts_with("cuda:") {
            bail!("plan `{file}`, key `device`: \"{}\" is not a device; use \"cpu\", \"cuda\", \"cuda:N\" or \"vulkan\"", raw.device);
        }
        let mut data = raw.data;
        data.resolve_root(root);
        Ok(Plan { name: raw.name, seed: raw.seed, device: raw.device, data, model: raw.model, owner: raw.owner, stages, notes })
    }
}

/// What a stage's resolution reads of the rest of the plan.
struct StageContext<'a> {
    raw: &'a raw::RawPlan,
    root: &'a Path,
    defaults: &'a [Entry],
}

fn resolve_stage(mut table: Table, name: &str, earlier: &Earlier<'_>, cx: &StageContext<'_>, notes: &mut Vec<String>) -> Result<StageKind> {
    if !is_safe_name(name) {
        bail!("{}: the name must be letters, digits, `-` or `_` (it names the stage folder)", table.at("name"));
    }
    let kind: String = table.get("kind")?.with_context(|| format!("{}: set kind = \"train\", \"verify\" or \"attack\"", table.at("kind")))?;
    let kind_line = table.at("kind");
    table.take(&COMMON);
    Ok(match kind.as_str() {
        "train" => {
            let allowed: Vec<&str> = fields_of::<TrainKeys>().iter().copied().chain(training_keys()).collect();
            only(&table, &allowed, "train")?;
            let tc = train::TrainContext {
                defaults: cx.defaults,
                model_layout: cx.raw.model.passport.as_deref(),
                arch: cx.raw.model.arch.name(),
                seed: cx.raw.seed,
                root: cx.root,
            };
            StageKind::Train(train::resolve(table, earlier, &tc, notes)?)
        }
        "verify" => {
            only(&table, &["from"], "verify")?;
            let from: String = table.get("from")?.with_context(|| format!("{}: set from = \"<the train stage to verify>\"", table.at("from")))?;
            StageKind::Verify { from: earlier.train_stage(&table, "from", &from)? }
        }
        "calibrate" => {
            let allowed: Vec<&str> = ["from", "models"].into_iter().chain(training_keys()).collect();
            only(&table, &allowed, "calibrate")?;
            let from: String = table.get("from")?.with_context(|| format!("{}: set from = \"<the train stage whose claim to calibrate>\"", table.at("from")))?;
            let from = earlier.train_stage(&table, "from", &from)?;
            let models: usize = table.get("models")?.unwrap_or(DEFAULT_NULL_MODELS);
            if models == 0 {
                bail!("{}: the null needs at least one model", table.at("models"));
            }
            let training = table.take(&training_keys());
            let config = training_config(cx.defaults.iter().chain(&training), cx.raw.seed, &table.place)?;
            StageKind::Calibrate { from, models, config }
        }
        "attack" => {
            let ac = attack::AttackContext { defaults: cx.defaults, seed: cx.raw.seed, root: cx.root };
            attack::resolve(table, earlier, &ac, notes)?
        }
        "forge" => bail!("{kind_line}: forged passports are an attack now: write kind = \"attack\" and attack = \"forge\""),
        other => bail!("{kind_line}: unknown kind \"{other}\"; use \"train\", \"verify\", \"attack\" or \"calibrate\""),
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::attacks::{Finetune, Flip, OptimisePassport, Prune, Reverse, Substitute};
    use ipr_attacks::{ErbKind, FinetuneMode};
    use ipr_passport::KeyType;

    const GOOD: &str = r#"
name = "t"
[data]
dataset = "synthetic"
[model]
arch = "alexnet"
[[stage]]
name = "base"
kind = "train"
scheme = "v0"
epochs = 2
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
pretrained = "base"
[[stage]]
name = "check"
kind = "verify"
from = "v1"
"#;

    fn err(text: &str) -> String {
        format!("{:#}", Plan::parse(text, "plan.toml", Path::new("/r")).unwrap_err())
    }

    #[test]
    fn good_plan_resolves_defaults() {
        let plan = Plan::parse(GOOD, "plan.toml", Path::new("/r")).unwrap();
        assert_eq!(plan.stages.len(), 3);
        let StageKind::Train(t) = &plan.stages[1].kind else { panic!("train stage expected") };
        assert_eq!(t.layout, Path::new("/r/configs/passport/alexnet.toml"));
        assert_eq!(t.passports, Some(Passports::Sampled { through: "base".into(), key_type: KeyType::Shuffle, images: PassportSource::Data }));
        assert_eq!(t.config.epochs, 200);
        let StageKind::Train(t) = &plan.stages[0].kind else { panic!("train stage expected") };
        assert_eq!(t.config.epochs, 2);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err(&GOOD.replace("epochs = 2", "epochz = 2"));
        assert!(e.contains("plan.toml") && e.contains("line 11") && e.contains("epochz"), "{e}");
        let e = err(&GOOD.replace("[model]", "colour = 1\n[model]"));
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn bad_value_type_names_the_key() {
        let e = err(&GOOD.replace("epochs = 2", "epochs = \"two\""));
        assert!(e.contains("plan.toml") && e.contains("line 11") && e.contains("epochs"), "{e}");
        let e = err(&GOOD.replace("scheme = \"v0\"", "scheme = \"v9\""));
        assert!(e.contains("v9") && e.contains("v0"), "{e}");
    }

    #[test]
    fn unknown_from_lists_train_stages() {
        let e = err(&GOOD.replace("from = \"v1\"", "from = \"v2\""));
        assert!(e.contains("line 20") && e.contains("`from`") && e.contains("`v2`") && e.contains("base, v1"), "{e}");
    }

    #[test]
    fn key_of_another_kind_is_refused() {
        let e = err(&GOOD.replace("from = \"v1\"", "from = \"v1\"\nepochs = 3"));
        assert!(e.contains("check") && e.contains("does not apply"), "{e}");
    }

    #[test]
    fn every_shipped_plan_parses() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut count = 0;
        for entry in std::fs::read_dir(root.join("experiments")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let plan = Plan::load(&path, root).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                for stage in &plan.stages {
                    if let StageKind::Train(t) = &stage.kind {
                        assert!(t.layout.exists(), "{}: layout {} is missing", path.display(), t.layout.display());
                    }
                }
                count += 1;
            }
        }
        assert!(count >= 4, "expected the shipped plans, found {count}");
        // The GPU check's plan too.
        Plan::load(&root.join("bench/gpu_plan.toml"), root).unwrap_or_else(|e| panic!("bench/gpu_plan.toml: {e:#}"));
    }

    #[test]
    fn a_v2_retrofit_signs_gently_unless_told_otherwise() {
        let retrofit = |scheme: &str, train: &str, stage: &str| {
            let text = GOOD
                .replace("scheme = \"v1\"\npretrained", &format!("scheme = \"{scheme}\"\ninit = \"base\"\n{stage}\npretrained"))
                .replace("[model]", &format!("[train]\n{train}\n[model]"));
            let plan = Plan::parse(&text, "plan.toml", Path::new("/r")).unwrap();
            let StageKind::Train(t) = &plan.stages[1].kind else { panic!("train stage expected") };
            (t.config.sign_loss, plan.notes.clone())
        };
        assert_eq!(retrofit("v2", "", ""), (train::RETROFIT_SIGN_LOSS, vec![]));
        let (alpha, notes) = retrofit("v2", "sign_loss = 0.2", "");
        assert_eq!(alpha, train::RETROFIT_SIGN_LOSS, "the retrofit's default over [train]'s");
        assert!(notes.len() == 1 && notes[0].contains("stage `v1`") && notes[0].contains("0.2"), "{notes:?}");
        assert_eq!(retrofit("v2", "sign_loss = 0.2", "sign_loss = 0.3"), (0.3, vec![]), "the stage's own key wins");
        assert_eq!(retrofit("v1", "", "").0, 0.1, "V1 is aligned before training and keeps the reference's");
    }

    #[test]
    fn relative_data_roots_resolve_against_the_workspace() {
        let text = GOOD.replace("dataset = \"synthetic\"", "dataset = \"cifar10\"");
        let plan = Plan::parse(&text, "plan.toml", Path::new("/r")).unwrap();
        assert_eq!(plan.data.root.as_deref(), Some(Path::new("/r/data/cifar10")));
    }

    const ATTACK: &str = r#"
[[stage]]
name = "a"
kind = "attack"
from = "v1"
"#;

    fn with_attack(keys: &str) -> String {
        format!("{GOOD}{ATTACK}{keys}\n")
    }

    #[test]
    fn attack_stages_take_the_reference_settings_by_default() {
        let parse = |keys: &str| {
            let plan = Plan::parse(&with_attack(keys), "plan.toml", Path::new("/r")).unwrap();
            let Some(Stage { kind: StageKind::Attack { from, attack }, .. }) = plan.stages.last().cloned() else { panic!("attack stage expected") };
            assert_eq!(from, "v1");
            attack
        };
        let Attack::Prune(Prune { percents }) = parse("attack = \"prune\"") else { panic!() };
        assert_eq!(percents.len(), 11);
        assert_eq!((percents[0], percents[10]), (0.0, 100.0));
        let Attack::Flip(Flip { fractions }) = parse("attack = \"flip\"") else { panic!() };
        assert_eq!((fractions.len(), fractions[5]), (11, 0.5));
        let Attack::Reverse(Reverse { flip, config }) = parse("attack = \"reverse\"") else { panic!() };
        assert_eq!((flip, config.epochs, config.lr, config.weight_decay, config.momentum), (0.5, 100, 0.01, 5e-4, 0.9));
        let Attack::OptimisePassport(OptimisePassport { flip, config, .. }) = parse("attack = \"optimise-passport\"\nflip = 0.1\nepochs = 3") else { panic!() };
        assert_eq!((flip, config.epochs, config.grad_clip), (0.1, 3, Some(2.0)));
        let Attack::Substitute(Substitute { erb, data_fraction, .. }) = parse("attack = \"substitute\"\nerb = \"cerb\"") else { panic!() };
        assert_eq!((erb, data_fraction), (ErbKind::Cerb, 0.1));
        let Attack::Finetune(Finetune { mode, target, .. }) = parse("attack = \"finetune\"\nclasses = [5, 6]") else { panic!() };
        assert_eq!((mode, target), (FinetuneMode::Rtal, crate::attacks::finetune::Target::Classes(vec![5, 6])));
        let Attack::Finetune(Finetune { target: crate::attacks::finetune::Target::Dataset(d), .. }) = parse("attack = \"finetune\"\nmode = \"ftal\"\ndataset = \"cifar100\"") else { panic!() };
        assert_eq!(d.root.as_deref(), Some(Path::new("/r/data/cifar100")));
    }

    #[test]
    fn attack_mistakes_name_the_key_and_the_fix() {
        let cases: [(&str, &[&str]); 8] = [
            ("attack = \"melt\"", &["`attack`", "melt", "prune, flip"]),
            ("", &["`attack`", "set attack ="]),
            ("attack = \"flip\"\npercents = [10.0]", &["`percents`", "does not apply to attack = \"flip\""]),
            ("attack = \"reverse\"\nflip = 1.5", &["`flip`", "[0, 1]"]),
            ("attack = \"prune\"\nepochs = 3", &["trains nothing"]),
            ("attack = \"finetune\"", &["`classes`", "dataset ="]),
            ("attack = \"prune\"\npercents = [120.0]", &["`percents`", "120"]),
            ("attack = \"substitute\"\ndata_fraction = 0.0", &["`data_fraction`", "(0, 1]"]),
        ];
        for (keys, wanted) in cases {
            let e = err(&with_attack(keys));
            for w in wanted {
                assert!(e.contains(w) && e.contains("plan.toml") && e.contains("stage `a`"), "{keys}: {e} lacks {w}");
            }
        }
        let e = err(&GOOD.replace("kind = \"verify\"", "kind = \"forge\""));
        assert!(e.contains("kind = \"attack\"") && e.contains("attack = \"forge\""), "{e}");
    }

    #[test]
    fn shuffle_without_pretrained_says_how_to_fix() {
        let e = err(&GOOD.replace("pretrained = \"base\"\n", ""));
        assert!(e.contains("key_type") && e.contains("pretrained ="), "{e}");
    }

    #[test]
    fn an_attack_honours_train_keys_and_says_which_the_paper_overrides() {
        let text = with_attack("attack = \"reverse\"").replace("[model]", "[train]\nlr = 0.05\nsign_loss = 0.2\nepochs = 4\n[model]");
        let plan = Plan::parse(&text, "plan.toml", Path::new("/r")).unwrap();
        let Some(Stage { kind: StageKind::Attack { attack: Attack::Reverse(Reverse { config, .. }), .. }, .. }) = plan.stages.last() else { panic!("attack stage expected") };
        assert_eq!((config.lr, config.sign_loss), (0.05, 0.2), "[train] lr and sign_loss reach the attack");
        assert_eq!((config.epochs, config.weight_decay), (100, 5e-4), "the paper's epochs and weight decay take precedence over [train]");
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(plan.notes[0].contains("stage `a`") && plan.notes[0].contains("epochs = 100") && plan.notes[0].contains("epochs = 4"), "{:?}", plan.notes);
        // A stage's own key wins over the paper's and silences the note.
        let plan = Plan::parse(&format!("{text}epochs = 7\n"), "plan.toml", Path::new("/r")).unwrap();
        let Some(Stage { kind: StageKind::Attack { attack: Attack::Reverse(Reverse { config, .. }), .. }, .. }) = plan.stages.last() else { panic!() };
        assert_eq!(config.epochs, 7);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn train_section_takes_training_keys_only() {
        let e = err(&GOOD.replace("[model]", "[train]\nscheme = \"v1\"\n[model]"));
        assert!(e.contains("[train]") && e.contains("line 6") && e.contains("`scheme`") && e.contains("not a training key"), "{e}");
        let e = err(&GOOD.replace("[model]", "[train]\nlr = \"fast\"\n[model]"));
        assert!(e.contains("line 6") && e.contains("`lr`") && e.contains("invalid type"), "{e}");
    }

    #[test]
    fn resolved_trigger_carries_its_defaults() {
        let text = GOOD.replace("scheme = \"v1\"", "scheme = \"v3\"\ntrigger_set = \"generate\"");
        let plan = Plan::parse(&text, "plan.toml", Path::new("/r")).unwrap();
        let StageKind::Train(t) = &plan.stages[1].kind else { panic!("train stage expected") };
        assert_eq!(t.trigger, Some(Trigger { source: TriggerSource::Generate(DEFAULT_TRIGGER_IMAGES), per_batch: DEFAULT_TRIGGERS_PER_BATCH }));
        let e = err(&GOOD.replace("scheme = \"v1\"", "scheme = \"v1\"\nkey_type = \"random\"\npassport_source = \"data\""));
        assert!(e.contains("`passport_source`") && e.contains("random"), "{e}");
    }
}
