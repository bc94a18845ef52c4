//! Training with a measurement after every epoch, through the one training loop.
//!
//! [`train_probed`] runs [`ipr_schemes::train`] one epoch further at a time: each call resumes
//! from the checkpoint the previous one committed (model and optimiser state), so the run is the
//! same as one call, and after each epoch `probe` measures what the attack reports (detection
//! through the trained weights, similarity to the genuine passports, …). The measurements are
//! written to `probes.json` after each epoch, so an interrupted attack resumes with them.

use std::fs;
use std::path::Path;

use burn::prelude::*;
use ipr_models::{LayerSignature, Net, write_atomic};
use ipr_schemes::{EpochRow, Objective, TrainConfig, TrainData, train};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AttackError;

/// What a probed training run returns.
pub struct Probed<M, T> {
    /// The model after the last epoch (on the training device).
    pub model: M,
    /// One row per epoch.
    pub history: Vec<EpochRow>,
    /// One measurement per epoch.
    pub probes: Vec<T>,
}

/// Trains like [`ipr_schemes::train`] (same arguments) and calls `probe` on an evaluation
/// snapshot of the model after every epoch.
///
/// # Errors
/// Those of the training loop, or a `probes.json` that cannot be read or written.
#[allow(clippy::too_many_arguments)]
pub fn train_probed<M: Net, T: Serialize + DeserializeOwned>(
    model: M,
    objective: &dyn Objective<M>,
    signatures: &[LayerSignature],
    config: &TrainConfig,
    data: TrainData<'_>,
    device: &Device,
    dir: &Path,
    probe: &mut dyn FnMut(&M) -> T,
) -> Result<Probed<M, T>, AttackError> {
    let path = dir.join("probes.json");
    let mut probes: Vec<T> = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AttackError::File {
            path: path.clone(),
            message: format!("{e}; delete the stage folder to run the attack again"),
        })?,
        Err(_) => Vec::new(),
    };
    probes.truncate(config.epochs);
    let mut model = model;
    let mut history = Vec::new();
    // A complete run still makes one call, which loads the last epoch's model.
    let first = (probes.len() + 1).min(config.epochs);
    for epochs in first..=config.epochs {
        let step = TrainConfig { epochs, ..config.clone() };
        let data = TrainData { train: data.train, test: data.test };
        let outcome = train(model, objective, signatures, &step, data, device, dir)?;
        model = outcome.model;
        history = outcome.history;
        if probes.len() < epochs {
            probes.push(probe(&model.valid()));
            let bytes = serde_json::to_vec_pretty(&probes).map_err(|e| AttackError::File { path: path.clone(), message: e.to_string() })?;
            write_atomic(&path, &bytes, None)?;
        }
    }
    Ok(Probed { model, history, probes })
}
