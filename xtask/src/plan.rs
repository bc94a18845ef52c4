//! The experiment plan: a TOML file that names the data, the model and the stages to run.
//!
//! Parsing is strict: an unknown key, a value of the wrong type, a stage that refers to an
//! unknown or later stage, or a key that does not apply to a stage's kind is an error naming the
//! file, the line and the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ipr_attacks::{ErbKind, FinetuneMode, ForgeSource};
use ipr_models::Arch;
use ipr_passport::{KeyType, NormKind};
use ipr_schemes::{Scheme, TrainConfig};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The datasets a plan can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST (IDX files).
    FashionMnist,
    /// MNIST (IDX files).
    Mnist,
    /// CIFAR-10 (binary version).
    Cifar10,
    /// CIFAR-100 (binary version, fine labels).
    Cifar100,
    /// `root/train/<class>/…` and `root/test/<class>/…` image folders.
    ImageFolder,
    /// A seeded synthetic task, for tests.
    Synthetic,
}

/// Where the passports of a sampled `key_type` come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassportSource {
    /// Random test images.
    #[default]
    Data,
    /// Images of the stage's trigger set (V3).
    Trigger,
}

/// The trigger set of a V3 stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum TriggerSource {
    /// A set in the Adi et al. format, read from this folder.
    Folder(PathBuf),
    /// A set of this many abstract patterns generated into the stage folder.
    Generate(usize),
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Which dataset.
    pub dataset: DatasetKind,
    /// Where its files are (a default exists for Fashion-MNIST and CIFAR).
    pub root: Option<PathBuf>,
    /// Train on the first N training images only.
    pub train_subset: Option<usize>,
    /// Train on the first N images of each class only.
    pub train_per_class: Option<usize>,
    /// Test on the first N test images only.
    pub test_subset: Option<usize>,
    /// Test on the first N images of each class only.
    pub test_per_class: Option<usize>,
    /// Training augmentation (random crop with padding, flip where it applies).
    #[serde(default = "yes")]
    pub augment: bool,
    /// Threads building batches.
    #[serde(default = "one")]
    pub workers: usize,
}

impl DataSection {
    /// A section reading the whole test split of `dataset` from `root` (or its default folder).
    pub fn new(dataset: DatasetKind, root: Option<PathBuf>, project: &Path) -> Self {
        let mut section = Self {
            dataset,
            root,
            train_subset: None,
            train_per_class: None,
            test_subset: None,
            test_per_class: None,
            augment: true,
            workers: 1,
        };
        section.resolve_root(project);
        section
    }

    /// Makes `root` absolute (relative to `project`), or sets the dataset's default folder.
    fn resolve_root(&mut self, project: &Path) {
        self.root = match (self.root.take(), self.dataset) {
            (Some(r), _) if r.is_relative() => Some(project.join(r)),
            (Some(r), _) => Some(r),
            (None, DatasetKind::FashionMnist | DatasetKind::Mnist) => Some(PathBuf::from(ipr_data::FASHION_MNIST_DIR)),
            (None, DatasetKind::Cifar10) => Some(project.join("data/cifar10")),
            (None, DatasetKind::Cifar100) => Some(project.join("data/cifar100")),
            (None, DatasetKind::ImageFolder | DatasetKind::Synthetic) => None,
        };
    }
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Architecture.
    pub arch: Arch,
    /// Normalisation of every conv block.
    #[serde(default)]
    pub norm: NormKind,
    /// Channel multiplier.
    #[serde(default = "unit")]
    pub width: f64,
    /// Passport layout file (default `configs/passport/<arch>.toml`).
    pub passport: Option<PathBuf>,
}

