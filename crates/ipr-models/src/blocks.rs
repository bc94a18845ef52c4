//! The one description of every architecture's conv blocks: path, channels, kernel, stride,
//! padding and input side. The models are built from it, and the reference importer reads
//! PyTorch state dicts through it.

use crate::{Arch, NetConfig};

/// One conv block of an architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    /// Block path (`4` for AlexNet's feature 4, `layer4.0.shortcut` for a ResNet block).
    pub path: String,
    /// Where the block's tensors sit in a record or state dict (`features.4`, `layer4.0.shortcut`).
    pub record_prefix: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Output channels at the reference width (`width = 1`).
    pub base_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Side of the block's input in pixels (the side of its passports).
    pub input_side: usize,
}

/// Feature indices of AlexNet's max pools.
pub(crate) const ALEXNET_POOLS: [usize; 3] = [1, 3, 7];

/// `(h + 2p - k) / s + 1`: the side of a conv or pool output.
pub(crate) fn out_side(side: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (side + 2 * padding - kernel) / stride + 1
}

/// Every conv block of the model `config` describes, in forward order.
pub fn block_specs(config: &NetConfig) -> Vec<BlockSpec> {
    match config.arch {
        Arch::Alexnet => alexnet(config),
        Arch::Resnet9 | Arch::Resnet18 => resnet(config),
    }
}

fn alexnet(config: &NetConfig) -> Vec<BlockSpec> {
    let imagenet = config.imagenet();
    // (feature index, kernel, stride, padding, reference channels)
    let first = if imagenet { (0, 11, 4, 2, 64) } else { (0, 5, 1, 2, 64) };
    let convs = [first, (2, 5, 1, 2, 192), (4, 3, 1, 1, 384), (5, 3, 1, 1, 256), (6, 3, 1, 1, 256)];
    let pool_kernel = if imagenet { 3 } else { 2 };
    let (mut side, mut channels) = (config.input_size, config.in_channels);
    let mut specs = Vec::new();
    for index in 0..8 {
        if ALEXNET_POOLS.contains(&index) {
            side = out_side(side, pool_kernel, 2, 0);
            continue;
        }
        let &(_, kernel, stride, padding, base) = convs.iter().find(|c| c.0 == index).expect("a conv at every other index");
        let out = config.channels(base);
        specs.push(BlockSpec {
            path: index.to_string(),
            record_prefix: format!("features.{index}"),
            in_channels: channels,
            out_channels: out,
            base_channels: base,
            kernel,
            stride,
            padding,
            input_side: side,
        });
        side = out_side(side, kernel, stride, padding);
        channels = out;
    }
    specs
}

/// Residual blocks per stage: one for ResNet-9, two for ResNet-18.
pub(crate) fn blocks_per_stage(arch: Arch) -> usize {
    if arch == Arch::Resnet9 { 1 } else { 2 }
}

fn resnet(config: &NetConfig) -> Vec<BlockSpec> {
    let mut specs = Vec::new();
    let mut push = |path: String, in_channels, base, kernel, stride, padding, input_side| {
        specs.push(BlockSpec {
            record_prefix: path.clone(),
            path,
            in_channels,
            out_channels: config.channels(base),
            base_channels: base,
            kernel,
            stride,
            padding,
            input_side,
        });
    };
    let mut side = config.input_size;
    let (k, s, p) = if config.imagenet() { (7, 2, 3) } else { (3, 1, 1) };
    push("convbnrelu_1".into(), config.in_channels, 64, k, s, p, side);
    side = out_side(side, k, s, p);
    if config.imagenet() {
        side = out_side(side, 3, 2, 1);
    }
    let mut channels = config.channels(64);
    for (stage, (base, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].into_iter().enumerate() {
        let planes = config.channels(base);
        for i in 0..blocks_per_stage(config.arch) {
            let s = if i == 0 { stride } else { 1 };
            let prefix = format!("layer{}.{i}", stage + 1);
            push(format!("{prefix}.convbnrelu_1"), channels, base, 3, s, 1, side);
            let inner = out_side(side, 3, s, 1);
            push(format!("{prefix}.convbn_2"), planes, base, 3, 1, 1, inner);
            if s != 1 || channels != planes {
                push(format!("{prefix}.shortcut"), channels, base, 1, s, 0, side);
            }
            side = inner;
            channels = planes;
        }
    }
    specs
}
