//! Readers on small files written here in each official format: IDX, CIFAR-10/100, image
//! folders and trigger sets.

use std::io::Write;
use std::path::Path;

use burn_dataset::Dataset;
use ipr_data::{
    DataError, IdxFile, ImageDataset, ImageFolder, ImageOptions, Split, decode_image, parse_cifar10, parse_cifar100,
    parse_idx, parse_trigger_labels, read_cifar10, read_cifar100, read_idx, read_trigger_set,
};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0803, count, rows, cols] {
        out.extend(v.to_be_bytes());
    }
    out.extend(pixels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0x0801u32.to_be_bytes());
    out.extend((labels.len() as u32).to_be_bytes());
    out.extend(labels);
    out
}

/// Five 3×4 images whose pixel j of image i is `i*12 + j`, labels 3 1 4 1 5.
fn idx_fixture() -> (Vec<u8>, Vec<u8>) {
    ((0..60).collect(), vec![3, 1, 4, 1, 5])
}

fn assert_idx_set(set: &ipr_data::ImageSet) {
    let (pixels, labels) = idx_fixture();
    assert_eq!(set.shape(), [1, 3, 4]);
    assert_eq!(set.num_classes(), 10);
    assert_eq!(set.len(), 5);
    assert_eq!(set.pixels(), pixels.as_slice());
    assert_eq!(
        set.labels(),
        labels.iter().map(|&l| l as usize).collect::<Vec<_>>()
    );
    let sample = set.get(2).unwrap();
    assert_eq!(sample.pixels, pixels[24..36]);
    assert_eq!(sample.label, labels[2] as usize);
}

#[test]
fn idx_round_trip_raw_gz_suffix_and_gz_content_under_raw_name() {
    let (pixels, labels) = idx_fixture();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // Train: raw files. Test: gzipped with the .gz suffix.
    std::fs::write(
        p.join("train-images-idx3-ubyte"),
        idx_images(5, 3, 4, &pixels),
    )
    .unwrap();
    std::fs::write(p.join("train-labels-idx1-ubyte"), idx_labels(&labels)).unwrap();
    std::fs::write(
        p.join("t10k-images-idx3-ubyte.gz"),
        gzip(&idx_images(5, 3, 4, &pixels)),
    )
    .unwrap();
    std::fs::write(
        p.join("t10k-labels-idx1-ubyte.gz"),
        gzip(&idx_labels(&labels)),
    )
    .unwrap();
    assert_idx_set(&read_idx(p, Split::Train).unwrap());
    assert_idx_set(&read_idx(p, Split::Test).unwrap());

    // Gzipped content without the suffix is detected by its magic bytes.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("train-images-idx3-ubyte"),
        gzip(&idx_images(5, 3, 4, &pixels)),
    )
    .unwrap();
    std::fs::write(
        other.path().join("train-labels-idx1-ubyte"),
        idx_labels(&labels),
    )
    .unwrap();
    assert_idx_set(&read_idx(other.path(), Split::Train).unwrap());
}

#[test]
fn idx_truncated_bad_magic_mismatch_and_missing_are_errors_naming_the_file() {
    let (pixels, labels) = idx_fixture();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();

    // Truncated image file: header says 5 images, data holds 4.
    std::fs::write(
        p.join("train-images-idx3-ubyte"),
        idx_images(5, 3, 4, &pixels[..48]),
    )
    .unwrap();
    std::fs::write(p.join("train-labels-idx1-ubyte"), idx_labels(&labels)).unwrap();
    let err = read_idx(p, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("truncated"),
        "{msg}"
    );

    // Bad magic in the labels file.
    std::fs::write(
        p.join("train-images-idx3-ubyte"),
        idx_images(5, 3, 4, &pixels),
    )
    .unwrap();
    let mut bad = idx_labels(&labels);
    bad[3] = 0x03;
    std::fs::write(p.join("train-labels-idx1-ubyte"), bad).unwrap();
    let msg = read_idx(p, Split::Train).unwrap_err().to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte") && msg.contains("magic"),
        "{msg}"
    );

    // Label count disagrees with the image count.
    std::fs::write(p.join("train-labels-idx1-ubyte"), idx_labels(&labels[..4])).unwrap();
    let msg = read_idx(p, Split::Train).unwrap_err().to_string();
    assert!(
        msg.contains("4 labels") && msg.contains("5 images"),
        "{msg}"
    );

    // Missing test files: the error names the file, the folder and how to get the data.
    let err = read_idx(p, Split::Test).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    assert!(msg.contains(&p.display().to_string()), "{msg}");
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
}

