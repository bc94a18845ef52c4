//! The owner's bundle: the secret half of a protected model.
//!
//! It holds the signature of every passport layer, the model config, and a digest of the
//! weights it belongs to. It is written with owner-only permissions (`0600`), never silently
//! overwritten, and refused when group- or world-readable.

use std::fs;
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::prelude::*;
use burn::tensor::Distribution;
use ipr_passport::{ConvBlock, Norm, Signature};
use serde::{Deserialize, Serialize};

use crate::owner::Fields;
use crate::{ClaimSignature, ModelError, Net, NetConfig, OwnerKey, Scheme, StoreError, tensor_values, write_atomic};

/// Version of the bundle format.
pub const BUNDLE_FORMAT: u32 = 1;

/// The signature of one passport layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSignature {
    /// Block path, e.g. `features.4` is `4` for AlexNet.
    pub path: String,
    /// The signature.
    pub signature: Signature,
}

/// The passports of one passport layer: the owner's secret in the private schemes (V2/V3),
/// where they are not part of the distributed model.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerPassports {
    /// Block path.
    pub path: String,
    /// `[n, in_channels, h, w]` of each passport.
    pub shape: [usize; 4],
    /// Bias passport `P_β`, row-major.
    pub key: Vec<f32>,
    /// Scale passport `P_γ`, row-major.
    pub skey: Vec<f32>,
    /// Running mean of the private path's batch norm (empty for other norms).
    #[serde(default)]
    pub running_mean: Vec<f32>,
    /// Running variance of the private path's batch norm (empty for other norms).
    #[serde(default)]
    pub running_var: Vec<f32>,
}

impl std::fmt::Debug for LayerPassports {
    /// Names the layer and shape only: passports never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayerPassports {{ path: {:?}, shape: {:?}, .. }}", self.path, self.shape)
    }
}

impl LayerPassports {
    /// The passports of every passport layer of `model`, in forward order, with the private
    /// path's normalisation statistics of a private layer: everything the private path needs
    /// beyond the public model.
    pub fn of<M: Net>(model: &M) -> Vec<Self> {
        model
            .blocks()
            .into_iter()
            .filter_map(|(path, block)| {
                let (key, skey) = (block.key.as_ref()?.val(), block.skey.as_ref()?.val());
                let stats = block.private_bn.as_ref().and_then(|n| Some((n.running_mean.as_ref()?, n.running_var.as_ref()?)));
                let (running_mean, running_var) = match stats {
                    Some((mean, var)) => (tensor_values(mean.value_sync()), tensor_values(var.value_sync())),
                    None => (vec![], vec![]),
                };
                Some(Self { path, shape: key.dims(), key: tensor_values(key), skey: tensor_values(skey), running_mean, running_var })
            })
            .collect()
    }

    /// Turns `block`, a layer of a public model (a normal block whose norm holds γ_pub/β_pub),
    /// back into the owner's private passport layer.
    ///
    /// # Errors
    /// [`ModelError::Config`] when the passports or statistics do not fit the block.
    pub fn restore(&self, block: ConvBlock, device: &Device) -> Result<ConvBlock, ModelError> {
        let misfit = |what: &str| {
            ModelError::Config(format!(
                "the owner bundle's {what} for layer `{}` do not fit the model's layer (in {} / out {} channels): the bundle belongs to another model",
                self.path,
                block.in_channels(),
                block.out_channels()
            ))
        };
        let (key, skey) = self.tensors(device).ok_or_else(|| misfit("passports"))?;
        if self.shape[1] != block.in_channels() || block.is_passport() {
            return Err(misfit("passports"));
        }
        let channels = block.out_channels();
        let mut private = Norm::new(block.bn.kind, channels, false, device);
        if private.running_mean.is_some() {
            if self.running_mean.is_empty() {
                return Err(ModelError::Config(format!(
                    "the owner bundle holds no private batch-norm statistics for layer `{}` (a bundle written before they were kept): the private path cannot be rebuilt from it",
                    self.path
                )));
            }
            if self.running_mean.len() != channels || self.running_var.len() != channels {
                return Err(misfit("batch-norm statistics"));
            }
            // New states rather than `update`: an update is only seen after a sync.
            private.running_mean = Some(RunningState::new(Tensor::from_floats(self.running_mean.as_slice(), device)));
            private.running_var = Some(RunningState::new(Tensor::from_floats(self.running_var.as_slice(), device)));
        }
        private.training = block.bn.training.clone();
        let block = block.with_passports(&self.path, key, skey)?;
        Ok(ConvBlock { private_bn: Some(private), ..block })
    }

