//! ResNet-18 and ResNet-9 as in the DeepIPR reference (CIFAR-style 3×3 stem for 32 px inputs,
//! 7×7 stride-2 stem and max pool for 224 px inputs).
//!
//! Block paths mirror the reference state dicts: `convbnrelu_1` (stem), then
//! `layer{1..4}.{i}.convbnrelu_1`, `.convbn_2` and `.shortcut`. As in the reference, every conv
//! block (`convbn_2` and `shortcut` included) ends in its own ReLU.

use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;
use ipr_passport::{ConvBlock, ConvBlockConfig, Route};

use crate::blocks::{block_specs, blocks_per_stage};
use crate::net::{Router, check_layout};
use crate::{Arch, Layout, ModelError, Net, NetConfig, NetOutput};

/// A residual block: `ReLU(convbn_2(convbnrelu_1(x)) + shortcut(x))`, computed without the outer
/// ReLU, which never changes a value or a gradient here (see the forward pass).
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3×3 conv block (carries the stride).
    pub convbnrelu_1: ConvBlock,
    /// Second 3×3 conv block.
    pub convbn_2: ConvBlock,
    /// 1×1 conv block, present when the shape changes.
    pub shortcut: Option<ConvBlock>,
}

/// ResNet-9 / ResNet-18 built from conv blocks.
#[derive(Module, Debug)]
pub struct ResNet {
    /// The stem conv block.
    pub convbnrelu_1: ConvBlock,
    /// Stage 1 (stride 1).
    pub layer1: Vec<BasicBlock>,
    /// Stage 2 (stride 2).
    pub layer2: Vec<BasicBlock>,
    /// Stage 3 (stride 2).
    pub layer3: Vec<BasicBlock>,
    /// Stage 4 (stride 2).
    pub layer4: Vec<BasicBlock>,
    /// The classifier.
    pub linear: Linear,
    /// Whether this is the 224 px variant.
    #[module(skip)]
    pub imagenet: bool,
}

impl ResNet {
    fn stage(&self, stage: usize) -> &[BasicBlock] {
        match stage {
            1 => &self.layer1,
            2 => &self.layer2,
            3 => &self.layer3,
            _ => &self.layer4,
        }
    }
}

impl Net for ResNet {
    fn init(config: &NetConfig, layout: &Layout, device: &Device) -> Result<Self, ModelError> {
        config.check()?;
        if config.arch == Arch::Alexnet {
            return Err(ModelError::Config("a ResNet cannot be built for arch alexnet".into()));
        }
        let specs = block_specs(config);
        let paths: Vec<String> = specs.iter().map(|s| s.path.clone()).collect();
        check_layout(&paths, layout, config.arch)?;
        let mut built: std::collections::HashMap<String, ConvBlock> = specs
            .into_iter()
            .map(|spec| {
                let passport = layout.is_passport(&spec.path).then_some([spec.input_side; 2]);
                let block = ConvBlockConfig::new(spec.in_channels, spec.out_channels, spec.kernel)
                    .with_stride(spec.stride)
                    .with_padding(spec.padding)
                    .with_norm(config.norm)
                    .with_passport(passport)
                    .with_private(layout.is_private())
                    .init(device);
                (spec.path, block)
            })
            .collect();
        let mut take = |path: &str| built.remove(path);
        let per_stage = blocks_per_stage(config.arch);
        let mut stage = |n: usize| -> Vec<BasicBlock> {
            (0..per_stage)
                .map(|i| {
                    let prefix = format!("layer{n}.{i}");
                    BasicBlock {
                        convbnrelu_1: take(&format!("{prefix}.convbnrelu_1")).expect("spec"),
                        convbn_2: take(&format!("{prefix}.convbn_2")).expect("spec"),
                        shortcut: take(&format!("{prefix}.shortcut")),
                    }
                })
                .collect()
        };
        let (layer1, layer2, layer3, layer4) = (stage(1), stage(2), stage(3), stage(4));
        let convbnrelu_1 = built.remove("convbnrelu_1").expect("stem spec");
        Ok(Self {
            convbnrelu_1,
            layer1,
            layer2,
            layer3,
            layer4,
            linear: LinearConfig::new(config.channels(512), config.num_classes).init(device),
            imagenet: config.imagenet(),
        })
    }