/// The bytes-level parser (what the fuzz target drives) reads what `read_idx` reads, raw or
/// gzipped.
#[test]
fn parse_idx_reads_raw_and_gzipped_bytes() {
    let (pixels, labels) = idx_fixture();
    let (images, labels) = (idx_images(5, 3, 4, &pixels), idx_labels(&labels));
    let (ip, lp) = (Path::new("/d/images"), Path::new("/d/labels"));
    for (i, l) in [(images.clone(), labels.clone()), (gzip(&images), gzip(&labels))] {
        let set = parse_idx("t", IdxFile { path: ip, bytes: &i }, IdxFile { path: lp, bytes: &l }).unwrap();
        assert_idx_set(&set);
    }
    let msg = parse_idx("t", IdxFile { path: ip, bytes: &[0x1f, 0x8b, 0] }, IdxFile { path: lp, bytes: &labels })
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/d/images") && msg.contains("corrupt gzip"), "{msg}");
}

/// A header whose image side is zero, or whose images are absurdly large (with zero images, so
/// that the length check passes), was accepted as an empty set of that shape.
#[test]
fn idx_header_with_a_zero_or_huge_side_is_an_error_naming_the_file() {
    let labels = idx_labels(&[]);
    for (rows, cols) in [(0, 28), (28, 0), (u32::MAX, u32::MAX), (1 << 13, 1 << 13)] {
        let images = idx_images(0, rows, cols, &[]);
        let err = parse_idx(
            "t",
            IdxFile { path: Path::new("/d/train-images-idx3-ubyte"), bytes: &images },
            IdxFile { path: Path::new("/d/train-labels-idx1-ubyte"), bytes: &labels },
        )
        .unwrap_err();
        assert!(matches!(err, DataError::Format { .. }), "{rows}×{cols}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("/d/train-images-idx3-ubyte") && msg.contains("header is corrupt"), "{msg}");
    }
}

/// Pixel value at channel `c`, row `y`, column `x` of CIFAR record number `r`.
fn cifar_pixel(r: usize, c: usize, y: usize, x: usize) -> u8 {
    (r * 31 + c * 7 + y * 3 + x) as u8
}

fn cifar_record(r: usize, labels: &[u8]) -> Vec<u8> {
    let mut rec = labels.to_vec();
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                rec.push(cifar_pixel(r, c, y, x));
            }
        }
    }
    rec
}

#[test]
fn cifar10_records_land_in_chw_order_from_the_subfolder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&sub).unwrap();
    for f in 1..=5 {
        let bytes: Vec<u8> = (0..2)
            .flat_map(|k| cifar_record(2 * (f - 1) + k, &[((2 * (f - 1) + k) % 10) as u8]))
            .collect();
        std::fs::write(sub.join(format!("data_batch_{f}.bin")), bytes).unwrap();
    }
    std::fs::write(sub.join("test_batch.bin"), cifar_record(7, &[9])).unwrap();

    let train = read_cifar10(dir.path(), Split::Train).unwrap();
    assert_eq!(
        (train.len(), train.shape(), train.num_classes()),
        (10, [3, 32, 32], 10)
    );
    assert_eq!(train.labels(), (0..10).collect::<Vec<_>>());
    for r in [0, 3, 9] {
        let img = train.image(r);
        for (c, y, x) in [(0, 0, 0), (1, 5, 17), (2, 31, 31), (2, 0, 31)] {
            assert_eq!(
                img[c * 1024 + y * 32 + x],
                cifar_pixel(r, c, y, x),
                "record {r} ({c},{y},{x})"
            );
        }
    }
    let test = read_cifar10(&sub, Split::Test).unwrap();
    assert_eq!(test.labels(), [9]);
    assert_eq!(test.image(0)[1024 + 32 + 1], cifar_pixel(7, 1, 1, 1));
}

