//! What the fuzz targets share: splitting one input into several files, the tiny model every
//! model-level target loads into, and the oracle that an error names its file.
#![deny(missing_docs)]

use std::path::Path;

use burn::prelude::Device;
use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig};
use ipr_passport::NormKind;

/// The path every target names its input by; errors must mention it.
pub const FILE: &str = "/fuzz/input";

/// [`FILE`] as a path.
pub fn file() -> &'static Path {
    Path::new(FILE)
}

/// Splits `data` into a first part whose length (at most 65535 bytes) is read from the first
/// two bytes (little-endian) and the rest: two files from one input.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let (head, rest) = data.split_at(data.len().min(2));
    let len = match head {
        [a, b] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    rest.split_at(len.min(rest.len()))
}

/// Panics unless `message` names `name`: the oracle for "every error names the file".
pub fn assert_names(message: &str, name: &str) {
    assert!(message.contains(name), "the error does not name `{name}`: {message}");
}

/// The config of the tiny model the model-level targets load into: AlexNet, 32 px, one input
/// channel, two classes, width 1/32 (channels 2, 6, 12, 8, 8), batch norm.
pub fn tiny_config() -> NetConfig {
    NetConfig { arch: Arch::Alexnet, num_classes: 2, in_channels: 1, input_size: 32, width: 1.0 / 32.0, norm: NormKind::Bn }
}

/// The tiny model's passport layout: features 4, 5 (text `A`) and 6; private (V2/V3) when
/// `private`.
pub fn tiny_layout(private: bool) -> Layout {
    Layout::parse("4 = true\n5 = \"A\"\n6 = true\n", "tiny").expect("a valid layout").with_private(private)
}

/// The tiny model: with public passport layers (V1), with private ones (`private`, the owner's
/// V2/V3 model), or without passports (`None`, a V0 or V2/V3 public model).
pub fn tiny_model(passports: Option<bool>) -> AlexNet {
    let layout = passports.map_or_else(Layout::none, tiny_layout);
    AlexNet::init(&tiny_config(), &layout, &Device::flex()).expect("the tiny model builds")
}
