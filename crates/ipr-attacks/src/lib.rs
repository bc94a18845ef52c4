//! Robustness evaluations of DeepIPR passports. Every attack reuses the training and evaluation
//! loop of `ipr-schemes`; none has a loop of its own (the attacks that train measure the
//! signature after every epoch through the loop's epoch hook, `ipr_schemes::train_probed`).
//!
//! - [`finetune`]: transfer learning, RTAL or FTAL, of the attacker's copy;
//! - [`prune`]: global magnitude pruning of every conv and linear weight;
//! - [`flip`]: negating a fraction of all γ entries;
//! - [`forge`]: ambiguity attack 1, forged passports;
//! - [`reverse`]: ambiguity attack 2, reverse-engineering γ/β with every weight frozen;
//! - [`optimise_passport`]: ambiguity attack 3, optimising forged passports;
//! - [`substitute`]: the accessory-block (ERB) substitution attack of Chen et al. (CVPR 2023).
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use burn::prelude::*;
//! use ipr_attacks::{ForgeSource, Forger, forge};
//! use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
//! use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig};
//!
//! let device = Device::flex();
//! let data = Arc::new(synthetic(&SyntheticConfig { n: 40, height: 32, width: 32, ..Default::default() }).unwrap());
//! let test = Loader::new(data, Transform::new(Normalization { mean: vec![0.5], std: vec![0.5] }), LoaderConfig::eval(40)).unwrap();
//! let mut config = NetConfig::new(Arch::Alexnet, 10);
//! (config.in_channels, config.width) = (1, 0.125);
//! let model = AlexNet::init(&config, &Layout::parse("4 = true\n", "x").unwrap(), &device).unwrap();
//! let forger = Forger { source: ForgeSource::Noise, pretrained: None, samples: &test, draws: 2, seed: 1 };
//! let rows = forge(&model, &forger, &test, &[], &device).unwrap();
//! assert_eq!(rows.len(), 2);
//! ```
#![deny(missing_docs)]

mod finetune;
mod flip;
mod forge;
mod optimise;
mod prune;
mod reverse;
mod substitute;
mod surgery;

pub use finetune::{FinetuneMode, FinetuneProbe, finetune};
pub use flip::{FlipRow, flip, flip_gammas};
pub use forge::{ForgeRow, ForgeSource, Forger, for_each_forgery, forge};
pub use optimise::{DISTANCE_WEIGHT, ForgeryObjective, PassportProbe, START_NOISE, optimise_passport, optimise_setup};
pub use prune::{PruneRow, prune, prune_weights};
pub use reverse::{SignatureProbe, reverse, reverse_setup};
pub use substitute::{Erb, ErbKind, SubstituteProbe, raw_gammas, substitute, substitute_setup};
pub use surgery::{attacker_copy, dissimilarity, flipped_signatures, norm_affine_ids, passport_ids, train_only};

use std::path::PathBuf;

use ipr_data::DataError;
use ipr_models::{ModelError, StoreError};
use ipr_schemes::SchemeError;

/// What can stop an attack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model could not be rebuilt.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The training loop stopped.
    #[error(transparent)]
    Train(#[from] SchemeError),
    /// The verifier could not read its evidence.
    #[error(transparent)]
    Verify(#[from] ipr_verify::VerifyError),
    /// A file of the attack could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file of the attack could not be read.
    #[error("cannot read `{}`: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The attack does not apply to this model or these settings.
    #[error("{0}")]
    Config(String),
    /// A pretrained model is needed but none was given.
    #[error("forging passports from images needs a pretrained model: set `pretrained` to a train stage, or use source = \"noise\"")]
    NeedsPretrained,
    /// The sample source ran out of images.
    #[error("the validation split has too few images to sample two passports of 20 images each")]
    TooFewImages,
}