#[test]
fn cifar100_uses_the_fine_label() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = [cifar_record(0, &[3, 87]), cifar_record(1, &[19, 42])].concat();
    std::fs::write(dir.path().join("train.bin"), bytes).unwrap();
    let set = read_cifar100(dir.path(), Split::Train).unwrap();
    assert_eq!(set.num_classes(), 100);
    assert_eq!(set.labels(), [87, 42]);
    assert_eq!(
        set.image(1)[2 * 1024 + 10 * 32 + 4],
        cifar_pixel(1, 2, 10, 4)
    );
}

#[test]
fn cifar_bad_length_label_and_missing_file_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = cifar_record(0, &[1]);
    bytes.extend([0; 5]);
    std::fs::write(dir.path().join("test_batch.bin"), bytes).unwrap();
    let msg = read_cifar10(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("test_batch.bin") && msg.contains("3078") && msg.contains("3073"),
        "{msg}"
    );
    assert!(
        msg.contains("https://www.cs.toronto.edu/~kriz/cifar.html"),
        "{msg}"
    );

    std::fs::write(dir.path().join("test_batch.bin"), cifar_record(0, &[10])).unwrap();
    let msg = read_cifar10(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("test_batch.bin") && msg.contains("label 10"),
        "{msg}"
    );

    let err = read_cifar10(dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("data_batch_1.bin"), "{err}");

    std::fs::write(dir.path().join("test.bin"), cifar_record(0, &[1])).unwrap();
    let msg = read_cifar100(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("test.bin") && msg.contains("3074"), "{msg}");
}

fn save_rgb(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

#[test]
fn image_folder_labels_by_sorted_class_name_and_resizes_then_crops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for class in ["cats", "ants"] {
        std::fs::create_dir(root.join(class)).unwrap();
    }
    save_rgb(&root.join("cats/b.png"), 16, 12, [200, 10, 50]);
    save_rgb(&root.join("cats/a.png"), 12, 16, [1, 2, 3]);
    save_rgb(&root.join("ants/x.png"), 9, 9, [90, 91, 92]);
    std::fs::write(root.join("cats/readme.txt"), "not an image").unwrap();
    std::fs::write(root.join("notes.txt"), "not a class").unwrap();

    let options = ImageOptions {
        resize: Some(8),
        crop: 6,
        channels: 3,
    };
    let folder = ImageFolder::open(root, options).unwrap();
    assert_eq!(folder.classes(), ["ants", "cats"]);
    assert_eq!(folder.len(), 3);
    assert_eq!(folder.labels(), [0, 1, 1]);
    assert_eq!((folder.shape(), folder.num_classes()), ([3, 6, 6], 2));
    assert!(folder.path(1).ends_with("cats/a.png"));

    let sample = folder.get(2).unwrap();
    assert_eq!(sample.label, 1);
    assert_eq!(sample.pixels.len(), 3 * 36);
    for (c, want) in [200u8, 10, 50].into_iter().enumerate() {
        let plane = &sample.pixels[c * 36..(c + 1) * 36];
        assert!(
            plane.iter().all(|&v| v.abs_diff(want) <= 1),
            "channel {c}: {plane:?}"
        );
    }

    let gray = ImageFolder::open(
        root,
        ImageOptions {
            channels: 1,
            ..options
        },
    )
    .unwrap();
    assert_eq!(gray.shape(), [1, 6, 6]);
    assert_eq!(gray.get(0).unwrap().pixels.len(), 36);
}

