//! End to end on the real Fashion-MNIST installed by Debian's `dataset-fashion-mnist`.

use std::path::Path;

use burn_dataset::Dataset;
use ipr_data::{FASHION_MNIST_DIR, ImageDataset, ImageSet, Split, read_idx};

fn read(split: Split) -> ImageSet {
    assert!(
        Path::new(FASHION_MNIST_DIR).is_dir(),
        "{FASHION_MNIST_DIR} is missing: run `apt-get install dataset-fashion-mnist` before testing"
    );
    read_idx(FASHION_MNIST_DIR, split).unwrap_or_else(|e| panic!("{e}"))
}

fn check(set: &ImageSet, n: usize) {
    assert_eq!(set.len(), n);
    assert_eq!((set.shape(), set.num_classes()), ([1, 28, 28], 10));
    let mut counts = [0usize; 10];
    for &label in set.labels() {
        counts[label] += 1;
    }
    assert_eq!(counts, [n / 10; 10]);
    // Real images, not blank: mean brightness of Fashion-MNIST is about 0.286 * 255 ≈ 73.
    let mean = set.pixels().iter().map(|&p| p as f64).sum::<f64>() / set.pixels().len() as f64;
    assert!((65.0..80.0).contains(&mean), "mean pixel {mean}");
}

#[test]
fn fashion_mnist_train_and_test_splits() {
    check(&read(Split::Train), 60_000);
    check(&read(Split::Test), 10_000);
}
