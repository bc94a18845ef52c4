//! Core types: [`Sample`], the in-memory [`ImageSet`], the [`ImageDataset`] trait every
//! dataset implements, and the index subsets [`first`] and [`per_class`].

use burn_dataset::{Dataset, DatasetError};

use crate::DataError;

/// Which half of a dataset to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images.
    Train,
    /// The held-out test images.
    Test,
}

impl Split {
    /// `"train"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "test",
        }
    }
}

/// One image and its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// `u8` pixels in CHW order (`channels * height * width` bytes).
    pub pixels: Vec<u8>,
    /// Class index in `0..num_classes`.
    pub label: usize,
}

/// A labelled image dataset with a fixed image shape.
///
/// `labels()` gives every label without decoding any image, so per-class subsets
/// and class counts are cheap even for lazily decoded datasets.
pub trait ImageDataset: Dataset<Sample> {
    /// Image shape `[channels, height, width]`.
    fn shape(&self) -> [usize; 3];
    /// Number of classes; every label is below it.
    fn num_classes(&self) -> usize;
    /// The label of every item, in index order.
    fn labels(&self) -> &[usize];
}

/// An in-memory dataset of `u8` images in CHW order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    name: String,
    pixels: Vec<u8>,
    labels: Vec<usize>,
    shape: [usize; 3],
    num_classes: usize,
}

impl ImageSet {
    /// Builds a set from `pixels` (N·C·H·W bytes, image after image, each CHW) and
    /// `labels` (N entries, each below `num_classes`).
    pub fn new(
        name: impl Into<String>,
        pixels: Vec<u8>,
        labels: Vec<usize>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Result<Self, DataError> {
        let name = name.into();
        let size: usize = shape.iter().product();
        if size == 0 {
            return Err(DataError::Invalid(format!(
                "{name}: image shape {shape:?} has a zero side"
            )));
        }
        if pixels.len() != labels.len() * size {
            return Err(DataError::Invalid(format!(
                "{name}: {} pixel bytes for {} labels of shape {shape:?}; expected {}",
                pixels.len(),
                labels.len(),
                labels.len() * size
            )));
        }
        if let Some((i, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= num_classes) {
            return Err(DataError::Invalid(format!(
                "{name}: label {label} of item {i} is not below the class count {num_classes}"
            )));
        }
        Ok(Self {
            name,
            pixels,
            labels,
            shape,
            num_classes,
        })
    }

    /// A short description of where the set came from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CHW pixels of image `index`.
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.image_size();
        &self.pixels[index * size..(index + 1) * size]
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    fn image_size(&self) -> usize {
        self.shape.iter().product()
    }
}

impl Dataset<Sample> for ImageSet {
    fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        Ok(Sample {
            pixels: self.image(index).to_vec(),
            label: self.labels[index],
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl ImageDataset for ImageSet {
    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn labels(&self) -> &[usize] {
        &self.labels
    }
}

/// Indices of the first `n` items (all of them if the dataset is smaller).
pub fn first<D: ImageDataset + ?Sized>(dataset: &D, n: usize) -> Vec<usize> {
    (0..n.min(dataset.len())).collect()
}

/// Indices of the first `n` items of every class, in the dataset's order.
///
/// A class with fewer than `n` items contributes all it has.
pub fn per_class<D: ImageDataset + ?Sized>(dataset: &D, n: usize) -> Vec<usize> {
    let mut taken = vec![0usize; dataset.num_classes()];
    let mut indices = Vec::new();
    for (i, &label) in dataset.labels().iter().enumerate() {
        if taken[label] < n {
            taken[label] += 1;
            indices.push(i);
        }
    }
    indices
}
