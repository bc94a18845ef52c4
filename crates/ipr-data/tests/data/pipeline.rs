//! Transforms, subsets, the synthetic dataset and the loader.

use std::sync::Arc;

use burn_dataset::Dataset;
use ipr_data::{
    Batch, DataError, ImageDataset, ImageSet, Loader, LoaderConfig, Normalization, SyntheticConfig,
    Transform, crop_with_padding, first, hflip, pad_to, per_class, synthetic,
};
use rand::SeedableRng;

/// Normalisation that maps a byte `v` to `v / 255`.
fn unit() -> Normalization {
    Normalization {
        mean: vec![0.0],
        std: vec![1.0],
    }
}

/// `n` 1×1×2 images; image `i` stores `i % 256` and `i / 256`, label `i % classes`.
fn indexed_set(n: usize, classes: usize) -> ImageSet {
    let pixels = (0..n)
        .flat_map(|i| [(i % 256) as u8, (i / 256) as u8])
        .collect();
    ImageSet::new(
        "indexed",
        pixels,
        (0..n).map(|i| i % classes).collect(),
        [1, 1, 2],
        classes,
    )
    .unwrap()
}

/// The dataset indices encoded (by [`indexed_set`]) in each image of `batch`.
fn decode(batch: &Batch) -> Vec<usize> {
    batch
        .images
        .chunks_exact(2)
        .map(|p| (p[0] * 255.0).round() as usize + 256 * (p[1] * 255.0).round() as usize)
        .collect()
}

fn collect(loader: &Loader, epoch: u64) -> Vec<Batch> {
    loader.epoch(epoch).collect::<Result<_, _>>().unwrap()
}

#[test]
fn pad_to_centres_the_image() {
    let img: Vec<u8> = (0..28 * 28).map(|i| (i % 251 + 1) as u8).collect();
    let out = pad_to(&img, [1, 28, 28], 32);
    assert_eq!(out.len(), 32 * 32);
    for y in 0..32 {
        for x in 0..32 {
            let inside = (2..30).contains(&y) && (2..30).contains(&x);
            let want = if inside { img[(y - 2) * 28 + x - 2] } else { 0 };
            assert_eq!(out[y * 32 + x], want, "({y},{x})");
        }
    }
    // Two channels stay separate and larger sides are kept.
    assert_eq!(
        pad_to(&[1, 2, 3, 4], [2, 1, 2], 3),
        [0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0]
    );
    assert_eq!(pad_to(&[1, 2, 3, 4], [1, 2, 2], 1), [1, 2, 3, 4]);
}

#[test]
fn hflip_mirrors_each_row() {
    let mut img: Vec<u8> = (0..12).collect();
    hflip(&mut img, [2, 2, 3]);
    assert_eq!(img, [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]);
}

#[test]
fn crop_with_padding_shifts_and_keeps_the_shape() {
    let img: Vec<u8> = (1..=9).collect();
    let shape = [1, 3, 3];
    assert_eq!(
        crop_with_padding(&img, shape, 1, 1, 1),
        img,
        "centre window is the identity"
    );
    assert_eq!(
        crop_with_padding(&img, shape, 1, 0, 0),
        [0, 0, 0, 0, 1, 2, 0, 4, 5]
    );
    assert_eq!(
        crop_with_padding(&img, shape, 1, 2, 1),
        [4, 5, 6, 7, 8, 9, 0, 0, 0]
    );
    assert_eq!(
        crop_with_padding(&img, shape, 4, 8, 0),
        [0; 9],
        "window fully in the padding"
    );
    assert_eq!(
        crop_with_padding(&[1, 2, 3, 4], [2, 1, 2], 1, 1, 2),
        [2, 0, 4, 0]
    );
}

#[test]
fn normalisation_values_are_exact() {
    let imagenet = Normalization::imagenet();
    let mut out = [0f32; 3];
    imagenet.apply(&[0, 255, 51], [3, 1, 1], &mut out);
    let want = [
        (0.0 - 0.485) / 0.229,
        (1.0 - 0.456) / 0.224,
        (51.0 / 255.0 - 0.406) / 0.225,
    ];
    assert_eq!(out, want);
    assert!((out[1] - 2.4285715).abs() < 1e-6);

    let mut out = [0f32; 2];
    Normalization::fashion_mnist().apply(&[255, 0], [1, 1, 2], &mut out);
    assert_eq!(out, [(1.0 - 0.2860) / 0.3530, -0.2860 / 0.3530]);
    Normalization::mnist().apply(&[255, 0], [1, 1, 2], &mut out);
    assert_eq!(out, [(1.0 - 0.1307) / 0.3081, -0.1307 / 0.3081]);

    assert!(imagenet.fits(3) && !imagenet.fits(1) && Normalization::mnist().fits(3));
}

