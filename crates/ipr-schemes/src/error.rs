//! The error type of the training crate.

use std::path::PathBuf;

use ipr_data::DataError;
use ipr_models::{BundleError, ModelError, StoreError};

/// What can stop a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// A model record or the owner bundle could not be written or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The owner bundle could not be written or read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A run-folder file could not be written or read.
    #[error("cannot {action} `{}`: {message}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A setting is out of range.
    #[error("training config: {0}")]
    Config(String),
    /// The loss stopped being a number.
    #[error("the loss became {value} at epoch {epoch}, step {step}; lower the learning rate")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss value.
        value: f32,
    },
}
