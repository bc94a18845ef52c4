//! Batching: a [`Loader`] turns any [`ImageDataset`] into deterministic, prefetched
//! [`Batch`]es, optionally appending trigger-set images to every batch.
//!
//! Format: a batch is `f32` NCHW images plus labels. The sample order of an epoch depends
//! only on `(seed, epoch)`, the augmentation of a batch only on `(seed, epoch, batch index)`,
//! so results do not depend on thread timing. Batches are built on background threads
//! feeding bounded channels; dropping the iterator stops them. Trigger mixing follows the
//! reference trainer (<https://github.com/kamwoh/DeepIPR/blob/master/experiments/trainer.py>:
//! 2 trigger images concatenated to every training batch, cycling through the set).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::prelude::{Device, Int, Tensor, TensorData};
use burn_dataset::Dataset;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{DataError, ImageDataset, ImageSet, Transform};

/// How a [`Loader`] batches, orders and augments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderConfig {
    /// Dataset images per batch (trigger images come on top).
    pub batch_size: usize,
    /// Shuffle the order every epoch.
    pub shuffle: bool,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the order and of the augmentation.
    pub seed: u64,
    /// Apply the transform's training augmentation (crop, flip); otherwise pad + normalise.
    pub augment: bool,
    /// Background threads building batches (at least 1).
    pub workers: usize,
    /// Batches built ahead of the consumer, over all workers (at least 1).
    pub prefetch: usize,
}

impl LoaderConfig {
    /// Training: shuffled, augmented, last partial batch dropped (as the reference).
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            shuffle: true,
            drop_last: true,
            seed,
            augment: true,
            workers: 1,
            prefetch: 4,
        }
    }

    /// Evaluation: dataset order, no augmentation, every item once.
    pub fn eval(batch_size: usize) -> Self {
        Self {
            batch_size,
            shuffle: false,
            drop_last: false,
            seed: 0,
            augment: false,
            workers: 1,
            prefetch: 4,
        }
    }
}

/// Images and labels of one batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Normalised images, NCHW.
    pub images: Vec<f32>,
    /// Class of each image.
    pub labels: Vec<usize>,
    /// `[n, channels, height, width]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// The images as a float tensor `[n, c, h, w]` and the labels as an int tensor `[n]`.
    pub fn to_tensors(&self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let images = Tensor::from_data(TensorData::new(self.images.clone(), self.shape), device);
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::from_data(TensorData::new(labels, [self.labels.len()]), device);
        (images, labels)
    }
}

/// Batches of a dataset (or of a subset of its indices), epoch by epoch.
pub struct Loader {
    dataset: Arc<dyn ImageDataset>,
    indices: Vec<usize>,
    transform: Transform,
    config: LoaderConfig,
    triggers: Option<(Arc<ImageSet>, usize)>,
}

impl Loader {
    /// A loader over every item of `dataset`.
    pub fn new(
        dataset: Arc<dyn ImageDataset>,
        transform: Transform,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        if config.batch_size == 0 || config.workers == 0 || config.prefetch == 0 {
            return Err(DataError::Invalid(format!(
                "batch_size, workers and prefetch must be positive (got {config:?})"
            )));
        }
        let channels = dataset.shape()[0];
        if !transform.normalization.fits(channels) {
            return Err(DataError::Invalid(format!(
                "normalisation {:?} does not fit {channels}-channel images; give 1 or {channels} values",
                transform.normalization
            )));
        }
        let indices = (0..dataset.len()).collect();
        Ok(Self {
            dataset,
            indices,
            transform,
            config,
            triggers: None,
        })
    }

    /// Restricts the loader to `indices` (e.g. from [`first`](crate::first) or
    /// [`per_class`](crate::per_class)), visited in this order when not shuffling.
    pub fn with_indices(mut self, indices: Vec<usize>) -> Result<Self, DataError> {
        let len = self.dataset.len();
        if let Some(bad) = indices.iter().find(|&&i| i >= len) {
            return Err(DataError::Invalid(format!(
                "subset index {bad} is outside the dataset of {len} items"
            )));
        }
        self.indices = indices;
        Ok(self)
    }

    /// Appends `per_batch` images of `triggers` (evaluation transform, no augmentation) to
    /// every batch, cycling through the set from its start each epoch.
    pub fn with_triggers(
        mut self,
        triggers: ImageSet,
        per_batch: usize,
    ) -> Result<Self, DataError> {
        if per_batch == 0 || triggers.is_empty() {
            return Err(DataError::Invalid(
                "trigger mixing needs a non-empty set and per_batch > 0".into(),
            ));
        }
        if triggers.shape() != self.dataset.shape() {
            return Err(DataError::Invalid(format!(
                "trigger set {} has shape {:?} but the dataset has {:?}; read it with the dataset's shape",
                triggers.name(),
                triggers.shape(),
                self.dataset.shape()
            )));
        }
        self.triggers = Some((Arc::new(triggers), per_batch));
        Ok(self)
    }

