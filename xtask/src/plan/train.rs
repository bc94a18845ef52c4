//! Resolving a `kind = "train"` stage, and the training settings every stage that trains shares:
//! `TrainConfig`'s defaults, then `[train]`, then the stage's own keys, read into one
//! `TrainConfig` whose fields are the training keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ipr_models::Scheme;
use ipr_passport::KeyType;
use ipr_schemes::TrainConfig;
use serde::{Deserialize, Serialize};

use super::Earlier;
use crate::keys::{Entry, Table, fields_of, typed};

/// Trigger images a V3 stage generates when `trigger_images` is not set.
pub const DEFAULT_TRIGGER_IMAGES: usize = 100;
/// Trigger images appended to every batch when `triggers_per_batch` is not set (the reference's).
pub const DEFAULT_TRIGGERS_PER_BATCH: usize = 2;
/// The sign loss of a V2/V3 retrofit unless its stage sets one. The private path must turn about
/// half of its scales' signs away from the public path's, and the reference's 0.1 turns them so
/// hard that both paths lose accuracy. Measured on Fashion-MNIST (AlexNet, half width): after a
/// two-epoch retrofit at lr 0.01 the private path reached 89.61% with 0.1, 90.10% with 0.03 and
/// 90.10% with 0.01, every bit in place with each; after one epoch at the quickstart's budget,
/// 71.40% with 0.1 and 76.69% with 0.03.
pub const RETROFIT_SIGN_LOSS: f64 = 0.03;

/// The training keys: every field of `TrainConfig` but the seed, which is the plan's.
pub fn training_keys() -> Vec<&'static str> {
    fields_of::<TrainConfig>().iter().copied().filter(|k| *k != "seed").collect()
}

/// The settings of a stage that trains: `TrainConfig::default()`, then each entry in order (a
/// later entry overrides an earlier one of the same key), with the plan's `seed`.
///
/// # Errors
/// An entry whose value does not fit its key, named by its line; settings out of range.
pub fn training_config<'a>(entries: impl IntoIterator<Item = &'a Entry>, seed: u64, place: &str) -> Result<TrainConfig> {
    let defaults = toml::Table::try_from(TrainConfig::default())?;
    let mut merged = defaults.clone();
    for e in entries {
        // Checked alone so that an error names the entry at fault.
        let mut alone = defaults.clone();
        alone.insert(e.key.clone(), e.value.clone());
        toml::Value::Table(alone).try_into::<TrainConfig>().map_err(|err| anyhow::anyhow!("{}: {}", e.at, err.message()))?;
        merged.insert(e.key.clone(), e.value.clone());
    }
    merged.insert("seed".into(), toml::Value::Integer(i64::try_from(seed).context("`seed` must be below 2^63")?));
    let config: TrainConfig = toml::Value::Table(merged).try_into()?;
    config.check().with_context(|| place.to_string())?;
    Ok(config)
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

/// Where the trigger set of a V3 stage comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum TriggerSource {
    /// A set in the Adi et al. format, read from this folder.
    Folder(PathBuf),
    /// A set of this many abstract patterns generated into the stage folder.
    Generate(usize),
}

/// The trigger set of a V3 stage and how many of its images each batch carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// The set.
    pub source: TriggerSource,
    /// Trigger images appended to every training batch (at least 1).
    pub per_batch: usize,
}

/// How a passport stage's passports are made.
#[derive(Clone, Debug, PartialEq)]
pub enum Passports {
    /// `U(-1, 1)` noise (`key_type = "random"`).
    Random,
    /// Activations of images through an earlier stage's model (`key_type = "image" | "shuffle"`).
    Sampled {
        /// The train stage whose model the images pass through.
        through: String,
        /// `image` or `shuffle`.
        key_type: KeyType,
        /// Test images, or the stage's trigger set.
        images: PassportSource,
    },
}

/// Where a retrofitted stage's trained model comes from (`init`).
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// An earlier V0 train stage of the plan.
    Stage(String),
    /// A state dict of the PyTorch reference's normal models (`AlexNetNormal`, `ResNet18`,
    /// ResNet-9), a `.pth` file (absolute path).
    Reference(PathBuf),
}

impl Init {
    /// As the plan writes it.
    pub fn written(&self) -> String {
        match self {
            Init::Stage(name) => name.clone(),
            Init::Reference(path) => path.display().to_string(),
        }
    }
}