/// `[train]`: defaults for every train stage; each key can be overridden per stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Epochs.
    pub epochs: Option<usize>,
    /// Batch size.
    pub batch_size: Option<usize>,
    /// Initial learning rate.
    pub lr: Option<f64>,
    /// SGD momentum.
    pub momentum: Option<f64>,
    /// Weight decay.
    pub weight_decay: Option<f64>,
    /// Epochs (0-based) where the learning rate is multiplied by `lr_factor`.
    pub lr_steps: Option<Vec<usize>>,
    /// Learning-rate multiplier.
    pub lr_factor: Option<f64>,
    /// Sign-loss weight α.
    pub sign_loss: Option<f64>,
    /// Gradient clipping by norm.
    pub grad_clip: Option<f64>,
}

impl TrainSection {
    fn over(&self, base: &TrainSection) -> TrainSection {
        TrainSection {
            epochs: self.epochs.or(base.epochs),
            batch_size: self.batch_size.or(base.batch_size),
            lr: self.lr.or(base.lr),
            momentum: self.momentum.or(base.momentum),
            weight_decay: self.weight_decay.or(base.weight_decay),
            lr_steps: self.lr_steps.clone().or_else(|| base.lr_steps.clone()),
            lr_factor: self.lr_factor.or(base.lr_factor),
            sign_loss: self.sign_loss.or(base.sign_loss),
            grad_clip: self.grad_clip.or(base.grad_clip),
        }
    }

    fn resolve(&self, seed: u64) -> TrainConfig {
        self.resolve_over(TrainConfig::default(), seed)
    }

    fn resolve_over(&self, d: TrainConfig, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            momentum: self.momentum.unwrap_or(d.momentum),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            lr_steps: self.lr_steps.clone().unwrap_or(d.lr_steps),
            lr_factor: self.lr_factor.unwrap_or(d.lr_factor),
            sign_loss: self.sign_loss.unwrap_or(d.sign_loss),
            seed,
            grad_clip: self.grad_clip.or(d.grad_clip),
        }
    }
}

/// One `[[stage]]` as written: every key of every kind, checked against its kind afterwards.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Spanned<String>,
    kind: Spanned<String>,
    scheme: Option<Scheme>,
    pretrained: Option<Spanned<String>>,
    key_type: Option<KeyType>,
    passport: Option<PathBuf>,
    from: Option<Spanned<String>>,
    draws: Option<usize>,
    source: Option<ForgeSource>,
    trigger_set: Option<String>,
    trigger_images: Option<usize>,
    triggers_per_batch: Option<usize>,
    passport_source: Option<PassportSource>,
    attack: Option<Spanned<String>>,
    mode: Option<FinetuneMode>,
    classes: Option<Vec<usize>>,
    dataset: Option<DatasetKind>,
    root: Option<PathBuf>,
    percents: Option<Vec<f64>>,
    fractions: Option<Vec<f64>>,
    flip: Option<f64>,
    erb: Option<ErbKind>,
    data_fraction: Option<f64>,
    grad_clip: Option<f64>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    momentum: Option<f64>,
    weight_decay: Option<f64>,
    lr_steps: Option<Vec<usize>>,
    lr_factor: Option<f64>,
    sign_loss: Option<f64>,
}

impl RawStage {
    fn train_keys(&self) -> TrainSection {
        TrainSection {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            lr_steps: self.lr_steps.clone(),
            lr_factor: self.lr_factor,
            sign_loss: self.sign_loss,
            grad_clip: self.grad_clip,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    #[serde(default)]
    seed: u64,
    #[serde(default = "cpu")]
    device: String,
    data: DataSection,
    model: ModelSection,
    #[serde(default)]
    train: TrainSection,
    #[serde(rename = "stage")]
    stages: Vec<Spanned<RawStage>>,
}

/// A train stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainStage {
    /// Scheme.
    pub scheme: Scheme,
    /// Train stage whose model passports are sampled from.
    pub pretrained: Option<String>,
    /// Where passports come from.
    pub key_type: KeyType,
    /// Passport layout file (passport schemes).
    pub passport: PathBuf,
    /// Where sampled passports come from.
    #[serde(skip_serializing_if = "is_default")]
    pub passport_source: PassportSource,
    /// The trigger set (V3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerSource>,
    /// Trigger images appended to every training batch (V3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers_per_batch: Option<usize>,
    /// Resolved training settings.
    pub config: TrainConfig,
}

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
    /// An attack on a trained model.
    Attack {
        /// The train stage to attack.
        from: String,
        /// Which attack, with its settings.
        #[serde(flatten)]
        attack: Attack,
    },
}