    /// Dataset items visited per epoch (trigger images not counted).
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether an epoch visits no items.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.indices.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Shape `[c, h, w]` of each batch image after the transform.
    pub fn image_shape(&self) -> [usize; 3] {
        self.transform.output_shape(self.dataset.shape())
    }

    /// The batches of `epoch`.
    pub fn epoch(&self, epoch: u64) -> Batches {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from batch `first` on, without building the skipped ones;
    /// identical to `self.epoch(epoch).skip(first)`.
    pub fn epoch_from(&self, epoch: u64, first: usize) -> Batches {
        let mut order = self.indices.clone();
        if self.config.shuffle {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(&[
                ORDER,
                self.config.seed,
                epoch,
            ])));
        }
        let job = Arc::new(Job {
            dataset: Arc::clone(&self.dataset),
            order,
            transform: self.transform.clone(),
            config: self.config.clone(),
            triggers: self.triggers.clone(),
            epoch,
        });
        let batches = first.min(self.num_batches())..self.num_batches();
        let workers = self.config.workers.min(batches.len()).max(1);
        let depth = self.config.prefetch.div_ceil(workers);
        let (receivers, handles) = (0..workers)
            .map(|w| {
                let (tx, rx) = sync_channel(depth);
                let (job, mine) = (Arc::clone(&job), batches.clone().skip(w).step_by(workers));
                let handle = std::thread::spawn(move || {
                    for b in mine {
                        let batch = job.batch(b);
                        let failed = batch.is_err();
                        if tx.send(batch).is_err() || failed {
                            return;
                        }
                    }
                });
                (rx, Some(handle))
            })
            .unzip();
        Batches {
            receivers,
            handles,
            next: 0,
            remaining: batches.len(),
        }
    }
}

const ORDER: u64 = 1;
const AUGMENT: u64 = 2;

/// Mixes `parts` into one seed (SplitMix64 finaliser over a running state).
fn derive_seed(parts: &[u64]) -> u64 {
    parts.iter().fold(0x9E37_79B9_7F4A_7C15, |state: u64, &p| {
        let mut z = (state ^ p).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// Everything a worker thread needs to build any batch of one epoch.
struct Job {
    dataset: Arc<dyn ImageDataset>,
    order: Vec<usize>,
    transform: Transform,
    config: LoaderConfig,
    triggers: Option<(Arc<ImageSet>, usize)>,
    epoch: u64,
}

impl Job {
    fn batch(&self, b: usize) -> Result<Batch, DataError> {
        let bs = self.config.batch_size;
        let ids = &self.order[b * bs..((b + 1) * bs).min(self.order.len())];
        let per_batch = self.triggers.as_ref().map_or(0, |t| t.1);
        let in_shape = self.dataset.shape();
        let [c, h, w] = self.transform.output_shape(in_shape);
        let n = ids.len() + per_batch;
        let mut images = vec![0f32; n * c * h * w];
        let mut slots = images.chunks_exact_mut(c * h * w);
        let mut labels = Vec::with_capacity(n);
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(&[
            AUGMENT,
            self.config.seed,
            self.epoch,
            b as u64,
        ]));
        for (&index, slot) in ids.iter().zip(&mut slots) {
            let sample = self
                .dataset
                .get(index)
                .map_err(|source| DataError::Item { index, source })?;
            if sample.pixels.len() != in_shape.iter().product::<usize>() {
                return Err(DataError::Invalid(format!(
                    "item {index} has {} bytes, not the {in_shape:?} the dataset declares",
                    sample.pixels.len()
                )));
            }
            if self.config.augment {
                self.transform
                    .apply_train(&sample.pixels, in_shape, &mut rng, slot);
            } else {
                self.transform.apply_eval(&sample.pixels, in_shape, slot);
            }
            labels.push(sample.label);
        }
        if let Some((set, k)) = &self.triggers {
            for (j, slot) in slots.enumerate() {
                let t = (b * k + j) % set.len();
                self.transform.apply_eval(set.image(t), in_shape, slot);
                labels.push(set.labels()[t]);
            }
        }
        Ok(Batch {
            images,
            labels,
            shape: [n, c, h, w],
        })
    }
}

/// Iterator over the batches of one epoch, built ahead on background threads.
///
/// Stops after the first error; dropping it early stops and joins the threads.
pub struct Batches {
    receivers: Vec<Receiver<Result<Batch, DataError>>>,
    handles: Vec<Option<JoinHandle<()>>>,
    next: usize,
    remaining: usize,
}

impl Iterator for Batches {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let w = self.next % self.receivers.len();
        match self.receivers[w].recv() {
            Ok(Ok(batch)) => {
                self.next += 1;
                self.remaining -= 1;
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.remaining = 0;
                Some(Err(e))
            }
            Err(_) => {
                // The worker hung up without sending: it panicked. Re-raise its panic here.
                self.remaining = 0;
                match self.handles[w].take().map(JoinHandle::join) {
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    _ => None,
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the channels makes every worker's next send fail, so it returns.
        self.receivers.clear();
        for handle in self.handles.iter_mut().filter_map(Option::take) {
            // A worker panic already surfaced through `next`, or nobody asked for its batch.
            let _ = handle.join();
        }
    }
}