/// A train stage, resolved: every invariant checked, every default filled.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainStage {
    /// Scheme.
    pub scheme: Scheme,
    /// How the passports are made (`None` for V0).
    pub passports: Option<Passports>,
    /// The train stage named by `pretrained` (where sampled passports come from; V3's
    /// trigger-set control).
    pub pretrained: Option<String>,
    /// The trained model without passports this passport stage starts from (`init`): its
    /// weights kept, passports retrofitted to reproduce it.
    pub init: Option<Init>,
    /// Passport layout file (absolute).
    pub layout: PathBuf,
    /// The trigger set (V3).
    pub trigger: Option<Trigger>,
    /// Resolved training settings.
    pub config: TrainConfig,
}

/// How a train stage is written into `stage.toml` (the form run folders already hold).
#[derive(Serialize)]
struct Written<'a> {
    scheme: Scheme,
    pretrained: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<String>,
    key_type: KeyType,
    passport: &'a Path,
    #[serde(skip_serializing_if = "is_default")]
    passport_source: PassportSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'a TriggerSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    triggers_per_batch: Option<usize>,
    config: &'a TrainConfig,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Serialize for TrainStage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (key_type, passport_source) = match &self.passports {
            None => (KeyType::default(), PassportSource::default()),
            Some(Passports::Random) => (KeyType::Random, PassportSource::default()),
            Some(Passports::Sampled { key_type, images, .. }) => (*key_type, *images),
        };
        Written {
            scheme: self.scheme,
            pretrained: self.pretrained.as_deref(),
            init: self.init.as_ref().map(Init::written),
            key_type,
            passport: &self.layout,
            passport_source,
            trigger: self.trigger.as_ref().map(|t| &t.source),
            triggers_per_batch: self.trigger.as_ref().map(|t| t.per_batch),
            config: &self.config,
        }
        .serialize(serializer)
    }
}

/// A train stage's own keys, as a plan writes them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainKeys {
    scheme: Option<Scheme>,
    pretrained: Option<String>,
    init: Option<String>,
    key_type: Option<KeyType>,
    passport: Option<PathBuf>,
    trigger_set: Option<String>,
    trigger_images: Option<usize>,
    triggers_per_batch: Option<usize>,
    passport_source: Option<PassportSource>,
}

/// What a train stage's resolution reads besides its own table.
pub(super) struct TrainContext<'a> {
    /// `[train]`'s entries.
    pub defaults: &'a [Entry],
    /// The plan's `[model] passport`.
    pub model_layout: Option<&'a Path>,
    /// The architecture's name (for the default layout).
    pub arch: &'a str,
    /// The plan's seed.
    pub seed: u64,
    /// The project root (relative paths resolve against it).
    pub root: &'a Path,
}

/// Resolves a train stage from its table (`name`, `kind` taken out already).
pub(super) fn resolve(mut table: Table, earlier: &Earlier<'_>, cx: &TrainContext<'_>, notes: &mut Vec<String>) -> Result<TrainStage> {
    let train_entries = table.take(&training_keys());
    let keys: TrainKeys = typed(table.entries())?;
    let scheme = keys.scheme.with_context(|| format!("{}: a train stage needs scheme = \"v0\", \"v1\", \"v2\" or \"v3\"", table.at("scheme")))?;
    let trigger = trigger(&table, &keys, scheme, cx.root)?;
    let pretrained = keys.pretrained.as_ref().map(|p| earlier.train_stage(&table, "pretrained", p)).transpose()?;
    let passports = passports(&table, &keys, scheme, pretrained.as_deref(), trigger.is_some())?;
    let init = init(&table, &keys, scheme, earlier, cx.root)?;
    let layout = keys
        .passport
        .or_else(|| cx.model_layout.map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(format!("configs/passport/{}.toml", cx.arch)));
    let layout = if layout.is_relative() { cx.root.join(layout) } else { layout };
    let retrofit = retrofit_defaults(&table, scheme, init.is_some(), cx.defaults, &train_entries, notes);
    let config = training_config(cx.defaults.iter().chain(&retrofit).chain(&train_entries), cx.seed, &table.place)?;
    Ok(TrainStage { scheme, passports, pretrained, init, layout, trigger, config })
}

/// The training settings a V2/V3 retrofit takes over `[train]`'s (the stage's own keys still win):
/// [`RETROFIT_SIGN_LOSS`], with a note when `[train]` said otherwise.
fn retrofit_defaults(table: &Table, scheme: Scheme, retrofit: bool, defaults: &[Entry], stage: &[Entry], notes: &mut Vec<String>) -> Vec<Entry> {
    if !retrofit || !matches!(scheme, Scheme::V2 | Scheme::V3) || stage.iter().any(|e| e.key == "sign_loss") {
        return Vec::new();
    }
    let value = toml::Value::Float(RETROFIT_SIGN_LOSS);
    if let Some(general) = defaults.iter().rev().find(|e| e.key == "sign_loss" && e.value != value) {
        notes.push(format!(
            "{}: a {} retrofit trains with sign_loss = {RETROFIT_SIGN_LOSS} rather than [train]'s {}; set it on the stage to change it",
            table.place,
            scheme.name(),
            general.value
        ));
    }
    vec![Entry { key: "sign_loss".into(), value, at: format!("{} (the retrofit's default sign_loss)", table.place) }]
}

