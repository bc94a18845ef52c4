//! Trigger-set reader (Adi et al. 2018, "Turning your weakness into a strength").
//!
//! Layout of <https://github.com/adiyoss/WatermarkNN> `data/trigger_set`: images
//! `pics/1.jpg … pics/N.jpg` (`.jpeg`/`.png` also accepted) and `labels-cifar.txt` with one
//! label per line (written by `numpy.savetxt`, so `6.000000000000000000e+00` as well as `6`
//! is accepted). Image `k` pairs with line `k` (1-based) by the number in its file name, not
//! by directory order. The reference (DeepIPR) only centre-crops the images to 32×32; pass
//! `ImageOptions { resize: None, crop: 32, channels: 3 }` for that, or a `resize` to shrink
//! the whole picture first.

use std::fs;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::folder::{is_image, list, load_image};
use crate::{DataError, Dataset, ImageDataset, ImageOptions, ImageSet};

/// The labels file name inside a trigger-set folder.
pub const TRIGGER_LABELS_FILE: &str = "labels-cifar.txt";

/// Reads a trigger set from `dir` (holding `pics/` and [`TRIGGER_LABELS_FILE`]); every label
/// must be below `num_classes`.
pub fn read_trigger_set(
    dir: impl AsRef<Path>,
    options: &ImageOptions,
    num_classes: usize,
) -> Result<ImageSet, DataError> {
    let dir = dir.as_ref();
    options.validate()?;
    let hint = format!(
        "expected {0}/pics/1.jpg … N.jpg and {0}/{TRIGGER_LABELS_FILE} with N lines; get the trigger \
         set from https://github.com/adiyoss/WatermarkNN (data/trigger_set) on a machine with \
         internet and copy it there",
        dir.display()
    );
    let labels_path = dir.join(TRIGGER_LABELS_FILE);
    let bytes = fs::read(&labels_path).map_err(|e| DataError::io(&labels_path, e, &hint))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        DataError::format(&labels_path, format!("not UTF-8 text ({e})"), "write one class number per line")
    })?;
    let labels = parse_labels(text, &labels_path, num_classes, &hint)?;

    let pics = dir.join("pics");
    let mut numbered = Vec::new();
    for path in list(&pics, &hint)?.into_iter().filter(|p| is_image(p)) {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let k: usize = stem.parse().map_err(|_| {
            DataError::format(
                &path,
                "file name is not a number",
                "name trigger images 1.jpg … N.jpg",
            )
        })?;
        numbered.push((k, path));
    }
    numbered.sort();
    if numbered.len() != labels.len() {
        return Err(DataError::format(
            &labels_path,
            format!(
                "{} labels but {} has {} images",
                labels.len(),
                pics.display(),
                numbered.len()
            ),
            &hint,
        ));
    }
    let mut pixels = Vec::new();
    for (i, (k, path)) in numbered.iter().enumerate() {
        if *k != i + 1 {
            return Err(DataError::format(
                path,
                format!(
                    "expected image number {} here (numbers must run 1..={} once each)",
                    i + 1,
                    labels.len()
                ),
                &hint,
            ));
        }
        pixels.extend(load_image(path, options)?);
    }
    ImageSet::new(
        format!("trigger:{}", dir.display()),
        pixels,
        labels,
        options.shape(),
        num_classes,
    )
}

/// Parses the text of a trigger set's labels file ([`TRIGGER_LABELS_FILE`], read from `path`,
/// named in errors): one class number per line, `6` or `6.000000000000000000e+00`, blank lines
/// skipped; every label must be below `num_classes`.
///
/// # Errors
/// [`DataError::Format`] naming the file and the line.
pub fn parse_trigger_labels(text: &str, path: &Path, num_classes: usize) -> Result<Vec<usize>, DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let hint = format!(
        "write one class number per line, one line per image of {}",
        dir.join("pics").display()
    );
    parse_labels(text, path, num_classes, &hint)
}

/// The labels of a labels file, one per non-blank line.
fn parse_labels(text: &str, labels_path: &Path, num_classes: usize, hint: &str) -> Result<Vec<usize>, DataError> {
    let mut labels = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |problem: String| {
            DataError::format(
                labels_path,
                format!("line {}: {problem}", line_no + 1),
                hint,
            )
        };
        let label = parse_label(line.trim())
            .ok_or_else(|| bad(format!("{:?} is not a class number", line.trim())))?;
        if label >= num_classes {
            return Err(bad(format!("label {label} is not below {num_classes}")));
        }
        labels.push(label);
    }
    Ok(labels)
}

/// What [`generate_trigger_set`] makes.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerSetConfig {
    /// Images.
    pub n: usize,
    /// Side in pixels.
    pub size: usize,
    /// 1 (gray) or 3 (colour).
    pub channels: usize,
    /// Labels are drawn uniformly from `0..num_classes`.
    pub num_classes: usize,
    /// Seed of the patterns and labels.
    pub seed: u64,
}

