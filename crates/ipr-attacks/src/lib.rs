//! Robustness evaluations of DeepIPR passports. Every attack reuses the training and evaluation
//! loop of `ipr-schemes`; none has a loop of its own.
//!
//! - [`forge`]: ambiguity attack 1, forged passports.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use burn::prelude::*;
//! use ipr_attacks::{ForgeSource, forge};
//! use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
//! use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig};
//!
//! let device = Device::flex();
//! let data = Arc::new(synthetic(&SyntheticConfig { n: 40, height: 32, width: 32, ..Default::default() }).unwrap());
//! let test = Loader::new(data, Transform::new(Normalization { mean: vec![0.5], std: vec![0.5] }), LoaderConfig::eval(40)).unwrap();
//! let mut config = NetConfig::new(Arch::Alexnet, 10);
//! (config.in_channels, config.width) = (1, 0.125);
//! let model = AlexNet::init(&config, &Layout::parse("4 = true\n", "x").unwrap(), &device).unwrap();
//! let rows = forge(&model, None, ForgeSource::Noise, 2, &test, &test, &[], 1, &device).unwrap();
//! assert_eq!(rows.len(), 2);
//! ```
#![deny(missing_docs)]

mod forge;

pub use forge::{ForgeRow, ForgeSource, forge};

use ipr_data::DataError;
use ipr_models::ModelError;

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
    /// A pretrained model is needed but none was given.
    #[error("forging passports from images needs a pretrained model: set `pretrained` to a train stage, or use source = \"noise\"")]
    NeedsPretrained,
    /// The sample source ran out of images.
    #[error("the validation split has too few images to sample two passports of 20 images each")]
    TooFewImages,
}