    /// Checks that the passports are whole: every side of the shape at least 1, `key` and
    /// `skey` filling it, and the private statistics (if any) of one length.
    ///
    /// # Errors
    /// [`ModelError::Passports`] saying what is wrong, naming the layer.
    pub fn check(&self) -> Result<(), ModelError> {
        let fail = |problem: String| Err(ModelError::Passports { layer: self.path.clone(), problem });
        let size = self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d).filter(|_| d > 0));
        let Some(size) = size else {
            return fail(format!("shape {:?}: every side must be at least 1, and the size must fit in memory", self.shape));
        };
        if self.key.len() != size || self.skey.len() != size {
            return fail(format!("shape {:?} ({size} values), but they hold {} and {} values", self.shape, self.key.len(), self.skey.len()));
        }
        if self.running_mean.len() != self.running_var.len() {
            return fail(format!(
                "{} private running means but {} running variances",
                self.running_mean.len(),
                self.running_var.len()
            ));
        }
        Ok(())
    }

    /// `(P_β, P_γ)` as tensors on `device`, or `None` when the values do not fill the shape
    /// (see [`LayerPassports::check`]).
    pub fn tensors(&self, device: &Device) -> Option<(Tensor<4>, Tensor<4>)> {
        self.check().ok()?;
        let make = |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), self.shape), device);
        Some((make(&self.key), make(&self.skey)))
    }
}


/// The owner's private model from a public model (V2/V3) and the owner's passports: each
/// passport layer gets its passports and private statistics back; the public path is unchanged.
///
/// # Errors
/// [`ModelError::Config`] when a layer is missing or does not fit.
pub fn restore_private<M: Net>(public: M, passports: &[LayerPassports]) -> Result<M, ModelError> {
    let device = public.devices().first().cloned().unwrap_or_else(Device::flex);
    let paths: Vec<String> = public.blocks().into_iter().map(|(p, _)| p).collect();
    if let Some(missing) = passports.iter().find(|p| !paths.contains(&p.path)) {
        return Err(ModelError::Config(format!(
            "the owner bundle has passports for layer `{}`, which the model does not have: the bundle belongs to another architecture",
            missing.path
        )));
    }
    public.try_map_blocks(&mut |path, block| match passports.iter().find(|p| p.path == path) {
        Some(p) => p.restore(block, &device),
        None => Ok(block),
    })
}

/// `model` with every passport replaced by `U(-1, 1)` noise of the same shape, drawn on
/// `device` after seeding it with `seed`: a forger's guess, for fidelity checks and ambiguity
/// attack 1.
pub fn noise_passports<M: Net>(model: M, seed: u64, device: &Device) -> M {
    device.seed(seed);
    let noise = |p: Option<Param<Tensor<4>>>| {
        p.map(|p| {
            let t = Tensor::random(p.val().dims(), Distribution::Uniform(-1.0, 1.0), device);
            Param::from_tensor(t).set_require_grad(false)
        })
    };
    model
        .try_map_blocks::<std::convert::Infallible>(&mut |_, block| {
            Ok(ConvBlock { key: noise(block.key), skey: noise(block.skey), ..block })
        })
        .unwrap_or_else(|e| match e {})
}

/// The owner's secret bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnerBundle {
    /// Format version ([`BUNDLE_FORMAT`]).
    pub format: u32,
    /// The scheme that trained the model (written `"v1"`, …).
    pub scheme: Scheme,
    /// The model config.
    pub model: NetConfig,
    /// Signatures of every passport layer, in forward order.
    pub layers: Vec<LayerSignature>,
    /// [`weights_digest`](crate::weights_digest) of the model the bundle belongs to: the
    /// distributed one (for V2/V3, the public model).
    pub weights_sha256: String,
    /// The private passports (V2/V3); empty for V1, whose passports ship with the model (a
    /// claim on a V1 model that names other passports than the model's carries them here).
    #[serde(default)]
    pub passports: Vec<LayerPassports>,
    /// The owner's signature over [`OwnerBundle::commitment`], with the owner's public key;
    /// `None` in bundles written without an owner key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ClaimSignature>,
}