/// A secret trigger set of abstract patterns (sinusoidal gratings, colour grids, discs, mixed
/// pairwise) with uniformly random labels: no dataset image, so nothing in it can be learnt
/// from the task, and the same seed gives the same set.
///
/// # Errors
/// [`DataError::Invalid`] for zero images, size or classes, or channels other than 1 and 3.
pub fn generate_trigger_set(config: &TriggerSetConfig) -> Result<ImageSet, DataError> {
    let TriggerSetConfig { n, size, channels, num_classes, seed } = *config;
    if n == 0 || size == 0 || num_classes == 0 || !(channels == 1 || channels == 3) {
        return Err(DataError::Invalid(format!(
            "a trigger set needs n ≥ 1, size ≥ 1, classes ≥ 1 and 1 or 3 channels (got n {n}, size {size}, classes {num_classes}, channels {channels})"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * channels * size * size);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let a = pattern(&mut rng, channels, size);
        let b = pattern(&mut rng, channels, size);
        let w: f32 = rng.random_range(0.0..0.5);
        pixels.extend(a.iter().zip(&b).map(|(x, y)| ((1.0 - w) * x + w * y).clamp(0.0, 255.0).round() as u8));
        labels.push(rng.random_range(0..num_classes));
    }
    ImageSet::new(format!("generated trigger set (seed {seed})"), pixels, labels, [channels, size, size], num_classes)
}

/// One abstract pattern, CHW values in `[0, 255]`.
fn pattern(rng: &mut ChaCha8Rng, channels: usize, size: usize) -> Vec<f32> {
    let s = size as f32;
    let mut out = vec![0.0f32; channels * size * size];
    match rng.random_range(0..3) {
        0 => {
            // A grating per channel: random frequency, orientation and phase.
            for c in 0..channels {
                let (fx, fy) = (rng.random_range(-6.0..6.0f32), rng.random_range(-6.0..6.0f32));
                let phase = rng.random_range(0.0..std::f32::consts::TAU);
                for y in 0..size {
                    for x in 0..size {
                        let t = std::f32::consts::TAU * (fx * x as f32 + fy * y as f32) / s + phase;
                        out[(c * size + y) * size + x] = 127.5 + 127.5 * t.sin();
                    }
                }
            }
        }
        1 => {
            // A grid of random colours.
            let cells = rng.random_range(2..=6usize);
            let colours: Vec<f32> = (0..cells * cells * channels).map(|_| rng.random_range(0.0..255.0)).collect();
            for c in 0..channels {
                for y in 0..size {
                    for x in 0..size {
                        let cell = (y * cells / size) * cells + x * cells / size;
                        out[(c * size + y) * size + x] = colours[cell * channels + c];
                    }
                }
            }
        }
        _ => {
            // Discs of random colours on a random background.
            let background: Vec<f32> = (0..channels).map(|_| rng.random_range(0.0..255.0)).collect();
            for c in 0..channels {
                out[c * size * size..(c + 1) * size * size].fill(background[c]);
            }
            for _ in 0..rng.random_range(2..=6) {
                let (cx, cy, r) = (rng.random_range(0.0..s), rng.random_range(0.0..s), rng.random_range(s / 10.0..s / 3.0));
                let colour: Vec<f32> = (0..channels).map(|_| rng.random_range(0.0..255.0)).collect();
                for y in 0..size {
                    for x in 0..size {
                        if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r {
                            for c in 0..channels {
                                out[(c * size + y) * size + x] = colour[c];
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Writes `set` to `dir` in the trigger-set format [`read_trigger_set`] reads (`pics/k.jpg`,
/// JPEG quality 95, and [`TRIGGER_LABELS_FILE`], written last). An existing labels file is
/// never replaced unless `overwrite`.
///
/// # Errors
/// [`DataError::Invalid`] for an existing set, or a write error naming the file.
pub fn write_trigger_set(set: &ImageSet, dir: &Path, overwrite: bool) -> Result<(), DataError> {
    let hint = "check that the folder is writable and has free space";
    let labels_path = dir.join(TRIGGER_LABELS_FILE);
    if labels_path.exists() && !overwrite {
        return Err(DataError::Invalid(format!(
            "`{}` already holds a trigger set; choose another --out folder, or pass --force to replace it",
            dir.display()
        )));
    }
    // The set is the owner's secret until shown for a black-box check: owner-only folders.
    let pics = dir.join("pics");
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&pics).map_err(|e| DataError::io(&pics, e, hint))?;
    let [c, h, w] = set.shape();
    let colour = if c == 1 { ExtendedColorType::L8 } else { ExtendedColorType::Rgb8 };
    for i in 0..set.len() {
        let chw = set.image(i);
        let hwc: Vec<u8> = (0..h * w).flat_map(|p| (0..c).map(move |ch| chw[ch * h * w + p])).collect();
        let path = pics.join(format!("{}.jpg", i + 1));
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 95)
            .write_image(&hwc, w as u32, h as u32, colour)
            .map_err(|e| DataError::format(&path, e.to_string(), hint))?;
        fs::write(&path, bytes).map_err(|e| DataError::io(&path, e, hint))?;
    }
    let labels: String = (0..set.len()).map(|i| format!("{}\n", set.labels()[i])).collect();
    let tmp = dir.join(format!(".{TRIGGER_LABELS_FILE}.tmp"));
    fs::write(&tmp, labels).map_err(|e| DataError::io(&tmp, e, hint))?;
    fs::rename(&tmp, &labels_path).map_err(|e| DataError::io(&labels_path, e, hint))
}

/// Parses `6` or a `numpy.savetxt` float such as `6.000000000000000000e+00`.
fn parse_label(s: &str) -> Option<usize> {
    s.parse().ok().or_else(|| {
        let v: f64 = s.parse().ok()?;
        (v >= 0.0 && v.fract() == 0.0 && v < usize::MAX as f64).then_some(v as usize)
    })
}