/// Where a fine-tuning attack's data comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinetuneTarget {
    /// These classes of the plan's dataset (train and test), labels kept.
    Classes(Vec<usize>),
    /// Another dataset.
    Dataset(DataSection),
}

/// An attack and its settings (spec §8).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "attack", rename_all = "kebab-case")]
pub enum Attack {
    /// Transfer learning of the attacker's copy.
    Finetune {
        /// RTAL or FTAL.
        mode: FinetuneMode,
        /// The new task's data.
        target: FinetuneTarget,
        /// Training settings.
        config: TrainConfig,
    },
    /// Global magnitude pruning.
    Prune {
        /// Percentages of weights pruned.
        percents: Vec<f64>,
    },
    /// Sign flipping of γ.
    Flip {
        /// Fractions of γ entries negated.
        fractions: Vec<f64>,
    },
    /// Ambiguity attack 1: forged passports.
    Forge {
        /// Forged draws.
        draws: usize,
        /// Where forged passports come from.
        source: ForgeSource,
        /// The public pretrained model forged passports pass through.
        #[serde(skip_serializing_if = "Option::is_none")]
        pretrained: Option<String>,
    },
    /// Ambiguity attack 2: reverse-engineering γ/β.
    Reverse {
        /// Fraction of the owner's bits the forger's signature flips.
        flip: f64,
        /// Training settings.
        config: TrainConfig,
    },
    /// Ambiguity attack 3: optimising forged passports.
    OptimisePassport {
        /// Fraction of the owner's bits the forger's signature flips.
        flip: f64,
        /// Training settings.
        config: TrainConfig,
    },
    /// The ERB substitution attack (Chen et al., CVPR 2023).
    Substitute {
        /// IERB or CERB.
        erb: ErbKind,
        /// Fraction of the training data the attacker has.
        data_fraction: f64,
        /// Fraction of the owner's bits the forger's signature flips.
        flip: f64,
        /// Training settings.
        config: TrainConfig,
    },
}

impl Attack {
    /// The name used in plans.
    pub fn name(&self) -> &'static str {
        match self {
            Attack::Finetune { .. } => "finetune",
            Attack::Prune { .. } => "prune",
            Attack::Flip { .. } => "flip",
            Attack::Forge { .. } => "forge",
            Attack::Reverse { .. } => "reverse",
            Attack::OptimisePassport { .. } => "optimise-passport",
            Attack::Substitute { .. } => "substitute",
        }
    }
}

/// The attacks and the keys each takes besides `from` (and, for those that train, the training
/// keys).
const ATTACKS: [(&str, &[&str], bool); 7] = [
    ("finetune", &["mode", "classes", "dataset", "root"], true),
    ("prune", &["percents"], false),
    ("flip", &["fractions"], false),
    ("forge", &["draws", "source", "pretrained"], false),
    ("reverse", &["flip"], true),
    ("optimise-passport", &["flip"], true),
    ("substitute", &["erb", "data_fraction", "flip"], true),
];