    fn forward_route(&self, x: Tensor<4>, route: Route, tap: &mut dyn FnMut(&str, &Tensor<4>)) -> NetOutput {
        let mut gammas = Vec::new();
        let mut router = Router::new(route);
        let mut run = |path: String, block: &ConvBlock, x: Tensor<4>, route: Route| {
            tap(&path, &x);
            let out = block.forward_route(x, route);
            if let Some(gamma) = out.gamma {
                gammas.push((path, gamma));
            }
            out.out
        };
        let x = router.enter(x, self.convbnrelu_1.is_private());
        let mut x = run("convbnrelu_1".into(), &self.convbnrelu_1, x, router.block_route());
        if self.imagenet {
            x = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init()
                .forward(x);
        }
        for stage in 1..=4 {
            for (i, block) in self.stage(stage).iter().enumerate() {
                let prefix = format!("layer{stage}.{i}");
                let private = block.convbnrelu_1.is_private()
                    || block.convbn_2.is_private()
                    || block.shortcut.as_ref().is_some_and(ConvBlock::is_private);
                x = router.enter(x, private);
                let r = router.block_route();
                let out = run(format!("{prefix}.convbnrelu_1"), &block.convbnrelu_1, x.clone(), r);
                let out = run(format!("{prefix}.convbn_2"), &block.convbn_2, out, r);
                let short = match &block.shortcut {
                    Some(sc) => run(format!("{prefix}.shortcut"), sc, x, r),
                    None => x,
                };
                // The reference's ReLU(out + short) is the identity here: every conv block ends
                // in its own ReLU and `x` is a block's output, so both terms are ≥ 0 (and where
                // the sum is 0, so is each term, and their own ReLUs stop the gradient).
                x = out.add(short);
            }
        }
        let [n, c, _, _] = x.dims();
        let pooled = adaptive_avg_pool2d(x, [1, 1]).reshape([n, c]); // [batch, c]
        router.finish(self.linear.forward(pooled), gammas)
    }

    fn reset_head(mut self, num_classes: usize, device: &Device) -> Self {
        self.linear = LinearConfig::new(self.linear.weight.dims()[0], num_classes).init(device);
        self
    }

    fn blocks(&self) -> Vec<(String, &ConvBlock)> {
        let mut out = vec![("convbnrelu_1".to_string(), &self.convbnrelu_1)];
        for stage in 1..=4 {
            for (i, block) in self.stage(stage).iter().enumerate() {
                let prefix = format!("layer{stage}.{i}");
                out.push((format!("{prefix}.convbnrelu_1"), &block.convbnrelu_1));
                out.push((format!("{prefix}.convbn_2"), &block.convbn_2));
                if let Some(sc) = &block.shortcut {
                    out.push((format!("{prefix}.shortcut"), sc));
                }
            }
        }
        out
    }

    fn try_map_blocks<E>(
        self,
        f: &mut dyn FnMut(&str, ConvBlock) -> Result<ConvBlock, E>,
    ) -> Result<Self, E> {
        let convbnrelu_1 = f("convbnrelu_1", self.convbnrelu_1)?;
        let mut map_stage = |n: usize, blocks: Vec<BasicBlock>| -> Result<Vec<BasicBlock>, E> {
            blocks
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    let prefix = format!("layer{n}.{i}");
                    Ok(BasicBlock {
                        convbnrelu_1: f(&format!("{prefix}.convbnrelu_1"), b.convbnrelu_1)?,
                        convbn_2: f(&format!("{prefix}.convbn_2"), b.convbn_2)?,
                        shortcut: b.shortcut.map(|s| f(&format!("{prefix}.shortcut"), s)).transpose()?,
                    })
                })
                .collect()
        };
        let layer1 = map_stage(1, self.layer1)?;
        let layer2 = map_stage(2, self.layer2)?;
        let layer3 = map_stage(3, self.layer3)?;
        let layer4 = map_stage(4, self.layer4)?;
        Ok(Self {
            convbnrelu_1,
            layer1,
            layer2,
            layer3,
            layer4,
            linear: self.linear,
            imagenet: self.imagenet,
        })
    }
}
