//! Building the datasets and loaders a plan's `[data]` section names.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_verify::{BatchError, LabelledBatches};
use ipr_data::{
    ImageDataset, ImageFolder, ImageOptions, ImageSet, Loader, LoaderConfig, Normalization, Split,
    SyntheticConfig, Transform, first, per_class, read_cifar10, read_cifar100, read_idx, read_trigger_set,
    synthetic,
};

use crate::sections::{DataSection, DatasetKind};

/// Batches of an `ipr-data` loader, for the verifier.
pub struct Batches<'a>(pub &'a Loader);

impl LabelledBatches for Batches<'_> {
    fn for_each_batch(&self, device: &Device, f: &mut dyn FnMut(Tensor<4>, Tensor<1, Int>)) -> Result<(), BatchError> {
        for batch in self.0.epoch(0) {
            let (images, labels) = batch?.to_tensors(device);
            f(images, labels);
        }
        Ok(())
    }
}

/// Images per passport sample (spec §4: `shuffle` mixes 20 images).
pub const PASSPORT_SAMPLE: usize = 20;

/// Images per evaluation batch. At 256, the half-width AlexNet's first activation (33 MB) is past
/// glibc's largest mmap threshold (32 MB), so every batch mapped, faulted in and unmapped fresh
/// pages; at 64 every buffer is reused from the heap (the quickstart's verify stage, four
/// evaluations of the 10 000 test images: 36 s at 256, 28 s at 128, 26 s at 64).
const EVAL_BATCH: usize = 64;

/// The train and test splits of a plan, read once and shared by every stage.
#[derive(Clone)]
pub struct Datasets {
    train: Arc<dyn ImageDataset>,
    test: Arc<dyn ImageDataset>,
    train_indices: Vec<usize>,
    test_indices: Vec<usize>,
    transform: Transform,
    workers: usize,
    /// Classes.
    pub num_classes: usize,
    /// `[c, h, w]` of a batch image.
    pub shape: [usize; 3],
}

impl Datasets {
    /// Reads the splits the section names; a dataset missing from its folder is an error that
    /// says how to fetch it.
    pub fn load(section: &DataSection, seed: u64) -> Result<Self> {
        Self::read(section, seed).map_err(|e| {
            let missing = matches!(e.downcast_ref::<ipr_data::DataError>(), Some(ipr_data::DataError::Missing { .. }));
            match (missing, section.dataset.fetch_name(), &section.root) {
                (true, Some(name), Some(root)) => {
                    let at = if section.dataset.fetch_root(&crate::project_root()).as_ref() == Some(root) {
                        String::new()
                    } else {
                        format!(" --root {}", root.display())
                    };
                    e.context(format!("the {name} files are missing; fetch them with `cargo xtask data fetch {name}{at}`"))
                }
                _ => e,
            }
        })
    }

    /// The per-channel normalisation the model's inputs get: what a user of an exported model
    /// applies to reproduce its accuracy.
    pub fn normalization(&self) -> &Normalization {
        &self.transform.normalization
    }