/// The reference settings of the attacks that train (spec §8): SGD lr 0.01, momentum 0.9,
/// weight decay 5e-4, 100 epochs, no learning-rate steps.
fn attack_training(batch_size: Option<usize>, grad_clip: Option<f64>) -> TrainConfig {
    TrainConfig {
        epochs: 100,
        batch_size: batch_size.unwrap_or(64),
        weight_decay: 5e-4,
        lr_steps: vec![],
        grad_clip,
        ..TrainConfig::default()
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
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn unit() -> f64 {
    1.0
}
fn cpu() -> String {
    "cpu".into()
}

/// Which keys of a train stage's own (not the training settings) a stage sets.
fn train_stage_keys(s: &RawStage) -> [(&'static str, bool); 7] {
    [
        ("scheme", s.scheme.is_some()),
        ("key_type", s.key_type.is_some()),
        ("passport", s.passport.is_some()),
        ("trigger_set", s.trigger_set.is_some()),
        ("trigger_images", s.trigger_images.is_some()),
        ("triggers_per_batch", s.triggers_per_batch.is_some()),
        ("passport_source", s.passport_source.is_some()),
    ]
}

/// Which of the attacks' own keys a stage sets (`pretrained`, shared with train stages, aside).
fn attack_keys(s: &RawStage) -> Vec<(&'static str, bool)> {
    vec![
        ("mode", s.mode.is_some()),
        ("classes", s.classes.is_some()),
        ("dataset", s.dataset.is_some()),
        ("root", s.root.is_some()),
        ("percents", s.percents.is_some()),
        ("fractions", s.fractions.is_some()),
        ("draws", s.draws.is_some()),
        ("source", s.source.is_some()),
        ("flip", s.flip.is_some()),
        ("erb", s.erb.is_some()),
        ("data_fraction", s.data_fraction.is_some()),
    ]
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Plan {
    /// Reads and checks the plan at `path`. Relative layout paths are resolved against `root`.
    pub fn load(path: &Path, root: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read plan `{}`; check the path", path.display()))?;
        Self::parse(&text, &path.display().to_string(), root)
    }

    /// Parses and checks a plan; `file` names it in errors.
    pub fn parse(text: &str, file: &str, root: &Path) -> Result<Self> {
        let raw: RawPlan =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("plan `{file}`: {e}"))?;
        if !is_safe_name(&raw.name) {
            bail!("plan `{file}`: `name` = {:?} must be 1-64 letters, digits, `-` or `_` (it names the run folder)", raw.name);
        }
        if raw.stages.is_empty() {
            bail!("plan `{file}` has no [[stage]]; add at least one (kind = \"train\", \"verify\" or \"attack\")");
        }
        let mut stages: Vec<Stage> = Vec::new();
        for spanned in &raw.stages {
            let line = line_of(text, spanned.span().start);
            let s = spanned.get_ref();
            let at = |key: &str| format!("plan `{file}`, line {line}, stage `{}`, key `{key}`", s.name.get_ref());
            let name = s.name.get_ref().clone();
            if !is_safe_name(&name) {
                bail!("{}: the name must be letters, digits, `-` or `_` (it names the stage folder)", at("name"));
            }
            if stages.iter().any(|st| st.name == name) {
                bail!("{}: another stage is already named `{name}`; stage names must be unique", at("name"));
            }
            let refer = |key: &str, value: &Spanned<String>| -> Result<String> {
                let target = value.get_ref();
                let earlier: Vec<&str> = stages
                    .iter()
                    .filter(|st| matches!(st.kind, StageKind::Train(_)))
                    .map(|st| st.name.as_str())
                    .collect();
                if !earlier.contains(&target.as_str()) {
                    bail!(
                        "plan `{file}`, line {}, stage `{name}`, key `{key}`: `{target}` is not a train stage before this one; use one of: {}",
                        line_of(text, value.span().start),
                        if earlier.is_empty() { "(none yet: add a train stage above)".to_string() } else { earlier.join(", ") }
                    );
                }
                Ok(target.clone())
            };
            let kind_name = s.kind.get_ref().as_str();
            let not_for = |keys: &[(&str, bool)]| -> Result<()> {
                if let Some((key, _)) = keys.iter().find(|(_, present)| *present) {
                    bail!("{}: does not apply to a stage of kind = \"{kind_name}\"; remove it", at(key));
                }
                Ok(())
            };
            let has_train_keys = s.train_keys() != TrainSection::default();
            let kind = match kind_name {
                "train" => {
                    not_for(&[("from", s.from.is_some()), ("attack", s.attack.is_some())])?;
                    not_for(&attack_keys(s))?;
                    let scheme = s.scheme.with_context(|| format!("{}: a train stage needs scheme = \"v0\", \"v1\", \"v2\" or \"v3\"", at("scheme")))?;
                    if scheme != Scheme::V3 {
                        let keys = [("trigger_set", s.trigger_set.is_some()), ("trigger_images", s.trigger_images.is_some()), ("triggers_per_batch", s.triggers_per_batch.is_some())];
                        if let Some((key, _)) = keys.iter().find(|(_, present)| *present) {
                            bail!("{}: only scheme v3 trains a trigger set; remove it or set scheme = \"v3\"", at(key));
                        }
                    }
                    let trigger = match (scheme, s.trigger_set.as_deref()) {
                        (Scheme::V3, None) => bail!("{}: scheme v3 needs trigger_set = \"generate\" (a secret set made in the stage folder) or the folder of a set (pics/1.jpg … and labels-cifar.txt)", at("trigger_set")),
                        (Scheme::V3, Some("generate")) => {
                            let n = s.trigger_images.unwrap_or(100);
                            if n == 0 {
                                bail!("{}: must be at least 1", at("trigger_images"));
                            }
                            Some(TriggerSource::Generate(n))
                        }
                        (Scheme::V3, Some(folder)) => {
                            if s.trigger_images.is_some() {
                                bail!("{}: only applies to trigger_set = \"generate\"; a folder's set has its own size", at("trigger_images"));
                            }
                            let folder = PathBuf::from(folder);
                            Some(TriggerSource::Folder(if folder.is_relative() { root.join(folder) } else { folder }))
                        }
                        _ => None,
                    };
                    let triggers_per_batch = trigger.as_ref().map(|_| s.triggers_per_batch.unwrap_or(2));
                    if triggers_per_batch == Some(0) {
                        bail!("{}: must be at least 1", at("triggers_per_batch"));
                    }
                    let passport_source = s.passport_source.unwrap_or_default();
                    if passport_source == PassportSource::Trigger && trigger.is_none() {
                        bail!("{}: passport_source = \"trigger\" samples passports from the trigger set of a v3 stage; use scheme = \"v3\" or remove it", at("passport_source"));
                    }
                    let pretrained = s.pretrained.as_ref().map(|p| refer("pretrained", p)).transpose()?;
                    let key_type = s.key_type.unwrap_or_default();
                    if scheme == Scheme::V0 && (s.key_type.is_some() || s.passport.is_some() || pretrained.is_some()) {
                        bail!("{}: scheme v0 has no passports; remove `key_type`, `passport` and `pretrained`", at("scheme"));
                    }
                    if scheme != Scheme::V0 && key_type != KeyType::Random && pretrained.is_none() {
                        bail!("{}: key_type = \"{}\" samples passports through a pretrained model: set pretrained = \"<an earlier train stage>\", or key_type = \"random\"", at("key_type"), serde_json::to_value(key_type)?.as_str().unwrap_or("?"));
                    }
                    let passport = s
                        .passport
                        .clone()
                        .or_else(|| raw.model.passport.clone())
                        .unwrap_or_else(|| PathBuf::from(format!("configs/passport/{}.toml", raw.model.arch.name())));
                    let passport = if passport.is_relative() { root.join(passport) } else { passport };
                    let config = s.train_keys().over(&raw.train).resolve(raw.seed);
                    config.check().with_context(|| format!("plan `{file}`, line {line}, stage `{name}`"))?;
                    StageKind::Train(TrainStage { scheme, pretrained, key_type, passport, passport_source, trigger, triggers_per_batch, config })
                }
                "verify" => {
                    not_for(&train_stage_keys(s))?;
                    not_for(&[
                        ("attack", s.attack.is_some()),
                        ("pretrained", s.pretrained.is_some()),
                        ("epochs/lr/… (training keys)", has_train_keys),
                    ])?;
                    not_for(&attack_keys(s))?;
                    let from = s.from.as_ref().with_context(|| format!("{}: set from = \"<the train stage to verify>\"", at("from")))?;
                    StageKind::Verify { from: refer("from", from)? }
                }
                "attack" => {
                    not_for(&train_stage_keys(s))?;
                    let from = s.from.as_ref().with_context(|| format!("{}: set from = \"<the train stage to attack>\"", at("from")))?;
                    let from = refer("from", from)?;
                    let names: Vec<&str> = ATTACKS.iter().map(|a| a.0).collect();
                    let attack = s.attack.as_ref().with_context(|| format!("{}: set attack = one of {}", at("attack"), names.join(", ")))?;
                    let Some(&(name, keys, trains)) = ATTACKS.iter().find(|a| a.0 == attack.get_ref()) else {
                        bail!(
                            "plan `{file}`, line {}, stage `{}`, key `attack`: unknown attack \"{}\"; use one of {}",
                            line_of(text, attack.span().start),
                            s.name.get_ref(),
                            attack.get_ref(),
                            names.join(", ")
                        );
                    };
                    let mut misplaced: Vec<(&str, bool)> = attack_keys(s).into_iter().filter(|(k, _)| !keys.contains(k)).collect();
                    misplaced.push(("pretrained", s.pretrained.is_some() && name != "forge"));
                    if let Some((key, _)) = misplaced.iter().find(|(_, present)| *present) {
                        bail!("{}: does not apply to attack = \"{name}\"; remove it", at(key));
                    }
                    if !trains && has_train_keys {
                        bail!("{}: attack = \"{name}\" trains nothing; remove the training keys", at("epochs/lr/… (training keys)"));
                    }
                    let fraction = |key: &str, value: Option<f64>, default: f64| -> Result<f64> {
                        let v = value.unwrap_or(default);
                        if !(0.0..=1.0).contains(&v) {
                            bail!("{}: {v} must be a fraction in [0, 1]", at(key));
                        }
                        Ok(v)
                    };
                    let grad_clip = (name == "optimise-passport").then_some(2.0);
                    let config = s.train_keys().resolve_over(attack_training(raw.train.batch_size, grad_clip), raw.seed);
                    config.check().with_context(|| format!("plan `{file}`, line {line}, stage `{name}`"))?;
                    let attack = match name {
                        "finetune" => {
                            let target = match (&s.classes, s.dataset) {
                                (Some(classes), None) => {
                                    if classes.is_empty() {
                                        bail!("{}: name at least one class", at("classes"));
                                    }
                                    if s.root.is_some() {
                                        bail!("{}: only applies with `dataset`", at("root"));
                                    }
                                    FinetuneTarget::Classes(classes.clone())
                                }
                                (None, Some(dataset)) => FinetuneTarget::Dataset(DataSection::new(dataset, s.root.clone(), root)),
                                _ => bail!("{}: fine-tuning needs its new task: either classes = [5, 6, 7, 8, 9] (a class split of the plan's dataset) or dataset = \"cifar100\" (another dataset), not both", at("classes")),
                            };
                            Attack::Finetune { mode: s.mode.unwrap_or_default(), target, config }
                        }
                        "prune" => {
                            let percents = s.percents.clone().unwrap_or_else(|| (0..=10).map(|i| f64::from(i) * 10.0).collect());
                            if let Some(p) = percents.iter().find(|p| !(0.0..=100.0).contains(*p)) {
                                bail!("{}: {p} is not a percentage in [0, 100]", at("percents"));
                            }
                            Attack::Prune { percents }
                        }
                        "flip" => {
                            let fractions = s.fractions.clone().unwrap_or_else(|| (0..=10).map(|i| f64::from(i) / 10.0).collect());
                            if let Some(f) = fractions.iter().find(|f| !(0.0..=1.0).contains(*f)) {
                                bail!("{}: {f} is not a fraction in [0, 1]", at("fractions"));
                            }
                            Attack::Flip { fractions }
                        }
                        "forge" => {
                            let source = s.source.unwrap_or_default();
                            let pretrained = s.pretrained.as_ref().map(|p| refer("pretrained", p)).transpose()?;
                            if source == ForgeSource::Pretrained && pretrained.is_none() {
                                bail!("{}: source = \"pretrained\" needs pretrained = \"<a train stage>\", or use source = \"noise\"", at("pretrained"));
                            }
                            let draws = s.draws.unwrap_or(5);
                            if draws == 0 {
                                bail!("{}: draws must be at least 1", at("draws"));
                            }
                            Attack::Forge { draws, source, pretrained }
                        }
                        "reverse" => Attack::Reverse { flip: fraction("flip", s.flip, 0.5)?, config },
                        "optimise-passport" => Attack::OptimisePassport { flip: fraction("flip", s.flip, 0.0)?, config },
                        _ => {
                            let data_fraction = fraction("data_fraction", s.data_fraction, 0.1)?;
                            if data_fraction == 0.0 {
                                bail!("{}: the attacker needs some data; use a fraction in (0, 1]", at("data_fraction"));
                            }
                            Attack::Substitute { erb: s.erb.unwrap_or_default(), data_fraction, flip: fraction("flip", s.flip, 0.5)?, config }
                        }
                    };
                    StageKind::Attack { from, attack }
                }
                "forge" => bail!(
                    "plan `{file}`, line {}, stage `{name}`, key `kind`: forged passports are an attack now: write kind = \"attack\" and attack = \"forge\"",
                    line_of(text, s.kind.span().start)
                ),
                other => bail!(
                    "plan `{file}`, line {}, stage `{name}`, key `kind`: unknown kind \"{other}\"; use \"train\", \"verify\" or \"attack\"",
                    line_of(text, s.kind.span().start)
                ),
            };
            stages.push(Stage { name, kind });
        }
        if !matches!(raw.device.as_str(), "cpu" | "cuda" | "vulkan") && !raw.device.starts_with("cuda:") {
            bail!("plan `{file}`, key `device`: \"{}\" is not a device; use \"cpu\", \"cuda\", \"cuda:N\" or \"vulkan\"", raw.device);
        }
        let mut data = raw.data;
        data.resolve_root(root);
        Ok(Plan { name: raw.name, seed: raw.seed, device: raw.device, data, model: raw.model, stages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(t.passport, Path::new("/r/configs/passport/alexnet.toml"));
        assert_eq!(t.key_type, KeyType::Shuffle);
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
                        assert!(t.passport.exists(), "{}: layout {} is missing", path.display(), t.passport.display());
                    }
                }
                count += 1;
            }
        }
        assert!(count >= 4, "expected the shipped plans, found {count}");
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
        let Attack::Prune { percents } = parse("attack = \"prune\"") else { panic!() };
        assert_eq!(percents.len(), 11);
        assert_eq!((percents[0], percents[10]), (0.0, 100.0));
        let Attack::Flip { fractions } = parse("attack = \"flip\"") else { panic!() };
        assert_eq!((fractions.len(), fractions[5]), (11, 0.5));
        let Attack::Reverse { flip, config } = parse("attack = \"reverse\"") else { panic!() };
        assert_eq!((flip, config.epochs, config.lr, config.weight_decay, config.momentum), (0.5, 100, 0.01, 5e-4, 0.9));
        let Attack::OptimisePassport { flip, config } = parse("attack = \"optimise-passport\"\nflip = 0.1\nepochs = 3") else { panic!() };
        assert_eq!((flip, config.epochs, config.grad_clip), (0.1, 3, Some(2.0)));
        let Attack::Substitute { erb, data_fraction, .. } = parse("attack = \"substitute\"\nerb = \"cerb\"") else { panic!() };
        assert_eq!((erb, data_fraction), (ErbKind::Cerb, 0.1));
        let Attack::Finetune { mode, target, .. } = parse("attack = \"finetune\"\nclasses = [5, 6]") else { panic!() };
        assert_eq!((mode, target), (FinetuneMode::Rtal, FinetuneTarget::Classes(vec![5, 6])));
        let Attack::Finetune { target: FinetuneTarget::Dataset(d), .. } = parse("attack = \"finetune\"\nmode = \"ftal\"\ndataset = \"cifar100\"") else { panic!() };
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
}
