//! Saving and loading model records, atomically, with errors that name the file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType};
use burn_pack::Reader;
use sha2::{Digest, Sha256};

use crate::param_values;

/// A record that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file system refused.
    #[error("cannot {action} `{}`: {cause}; check that the folder exists, is writable and has free space", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not chained: it would print twice).
        cause: std::io::Error,
    },
    /// The file is not a model record, or is truncated.
    #[error("`{}` is not a readable model record ({message}); it may be truncated or not a model file: re-run the stage that writes it", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// The record belongs to another architecture or configuration.
    #[error("`{}` does not fit this model ({message}); it was saved for another architecture, width, number of classes or passport layout", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What did not fit.
        message: String,
    },
}

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed and renamed
/// over the target, so a crash leaves either the old file or the new one, never half of one.
/// `mode` sets Unix permissions before the data is written (e.g. `0o600` for owner secrets).
///
/// # Errors
/// [`StoreError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), StoreError> {
    let io = |action, cause| StoreError::Io { action, path: path.to_path_buf(), cause };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options.open(&tmp).map_err(|e| io("create", e))?;
        file.write_all(bytes).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("flush", e))?;
        fs::rename(&tmp, path).map_err(|e| io("rename into", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files [`write_atomic`] left in `dir` when a process was killed
/// mid-write (`.NAME.tmp-PID` of another process id). They are never read: the target file is
/// either the old one or the new one.
pub fn remove_stale_temporaries(dir: &Path) {
    let own = format!(".tmp-{}", std::process::id());
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name.starts_with('.')
            && name.rsplit_once(".tmp-").is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            && !name.ends_with(&own);
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Saves a module's record (weights, running statistics, passports) to `path`, atomically.
///
/// # Errors
/// [`StoreError`] naming the file.
pub fn save_module<M: Module>(module: &M, path: &Path) -> Result<(), StoreError> {
    save_module_with_mode(module, path, None)
}

/// [`save_module`] with Unix permissions `mode` (`Some(0o600)` for a record holding private
/// passports: the owner's model, its checkpoints).
///
/// # Errors
/// [`StoreError`] naming the file.
pub fn save_module_with_mode<M: Module>(module: &M, path: &Path, mode: Option<u32>) -> Result<(), StoreError> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| StoreError::Corrupt { path: path.into(), message: e.to_string() })?;
    write_atomic(path, &bytes, mode)
}

/// Loads the record at `path` into `module`, which must have the same structure.
///
/// # Errors
/// [`StoreError::Io`] for a missing file, [`StoreError::Corrupt`] for a damaged one and
/// [`StoreError::Mismatch`] for a record of another model.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M, StoreError> {
    let bytes = fs::read(path).map_err(|cause| StoreError::Io { action: "read", path: path.into(), cause })?;
    load_module_bytes(module, bytes, path)
}

/// Loads a record's bytes, read from `path` (named in errors), into `module`, which must have
/// the same structure: what [`load_module`] does once it has read the file.
///
/// # Errors
/// [`StoreError::Corrupt`] for bytes that are not a record and [`StoreError::Mismatch`] for a
/// record of another model.
pub fn load_module_bytes<M: Module>(module: M, bytes: Vec<u8>, path: &Path) -> Result<M, StoreError> {
    // Shared, so that checking the record first costs no copy.
    let bytes = Bytes::from_bytes_vec(bytes).shared();
    check_record(&bytes, path)?;
    let record = ModuleRecord::from_bytes(bytes)
        .map_err(|e| StoreError::Corrupt { path: path.into(), message: e.to_string() })?;
    module
        .try_load_record(record)
        .map_err(|e| StoreError::Mismatch { path: path.into(), message: brief(&e.to_string()) })
}

/// The name and shape of every tensor of a record, read from `path` (named in errors), without
/// loading it into a model: what a verifier compares with the architecture a claim names.
///
/// # Errors
/// [`StoreError::Io`] or [`StoreError::Corrupt`].
pub fn record_tensors(path: &Path) -> Result<Vec<(String, Vec<usize>)>, StoreError> {
    let bytes = fs::read(path).map_err(|cause| StoreError::Io { action: "read", path: path.into(), cause })?;
    let tensors = Reader::from_bytes(Bytes::from_bytes_vec(bytes))
        .and_then(Reader::into_tensors)
        .map_err(|e| StoreError::Corrupt { path: path.into(), message: e.to_string() })?;
    Ok(tensors.iter().map(|t| (t.name.clone(), t.shape.to_vec())).collect())
}

/// [`load_module`] leaving out the record's tensors named in `extra` (tensors the module has no
/// place for, such as an accessory block a verifier reports and does not read).
///
/// # Errors
/// Those of [`load_module`].
pub fn load_module_without<M: Module>(module: M, path: &Path, extra: &[String]) -> Result<M, StoreError> {
    let bytes = fs::read(path).map_err(|cause| StoreError::Io { action: "read", path: path.into(), cause })?;
    let corrupt = |e: String| StoreError::Corrupt { path: path.into(), message: e };
    let tensors = Reader::from_bytes(Bytes::from_bytes_vec(bytes)).and_then(Reader::into_tensors).map_err(|e| corrupt(e.to_string()))?;
    let kept: Vec<_> = tensors.into_iter().filter(|t| !extra.contains(&t.name)).collect();
    let bytes = burn_pack::Writer::new(kept).into_bytes().map_err(|e| corrupt(e.to_string()))?;
    load_module_bytes(module, bytes.to_vec(), path)
}

/// Checks that every tensor of a record holds `f32` values that fill its shape, as every record
/// this crate writes does: burn applies a tensor of another element type, or one whose bytes
/// do not fill its shape, with a panic.
fn check_record(bytes: &Bytes, path: &Path) -> Result<(), StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { path: path.into(), message };
    let tensors = Reader::from_bytes(bytes.clone())
        .and_then(Reader::into_tensors)
        .map_err(|e| corrupt(e.to_string()))?;
    for tensor in &tensors {
        if tensor.dtype != DType::F32 {
            return Err(corrupt(format!("tensor `{}` holds {:?} values, not f32", tensor.name, tensor.dtype)));
        }
        let size = tensor.shape.iter().try_fold(DType::F32.size(), |n, &d| n.checked_mul(d));
        if size != Some(tensor.byte_len()) {
            return Err(corrupt(format!(
                "tensor `{}` of shape {:?} holds {} bytes",
                tensor.name,
                tensor.shape.as_slice(),
                tensor.byte_len()
            )));
        }
    }
    Ok(())
}

/// `message` cut after [`BRIEF`] characters: burn lists every tensor that did not fit, which
/// for a record of another model is all of them.
fn brief(message: &str) -> String {
    match message.char_indices().nth(BRIEF) {
        Some((at, _)) => format!("{} …", &message[..at]),
        None => message.to_string(),
    }
}

/// The length [`brief`] keeps.
const BRIEF: usize = 240;

/// SHA-256 over every float parameter's path, shape and `f32` values, in visiting order: the
/// fingerprint an owner bundle records of the model it belongs to.
pub fn weights_digest<M: Module>(module: &M) -> String {
    let mut hasher = Sha256::new();
    for (path, shape, data) in param_values(module) {
        hasher.update(path.as_bytes());
        for d in shape {
            hasher.update((d as u64).to_le_bytes());
        }
        for v in data {
            hasher.update(v.to_le_bytes());
        }
    }
    hex::encode(hasher.finalize())
}