    fn read(section: &DataSection, seed: u64) -> Result<Self> {
        // `Plan::parse` resolves every dataset's root, defaults included.
        let root = || section.root.clone().context("[data] root is not set; name the dataset's folder with root = \"…\"");
        let (train, test, mut transform): (Arc<dyn ImageDataset>, Arc<dyn ImageDataset>, Transform) =
            match section.dataset {
                DatasetKind::FashionMnist | DatasetKind::Mnist => {
                    let dir = root()?;
                    let transform = if section.dataset == DatasetKind::Mnist {
                        Transform { pad_to: Some(32), crop_padding: 4, hflip: false, normalization: Normalization::mnist() }
                    } else {
                        Transform::fashion_mnist()
                    };
                    (Arc::new(read_idx(&dir, Split::Train)?), Arc::new(read_idx(&dir, Split::Test)?), transform)
                }
                DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
                    let read = if section.dataset == DatasetKind::Cifar10 { read_cifar10 } else { read_cifar100 };
                    let dir = root()?;
                    (Arc::new(read(&dir, Split::Train)?), Arc::new(read(&dir, Split::Test)?), Transform::cifar())
                }
                DatasetKind::ImageFolder => {
                    let dir = section.root.clone().context("[data] dataset = \"image-folder\" needs root = \"<folder with train/ and test/>\"")?;
                    let open = |split: &str| {
                        ImageFolder::open(dir.join(split), ImageOptions::imagenet())
                            .with_context(|| format!("image-folder data needs `{}/{split}/<class>/<images>`", dir.display()))
                    };
                    let transform = Transform { pad_to: None, crop_padding: 0, hflip: true, normalization: Normalization::imagenet() };
                    (Arc::new(open("train")?), Arc::new(open("test")?), transform)
                }
                DatasetKind::Synthetic => {
                    let make = |n, s| synthetic(&SyntheticConfig { n, height: 32, width: 32, num_classes: 4, seed: s, ..SyntheticConfig::default() });
                    let transform = Transform::new(Normalization { mean: vec![0.5], std: vec![0.25] });
                    (Arc::new(make(512, seed)?), Arc::new(make(256, seed)?), transform)
                }
            };
        if !section.augment {
            transform.crop_padding = 0;
            transform.hflip = false;
        }
        let train_indices = match (section.train_subset, section.train_per_class) {
            (Some(_), Some(_)) => bail!("[data] set train_subset or train_per_class, not both"),
            (Some(n), None) => first(train.as_ref(), n),
            (None, Some(n)) => per_class(train.as_ref(), n),
            (None, None) => (0..train.len()).collect(),
        };
        let test_indices = match (section.test_subset, section.test_per_class) {
            (Some(_), Some(_)) => bail!("[data] set test_subset or test_per_class, not both"),
            (Some(n), None) => first(test.as_ref(), n),
            (None, Some(n)) => per_class(test.as_ref(), n),
            (None, None) => (0..test.len()).collect(),
        };
        if train_indices.is_empty() || test_indices.is_empty() {
            bail!("[data] the subsets leave no training or no test images; raise train_subset / test_subset");
        }
        let shape = transform.output_shape(train.shape());
        let num_classes = train.num_classes();
        Ok(Self { train, test, train_indices, test_indices, transform, workers: section.workers.max(1), num_classes, shape })
    }

    /// The same data limited to `classes` in both splits, labels unchanged (a class split for
    /// transfer learning).
    pub fn only_classes(&self, classes: &[usize]) -> Result<Self> {
        if let Some(c) = classes.iter().find(|&&c| c >= self.num_classes) {
            bail!("class {c} does not exist: the dataset has classes 0 to {}", self.num_classes - 1);
        }
        let keep = |set: &Arc<dyn ImageDataset>, indices: &[usize]| -> Vec<usize> {
            indices.iter().copied().filter(|&i| classes.contains(&set.labels()[i])).collect()
        };
        let (train_indices, test_indices) = (keep(&self.train, &self.train_indices), keep(&self.test, &self.test_indices));
        if train_indices.is_empty() || test_indices.is_empty() {
            bail!("classes {classes:?} leave no training or no test image");
        }
        Ok(Self { train_indices, test_indices, ..self.clone() })
    }

    /// The same data with a random `fraction` of the training images (at least one), drawn
    /// from `seed`; the test split is unchanged.
    pub fn train_fraction(&self, fraction: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let n = ((fraction * self.train_indices.len() as f64).round() as usize).clamp(1, self.train_indices.len());
        let mut indices = self.train_indices.clone();
        indices.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        indices.truncate(n);
        indices.sort_unstable();
        Self { train_indices: indices, ..self.clone() }
    }

    /// Training images per epoch.
    pub fn train_len(&self) -> usize {
        self.train_indices.len()
    }

    /// Test images.
    pub fn test_len(&self) -> usize {
        self.test_indices.len()
    }

    /// Shuffled, augmented training batches.
    pub fn train_loader(&self, batch_size: usize, seed: u64) -> Result<Loader> {
        let config = LoaderConfig { workers: self.workers, ..LoaderConfig::train(batch_size, seed) };
        Ok(Loader::new(self.train.clone(), self.transform.clone(), config)?.with_indices(self.train_indices.clone())?)
    }

    /// `[c, h, w]` of a stored image, before padding: the shape a trigger set must have.
    pub fn raw_shape(&self) -> [usize; 3] {
        self.train.shape()
    }

    /// Shuffled, augmented training batches, each with `per_batch` trigger images appended
    /// (cycling through the set, as the reference does).
    pub fn train_loader_with_triggers(&self, batch_size: usize, seed: u64, triggers: ImageSet, per_batch: usize) -> Result<Loader> {
        Ok(self.train_loader(batch_size, seed)?.with_triggers(triggers, per_batch)?)
    }

    /// Reads a trigger set in the Adi et al. format at the dataset's image shape (resized and
    /// centre-cropped to its side, in its channels).
    pub fn read_triggers(&self, dir: &std::path::Path) -> Result<ImageSet> {
        let [c, side, _] = self.raw_shape();
        let options = ImageOptions { resize: Some(side as u32), crop: side as u32, channels: c };
        read_trigger_set(dir, &options, self.num_classes)
            .with_context(|| format!("reading the trigger set `{}` named by `trigger_set` in the plan", dir.display()))
    }

    /// Batches of `set` in order, with the dataset's test transform (e.g. a trigger set).
    pub fn loader_for(&self, set: ImageSet) -> Result<Loader> {
        let config = LoaderConfig { workers: self.workers, ..LoaderConfig::eval(EVAL_BATCH) };
        Ok(Loader::new(Arc::new(set), self.transform.clone(), config)?)
    }

    /// Test batches in order.
    pub fn test_loader(&self) -> Result<Loader> {
        let config = LoaderConfig { workers: self.workers, ..LoaderConfig::eval(EVAL_BATCH) };
        Ok(Loader::new(self.test.clone(), self.transform.clone(), config)?.with_indices(self.test_indices.clone())?)
    }

    /// Random validation images, [`PASSPORT_SAMPLE`] per batch, for passport sampling: each
    /// epoch is a fresh shuffle, so batches 0 and 1 of an epoch are two independent samples.
    pub fn passport_samples(&self, seed: u64) -> Result<Loader> {
        self.samples_of(self.test.clone(), seed)
    }

    /// [`Datasets::passport_samples`] drawn from `set` (e.g. a trigger set).
    pub fn passport_samples_from(&self, set: ImageSet, seed: u64) -> Result<Loader> {
        self.samples_of(Arc::new(set), seed)
    }

    fn samples_of(&self, set: Arc<dyn ImageDataset>, seed: u64) -> Result<Loader> {
        let config = LoaderConfig {
            shuffle: true,
            drop_last: true,
            seed,
            augment: false,
            ..LoaderConfig::eval(PASSPORT_SAMPLE)
        };
        Ok(Loader::new(set, self.transform.clone(), config)?)
    }
}