/// A bundle that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Writing or reading the file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target exists and overwriting was not asked for.
    #[error("owner bundle `{0}` already exists; it is the only proof of ownership, so it is never overwritten: move it away first, or pass --force")]
    Exists(String),
    /// The file can be read by others.
    #[error("owner bundle `{path}` is readable by group or others (mode {mode:o}); it holds secrets: run `chmod 600 {path}`")]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a bundle.
    #[error("`{path}` is not an owner bundle: {message}; pass the owner.json that the train stage wrote")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Domain tag of [`OwnerBundle::commitment`].
const CLAIM_DOMAIN: &[u8] = b"DeepIPR owner claim v1";

impl OwnerBundle {
    /// SHA-256 over the passports: every layer's path, shape, `P_β`, `P_γ` and private statistics.
    pub fn passports_digest(&self) -> [u8; 32] {
        let mut f = Fields::new(b"DeepIPR passports v1");
        for p in &self.passports {
            let shape: Vec<u8> = p.shape.iter().flat_map(|d| (*d as u64).to_le_bytes()).collect();
            f.field(p.path.as_bytes()).field(&shape).floats(&p.key).floats(&p.skey).floats(&p.running_mean).floats(&p.running_var);
        }
        f.finish()
    }

    /// The canonical digest of the claim: scheme, architecture, every layer's path and signature
    /// (bits, text, where the bound bits start), the passports' digest, the weights' digest at
    /// publication, and the owner's public key and time (when signed). This is what the owner
    /// signs and what a receipt commits to.
    pub fn commitment(&self) -> [u8; 32] {
        let mut f = Fields::new(CLAIM_DOMAIN);
        f.field(self.scheme.name().as_bytes());
        f.field(&serde_json::to_vec(&self.model).unwrap_or_default());
        for l in &self.layers {
            let bits: Vec<u8> = l.signature.bits.iter().map(|b| *b as u8).collect();
            let from = l.signature.bound_from.map_or(u64::MAX, |b| b as u64);
            f.field(l.path.as_bytes()).field(&bits).field(l.signature.text.as_deref().unwrap_or("").as_bytes()).field(&from.to_le_bytes());
        }
        f.field(&self.passports_digest()).field(self.weights_sha256.as_bytes());
        match &self.owner {
            Some(o) => f.field(&o.public_key.0).field(&o.created.to_le_bytes()),
            None => f.field(b"").field(b""),
        };
        f.finish()
    }

    /// Signs the claim with `key` at time `created` (seconds since 1970).
    pub fn sign(&mut self, key: &OwnerKey, created: u64) {
        self.owner = Some(ClaimSignature { public_key: key.public(), created, signature: String::new() });
        let signature = hex::encode(key.sign(&self.commitment()));
        if let Some(o) = self.owner.as_mut() {
            o.signature = signature;
        }
    }

    /// Whether the owner's signature signs this claim (`None`: the bundle is not signed). Any
    /// change to what the claim covers makes it invalid.
    pub fn signature_valid(&self) -> Option<bool> {
        let owner = self.owner.as_ref()?;
        let Ok(signature) = hex::decode(&owner.signature) else {
            return Some(false);
        };
        Some(owner.public_key.verifies(&self.commitment(), &signature))
    }

