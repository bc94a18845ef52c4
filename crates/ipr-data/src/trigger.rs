//! Trigger-set reader (Adi et al. 2018, "Turning your weakness into a strength").
//!
//! Layout of <https://github.com/adiyoss/WatermarkNN> `data/trigger_set`: images
//! `pics/1.jpg … pics/N.jpg` (`.jpeg`/`.png` also accepted) and `labels-cifar.txt` with one
//! label per line (written by `numpy.savetxt`, so `6.000000000000000000e+00` as well as `6`
//! is accepted). Image `k` pairs with line `k` (1-based) by the number in its file name, not
//! by directory order. The reference (DeepIPR) only centre-crops the images to 32×32; pass
//! `ImageOptions { resize: None, crop: 32, channels: 3 }` for that, or a `resize` to shrink
//! the whole picture first.

use std::path::Path;

use crate::folder::{is_image, list, load_image};
use crate::{DataError, ImageOptions, ImageSet};

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
    let text =
        std::fs::read_to_string(&labels_path).map_err(|e| DataError::io(&labels_path, e, &hint))?;
    let mut labels = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |problem: String| {
            DataError::format(
                &labels_path,
                format!("line {}: {problem}", line_no + 1),
                &hint,
            )
        };
        let label = parse_label(line.trim())
            .ok_or_else(|| bad(format!("{:?} is not a class number", line.trim())))?;
        if label >= num_classes {
            return Err(bad(format!("label {label} is not below {num_classes}")));
        }
        labels.push(label);
    }

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

/// Parses `6` or a `numpy.savetxt` float such as `6.000000000000000000e+00`.
fn parse_label(s: &str) -> Option<usize> {
    s.parse().ok().or_else(|| {
        let v: f64 = s.parse().ok()?;
        (v >= 0.0 && v.fract() == 0.0 && v < usize::MAX as f64).then_some(v as usize)
    })
}
