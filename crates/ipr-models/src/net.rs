//! The architecture-independent face of a model: its config, the [`Net`] trait every
//! architecture implements, and what a forward pass returns.

use burn::prelude::*;
use ipr_passport::{ConvBlock, NormKind, Route};
use serde::{Deserialize, Serialize};

use crate::{Layout, ModelError};

/// The architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// AlexNet (32 px or 224 px variant).
    Alexnet,
    /// ResNet-9: ResNet-18 with one BasicBlock per stage.
    Resnet9,
    /// ResNet-18.
    Resnet18,
}

impl Arch {
    /// The name used in plans and file names.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Alexnet => "alexnet",
            Arch::Resnet9 => "resnet9",
            Arch::Resnet18 => "resnet18",
        }
    }
}

/// Everything that fixes a model's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// The architecture.
    pub arch: Arch,
    /// Output classes.
    pub num_classes: usize,
    /// Input channels: 3 for colour, 1 for gray data.
    pub in_channels: usize,
    /// Input side in pixels: 32 (CIFAR-style variant) or 224 (ImageNet-style variant).
    pub input_size: usize,
    /// Multiplier on every channel count (1.0 = the reference widths).
    pub width: f64,
    /// Normalisation of every conv block.
    pub norm: NormKind,
}

impl NetConfig {
    /// A config with the reference widths, batch norm, 3 input channels and 32 px inputs.
    pub fn new(arch: Arch, num_classes: usize) -> Self {
        Self { arch, num_classes, in_channels: 3, input_size: 32, width: 1.0, norm: NormKind::Bn }
    }

    /// Channels of a layer whose reference width is `base`, scaled by [`NetConfig::width`].
    pub fn channels(&self, base: usize) -> usize {
        ((base as f64 * self.width).round() as usize).max(1)
    }

