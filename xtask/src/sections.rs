//! The plan sections every part of the tool reads: `[data]` (which dataset, where, which
//! subsets) and `[model]` (architecture, norm, width, layout).

use std::path::{Path, PathBuf};

use ipr_models::Arch;
use ipr_passport::NormKind;
use serde::{Deserialize, Serialize};

/// The datasets a plan can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST (IDX files).
    FashionMnist,
    /// MNIST (IDX files).
    Mnist,
    /// CIFAR-10 (binary version).
    Cifar10,
    /// CIFAR-100 (binary version, fine labels).
    Cifar100,
    /// `root/train/<class>/…` and `root/test/<class>/…` image folders.
    ImageFolder,
    /// A seeded synthetic task, for tests.
    Synthetic,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Which dataset.
    pub dataset: DatasetKind,
    /// Where its files are (a default exists for Fashion-MNIST and CIFAR).
    pub root: Option<PathBuf>,
    /// Train on the first N training images only.
    pub train_subset: Option<usize>,
    /// Train on the first N images of each class only.
    pub train_per_class: Option<usize>,
    /// Test on the first N test images only.
    pub test_subset: Option<usize>,
    /// Test on the first N images of each class only.
    pub test_per_class: Option<usize>,
    /// Training augmentation (random crop with padding, flip where it applies).
    #[serde(default = "yes")]
    pub augment: bool,
    /// Threads building batches.
    #[serde(default = "one")]
    pub workers: usize,
}

impl DataSection {
    /// A section reading the whole test split of `dataset` from `root` (or its default folder).
    pub fn new(dataset: DatasetKind, root: Option<PathBuf>, project: &Path) -> Self {
        let mut section = Self {
            dataset,
            root,
            train_subset: None,
            train_per_class: None,
            test_subset: None,
            test_per_class: None,
            augment: true,
            workers: 1,
        };
        section.resolve_root(project);
        section
    }

    /// Makes `root` absolute (relative to `project`), or sets the dataset's default folder.
    pub(crate) fn resolve_root(&mut self, project: &Path) {
        self.root = match self.root.take() {
            Some(r) if r.is_relative() => Some(project.join(r)),
            Some(r) => Some(r),
            None => self.dataset.default_root(project),
        };
    }
}

impl DatasetKind {
    /// The name `cargo xtask data fetch` takes, for the datasets it can download.
    pub fn fetch_name(self) -> Option<&'static str> {
        match self {
            DatasetKind::FashionMnist => Some("fashion-mnist"),
            DatasetKind::Mnist => Some("mnist"),
            DatasetKind::Cifar10 => Some("cifar10"),
            DatasetKind::Cifar100 => Some("cifar100"),
            DatasetKind::ImageFolder | DatasetKind::Synthetic => None,
        }
    }

    /// Where `cargo xtask data fetch` puts the dataset: `data/<name>` in the project.
    pub fn fetch_root(self, project: &Path) -> Option<PathBuf> {
        self.fetch_name().map(|n| project.join("data").join(n))
    }

    /// The folder a plan reads the dataset from when `[data] root` is not set: Debian's
    /// Fashion-MNIST when it is installed, else where `fetch` puts each dataset.
    pub fn default_root(self, project: &Path) -> Option<PathBuf> {
        let system = Path::new(ipr_data::FASHION_MNIST_DIR);
        match self {
            DatasetKind::FashionMnist if system.is_dir() => Some(system.to_path_buf()),
            other => other.fetch_root(project),
        }
    }
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Architecture.
    pub arch: Arch,
    /// Normalisation of every conv block.
    #[serde(default)]
    pub norm: NormKind,
    /// Channel multiplier.
    #[serde(default = "unit")]
    pub width: f64,
    /// Passport layout file (default `configs/passport/<arch>.toml`).
    pub passport: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn unit() -> f64 {
    1.0
}
