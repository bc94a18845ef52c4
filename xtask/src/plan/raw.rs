//! The plan as TOML holds it: the sections with fixed keys typed, the `[train]` defaults and
//! each `[[stage]]` as tables of keys with their lines, which the resolution reads by kind.

use serde::Deserialize;
use toml::Spanned;

use crate::keys::RawTable;
use crate::owner::OwnerSection;
use crate::sections::{DataSection, ModelSection};

/// A plan file before resolution.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "cpu")]
    pub device: String,
    pub data: DataSection,
    pub model: ModelSection,
    #[serde(default)]
    pub owner: OwnerSection,
    pub train: Option<Spanned<RawTable>>,
    #[serde(rename = "stage", default)]
    pub stages: Vec<Spanned<RawTable>>,
}

fn cpu() -> String {
    "cpu".into()
}
