//! The owner's identity: an Ed25519 key pair, the signature an owner puts on an owner bundle
//! (over a canonical digest of everything the bundle claims), and the registration receipt an
//! owner publishes before releasing a model.
//!
//! The secret key is written with owner-only permissions (`0600`), never overwritten without
//! being asked, and refused when group- or world-readable; nothing here logs it. A receipt holds
//! the claim's digest, the public key, the time and the signature: no passport value and no
//! signature bit.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature as Ed25519Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{OwnerBundle, StoreError, write_atomic};

/// Version of the key and receipt formats.
pub const OWNER_FORMAT: u32 = 1;

/// What can go wrong with keys, claim signatures and receipts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerError {
    /// Writing or reading a file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file exists and overwriting was not asked for.
    #[error("owner key `{0}` already exists; it is what proves the owner's claims, so it is never overwritten: move it away first, or pass --force")]
    Exists(String),
    /// The secret key can be read by others.
    #[error("owner key `{path}` is readable by group or others (mode {mode:o}); it is a secret: run `chmod 600 {path}`")]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a key or receipt of this tool.
    #[error("`{path}` is not {what}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What it should be, with the way to make one.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The bundle to sign or register has no claim signature.
    #[error("the owner bundle is not signed by an owner key: sign it (a train stage with an [owner] key does), then register it")]
    Unsigned,
}

/// An Ed25519 public key, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl PublicKey {
    /// The hex form.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 16 hex digits, to name a key in reports.
    pub fn short(&self) -> String {
        self.hex()[..16].to_string()
    }

    /// The key of 64 hex digits.
    ///
    /// # Errors
    /// What is wrong with the text.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex ({e})"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| format!("{} bytes instead of 32", b.len()))?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_string())?;
        Ok(Self(bytes))
    }

    /// Whether `signature` (64 bytes) signs `message` under this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let (Ok(key), Ok(sig)) = (VerifyingKey::from_bytes(&self.0), Ed25519Signature::from_slice(signature)) else {
            return false;
        };
        key.verify(message, &sig).is_ok()
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// An owner's secret key (Ed25519). Its `Debug` shows the public key only.
#[derive(Clone)]
pub struct OwnerKey(SigningKey);

impl std::fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerKey(public {})", self.public().short())
    }
}

/// The key file as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: u32,
    kind: String,
    public: PublicKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

const SECRET_KIND: &str = "ed25519 secret key";
const PUBLIC_KIND: &str = "ed25519 public key";
const MAKE_ONE: &str = "an owner key of this tool (make one with `cargo xtask keys new --out DIR`)";

impl OwnerKey {
    /// A new key from the operating system's random source.
    ///
    /// # Errors
    /// The random source failed.
    pub fn generate() -> Result<Self, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("the operating system gave no random bytes: {e}"))?;
        Ok(Self(SigningKey::from_bytes(&secret)))
    }

    /// A key derived from `seed`: for simulated adversaries in experiments, never for an owner.
    pub fn from_seed(seed: u64) -> Self {
        let digest = Sha256::new().chain_update(b"DeepIPR simulated key").chain_update(seed.to_le_bytes()).finalize();
        Self(SigningKey::from_bytes(&digest.into()))
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`: 64 bytes.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// Writes the secret key to `path` (mode `0600`, atomically) and the public key beside it
    /// (`<path>.pub`, or `owner.pub` for `owner.key`); refuses an existing secret unless `force`.
    /// Returns the public key's path.
    ///
    /// # Errors
    /// [`OwnerError::Exists`] or a write error.
    pub fn save(&self, path: &Path, force: bool) -> Result<PathBuf, OwnerError> {
        if path.exists() && !force {
            return Err(OwnerError::Exists(path.display().to_string()));
        }
        let secret = KeyFile { format: OWNER_FORMAT, kind: SECRET_KIND.into(), public: self.public(), secret: Some(hex::encode(self.0.to_bytes())) };
        let public = KeyFile { format: OWNER_FORMAT, kind: PUBLIC_KIND.into(), public: self.public(), secret: None };
        let json = |k: &KeyFile| serde_json::to_vec_pretty(k).expect("a key file serialises");
        write_atomic(path, &json(&secret), Some(0o600))?;
        let public_path = public_path(path);
        write_atomic(&public_path, &json(&public), None)?;
        Ok(public_path)
    }

    /// Reads a secret key, refusing one that group or others can read.
    ///
    /// # Errors
    /// [`OwnerError::Exposed`], a read error, or [`OwnerError::Malformed`] (a truncated or
    /// edited file, or a public key file).
    pub fn load(path: &Path) -> Result<Self, OwnerError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(path).map_err(|cause| StoreError::Io { action: "read", path: path.into(), cause })?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(OwnerError::Exposed { path: path.display().to_string(), mode });
            }
        }
        let bytes = fs::read(path).map_err(|cause| StoreError::Io { action: "read", path: path.into(), cause })?;
        let malformed = |message: String| OwnerError::Malformed { path: path.display().to_string(), what: MAKE_ONE, message };
        let file: KeyFile = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        if file.format != OWNER_FORMAT || file.kind != SECRET_KIND {
            return Err(malformed(format!("it is a {} of format {}, not a secret key of format {OWNER_FORMAT}", file.kind, file.format)));
        }
        let secret = file.secret.ok_or_else(|| malformed("it holds no secret".into()))?;
        let secret = hex::decode(secret.trim()).map_err(|e| malformed(format!("the secret is not hex ({e})")))?;
        let secret: [u8; 32] = secret.try_into().map_err(|b: Vec<u8>| malformed(format!("the secret has {} bytes instead of 32", b.len())))?;
        let key = Self(SigningKey::from_bytes(&secret));
        if key.public() != file.public {
            return Err(malformed("its public key is not the public key of its secret".into()));
        }
        Ok(key)
    }
}

/// Where the public key of the secret key at `path` is written: `owner.key` → `owner.pub`,
/// anything else → `<name>.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    match path.extension() {
        Some(e) if e == "key" => path.with_extension("pub"),
        _ => PathBuf::from(format!("{}.pub", path.display())),
    }
}

