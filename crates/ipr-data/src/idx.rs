//! IDX reader for MNIST and Fashion-MNIST.
//!
//! Format (<http://yann.lecun.com/exdb/mnist/>, also used by
//! <https://github.com/zalandoresearch/fashion-mnist>): big-endian `u32` header fields.
//! Image files start with magic `0x00000803`, then count, rows, cols, then `count·rows·cols`
//! bytes (row-major, one channel). Label files start with magic `0x00000801`, then count,
//! then `count` label bytes. Files may be raw or gzipped (detected by the bytes `1f 8b`),
//! named with or without a `.gz` suffix. Debian's `dataset-fashion-mnist` package installs
//! the gzipped files under [`FASHION_MNIST_DIR`].

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, ImageSet, Split};

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;
const NUM_CLASSES: usize = 10;

fn hint(dir: &Path) -> String {
    format!(
        "expected train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
         t10k-labels-idx1-ubyte (each raw or with a .gz suffix) in {}; get Fashion-MNIST with \
         `apt-get install dataset-fashion-mnist` (installs into {FASHION_MNIST_DIR}) or download \
         the files from https://github.com/zalandoresearch/fashion-mnist (MNIST: \
         http://yann.lecun.com/exdb/mnist/) on a machine with internet and copy them there",
        dir.display()
    )
}

/// Reads one split of an IDX dataset (MNIST, Fashion-MNIST) from `dir` as 1×rows×cols
/// images (1×28×28 for both) with 10 classes.
pub fn read_idx(dir: impl AsRef<Path>, split: Split) -> Result<ImageSet, DataError> {
    let dir = dir.as_ref();
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let (images_path, images) = read_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (labels_path, labels) = read_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let hint = hint(dir);

    let header = |bytes: &[u8], path: &Path, fields: usize| -> Result<Vec<usize>, DataError> {
        if bytes.len() < 4 * fields {
            return Err(DataError::format(
                path,
                format!("truncated header: {} bytes", bytes.len()),
                &hint,
            ));
        }
        Ok((0..fields)
            .map(|i| {
                u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize
            })
            .collect())
    };
    let check_len = |bytes: &[u8], path: &Path, expected: usize| {
        if bytes.len() == expected {
            Ok(())
        } else {
            Err(DataError::format(
                path,
                format!(
                    "length {} bytes, the header implies {expected} (truncated or corrupt)",
                    bytes.len()
                ),
                &hint,
            ))
        }
    };

    let h = header(&images, &images_path, 4)?;
    if h[0] != IMAGES_MAGIC as usize {
        return Err(DataError::format(
            &images_path,
            format!(
                "bad magic number {:#010x}, expected {IMAGES_MAGIC:#010x} (IDX images)",
                h[0]
            ),
            &hint,
        ));
    }
    let (count, rows, cols) = (h[1], h[2], h[3]);
    check_len(
        &images,
        &images_path,
        count
            .saturating_mul(rows)
            .saturating_mul(cols)
            .saturating_add(16),
    )?;

    let h = header(&labels, &labels_path, 2)?;
    if h[0] != LABELS_MAGIC as usize {
        return Err(DataError::format(
            &labels_path,
            format!(
                "bad magic number {:#010x}, expected {LABELS_MAGIC:#010x} (IDX labels)",
                h[0]
            ),
            &hint,
        ));
    }
    if h[1] != count {
        return Err(DataError::format(
            &labels_path,
            format!(
                "{} labels but {} has {count} images",
                h[1],
                images_path.display()
            ),
            &hint,
        ));
    }
    check_len(&labels, &labels_path, 8 + count)?;
    let labels: Vec<usize> = labels[8..].iter().map(|&l| l as usize).collect();
    if let Some(bad) = labels.iter().find(|&&l| l >= NUM_CLASSES) {
        return Err(DataError::format(
            &labels_path,
            format!("label {bad} is not below {NUM_CLASSES}"),
            &hint,
        ));
    }

    let name = format!("idx:{}:{}", dir.display(), split.as_str());
    let mut images = images;
    images.drain(..16);
    ImageSet::new(name, images, labels, [1, rows, cols], NUM_CLASSES)
}

/// Reads `dir/base`, else `dir/base.gz`, un-gzipping when the content starts with `1f 8b`.
fn read_maybe_gz(dir: &Path, base: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let raw = dir.join(base);
    let path = if raw.exists() {
        raw
    } else {
        dir.join(format!("{base}.gz"))
    };
    if !path.exists() {
        return Err(DataError::Missing {
            path: dir.join(base),
            hint: hint(dir),
        });
    }
    let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e, &hint(dir)))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok((path, bytes));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(&path, format!("corrupt gzip stream ({e})"), &hint(dir)))?;
    Ok((path, out))
}
