//! Training for DeepIPR: the one loop that every scheme (V0 baseline, V1 public passports, V2/V3
//! private passports) and every attack runs through, with the reference schedule, atomic checkpoints and resume.
//!
//! A scheme plugs in as an [`Objective`]: what a step minimises. The loop owns everything else:
//! the optimiser (SGD with momentum and weight decay), the learning-rate steps, the per-epoch
//! evaluation and signature detection, an optional epoch hook ([`train_probed`]) whose
//! measurements are committed with each checkpoint, `history.csv`, `best.bpk`, and the
//! checkpoint a killed run resumes from.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use burn::prelude::*;
//! use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
//! use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig};
//! use ipr_schemes::{PassportObjective, Run, TrainConfig, TrainData, train};
//!
//! let device = Device::flex().autodiff();
//! let data = Arc::new(synthetic(&SyntheticConfig { n: 64, height: 32, width: 32, num_classes: 4, ..SyntheticConfig::default() }).unwrap());
//! let norm = Normalization { mean: vec![0.5], std: vec![0.5] };
//! let train_loader = Loader::new(data.clone(), Transform::new(norm.clone()), LoaderConfig::train(16, 1)).unwrap();
//! let test_loader = Loader::new(data, Transform::new(norm), LoaderConfig::eval(32)).unwrap();
//!
//! let mut config = NetConfig::new(Arch::Alexnet, 4);
//! (config.in_channels, config.width) = (1, 0.125);
//! let layout = Layout::parse("4 = \"ok\"\n", "example").unwrap();
//! let model = AlexNet::init(&config, &layout, &device).unwrap();
//! let signatures: Vec<_> = layout.signatures(&model, 1).unwrap().into_iter()
//!     .map(|(path, signature)| ipr_models::LayerSignature { path, signature }).collect();
//! let objective = PassportObjective::new(&signatures, 0.1, &device);
//! let train_config = TrainConfig { epochs: 1, batch_size: 16, ..TrainConfig::default() };
//! let dir = tempfile::tempdir().unwrap();
//! let run = Run { config: &train_config, data: TrainData { train: &train_loader, test: &test_loader }, device: &device, dir: dir.path() };
//! let outcome = train(model, &objective, &signatures, &run).unwrap();
//! assert_eq!(outcome.history.len(), 1);
//! assert!(dir.path().join("history.csv").exists());
//! ```
#![deny(missing_docs)]

mod config;
mod error;
mod eval;
mod objective;
mod train;

pub use config::TrainConfig;
pub use ipr_models::Scheme;
pub use error::SchemeError;
pub use eval::{EvalResult, correct_count, eval_form, evaluate, scalar};
pub use objective::{Objective, PassportObjective, StepOutput, cross_entropy};
pub use train::{EpochRow, Run, TrainData, TrainOutcome, optimizer, train, train_probed, train_step, write_history};
