//! The trigger-set reader: a labels file and one image (JPEG or PNG), split from one input by
//! `ipr_fuzz::split` after three bytes of image options (channels, crop, resize), are labels
//! and a `[channels, crop, crop]` image, or errors naming the file.
#![no_main]

use std::path::Path;

use ipr_data::{ImageOptions, decode_image, parse_trigger_labels};
use ipr_fuzz::assert_names;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, crop, extra], rest)) = data.split_first_chunk::<3>() else { return };
    let crop = u32::from(crop % 64) + 1;
    let options = ImageOptions {
        channels: if flags & 1 == 1 { 3 } else { 1 },
        crop,
        resize: (flags & 2 == 2).then_some(crop + u32::from(extra)),
    };
    let (labels, image) = ipr_fuzz::split(rest);
    let labels_path = Path::new("/fuzz/labels-cifar.txt");
    match parse_trigger_labels(&String::from_utf8_lossy(labels), labels_path, 10) {
        Ok(labels) => assert!(labels.iter().all(|&l| l < 10)),
        Err(e) => assert_names(&e.to_string(), "/fuzz/labels-cifar.txt"),
    }
    let image_path = Path::new("/fuzz/pics/1.png");
    match decode_image(image_path, image, &options) {
        Ok(pixels) => assert_eq!(pixels.len(), options.shape().iter().product::<usize>()),
        Err(e) => assert_names(&e.to_string(), "/fuzz/pics/1.png"),
    }
});