    /// Writes the bundle atomically with mode `0600`; refuses an existing file unless `force`.
    ///
    /// # Errors
    /// [`BundleError::Exists`] or a write error.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), BundleError> {
        if path.exists() && !force {
            return Err(BundleError::Exists(path.display().to_string()));
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| BundleError::Malformed {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        write_atomic(path, &json, Some(0o600))?;
        Ok(())
    }

    /// Reads a bundle, refusing one that group or others can read.
    ///
    /// # Errors
    /// [`BundleError::Exposed`], a read error, or [`BundleError::Malformed`].
    pub fn load(path: &Path) -> Result<Self, BundleError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(path).map_err(|cause| StoreError::Io {
                action: "read",
                path: path.into(),
                cause,
            })?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(BundleError::Exposed { path: path.display().to_string(), mode });
            }
        }
        let bytes = fs::read(path).map_err(|cause| StoreError::Io {
            action: "read",
            path: path.into(),
            cause,
        })?;
        Self::from_json(&bytes, path)
    }

    /// Parses a bundle's JSON, read from `path` (named in errors): what [`OwnerBundle::load`]
    /// does once it has checked the file's permissions and read it.
    ///
    /// # Errors
    /// [`BundleError::Malformed`] for bytes that are not a bundle of [`BUNDLE_FORMAT`].
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, BundleError> {
        let shown = path.display().to_string();
        let bundle: Self = serde_json::from_slice(bytes)
            .map_err(|e| BundleError::Malformed { path: shown.clone(), message: e.to_string() })?;
        if bundle.format != BUNDLE_FORMAT {
            return Err(BundleError::Malformed {
                path: shown,
                message: format!("format {} is not the supported format {BUNDLE_FORMAT}", bundle.format),
            });
        }
        if let Some(e) = bundle.passports.iter().find_map(|p| p.check().err()) {
            return Err(BundleError::Malformed { path: shown, message: e.to_string() });
        }
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arch, NetConfig};
    use ipr_passport::SignatureSpec;

    fn bundle() -> OwnerBundle {
        OwnerBundle {
            format: BUNDLE_FORMAT,
            scheme: Scheme::V1,
            model: NetConfig::new(Arch::Alexnet, 10),
            layers: vec![LayerSignature {
                path: "4".into(),
                signature: Signature::generate(&SignatureSpec::Text("ab".into()), 16, "4", 1).unwrap(),
            }],
            weights_sha256: "00".into(),
            passports: vec![],
            owner: None,
        }
    }

    #[test]
    fn saved_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owner.json");
        bundle().save(&path, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let err = bundle().save(&path, false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        bundle().save(&path, true).unwrap();
        assert_eq!(OwnerBundle::load(&path).unwrap(), bundle());
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_bundle_is_refused_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owner.json");
        bundle().save(&path, false).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = OwnerBundle::load(&path).unwrap_err();
            assert!(matches!(err, BundleError::Exposed { .. }), "{mode:o}: {err}");
            let err = err.to_string();
            assert!(err.contains(&path.display().to_string()) && err.contains(&format!("chmod 600 {}", path.display())), "{err}");
            assert!(err.contains("readable by group or others"), "{err}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(OwnerBundle::load(&path).unwrap(), bundle());
    }

    #[test]
    fn a_signed_claim_breaks_at_any_changed_byte() {
        let key = OwnerKey::from_seed(3);
        let mut signed = bundle();
        assert_eq!(signed.signature_valid(), None);
        signed.sign(&key, 1_700_000_000);
        assert_eq!(signed.signature_valid(), Some(true));
        let json = serde_json::to_vec(&signed).unwrap();
        let mut changed = 0;
        // Every byte of the JSON that still parses as a bundle of this format: a changed claim
        // fails its signature (bytes that change nothing it covers, like whitespace, are skipped).
        for i in 0..json.len() {
            let mut bytes = json.clone();
            bytes[i] = if bytes[i] == b'1' { b'0' } else if bytes[i].is_ascii_digit() { b'1' } else { bytes[i] ^ 0x01 };
            let Ok(other) = OwnerBundle::from_json(&bytes, Path::new("owner.json")) else { continue };
            if other == signed {
                continue;
            }
            changed += 1;
            // Either the signature fails, or the change dropped the signature itself.
            assert_ne!(other.signature_valid(), Some(true), "byte {i} changed the claim and kept its signature");
        }
        assert!(changed > 20, "{changed}");
        // Another key's signature is not the owner's.
        let mut forged = signed.clone();
        forged.owner.as_mut().unwrap().public_key = OwnerKey::from_seed(4).public();
        assert_eq!(forged.signature_valid(), Some(false));
        // The receipt round trip: it commits to the claim, verifies, and reveals no bit.
        let receipt = crate::Receipt::of(&signed).unwrap();
        assert!(receipt.is_valid() && receipt.is_for(&signed));
        let text = serde_json::to_string(&receipt).unwrap();
        let back: crate::Receipt = serde_json::from_str(&text).unwrap();
        assert_eq!(back, receipt);
        assert!(!back.is_for(&forged));
        assert!(!text.contains("bits") && !text.contains("passports"), "{text}");
    }
}
