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
/// The most pixels an image may have (4096×4096); a header saying more is corrupt.
const MAX_PIXELS: usize = 1 << 24;

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
    let name = format!("idx:{}:{}", dir.display(), split.as_str());
    parse(&name, Raw { path: &images_path, bytes: images }, Raw { path: &labels_path, bytes: labels }, &hint(dir))
}

/// One IDX file as read from disk: its path (named in errors) and its contents.
#[derive(Clone, Copy, Debug)]
pub struct IdxFile<'a> {
    /// Where the bytes came from.
    pub path: &'a Path,
    /// The file's raw or gzipped contents.
    pub bytes: &'a [u8],
}

/// An un-gzipped IDX file and its path.
struct Raw<'a> {
    path: &'a Path,
    bytes: Vec<u8>,
}

/// Parses an IDX image file and its label file (each raw or gzipped, detected by the bytes
/// `1f 8b`) into a set of 1×rows×cols images with 10 classes named `name`: what [`read_idx`]
/// does once it has read the two files.
///
/// # Errors
/// [`DataError::Format`] naming the file for a corrupt gzip stream, a truncated header, a bad
/// magic number, an image side of 0 or images of more than 4096×4096 pixels, a length other
/// than the header implies, a label count other than the image count, or a label of 10 or more.
pub fn parse_idx(name: &str, images: IdxFile<'_>, labels: IdxFile<'_>) -> Result<ImageSet, DataError> {
    let dir = images.path.parent().unwrap_or(Path::new("."));
    let hint = hint(dir);
    let images = Raw { path: images.path, bytes: gunzip(images.path, images.bytes.to_vec(), &hint)? };
    let labels = Raw { path: labels.path, bytes: gunzip(labels.path, labels.bytes.to_vec(), &hint)? };
    parse(name, images, labels, &hint)
}

/// The big-endian `u32` header fields of an IDX file, or an error for a truncated header.
fn header(file: &Raw<'_>, fields: usize, hint: &str) -> Result<Vec<usize>, DataError> {
    let bytes = &file.bytes;
    if bytes.len() < 4 * fields {
        return Err(DataError::format(file.path, format!("truncated header: {} bytes", bytes.len()), hint));
    }
    Ok(bytes[..4 * fields].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect())
}

/// An error unless `file` is exactly `expected` bytes long.
fn check_len(file: &Raw<'_>, expected: usize, hint: &str) -> Result<(), DataError> {
    if file.bytes.len() == expected {
        return Ok(());
    }
    Err(DataError::format(
        file.path,
        format!("length {} bytes, the header implies {expected} (truncated or corrupt)", file.bytes.len()),
        hint,
    ))
}

/// An error unless `magic` is `expected`.
fn check_magic(path: &Path, magic: usize, expected: u32, what: &str, hint: &str) -> Result<(), DataError> {
    if magic == expected as usize {
        return Ok(());
    }
    Err(DataError::format(path, format!("bad magic number {magic:#010x}, expected {expected:#010x} (IDX {what})"), hint))
}

/// Parses the two un-gzipped files.
fn parse(name: &str, images: Raw<'_>, labels: Raw<'_>, hint: &str) -> Result<ImageSet, DataError> {
    let h = header(&images, 4, hint)?;
    check_magic(images.path, h[0], IMAGES_MAGIC, "images", hint)?;
    let (count, rows, cols) = (h[1], h[2], h[3]);
    if rows == 0 || cols == 0 || rows.saturating_mul(cols) > MAX_PIXELS {
        let problem = format!(
            "the header says images of {rows}×{cols} pixels (a zero side, or more than {MAX_PIXELS} pixels): the header is corrupt"
        );
        return Err(DataError::format(images.path, problem, hint));
    }
    check_len(&images, count.saturating_mul(rows).saturating_mul(cols).saturating_add(16), hint)?;

    let h = header(&labels, 2, hint)?;
    check_magic(labels.path, h[0], LABELS_MAGIC, "labels", hint)?;
    if h[1] != count {
        let problem = format!("{} labels but {} has {count} images", h[1], images.path.display());
        return Err(DataError::format(labels.path, problem, hint));
    }
    check_len(&labels, 8 + count, hint)?;
    let label_bytes = &labels.bytes[8..];
    if let Some(bad) = label_bytes.iter().find(|&&l| usize::from(l) >= NUM_CLASSES) {
        return Err(DataError::format(labels.path, format!("label {bad} is not below {NUM_CLASSES}"), hint));
    }
    let labels = label_bytes.iter().map(|&l| usize::from(l)).collect();
    let mut pixels = images.bytes;
    pixels.drain(..16);
    ImageSet::new(name, pixels, labels, [1, rows, cols], NUM_CLASSES)
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
    let bytes = gunzip(&path, bytes, &hint(dir))?;
    Ok((path, bytes))
}

/// `bytes` un-gzipped when they start with `1f 8b`, else unchanged.
fn gunzip(path: &Path, bytes: Vec<u8>, hint: &str) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, format!("corrupt gzip stream ({e})"), hint))?;
    Ok(out)
}