    /// Whether this is the 224 px (ImageNet-style) variant.
    pub fn imagenet(&self) -> bool {
        self.input_size == 224
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the setting and its allowed values.
    pub fn check(&self) -> Result<(), ModelError> {
        let fail = |m: String| Err(ModelError::Config(m));
        if self.input_size != 32 && self.input_size != 224 {
            return fail(format!("input_size is {}, but must be 32 or 224", self.input_size));
        }
        if !(self.width > 0.0 && self.width <= 4.0) {
            return fail(format!("width is {}, but must be in (0, 4]", self.width));
        }
        if self.num_classes < 2 {
            return fail(format!("num_classes is {}, but must be at least 2", self.num_classes));
        }
        if self.in_channels == 0 {
            return fail("in_channels must be at least 1".into());
        }
        Ok(())
    }
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct NetOutput {
    /// `[batch, num_classes]`: the path the forward took (the public path for [`Route::Both`]).
    pub logits: Tensor<2>,
    /// `[batch, num_classes]`: the private path, for [`Route::Both`] through private layers.
    pub private_logits: Option<Tensor<2>>,
    /// `(path, γ)` of every passport layer whose passport path ran, in forward order; γ is
    /// `[channels]`.
    pub gammas: Vec<(String, Tensor<1>)>,
}

/// Tracks a [`Route::Both`] forward through a network: the batch is shared until the first
/// unit (a block, or a residual block) holding a private layer, then duplicated into a public
/// half and a private half that every later block treats separately. The prefix before the
/// split runs once for both paths.
pub(crate) struct Router {
    route: Route,
    dual: bool,
}

impl Router {
    pub(crate) fn new(route: Route) -> Self {
        Self { route, dual: false }
    }

    /// Call at the input of each unit; `private_ahead` says whether it holds a private layer.
    pub(crate) fn enter(&mut self, x: Tensor<4>, private_ahead: bool) -> Tensor<4> {
        if self.route == Route::Both && !self.dual && private_ahead {
            self.dual = true;
            Tensor::cat(vec![x.clone(), x], 0)
        } else {
            x
        }
    }

    /// The route of the blocks of the current unit.
    pub(crate) fn block_route(&self) -> Route {
        match (self.route, self.dual) {
            (Route::Both, false) => Route::Public,
            (route, _) => route,
        }
    }

    /// Splits the final logits into the public and the private half.
    pub(crate) fn finish(&self, logits: Tensor<2>, gammas: Vec<(String, Tensor<1>)>) -> NetOutput {
        if self.dual {
            let half = logits.dims()[0] / 2;
            let private = logits.clone().narrow(0, half, half);
            NetOutput { logits: logits.narrow(0, 0, half), private_logits: Some(private), gammas }
        } else {
            NetOutput { logits, private_logits: None, gammas }
        }
    }
}

/// A classification network built from [`ConvBlock`]s.
pub trait Net: Module + Sized + 'static {
    /// Builds the network; the blocks `layout` names become passport layers with random
    /// passports.
    ///
    /// # Errors
    /// A bad config, or a layout naming a block the architecture lacks.
    fn init(config: &NetConfig, layout: &Layout, device: &Device) -> Result<Self, ModelError>;

    /// Runs the network along `route` and calls `tap(path, input)` with the input of every
    /// conv block. With [`Route::Both`], the layers before the first private layer run once and
    /// feed both paths; `logits` is then the public path and `private_logits` the private one.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, input_size, input_size]`
    /// - `logits`, `private_logits`: `[batch, num_classes]`
    fn forward_route(&self, x: Tensor<4>, route: Route, tap: &mut dyn FnMut(&str, &Tensor<4>)) -> NetOutput;

    /// Every conv block with its path, in forward order.
    fn blocks(&self) -> Vec<(String, &ConvBlock)>;

    /// The network with its last linear layer re-initialised for `num_classes` outputs, as a
    /// model built with that many classes would have it (transfer learning; RTAL).
    fn reset_head(self, num_classes: usize, device: &Device) -> Self;

    /// Rebuilds the network with every conv block passed through `f`.
    ///
    /// # Errors
    /// The first error `f` returns.
    fn try_map_blocks<E>(
        self,
        f: &mut dyn FnMut(&str, ConvBlock) -> Result<ConvBlock, E>,
    ) -> Result<Self, E>;

    /// Runs the network.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, input_size, input_size]`
    /// - `logits`: `[batch, num_classes]`
    fn forward(&self, x: Tensor<4>) -> NetOutput {
        self.forward_route(x, Route::Public, &mut |_, _| {})
    }

    /// Runs the private path of a private passport model (the only path of any other model).
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, input_size, input_size]`
    /// - `logits`: `[batch, num_classes]`
    fn forward_private(&self, x: Tensor<4>) -> NetOutput {
        self.forward_route(x, Route::Private, &mut |_, _| {})
    }

    /// The input of every conv block for the batch `x`, by path (for passport sampling).
    fn block_inputs(&self, x: Tensor<4>) -> Vec<(String, Tensor<4>)> {
        let mut inputs = Vec::new();
        self.forward_route(x, Route::Public, &mut |path, t| inputs.push((path.to_string(), t.clone())));
        inputs
    }

    /// The paths of every passport layer, in forward order.
    fn passport_paths(&self) -> Vec<String> {
        self.blocks().into_iter().filter(|(_, b)| b.is_passport()).map(|(p, _)| p).collect()
    }

    /// Whether the model has private passport layers (V2/V3).
    fn is_private(&self) -> bool {
        self.blocks().iter().any(|(_, b)| b.is_private())
    }

    /// The public path with every passport layer folded into an affine norm (no passports).
    fn fold(self) -> Self {
        self.fold_route(Route::Public)
    }

    /// The function of `route` with every passport layer folded into an affine norm: no
    /// passport tensor and no private statistics are left, and the record loads into the
    /// model of the same architecture built without passports ([`ConvBlock::fold_route`]).
    fn fold_route(self, route: Route) -> Self {
        self.try_map_blocks::<std::convert::Infallible>(&mut |_, b| Ok(b.fold_route(route)))
            .unwrap_or_else(|e| match e {})
    }
}

/// Checks a layout against a model's block paths; used by every architecture's `init`.
pub(crate) fn check_layout(paths: &[String], layout: &Layout, arch: Arch) -> Result<(), ModelError> {
    layout.check(paths, arch.name())
}
