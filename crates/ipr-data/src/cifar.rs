//! CIFAR-10 and CIFAR-100 binary readers.
//!
//! Format (<https://www.cs.toronto.edu/~kriz/cifar.html>, "binary version"): fixed-size
//! records with no header. CIFAR-10 (`cifar-10-batches-bin/data_batch_1.bin` …
//! `data_batch_5.bin`, `test_batch.bin`): 1 label byte + 3072 pixel bytes. CIFAR-100
//! (`cifar-100-binary/train.bin`, `test.bin`): 1 coarse label byte + 1 fine label byte +
//! 3072 pixel bytes; the fine label (100 classes) is used. Pixels are 1024 red, then 1024
//! green, then 1024 blue bytes, each plane 32×32 row-major: already CHW.

use std::path::{Path, PathBuf};

use crate::{DataError, ImageSet, Split};

const PIXELS: usize = 3 * 32 * 32;

struct Layout {
    subfolder: &'static str,
    label_bytes: usize,
    num_classes: usize,
    name: &'static str,
}

const CIFAR10: Layout = Layout {
    subfolder: "cifar-10-batches-bin",
    label_bytes: 1,
    num_classes: 10,
    name: "cifar10",
};
const CIFAR100: Layout = Layout {
    subfolder: "cifar-100-binary",
    label_bytes: 2,
    num_classes: 100,
    name: "cifar100",
};

/// Reads one split of CIFAR-10 from `root` or `root/cifar-10-batches-bin`.
pub fn read_cifar10(root: impl AsRef<Path>, split: Split) -> Result<ImageSet, DataError> {
    let files: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    };
    read(root.as_ref(), &CIFAR10, split, &files)
}

/// Reads one split of CIFAR-100 (fine labels) from `root` or `root/cifar-100-binary`.
pub fn read_cifar100(root: impl AsRef<Path>, split: Split) -> Result<ImageSet, DataError> {
    let file = match split {
        Split::Train => "train.bin",
        Split::Test => "test.bin",
    };
    read(root.as_ref(), &CIFAR100, split, &[file.into()])
}

fn read(
    root: &Path,
    layout: &Layout,
    split: Split,
    files: &[String],
) -> Result<ImageSet, DataError> {
    let sub = root.join(layout.subfolder);
    let dir: PathBuf = if sub.is_dir() {
        sub
    } else {
        root.to_path_buf()
    };
    let hint = format!(
        "expected {} in {} or {}; download the binary version from \
         https://www.cs.toronto.edu/~kriz/cifar.html on a machine with internet and unpack it under {}",
        files.join(", "),
        root.display(),
        root.join(layout.subfolder).display(),
        root.display()
    );
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for file in files {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e, &hint))?;
        parse_records(layout, &path, &bytes, &hint, &mut pixels, &mut labels)?;
    }
    let name = format!("{}:{}:{}", layout.name, dir.display(), split.as_str());
    ImageSet::new(name, pixels, labels, [3, 32, 32], layout.num_classes)
}

/// Parses one CIFAR-10 batch file (`data_batch_N.bin`, `test_batch.bin`) read from `path`
/// (named in errors): 3×32×32 images with 10 classes.
///
/// # Errors
/// [`DataError::Format`] naming the file for a length that is not a positive multiple of the
/// 3073-byte record, or a label of 10 or more.
pub fn parse_cifar10(path: &Path, bytes: &[u8]) -> Result<ImageSet, DataError> {
    parse_file(&CIFAR10, path, bytes)
}

/// Parses one CIFAR-100 file (`train.bin`, `test.bin`) read from `path` (named in errors):
/// 3×32×32 images with their fine labels, 100 classes.
///
/// # Errors
/// [`DataError::Format`] naming the file for a length that is not a positive multiple of the
/// 3074-byte record, or a fine label of 100 or more.
pub fn parse_cifar100(path: &Path, bytes: &[u8]) -> Result<ImageSet, DataError> {
    parse_file(&CIFAR100, path, bytes)
}

fn parse_file(layout: &Layout, path: &Path, bytes: &[u8]) -> Result<ImageSet, DataError> {
    let hint = format!(
        "download the binary version of {} from https://www.cs.toronto.edu/~kriz/cifar.html on a machine with internet and unpack it again",
        layout.name
    );
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    parse_records(layout, path, bytes, &hint, &mut pixels, &mut labels)?;
    ImageSet::new(format!("{}:{}", layout.name, path.display()), pixels, labels, [3, 32, 32], layout.num_classes)
}

/// Appends the records of one file to `pixels` and `labels`.
fn parse_records(
    layout: &Layout,
    path: &Path,
    bytes: &[u8],
    hint: &str,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<usize>,
) -> Result<(), DataError> {
    let record = layout.label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::format(
            path,
            format!("length {} bytes is not a positive multiple of the {record}-byte record", bytes.len()),
            hint,
        ));
    }
    pixels.reserve(bytes.len() / record * PIXELS);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[layout.label_bytes - 1] as usize;
        if label >= layout.num_classes {
            return Err(DataError::format(
                path,
                format!("record {i} has label {label}, not below {}", layout.num_classes),
                hint,
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[layout.label_bytes..]);
    }
    Ok(())
}
