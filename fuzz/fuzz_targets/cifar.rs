//! The CIFAR-10/100 binary readers: one batch file (CIFAR-100 when the first byte is odd) is
//! a data set or an error naming the file.
#![no_main]

use ipr_data::{Dataset, ImageDataset, parse_cifar10, parse_cifar100};
use ipr_fuzz::{FILE, assert_names, file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let parsed = if which & 1 == 1 { parse_cifar100(file(), bytes) } else { parse_cifar10(file(), bytes) };
    match parsed {
        Ok(set) => {
            assert_eq!(set.pixels().len(), set.len() * 3 * 32 * 32);
            assert!(set.labels().iter().all(|&l| l < set.num_classes()));
        }
        Err(e) => assert_names(&e.to_string(), FILE),
    }
});
