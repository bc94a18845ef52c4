//! The owner of a plan's models: the `[owner]` section (which key signs the claims, whether
//! signatures are bound to it), and the key itself, read from its file or, at the documented
//! default location only, made on first use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ipr_models::{OwnerKey, PublicKey};
use serde::{Deserialize, Serialize};

/// Where a plan's owner key is when `[owner] key` is not set, relative to the project root.
pub const DEFAULT_KEY: &str = "keys/owner.key";

/// Which bits a `true` layer (and the channels after a text) carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    /// Drawn from a hash of the owner's public key, the layer and its passports.
    #[default]
    Bound,
    /// Random bits (the reference's signatures): nothing ties them to the passports.
    Random,
}

/// `[owner]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerSection {
    /// The owner's secret key file (default [`DEFAULT_KEY`], made on first use).
    pub key: Option<PathBuf>,
    /// `bound` (default) or `random`.
    #[serde(default)]
    pub signature: SignatureKind,
}

/// The owner a plan runs for: the key that signs its claims.
pub struct Owner {
    /// The secret key.
    pub key: OwnerKey,
    /// Whether signatures are bound to it.
    pub signature: SignatureKind,
}

/// What a stage's `stage.toml` records of the owner: a stage made for another owner, or with
/// other signatures, is not reused.
#[derive(Serialize)]
pub struct OwnerRecord {
    /// `bound` or `random`.
    pub signature: SignatureKind,
    /// The owner's public key.
    pub public_key: PublicKey,
}

impl Owner {
    /// The owner `section` names: its key read from `section.key` (relative to `root`), or from
    /// [`DEFAULT_KEY`], where a new key is made (mode `0600`) when there is none.
    ///
    /// # Errors
    /// A named key that is missing, exposed to others, or damaged; a key that cannot be made.
    pub fn load(section: &OwnerSection, root: &Path) -> Result<Self> {
        let path = match &section.key {
            Some(p) if p.is_relative() => root.join(p),
            Some(p) => p.clone(),
            None => root.join(DEFAULT_KEY),
        };
        if !path.exists() {
            if section.key.is_some() {
                bail!(
                    "[owner] key: `{}` does not exist; make a key with `cargo xtask keys new --out {}`, or remove `key` to use {DEFAULT_KEY}",
                    path.display(),
                    path.parent().map_or_else(|| ".".into(), |p| p.display().to_string())
                );
            }
            let key = OwnerKey::generate().map_err(anyhow::Error::msg)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}` for the owner key", dir.display()))?;
            }
            match key.save(&path, false) {
                // Another run made it meanwhile: use that one.
                Err(ipr_models::OwnerError::Exists(_)) => {}
                other => {
                    other?;
                }
            }
            tracing::info!("made a new owner key at {} (public key {}); keep it: it signs your ownership claims", path.display(), key.public().short());
        }
        let key = OwnerKey::load(&path).with_context(|| "[owner] key".to_string())?;
        Ok(Self { key, signature: section.signature })
    }

    /// The public key signatures are bound to (`None` for random signatures).
    pub fn binding(&self) -> Option<PublicKey> {
        (self.signature == SignatureKind::Bound).then(|| self.key.public())
    }

    /// What `stage.toml` records.
    pub fn record(&self) -> OwnerRecord {
        OwnerRecord { signature: self.signature, public_key: self.key.public() }
    }
}

/// Now, in seconds since 1970 (UTC): the time of a claim.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