#[test]
fn centre_crop_without_resize_takes_the_middle_in_chw_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("only")).unwrap();
    // 4×4 RGB image: red = 4y + x, green = 100 + 4y + x, blue = 0.
    let img = image::RgbImage::from_fn(4, 4, |x, y| {
        image::Rgb([(4 * y + x) as u8, (100 + 4 * y + x) as u8, 0])
    });
    img.save(dir.path().join("only/p.png")).unwrap();
    let folder = ImageFolder::open(
        dir.path(),
        ImageOptions {
            resize: None,
            crop: 2,
            channels: 3,
        },
    )
    .unwrap();
    assert_eq!(
        folder.get(0).unwrap().pixels,
        [5, 6, 9, 10, 105, 106, 109, 110, 0, 0, 0, 0]
    );
}

#[test]
fn image_folder_errors() {
    let dir = tempfile::tempdir().unwrap();
    let options = ImageOptions {
        resize: Some(8),
        crop: 6,
        channels: 3,
    };
    let missing = dir.path().join("nowhere");
    let err = ImageFolder::open(&missing, options).unwrap_err();
    assert!(
        matches!(err, DataError::Missing { .. }) && err.to_string().contains("nowhere"),
        "{err}"
    );

    let err = ImageFolder::open(dir.path(), options).unwrap_err();
    assert!(err.to_string().contains("no class folders"), "{err}");

    let err = ImageFolder::open(dir.path(), ImageOptions { crop: 9, ..options }).unwrap_err();
    assert!(matches!(err, DataError::Invalid(_)), "{err}");

    // A corrupt image fails on `get` with the file named.
    std::fs::create_dir(dir.path().join("c")).unwrap();
    std::fs::write(dir.path().join("c/broken.png"), b"not a png").unwrap();
    let folder = ImageFolder::open(dir.path(), options).unwrap();
    let msg = folder.get(0).unwrap_err().to_string();
    assert!(msg.contains("broken.png"), "{msg}");
}