/// The trained model a passport stage is retrofitted into (`init`): an earlier V0 stage, or a
/// reference `.pth` file.
fn init(table: &Table, keys: &TrainKeys, scheme: Scheme, earlier: &Earlier<'_>, root: &Path) -> Result<Option<Init>> {
    let Some(name) = &keys.init else { return Ok(None) };
    if !scheme.has_passports() {
        bail!("{}: init retrofits passports into a trained model, and scheme v0 has none; remove it, or use scheme v1, v2 or v3", table.at("init"));
    }
    if name.ends_with(".pth") {
        let path = PathBuf::from(name);
        return Ok(Some(Init::Reference(if path.is_relative() { root.join(path) } else { path })));
    }
    let name = earlier.train_stage(table, "init", name)?;
    if earlier.scheme(&name) != Some(Scheme::V0) {
        bail!("{}: stage `{name}` is not a v0 stage; init takes a model trained without passports", table.at("init"));
    }
    Ok(Some(Init::Stage(name)))
}

/// The trigger set of a V3 stage; the trigger keys on any other scheme are errors.
fn trigger(table: &Table, keys: &TrainKeys, scheme: Scheme, root: &Path) -> Result<Option<Trigger>> {
    if scheme != Scheme::V3 {
        if let Some(key) = ["trigger_set", "trigger_images", "triggers_per_batch"].into_iter().find(|k| table.has(k)) {
            bail!("{}: only scheme v3 trains a trigger set; remove it or set scheme = \"v3\"", table.at(key));
        }
        return Ok(None);
    }
    let source = match keys.trigger_set.as_deref() {
        None => bail!(
            "{}: scheme v3 needs trigger_set = \"generate\" (a secret set made in the stage folder) or the folder of a set (pics/1.jpg … and labels-cifar.txt)",
            table.at("trigger_set")
        ),
        Some("generate") => {
            let n = keys.trigger_images.unwrap_or(DEFAULT_TRIGGER_IMAGES);
            if n == 0 {
                bail!("{}: must be at least 1", table.at("trigger_images"));
            }
            TriggerSource::Generate(n)
        }
        Some(folder) => {
            if keys.trigger_images.is_some() {
                bail!("{}: only applies to trigger_set = \"generate\"; a folder's set has its own size", table.at("trigger_images"));
            }
            let folder = PathBuf::from(folder);
            TriggerSource::Folder(if folder.is_relative() { root.join(folder) } else { folder })
        }
    };
    let per_batch = keys.triggers_per_batch.unwrap_or(DEFAULT_TRIGGERS_PER_BATCH);
    if per_batch == 0 {
        bail!("{}: must be at least 1", table.at("triggers_per_batch"));
    }
    Ok(Some(Trigger { source, per_batch }))
}

/// How the passports of a stage are made, from `key_type`, `pretrained` and `passport_source`.
fn passports(table: &Table, keys: &TrainKeys, scheme: Scheme, pretrained: Option<&str>, has_trigger: bool) -> Result<Option<Passports>> {
    let source = keys.passport_source.unwrap_or_default();
    if source == PassportSource::Trigger && !has_trigger {
        bail!(
            "{}: passport_source = \"trigger\" samples passports from the trigger set of a v3 stage; use scheme = \"v3\" or remove it",
            table.at("passport_source")
        );
    }
    if !scheme.has_passports() {
        if keys.key_type.is_some() || keys.passport.is_some() || pretrained.is_some() {
            bail!("{}: scheme v0 has no passports; remove `key_type`, `passport` and `pretrained`", table.at("scheme"));
        }
        return Ok(None);
    }
    let key_type = keys.key_type.unwrap_or_default();
    if key_type == KeyType::Random {
        if keys.passport_source.is_some() {
            bail!("{}: key_type = \"random\" samples no images; remove it", table.at("passport_source"));
        }
        return Ok(Some(Passports::Random));
    }
    let Some(through) = pretrained else {
        bail!(
            "{}: key_type = \"{}\" samples passports through a pretrained model: set pretrained = \"<an earlier train stage>\", or key_type = \"random\"",
            table.at("key_type"),
            serde_json::to_value(key_type)?.as_str().unwrap_or("?")
        );
    };
    Ok(Some(Passports::Sampled { through: through.to_string(), key_type, images: source }))
}
