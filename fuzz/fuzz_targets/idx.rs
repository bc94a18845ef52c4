//! The IDX reader (MNIST, Fashion-MNIST): an image file and a label file (raw or gzipped),
//! split from one input by `ipr_fuzz::split`, are a data set or an error naming the file.
#![no_main]

use std::path::Path;

use ipr_data::{Dataset, IdxFile, ImageDataset, parse_idx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (images, labels) = ipr_fuzz::split(data);
    let images = IdxFile { path: Path::new("/fuzz/images-idx3-ubyte"), bytes: images };
    let labels = IdxFile { path: Path::new("/fuzz/labels-idx1-ubyte"), bytes: labels };
    match parse_idx("fuzz", images, labels) {
        Ok(set) => {
            let size: usize = set.shape().iter().product();
            assert_eq!(set.pixels().len(), set.len() * size);
            assert!(set.labels().iter().all(|&l| l < set.num_classes()));
        }
        Err(e) => assert!(e.to_string().contains("/fuzz/"), "the error names no file: {e}"),
    }
});