/// Writes a trigger set whose image k is solid `(10k, 255-k, 7)` and whose label k is
/// `3k mod 10` (even lines written as numpy floats), creating images in a scrambled order.
fn write_trigger_set(dir: &Path, n: usize) {
    let pics = dir.join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    let mut order: Vec<usize> = (1..=n).collect();
    order.reverse();
    order.swap(0, n / 2);
    for k in order {
        save_rgb(
            &pics.join(format!("{k}.png")),
            8,
            8,
            [(10 * k) as u8, (255 - k) as u8, 7],
        );
    }
    let lines: Vec<String> = (1..=n)
        .map(|k| {
            if k % 2 == 0 {
                format!("{}.000000000000000000e+00", 3 * k % 10)
            } else {
                (3 * k % 10).to_string()
            }
        })
        .collect();
    std::fs::write(dir.join("labels-cifar.txt"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn trigger_set_pairs_images_and_labels_by_file_number() {
    let dir = tempfile::tempdir().unwrap();
    write_trigger_set(dir.path(), 12);
    let options = ImageOptions {
        resize: None,
        crop: 4,
        channels: 3,
    };
    let set = read_trigger_set(dir.path(), &options, 10).unwrap();
    assert_eq!(
        (set.len(), set.shape(), set.num_classes()),
        (12, [3, 4, 4], 10)
    );
    for i in 0..12 {
        let k = i + 1;
        let img = set.image(i);
        assert_eq!(
            (img[0], img[16], img[32]),
            ((10 * k) as u8, (255 - k) as u8, 7),
            "image {k}"
        );
        assert_eq!(set.labels()[i], 3 * k % 10, "label of image {k}");
    }
}

#[test]
fn trigger_set_errors() {
    let options = ImageOptions {
        resize: None,
        crop: 4,
        channels: 3,
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write_trigger_set(p, 5);

    let err = read_trigger_set(p, &options, 3).unwrap_err().to_string();
    assert!(
        err.contains("labels-cifar.txt") && err.contains("line 1") && err.contains("not below 3"),
        "{err}"
    );

    std::fs::write(p.join("labels-cifar.txt"), "1\n2\n3\n4\n").unwrap();
    let err = read_trigger_set(p, &options, 10).unwrap_err().to_string();
    assert!(
        err.contains("4 labels") && err.contains("5 images"),
        "{err}"
    );

    std::fs::write(p.join("labels-cifar.txt"), "1\ncat\n3\n4\n5\n").unwrap();
    let err = read_trigger_set(p, &options, 10).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("cat"), "{err}");

    std::fs::write(p.join("labels-cifar.txt"), "1\n2\n3\n4\n5\n6\n").unwrap();
    save_rgb(&p.join("pics/cover.png"), 8, 8, [0, 0, 0]);
    let err = read_trigger_set(p, &options, 10).unwrap_err().to_string();
    assert!(
        err.contains("cover.png") && err.contains("not a number"),
        "{err}"
    );

    std::fs::remove_file(p.join("pics/cover.png")).unwrap();
    save_rgb(&p.join("pics/9.png"), 8, 8, [0, 0, 0]);
    let err = read_trigger_set(p, &options, 10).unwrap_err().to_string();
    assert!(
        err.contains("9.png") && err.contains("expected image number 6"),
        "{err}"
    );

    std::fs::remove_file(p.join("labels-cifar.txt")).unwrap();
    let err = read_trigger_set(p, &options, 10).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains("github.com/adiyoss/WatermarkNN"),
        "{err}"
    );
}

/// A generated trigger set is seeded, has labels spread over the classes, and reads back through
/// the Adi et al. reader with the same labels and nearly the same pixels (JPEG quality 95).
#[test]
fn generated_trigger_set_round_trips_through_the_reader() {
    use ipr_data::{TriggerSetConfig, generate_trigger_set, write_trigger_set as write_generated};
    for channels in [1, 3] {
        let config = TriggerSetConfig { n: 40, size: 28, channels, num_classes: 10, seed: 4 };
        let set = generate_trigger_set(&config).unwrap();
        assert_eq!(set.pixels(), generate_trigger_set(&config).unwrap().pixels());
        let other = generate_trigger_set(&TriggerSetConfig { seed: 5, ..config.clone() }).unwrap();
        assert_ne!(set.pixels(), other.pixels());
        let distinct: std::collections::BTreeSet<_> = set.labels().iter().collect();
        assert!(distinct.len() >= 6, "labels {:?}", set.labels());

        let dir = tempfile::tempdir().unwrap();
        write_generated(&set, dir.path(), false).unwrap();
        let err = write_generated(&set, dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        let options = ImageOptions { resize: None, crop: 28, channels };
        let back = read_trigger_set(dir.path(), &options, 10).unwrap();
        assert_eq!(back.labels(), set.labels());
        let mean_error = back.pixels().iter().zip(set.pixels()).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).sum::<i32>() as f64
            / set.pixels().len() as f64;
        assert!(mean_error < 4.0, "{channels} channels: mean pixel error {mean_error}");
    }
    assert!(generate_trigger_set(&TriggerSetConfig { n: 4, size: 8, channels: 2, num_classes: 3, seed: 0 }).is_err());
}

/// The bytes-level CIFAR parsers (what the fuzz target drives) read one file as the readers do.
#[test]
fn parse_cifar_reads_one_file_and_names_it_in_errors() {
    let path = Path::new("/d/test_batch.bin");
    let mut bytes = cifar_record(0, &[7]);
    bytes.extend(cifar_record(1, &[2]));
    let set = parse_cifar10(path, &bytes).unwrap();
    assert_eq!((set.len(), set.labels(), set.shape()), (2, &[7, 2][..], [3, 32, 32]));
    let set = parse_cifar100(path, &[cifar_record(0, &[3, 77]), cifar_record(1, &[1, 99])].concat()).unwrap();
    assert_eq!(set.labels(), &[77, 99]);
    for bad in [&bytes[..100], &[]] {
        let msg = parse_cifar10(path, bad).unwrap_err().to_string();
        assert!(msg.contains("/d/test_batch.bin") && msg.contains("multiple of the 3073-byte record"), "{msg}");
    }
}

/// The bytes-level trigger-set parsers (what the fuzz target drives): labels as the reader
/// reads them, and one image decoded, cropped and laid out CHW as the reader does.
#[test]
fn parse_trigger_labels_and_decode_image_work_on_bytes() {
    let path = Path::new("/d/labels-cifar.txt");
    assert_eq!(parse_trigger_labels("3\n\n6.000000000000000000e+00\n", path, 10).unwrap(), vec![3, 6]);
    let msg = parse_trigger_labels("3\nten\n", path, 10).unwrap_err().to_string();
    assert!(msg.contains("/d/labels-cifar.txt") && msg.contains("line 2"), "{msg}");

    let mut png = Vec::new();
    let rgb: Vec<u8> = (0..4 * 4 * 3).map(|i| i as u8).collect();
    image::RgbImage::from_raw(4, 4, rgb)
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let options = ImageOptions { resize: None, crop: 2, channels: 3 };
    let chw = decode_image(Path::new("/d/pics/1.png"), &png, &options).unwrap();
    // The centre 2×2 of a 4×4 image: pixels (1,1), (2,1), (1,2), (2,2); red plane first.
    assert_eq!(&chw[..4], &[15, 18, 27, 30]);
    let msg = decode_image(Path::new("/d/pics/1.png"), &png[..20], &options).unwrap_err().to_string();
    assert!(msg.contains("/d/pics/1.png"), "{msg}");
    let bad = ImageOptions { channels: 2, ..options };
    assert!(decode_image(Path::new("/d/pics/1.png"), &png, &bad).is_err());
}

/// Found by review and reproduced with the `trigger` fuzz target (libFuzzer: out-of-memory):
/// a 214-byte input (`fuzz/seeds/trigger/tall-png-resize`) holding a 1×65535 gray PNG, its
/// shorter side resized to 256, made the reader ask for a 256×16776960 image (4 GiB; 12 GiB in
/// RGB) only to keep its centre crop. (That picture is now refused by the decoder's limits
/// already; a 1×16000 one, within them, still asks for 1 GiB.)
#[test]
fn elongated_image_whose_resize_would_exhaust_memory_is_an_error() {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::NoFilter)
        .write_image(&[128; 16000], 1, 16000, image::ExtendedColorType::L8)
        .unwrap();
    assert!(png.len() < 2000, "{} bytes", png.len());
    let path = Path::new("/d/pics/1.png");
    for channels in [1, 3] {
        let options = ImageOptions { resize: Some(256), crop: 224, channels };
        let err = decode_image(path, &png, &options).unwrap_err();
        assert!(matches!(err, DataError::Format { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("/d/pics/1.png") && msg.contains("1x16000") && msg.contains("pixels"), "{msg}");
    }
    // Without a resize the image is merely too small for the crop.
    let options = ImageOptions { resize: None, crop: 2, channels: 1 };
    let msg = decode_image(path, &png, &options).unwrap_err().to_string();
    assert!(msg.contains("smaller than the 2x2 centre crop"), "{msg}");
}

/// Found with the `trigger` fuzz target (its slowest inputs): a JPEG of a few hundred bytes
/// whose header claims 65500×1272 pixels was decoded, garbage and all, into 250 MB over
/// several seconds, and accepted.
#[test]
fn jpeg_claiming_a_huge_picture_is_refused_before_decoding() {
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    // The baseline frame header: FF C0, length, precision, height, width.
    let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0x04, 0xf8, 0xff, 0xdc]); // 1272 high, 65500 wide
    let path = Path::new("/d/pics/1.jpg");
    let options = ImageOptions { resize: None, crop: 8, channels: 3 };
    let err = decode_image(path, &jpeg, &options).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("/d/pics/1.jpg"), "{err}");
}
