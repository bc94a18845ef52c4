//! AlexNet as in the DeepIPR reference: a 32 px variant (five conv blocks, three 2×2 max pools,
//! one linear layer) and the 224 px ImageNet variant (torchvision's layout).
//!
//! Block paths are feature indices (`0`, `2`, `4`, `5`, `6`), as in the reference state dicts
//! (`features.4.conv.weight`). The 32 px classifier is `classifier`; the 224 px classifier's
//! linear layers are `deep_classifier.{1,4,6}` (the reference's `classifier.{1,4,6}`).

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use ipr_passport::{ConvBlock, ConvBlockConfig, Route};

use crate::blocks::{ALEXNET_POOLS, block_specs};
use crate::net::{Router, check_layout};
use crate::{Layout, ModelError, Net, NetConfig, NetOutput};

/// AlexNet built from conv blocks.
#[derive(Module, Debug)]
pub struct AlexNet {
    /// Feature extractor: conv blocks at 0, 2, 4, 5, 6; max pools (no parameters) at 1, 3, 7.
    pub features: Vec<Option<ConvBlock>>,
    /// Linear head of the 32 px variant.
    pub classifier: Option<Linear>,
    /// Linear layers of the 224 px head (at indices 1, 4 and 6).
    pub deep_classifier: Vec<Option<Linear>>,
    /// Dropout of the 224 px head.
    pub dropout: Dropout,
    /// Whether this is the 224 px variant.
    #[module(skip)]
    pub imagenet: bool,
}

impl AlexNet {
    fn pool(&self, x: Tensor<4>) -> Tensor<4> {
        let k = if self.imagenet { 3 } else { 2 };
        ipr_conv::max_pool2d(x, [k, k], [2, 2])
    }
}

impl Net for AlexNet {
    fn init(config: &NetConfig, layout: &Layout, device: &Device) -> Result<Self, ModelError> {
        config.check()?;
        if config.arch != crate::Arch::Alexnet {
            return Err(ModelError::Config(format!("an AlexNet cannot be built for arch {}", config.arch.name())));
        }
        let imagenet = config.imagenet();
        let specs = block_specs(config);
        let paths: Vec<String> = specs.iter().map(|s| s.path.clone()).collect();
        check_layout(&paths, layout, config.arch)?;

        let mut features: Vec<Option<ConvBlock>> = (0..8).map(|_| None).collect();
        for spec in &specs {
            let index: usize = spec.path.parse().expect("AlexNet block paths are feature indices");
            let passport = layout.is_passport(&spec.path).then_some([spec.input_side; 2]);
            features[index] = Some(
                ConvBlockConfig::new(spec.in_channels, spec.out_channels, spec.kernel)
                    .with_stride(spec.stride)
                    .with_padding(spec.padding)
                    .with_norm(config.norm)
                    .with_passport(passport)
                    .with_private(layout.is_private())
                    .init(device),
            );
        }
        let last = specs.last().expect("AlexNet has conv blocks");
        let channels = last.out_channels;
        // The last conv keeps its side; the last pool halves it.
        let side = crate::blocks::out_side(last.input_side, if imagenet { 3 } else { 2 }, 2, 0);
        let (classifier, deep_classifier) = if imagenet {
            let flat = channels * 36;
            let mut deep: Vec<Option<Linear>> = (0..7).map(|_| None).collect();
            deep[1] = Some(LinearConfig::new(flat, 4096).init(device));
            deep[4] = Some(LinearConfig::new(4096, 4096).init(device));
            deep[6] = Some(LinearConfig::new(4096, config.num_classes).init(device));
            (None, deep)
        } else {
            (Some(LinearConfig::new(channels * side * side, config.num_classes).init(device)), vec![])
        };
        Ok(Self {
            features,
            classifier,
            deep_classifier,
            dropout: DropoutConfig::new(0.5).init(),
            imagenet,
        })
    }

    fn forward_route(&self, x: Tensor<4>, route: Route, tap: &mut dyn FnMut(&str, &Tensor<4>)) -> NetOutput {
        let mut x = x;
        let mut gammas = Vec::new();
        let mut router = Router::new(route);
        for (idx, feature) in self.features.iter().enumerate() {
            x = match feature {
                Some(block) => {
                    let path = idx.to_string();
                    x = router.enter(x, block.is_private());
                    tap(&path, &x);
                    let out = block.forward_route(x, router.block_route());
                    if let Some(gamma) = out.gamma {
                        gammas.push((path, gamma));
                    }
                    out.out
                }
                None => {
                    debug_assert!(ALEXNET_POOLS.contains(&idx));
                    self.pool(x)
                }
            };
        }
        if self.imagenet {
            x = adaptive_avg_pool2d(x, [6, 6]); // [batch, c, 6, 6]
        }
        let x: Tensor<2> = x.flatten(1, 3); // [batch, c·h·w]
        let logits = match &self.classifier {
            Some(linear) => linear.forward(x),
            None => {
                let layer = |i: usize| self.deep_classifier[i].as_ref().expect("224 px head layer");
                let x = relu(layer(1).forward(self.dropout.forward(x)));
                let x = relu(layer(4).forward(self.dropout.forward(x)));
                layer(6).forward(x)
            }
        };
        router.finish(logits, gammas)
    }

    fn reset_head(mut self, num_classes: usize, device: &Device) -> Self {
        let fresh = |old: &Linear| LinearConfig::new(old.weight.dims()[0], num_classes).init(device);
        if let Some(linear) = &self.classifier {
            self.classifier = Some(fresh(linear));
        } else if let Some(Some(linear)) = self.deep_classifier.get(6) {
            self.deep_classifier[6] = Some(fresh(linear));
        }
        self
    }

    fn blocks(&self) -> Vec<(String, &ConvBlock)> {
        self.features
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|b| (i.to_string(), b)))
            .collect()
    }

    fn try_map_blocks<E>(
        mut self,
        f: &mut dyn FnMut(&str, ConvBlock) -> Result<ConvBlock, E>,
    ) -> Result<Self, E> {
        self.features = self
            .features
            .into_iter()
            .enumerate()
            .map(|(i, feature)| feature.map(|b| f(&i.to_string(), b)).transpose())
            .collect::<Result<_, E>>()?;
        Ok(self)
    }
}
