//! The crate's one error type: every message names the file, what is wrong, and the fix.

use std::path::PathBuf;

/// Everything that can go wrong while reading a dataset or building batches.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder the reader needs does not exist.
    #[error("{}: not found; {hint}", path.display())]
    Missing {
        /// The file or folder that was looked for.
        path: PathBuf,
        /// Which files are expected and how to get them.
        hint: String,
    },
    /// A file exists but could not be read.
    #[error("{}: cannot read ({source}); check that the file is readable", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A file's contents do not match its format.
    #[error("{}: {problem}; {hint}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        hint: String,
    },
    /// An image file could not be decoded.
    #[error("{}: cannot decode image ({source}); replace or delete the file", path.display())]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// A configuration or argument does not fit the data (shapes, sizes, indices).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A dataset failed to return one of its items.
    #[error("dataset item {index}: {source}")]
    Item {
        /// The index that was requested.
        index: usize,
        /// The dataset's error.
        source: burn_dataset::DatasetError,
    },
}

impl DataError {
    /// Builds an [`DataError::Io`] error for `path`, or [`DataError::Missing`] when the
    /// file does not exist (with `hint` telling where to get it).
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error, hint: &str) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::Missing {
                path,
                hint: hint.to_owned(),
            }
        } else {
            Self::Io { path, source }
        }
    }

    /// Builds a [`DataError::Format`] error.
    pub(crate) fn format(path: impl Into<PathBuf>, problem: impl Into<String>, hint: &str) -> Self {
        Self::Format {
            path: path.into(),
            problem: problem.into(),
            hint: hint.to_owned(),
        }
    }
}
