//! What every stage runner shares: the plan's seed, model section, data and device, the run
//! folder, and reading what earlier stages wrote (model cards, records, owner bundles).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_models::{Layout, Net, NetConfig, OwnerBundle, Scheme, load_module, write_atomic};
use serde::{Deserialize, Serialize};

use crate::data::Datasets;
use crate::sections::ModelSection;

/// What every stage shares.
pub struct Ctx<'a> {
    /// The plan's seed.
    pub seed: u64,
    /// The plan's `[model]`.
    pub model: &'a ModelSection,
    /// `runs/<plan>/`.
    pub run_dir: PathBuf,
    /// The device the plan runs on.
    pub device: Device,
    /// The plan's data.
    pub data: &'a Datasets,
    /// Whether an existing owner bundle may be replaced.
    pub force: bool,
    /// The owner the plan's passport models are made for (plans without one have none).
    pub owner: Option<&'a crate::owner::Owner>,
}

impl Ctx<'_> {
    /// The model config the plan's model section and data imply.
    pub fn net_config(&self) -> NetConfig {
        let m = self.model;
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
    /// Scheme it was trained with (written `"v1"`, …).
    pub scheme: Scheme,
    /// Its config.
    pub model: NetConfig,
    /// Its passport layers.
    pub passport_layers: Vec<String>,
    /// The normalisation its inputs get (cards written before it was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<ipr_data::Normalization>,
}

/// Writes JSON atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    write_atomic(path, &bytes, None)?;
    Ok(())
}

/// Reads the model card and record of a train stage and rebuilds the model on `device`.
pub fn rebuild<M: Net>(dir: &Path, device: &Device) -> Result<(M, ModelCard)> {
    read_card(dir, "model", "run the train stage that writes it first").and_then(|card| {
        let layout = Layout::structure(card.passport_layers.iter().cloned(), card.scheme.is_private());
        let model = M::init(&card.model, &layout, device)?;
        Ok((load_module(model, &dir.join("model.bpk"))?, card))
    })
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
pub fn read_card(dir: &Path, name: &str, missing: &str) -> Result<ModelCard> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A card written before the scheme was typed still reads, and is written the same way.
    #[test]
    fn model_cards_of_earlier_runs_still_load() {
        let written = r#"{"scheme":"v2","model":{"arch":"alexnet","num_classes":10,"in_channels":1,"input_size":32,"width":0.5,"norm":"bn"},"passport_layers":["4","5","6"]}"#;
        let card: ModelCard = serde_json::from_str(written).unwrap();
        assert_eq!((card.scheme, card.normalization.is_none()), (Scheme::V2, true));
        assert_eq!(serde_json::to_string(&card).unwrap(), written);
    }
}
