//! Datasets and trigger sets turned into training and evaluation batches for the DeepIPR
//! reproduction: readers for IDX (MNIST, Fashion-MNIST), CIFAR-10/100 binaries, image
//! folders (Caltech, ImageNet) and Adi et al. trigger sets; subsets for small CPU budgets;
//! the reference augmentation and normalisation; and a deterministic, prefetching [`Loader`]
//! whose batches become burn tensors with [`Batch::to_tensors`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, per_class, synthetic};
//!
//! let set = synthetic(&SyntheticConfig { n: 100, ..SyntheticConfig::default() })?;
//! let subset = per_class(&set, 3); // 3 images of each of the 10 classes
//! let transform = Transform { pad_to: Some(32), ..Transform::new(Normalization::fashion_mnist()) };
//! let loader = Loader::new(Arc::new(set), transform, LoaderConfig::train(8, 42))?.with_indices(subset)?;
//! assert_eq!(loader.num_batches(), 3); // 30 images, last partial batch dropped
//!
//! let batch = loader.epoch(0).next().expect("one batch")?;
//! assert_eq!(batch.shape, [8, 1, 32, 32]);
//! assert_eq!(batch.labels.len(), 8);
//! let (images, labels) = batch.to_tensors(&burn::prelude::Device::default());
//! assert_eq!(images.dims(), [8, 1, 32, 32]);
//! assert_eq!(labels.dims(), [8]);
//! # Ok::<(), ipr_data::DataError>(())
//! ```
#![deny(missing_docs)]

mod cifar;
mod dataset;
mod error;
mod folder;
mod idx;
mod loader;
mod synthetic;
mod transform;
mod trigger;

/// Re-exported so callers can use `len`, `get` and `iter` without depending on burn-dataset.
pub use burn_dataset::Dataset;
pub use cifar::{parse_cifar10, parse_cifar100, read_cifar10, read_cifar100};
pub use dataset::{ImageDataset, ImageSet, Sample, Split, first, per_class};
pub use error::DataError;
pub use folder::{ImageFolder, ImageOptions, decode_image};
pub use idx::{FASHION_MNIST_DIR, IdxFile, parse_idx, read_idx};
pub use loader::{Batch, Batches, Loader, LoaderConfig};
pub use synthetic::{SyntheticConfig, synthetic};
pub use transform::{Normalization, Transform, crop_with_padding, hflip, pad_to};
pub use trigger::{
    TRIGGER_LABELS_FILE, TriggerSetConfig, generate_trigger_set, parse_trigger_labels, read_trigger_set, write_trigger_set,
};