/// The owner's signature on an owner bundle: over [`OwnerBundle::commitment`], which covers the
/// key and the time too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimSignature {
    /// The owner's public key (bound signatures are bound to it).
    pub public_key: PublicKey,
    /// When the claim was made, in seconds since 1970 (UTC), as the owner states it.
    pub created: u64,
    /// The Ed25519 signature, 128 hex digits.
    pub signature: String,
}

/// A registration receipt: what an owner publishes (or has timestamped) before releasing a
/// model. It commits to the claim without revealing any passport value or signature bit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`OWNER_FORMAT`].
    pub format: u32,
    /// [`OwnerBundle::commitment`] of the claim, 64 hex digits.
    pub commitment: String,
    /// The owner's public key.
    pub public_key: PublicKey,
    /// When the claim was made, as the owner states it (seconds since 1970, UTC).
    pub created: u64,
    /// The owner's signature of the commitment.
    pub signature: String,
}

impl Receipt {
    /// The receipt of a signed bundle.
    ///
    /// # Errors
    /// [`OwnerError::Unsigned`] for a bundle without a claim signature.
    pub fn of(bundle: &OwnerBundle) -> Result<Self, OwnerError> {
        let owner = bundle.owner.as_ref().ok_or(OwnerError::Unsigned)?;
        Ok(Self {
            format: OWNER_FORMAT,
            commitment: hex::encode(bundle.commitment()),
            public_key: owner.public_key,
            created: owner.created,
            signature: owner.signature.clone(),
        })
    }

    /// Whether the signature signs the commitment under the public key.
    pub fn is_valid(&self) -> bool {
        let (Ok(commitment), Ok(signature)) = (hex::decode(&self.commitment), hex::decode(&self.signature)) else {
            return false;
        };
        self.public_key.verifies(&commitment, &signature)
    }

    /// Whether this is the receipt of `bundle`'s claim.
    pub fn is_for(&self, bundle: &OwnerBundle) -> bool {
        bundle.owner.as_ref().is_some_and(|o| o.public_key == self.public_key && o.created == self.created)
            && hex::encode(bundle.commitment()) == self.commitment
    }

    /// Reads a receipt.
    ///
    /// # Errors
    /// A read error or [`OwnerError::Malformed`].
    pub fn load(path: &Path) -> Result<Self, OwnerError> {
        let bytes = fs::read(path).map_err(|cause| StoreError::Io { action: "read", path: path.into(), cause })?;
        let what = "a registration receipt (make one with `cargo xtask register --owner owner.json`)";
        let receipt: Self = serde_json::from_slice(&bytes)
            .map_err(|e| OwnerError::Malformed { path: path.display().to_string(), what, message: e.to_string() })?;
        if receipt.format != OWNER_FORMAT {
            return Err(OwnerError::Malformed { path: path.display().to_string(), what, message: format!("format {} is not {OWNER_FORMAT}", receipt.format) });
        }
        Ok(receipt)
    }
}

/// Length-prefixed fields into a digest: no two different sequences of fields hash alike.
pub(crate) struct Fields(Sha256);

impl Fields {
    pub(crate) fn new(domain: &[u8]) -> Self {
        let mut f = Self(Sha256::new());
        f.field(domain);
        f
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub(crate) fn floats(&mut self, values: &[f32]) -> &mut Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.field(&bytes)
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}