#[test]
fn transform_train_keeps_shape_and_eval_only_pads() {
    let img: Vec<u8> = (0..28 * 28).map(|i| (i % 256) as u8).collect();
    let t = Transform::fashion_mnist();
    assert_eq!(t.output_shape([1, 28, 28]), [1, 32, 32]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut train = vec![0f32; 1024];
    t.apply_train(&img, [1, 28, 28], &mut rng, &mut train);
    let mut eval = vec![0f32; 1024];
    t.apply_eval(&img, [1, 28, 28], &mut eval);
    let mut want = vec![0f32; 1024];
    t.normalization
        .apply(&pad_to(&img, [1, 28, 28], 32), [1, 32, 32], &mut want);
    assert_eq!(eval, want);
    // Augmentation only moves and mirrors pixels: the multiset of values is unchanged
    // apart from padding zeros entering the window.
    let background = want[0];
    let count = |v: &[f32]| v.iter().filter(|&&x| x != background).count();
    assert!(count(&train) <= count(&want));

    // Without crop and flip, training equals evaluation.
    let plain = Transform {
        crop_padding: 0,
        hflip: false,
        ..t
    };
    plain.apply_train(&img, [1, 28, 28], &mut rng, &mut train);
    assert_eq!(train, want);
}

#[test]
fn transform_deserialises_from_json() {
    let json = r#"{"pad_to":32,"crop_padding":4,"hflip":true,"normalization":{"mean":[0.286],"std":[0.353]}}"#;
    let t: Transform = serde_json::from_str(json).unwrap();
    assert_eq!(t, Transform::fashion_mnist());
}

#[test]
fn subsets_take_first_n_and_n_per_class_in_order() {
    let set = indexed_set(50, 4);
    assert_eq!(first(&set, 5), [0, 1, 2, 3, 4]);
    assert_eq!(first(&set, 500).len(), 50);
    let sub = per_class(&set, 3);
    assert_eq!(sub, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let labels = set.labels();
    for class in 0..4 {
        assert_eq!(sub.iter().filter(|&&i| labels[i] == class).count(), 3);
    }
    // Classes with fewer items give what they have (class 1 has items 1, 5, 9, …, 49).
    assert_eq!(per_class(&set, 100).len(), 50);
}

#[test]
fn synthetic_is_deterministic_and_separable() {
    let config = SyntheticConfig {
        n: 600,
        ..SyntheticConfig::default()
    };
    let a = synthetic(&config).unwrap();
    assert_eq!(a, synthetic(&config).unwrap());
    assert_ne!(
        a.pixels(),
        synthetic(&SyntheticConfig {
            seed: 1,
            ..config.clone()
        })
        .unwrap()
        .pixels()
    );
    assert_eq!(
        (a.shape(), a.num_classes(), a.len()),
        ([1, 28, 28], 10, 600)
    );

    // Nearest class mean fitted on the first 500 images classifies the last 100.
    let size = 28 * 28;
    let mut means = vec![vec![0f32; size]; 10];
    for i in 0..500 {
        for (m, &p) in means[a.labels()[i]].iter_mut().zip(a.image(i)) {
            *m += p as f32 / 50.0;
        }
    }
    let correct = (500..600)
        .filter(|&i| {
            let dist = |m: &Vec<f32>| {
                m.iter()
                    .zip(a.image(i))
                    .map(|(m, &p)| (m - p as f32).powi(2))
                    .sum::<f32>()
            };
            let best = (0..10)
                .min_by(|&x, &y| dist(&means[x]).total_cmp(&dist(&means[y])))
                .unwrap();
            best == a.labels()[i]
        })
        .count();
    assert!(correct >= 90, "nearest-mean accuracy {correct}/100");
}

#[test]
fn same_seed_and_epoch_give_identical_batches_and_epochs_differ() {
    let set = Arc::new(
        synthetic(&SyntheticConfig {
            n: 200,
            ..SyntheticConfig::default()
        })
        .unwrap(),
    );
    let make = |workers| {
        let config = LoaderConfig {
            workers,
            ..LoaderConfig::train(32, 7)
        };
        Loader::new(set.clone(), Transform::fashion_mnist(), config).unwrap()
    };
    let (one, three) = (make(1), make(3));
    let e0 = collect(&one, 0);
    assert_eq!(e0.len(), 6);
    assert!(
        e0.iter()
            .all(|b| b.shape == [32, 1, 32, 32] && b.images.len() == 32 * 1024)
    );
    assert_eq!(e0, collect(&one, 0), "same seed and epoch");
    assert_eq!(
        e0,
        collect(&three, 0),
        "worker count does not change batches"
    );
    let e1 = collect(&one, 1);
    assert_ne!(
        e0[0].labels, e1[0].labels,
        "epochs are shuffled differently"
    );
    let other_seed =
        Loader::new(set, Transform::fashion_mnist(), LoaderConfig::train(32, 8)).unwrap();
    assert_ne!(e0, collect(&other_seed, 0));
}

#[test]
fn every_index_once_per_epoch_and_drop_last_drops_the_tail() {
    let set = Arc::new(indexed_set(300, 10));
    let config = LoaderConfig {
        shuffle: true,
        seed: 5,
        workers: 2,
        ..LoaderConfig::eval(64)
    };
    let loader = Loader::new(set.clone(), Transform::new(unit()), config.clone()).unwrap();
    assert_eq!(loader.num_batches(), 5);
    let batches = collect(&loader, 3);
    assert_eq!(
        batches.iter().map(|b| b.labels.len()).collect::<Vec<_>>(),
        [64, 64, 64, 64, 44]
    );
    let mut seen: Vec<usize> = batches.iter().flat_map(decode).collect();
    assert_ne!(seen, (0..300).collect::<Vec<_>>(), "shuffled");
    for b in &batches {
        assert_eq!(
            b.labels,
            decode(b).iter().map(|i| i % 10).collect::<Vec<_>>(),
            "labels follow images"
        );
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..300).collect::<Vec<_>>());

    let dropping = Loader::new(
        set,
        Transform::new(unit()),
        LoaderConfig {
            drop_last: true,
            ..config
        },
    )
    .unwrap();
    assert_eq!(dropping.num_batches(), 4);
    let batches = collect(&dropping, 3);
    assert_eq!(batches.len(), 4);
    assert!(batches.iter().all(|b| b.labels.len() == 64));
}

#[test]
fn subset_indices_are_visited_in_order_without_shuffle() {
    let set = Arc::new(indexed_set(40, 4));
    let sub = per_class(set.as_ref(), 2);
    let loader = Loader::new(set, Transform::new(unit()), LoaderConfig::eval(3))
        .unwrap()
        .with_indices(sub)
        .unwrap();
    assert_eq!((loader.len(), loader.num_batches()), (8, 3));
    let seen: Vec<usize> = collect(&loader, 0).iter().flat_map(decode).collect();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn triggers_are_appended_k_per_batch_cycling_through_the_set() {
    let set = Arc::new(indexed_set(10, 10));
    let triggers = ImageSet::new(
        "t",
        (0..5).flat_map(|t| [200 + t, 0]).collect(),
        vec![9, 8, 7, 6, 5],
        [1, 1, 2],
        10,
    )
    .unwrap();
    let loader = Loader::new(set, Transform::new(unit()), LoaderConfig::eval(4))
        .unwrap()
        .with_triggers(triggers, 2)
        .unwrap();
    let batches = collect(&loader, 0);
    let got: Vec<Vec<usize>> = batches.iter().map(decode).collect();
    assert_eq!(
        got,
        [
            vec![0, 1, 2, 3, 200, 201],
            vec![4, 5, 6, 7, 202, 203],
            vec![8, 9, 204, 200]
        ]
    );
    assert_eq!(batches[2].labels, [8, 9, 5, 9]);
    assert_eq!(batches[2].shape, [4, 1, 1, 2]);
}

#[test]
fn epoch_from_equals_skipping_batches() {
    let set = Arc::new(
        synthetic(&SyntheticConfig {
            n: 100,
            ..SyntheticConfig::default()
        })
        .unwrap(),
    );
    let loader = Loader::new(set, Transform::fashion_mnist(), LoaderConfig::train(16, 1)).unwrap();
    let skipped: Vec<Batch> = loader.epoch(2).skip(4).collect::<Result<_, _>>().unwrap();
    let resumed: Vec<Batch> = loader.epoch_from(2, 4).collect::<Result<_, _>>().unwrap();
    assert_eq!(skipped.len(), 2);
    assert_eq!(resumed, skipped);
    assert_eq!(loader.epoch_from(2, 99).count(), 0);
}

#[test]
fn dropping_an_epoch_early_stops_its_workers() {
    let set = Arc::new(
        synthetic(&SyntheticConfig {
            n: 2000,
            ..SyntheticConfig::default()
        })
        .unwrap(),
    );
    let config = LoaderConfig {
        workers: 2,
        prefetch: 2,
        ..LoaderConfig::train(8, 0)
    };
    let loader = Loader::new(set, Transform::fashion_mnist(), config).unwrap();
    let mut batches = loader.epoch(0);
    assert_eq!(batches.size_hint(), (0, Some(250)));
    assert!(batches.next().unwrap().is_ok());
    drop(batches); // joins the workers; a hang here would time the test out
    assert_eq!(loader.epoch(0).take(3).count(), 3);
}

#[test]
fn loader_rejects_bad_inputs_and_reports_item_errors() {
    let set = Arc::new(indexed_set(10, 2));
    let loader =
        || Loader::new(set.clone(), Transform::new(unit()), LoaderConfig::eval(4)).unwrap();
    let err = loader().with_indices(vec![3, 10]).err().unwrap();
    assert!(err.to_string().contains("index 10"), "{err}");
    let wrong_shape = ImageSet::new("t", vec![0; 3], vec![0], [1, 1, 3], 2).unwrap();
    assert!(matches!(
        loader().with_triggers(wrong_shape, 2),
        Err(DataError::Invalid(_))
    ));
    let bad_norm = Loader::new(
        set.clone(),
        Transform::new(Normalization::imagenet()),
        LoaderConfig::eval(4),
    );
    assert!(matches!(bad_norm, Err(DataError::Invalid(_))));
    assert!(Loader::new(set, Transform::new(unit()), LoaderConfig::eval(0)).is_err());

    // A lazily decoded dataset whose image is corrupt yields an error naming the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/corrupt.png"), b"nope").unwrap();
    let options = ipr_data::ImageOptions {
        resize: None,
        crop: 4,
        channels: 1,
    };
    let folder = Arc::new(ipr_data::ImageFolder::open(dir.path(), options).unwrap());
    let loader = Loader::new(folder, Transform::new(unit()), LoaderConfig::eval(4)).unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(results.len(), 1);
    let msg = results[0].as_ref().unwrap_err().to_string();
    assert!(
        msg.contains("item 0") && msg.contains("corrupt.png"),
        "{msg}"
    );
}

#[test]
fn batch_to_tensors_keeps_values_and_labels() {
    let batch = Batch {
        images: (0..24).map(|v| v as f32 / 2.0).collect(),
        labels: vec![3, 0],
        shape: [2, 3, 2, 2],
    };
    let (images, labels) = batch.to_tensors(&burn::prelude::Device::default());
    assert_eq!(images.dims(), [2, 3, 2, 2]);
    assert_eq!(
        images.into_data().iter::<f32>().collect::<Vec<_>>(),
        batch.images
    );
    assert_eq!(labels.into_data().iter::<i64>().collect::<Vec<_>>(), [3, 0]);
}

#[test]
fn image_set_validates_its_parts() {
    assert!(ImageSet::new("x", vec![0; 5], vec![0, 1], [1, 1, 2], 2).is_err());
    assert!(ImageSet::new("x", vec![0; 4], vec![0, 2], [1, 1, 2], 2).is_err());
    assert!(ImageSet::new("x", vec![], vec![], [0, 1, 2], 2).is_err());
    let set = ImageSet::new("x", vec![1, 2, 3, 4], vec![0, 1], [1, 1, 2], 2).unwrap();
    assert_eq!(
        set.get(1).unwrap(),
        ipr_data::Sample {
            pixels: vec![3, 4],
            label: 1
        }
    );
    assert_eq!(set.name(), "x");
}
