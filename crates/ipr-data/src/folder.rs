//! Image-folder datasets (Caltech-101/256, ImageNet style), decoded lazily.
//!
//! Layout (as torchvision's `ImageFolder`,
//! <https://pytorch.org/vision/stable/generated/torchvision.datasets.ImageFolder.html>):
//! `root/<class name>/<image>.{jpg,jpeg,png}`; class folders sorted by name give the label
//! indices, files inside a class are taken in name order, other files are skipped. Each
//! image is decoded on `get`, converted to RGB or gray, resized so its shorter side is
//! `resize`, centre-cropped to `crop`×`crop` and returned CHW.
//! burn-dataset's own `ImageFolderDataset` needs its `vision` feature, which pulls an HTTP
//! client and an async runtime into the build, so it is deliberately not used.

use std::path::{Path, PathBuf};

use burn_dataset::{Dataset, DatasetError};
use image::{DynamicImage, ImageFormat, ImageReader, imageops::FilterType};
use serde::{Deserialize, Serialize};

use crate::{DataError, ImageDataset, Sample};

/// How an image file becomes a fixed-size CHW array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOptions {
    /// Resize so the shorter side has this length (aspect ratio kept); `None` keeps the size.
    pub resize: Option<u32>,
    /// Side of the square centre crop taken after resizing.
    pub crop: u32,
    /// 3 for RGB, 1 for gray.
    pub channels: usize,
}

impl ImageOptions {
    /// ImageNet evaluation recipe: RGB, shorter side 256, centre crop 224.
    pub fn imagenet() -> Self {
        Self {
            resize: Some(256),
            crop: 224,
            channels: 3,
        }
    }

    /// The output shape `[channels, crop, crop]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.crop as usize, self.crop as usize]
    }

    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if !matches!(self.channels, 1 | 3) {
            return Err(DataError::Invalid(format!(
                "image channels must be 1 or 3, not {}",
                self.channels
            )));
        }
        if self.crop == 0 || self.resize.is_some_and(|r| r < self.crop) {
            return Err(DataError::Invalid(format!(
                "crop {} must be positive and not above resize {:?}",
                self.crop, self.resize
            )));
        }
        Ok(())
    }
}

/// Whether `path` has an image extension this crate decodes (jpg, jpeg, png).
pub(crate) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes `path` and applies `options`, returning CHW bytes.
pub(crate) fn load_image(path: &Path, options: &ImageOptions) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        DataError::io(path, e, "the file was listed but is gone; rescan the folder")
    })?;
    decode(path, &bytes, options)
}

/// Decodes an image file's bytes (JPEG or PNG, read from `path`, which is named in errors) and
/// applies `options` (gray or RGB, resize of the shorter side, centre crop), returning the CHW
/// bytes of one `options.shape()` image: what the trigger-set and image-folder readers do with
/// each file.
///
/// # Errors
/// [`DataError::Invalid`] for invalid `options`; [`DataError::Decode`] for bytes that do not
/// decode or claim a picture of more than 16384 pixels a side or 128 MiB; [`DataError::Format`]
/// for an image smaller than the crop, or one that resized would have more than 2^25 pixels.
pub fn decode_image(path: &Path, bytes: &[u8], options: &ImageOptions) -> Result<Vec<u8>, DataError> {
    options.validate()?;
    decode(path, bytes, options)
}

fn decode(path: &Path, bytes: &[u8], options: &ImageOptions) -> Result<Vec<u8>, DataError> {
    let decode = |source| DataError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes));
    if let Ok(format) = ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    reader.limits(decode_limits());
    let img = reader
        .with_guessed_format()
        .map_err(|e| decode(image::ImageError::IoError(e)))?
        .decode()
        .map_err(decode)?;
    let img = if options.channels == 1 {
        DynamicImage::ImageLuma8(img.to_luma8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let img = match options.resize {
        Some(short) => {
            let (w, h) = (img.width(), img.height());
            let (nw, nh) = resized(w, h, short).ok_or_else(|| {
                DataError::format(
                    path,
                    format!(
                        "image is {w}x{h}: with its shorter side resized to {short} it would have more than \
                         {MAX_RESIZED_PIXELS} pixels"
                    ),
                    "use images whose longer side is at most a few hundred times the shorter one",
                )
            })?;
            img.resize_exact(nw, nh, FilterType::Triangle)
        }
        None => img,
    };
    let (w, h, crop) = (img.width(), img.height(), options.crop);
    if w < crop || h < crop {
        return Err(DataError::format(
            path,
            format!("image is {w}x{h}, smaller than the {crop}x{crop} centre crop"),
            "set `resize` to at least the crop size or use larger images",
        ));
    }
    let hwc = img
        .crop_imm((w - crop) / 2, (h - crop) / 2, crop, crop)
        .into_bytes();
    let (c, plane) = (options.channels, (crop * crop) as usize);
    let mut chw = vec![0u8; hwc.len()];
    for (p, px) in hwc.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            chw[ch * plane + p] = v;
        }
    }
    Ok(chw)
}

