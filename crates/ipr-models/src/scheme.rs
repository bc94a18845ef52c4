//! The protection schemes of DeepIPR: what a model's passport layers are.

use serde::{Deserialize, Serialize};

/// The protection scheme a model was trained with. Serialised in lower case (`"v1"`), as model
/// cards, owner bundles and plans write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Baseline: no passports.
    V0,
    /// Public passports: every passport layer's γ/β come from passports shipped with the model.
    V1,
    /// Private passports: a public path needing no passport, and a private passport path kept
    /// by the owner; both trained together.
    V2,
    /// V2 plus a trigger-set watermark learnt by both paths, for black-box checks.
    V3,
}

impl Scheme {
    /// The name used in plans and bundles.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::V0 => "v0",
            Scheme::V1 => "v1",
            Scheme::V2 => "v2",
            Scheme::V3 => "v3",
        }
    }

    /// Whether the scheme has passport layers.
    pub fn has_passports(self) -> bool {
        self != Scheme::V0
    }

    /// Whether the passport layers are private (a public path beside the passport path).
    pub fn is_private(self) -> bool {
        matches!(self, Scheme::V2 | Scheme::V3)
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