/// What a decoder may allocate: a header is free to claim any size, and a few hundred bytes of
/// JPEG claiming 65500×1272 pixels otherwise cost 250 MB and seconds of decoding garbage.
/// 128 MiB holds a 6500×6500 RGB photo, larger than any image of the datasets read here.
fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 14);
    limits.max_image_height = Some(1 << 14);
    limits.max_alloc = Some(128 << 20);
    limits
}

/// The most pixels an image may have once resized (2^25, 96 MiB in RGB): only its centre crop
/// is kept, and a very elongated picture would otherwise ask for gigabytes.
const MAX_RESIZED_PIXELS: u64 = 1 << 25;

/// The size of a `w`×`h` image whose shorter side is resized to `short` (aspect ratio kept),
/// or `None` for an empty image or one of more than [`MAX_RESIZED_PIXELS`] pixels.
fn resized(w: u32, h: u32, short: u32) -> Option<(u32, u32)> {
    let (w, h, s) = (u64::from(w), u64::from(h), u64::from(short));
    let (nw, nh) = match (w, h) {
        (0, _) | (_, 0) => return None,
        _ if w <= h => (s, h * s / w),
        _ => (w * s / h, s),
    };
    if nw * nh > MAX_RESIZED_PIXELS {
        return None;
    }
    Some((u32::try_from(nw).ok()?, u32::try_from(nh).ok()?))
}

/// A `root/<class>/<image>` dataset whose images are decoded on `get`.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    classes: Vec<String>,
    paths: Vec<PathBuf>,
    labels: Vec<usize>,
    options: ImageOptions,
}

impl ImageFolder {
    /// Scans `root` (one sub-folder per class) without decoding any image.
    pub fn open(root: impl AsRef<Path>, options: ImageOptions) -> Result<Self, DataError> {
        let root = root.as_ref();
        options.validate()?;
        let hint = "expected one sub-folder per class holding .jpg/.jpeg/.png images \
                    (root/<class>/<image>); unpack the dataset there";
        let mut class_dirs: Vec<PathBuf> = list(root, hint)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if class_dirs.is_empty() {
            return Err(DataError::format(root, "contains no class folders", hint));
        }
        class_dirs.sort();
        let (mut paths, mut labels, mut classes) = (Vec::new(), Vec::new(), Vec::new());
        for (label, dir) in class_dirs.iter().enumerate() {
            let mut files: Vec<PathBuf> = list(dir, hint)?
                .into_iter()
                .filter(|p| is_image(p))
                .collect();
            files.sort();
            labels.extend(std::iter::repeat_n(label, files.len()));
            paths.extend(files);
            classes.push(
                dir.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            );
        }
        Ok(Self {
            classes,
            paths,
            labels,
            options,
        })
    }

    /// Class names in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The file behind item `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.paths[index]
    }
}

/// The entries of folder `dir`.
pub(crate) fn list(dir: &Path, hint: &str) -> Result<Vec<PathBuf>, DataError> {
    std::fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| DataError::io(dir, e, hint))
}

impl Dataset<Sample> for ImageFolder {
    fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        let pixels = load_image(&self.paths[index], &self.options).map_err(DatasetError::new)?;
        Ok(Sample {
            pixels,
            label: self.labels[index],
        })
    }

    fn len(&self) -> usize {
        self.paths.len()
    }
}

impl ImageDataset for ImageFolder {
    fn shape(&self) -> [usize; 3] {
        self.options.shape()
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn labels(&self) -> &[usize] {
        &self.labels
    }
}
