//! Export of a trained model as a PyTorch state dict in a safetensors file, with the key names,
//! dtypes and layouts of the DeepIPR reference's modules, so that PyTorch users load it with
//! `model.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! - A model without passports (a V0 model, or the public model of V2/V3) becomes the state
//!   dict of the reference's *normal* modules (`AlexNetNormal`, `ResNet18`, ResNet-9): conv and
//!   norm keys as ours, linear weights transposed to `[out, in]`, the 224 px AlexNet's head as
//!   `classifier.{1,4,6}`, the 224 px ResNet stem as `convbnrelu_1.0`, and
//!   `num_batches_tracked` (int64) beside every batch norm: it loads with `strict=True`.
//! - A V1 model becomes the state dict of the reference's `PassportBlock` model: `key`, `skey`
//!   (public in V1 by design), the `weight` alias of the conv weight and the non-affine norm's
//!   statistics. The signature buffers `b` and `sign_loss.b` are the owner's and are not
//!   written: load with `strict=False`, the missing keys being exactly those (the forward pass
//!   does not read them).
//! - A model holding private passports (the owner's V2/V3 model) is refused: its public model
//!   is what is distributed.
//!
//! The file's metadata say what a user needs to rebuild the input transform and the module:
//! architecture, scheme, classes, input channels and size, width, norm, mean and std.
//!
//! # Example
//! ```
//! use burn::prelude::*;
//! use ipr_export::{ExportInfo, KeyStyle, state_dict};
//! use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig, Scheme};
//!
//! let device = Device::flex();
//! let mut config = NetConfig::new(Arch::Alexnet, 10);
//! config.width = 0.25;
//! let model = AlexNet::init(&config, &Layout::none(), &device).unwrap();
//! let info = ExportInfo { config, scheme: Scheme::V0, mean: vec![0.5], std: vec![0.25] };
//! let tensors = state_dict(&model, &info, KeyStyle::Reference).unwrap();
//! assert_eq!(ipr_export::metadata(&model, &info, KeyStyle::Reference)["module"], "AlexNetNormal");
//! let linear = tensors.iter().find(|t| t.name == "classifier.weight").unwrap();
//! assert_eq!(linear.shape, [10, 64 * 4 * 4]); // PyTorch's [out, in]
//! assert!(tensors.iter().any(|t| t.name == "features.0.bn.num_batches_tracked"));
//! ```
#![deny(missing_docs)]

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use ipr_models::{Arch, Net, NetConfig, ParamVisitor, Scheme, block_specs, tensor_values, visit_params};
use ipr_passport::NormKind;

/// What the export needs to know of a model beyond its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportInfo {
    /// Its config.
    pub config: NetConfig,
    /// The scheme it was trained with.
    pub scheme: Scheme,
    /// Per-channel mean of the input normalisation.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of the input normalisation.
    pub std: Vec<f32>,
}

/// Which key names the file gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyStyle {
    /// The reference's PyTorch modules (default).
    #[default]
    Reference,
    /// Our record's names and layouts, as they are (linear weights `[in, out]`).
    Burn,
}

/// A tensor of the state dict.
#[derive(Clone, Debug, PartialEq)]
pub struct StateTensor {
    /// Its key.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: Data,
}

/// The values of a state-dict tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit integers (`num_batches_tracked`).
    I64(Vec<i64>),
}

/// Why a model cannot be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The model holds private passports.
    #[error("this is an owner's model: it holds the private passports of a {0} model, which are the owner's secret; export its public model (`public.bpk`) instead")]
    Private(Scheme),
    /// An instance-norm block learnt an affine the reference's `InstanceNorm2d` cannot hold.
    #[error("block `{0}` uses instance norm with a learnt scale and shift, but the reference's InstanceNorm2d has none: this model cannot be written as the reference's modules (use --keys burn)")]
    InstanceAffine(String),
    /// The file cannot be written.
    #[error("cannot write `{path}`: {message}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Every float parameter of a model with its record path, shape and values.
struct Collect(Vec<(String, Vec<usize>, Vec<f32>)>);

impl ParamVisitor for Collect {
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
        self.0.push((path.to_string(), param.lazy_shape().to_vec(), tensor_values(param.val())));
    }
}

/// The reference's key of our record path `path`.
fn reference_key(path: &str, config: &NetConfig) -> String {
    if let Some(rest) = path.strip_prefix("deep_classifier.") {
        return format!("classifier.{rest}");
    }
    if let Some(rest) = path.strip_prefix("convbnrelu_1.").filter(|_| config.arch != Arch::Alexnet && config.imagenet()) {
        return format!("convbnrelu_1.0.{rest}");
    }
    path.to_string()
}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| values[r * cols + c])).collect()
}

/// The state dict of `model` in `style`.
///
/// # Errors
/// [`ExportError::Private`] for a model holding private passports, and
/// [`ExportError::InstanceAffine`] for an instance-norm block whose affine the reference cannot
/// hold.
pub fn state_dict<M: Net>(model: &M, info: &ExportInfo, style: KeyStyle) -> Result<Vec<StateTensor>, ExportError> {
    if model.is_private() {
        return Err(ExportError::Private(info.scheme));
    }
    let mut collect = Collect(Vec::new());
    visit_params(model, &mut collect);
    if style == KeyStyle::Burn {
        return Ok(collect.0.into_iter().map(|(name, shape, v)| StateTensor { name, shape, data: Data::F32(v) }).collect());
    }
    let passport_prefixes: Vec<String> = block_specs(&info.config)
        .into_iter()
        .filter(|s| model.blocks().iter().any(|(p, b)| *p == s.path && b.is_passport()))
        .map(|s| s.record_prefix)
        .collect();
    let mut out = Vec::new();
    for (path, shape, values) in collect.0 {
        let key = reference_key(&path, &info.config);
        // The reference's InstanceNorm2d is not affine: only an identity affine can be left out.
        if info.config.norm == NormKind::In && (path.ends_with(".bn.weight") || path.ends_with(".bn.bias")) {
            let identity = if path.ends_with(".weight") { 1.0 } else { 0.0 };
            if values.iter().any(|v| (v - identity).abs() > 1e-6) {
                return Err(ExportError::InstanceAffine(path.trim_end_matches(".bn.weight").trim_end_matches(".bn.bias").to_string()));
            }
            continue;
        }
        let is_linear = shape.len() == 2;
        let (shape, values) = if is_linear { (vec![shape[1], shape[0]], transpose(&values, shape[0], shape[1])) } else { (shape, values) };
        if let Some(prefix) = key.strip_suffix(".conv.weight").filter(|p| passport_prefixes.iter().any(|q| q == p)) {
            // The reference's PassportBlock registers its conv weight twice.
            out.push(StateTensor { name: format!("{prefix}.weight"), shape: shape.clone(), data: Data::F32(values.clone()) });
        }
        if let Some(prefix) = key.strip_suffix(".running_var") {
            out.push(StateTensor { name: format!("{prefix}.num_batches_tracked"), shape: vec![], data: Data::I64(vec![0]) });
        }
        out.push(StateTensor { name: key, shape, data: Data::F32(values) });
    }
    Ok(out)
}

/// The file's metadata: what a user needs to rebuild the module (`module`: the reference's class
/// whose state dict the file is) and the input transform.
pub fn metadata<M: Net>(model: &M, info: &ExportInfo, style: KeyStyle) -> HashMap<String, String> {
    let c = &info.config;
    let norm = match c.norm {
        NormKind::Bn => "bn",
        NormKind::Gn => "gn",
        NormKind::In => "in",
        NormKind::None => "none",
    };
    let passports = model.blocks().iter().any(|(_, b)| b.is_passport());
    let module = match (c.arch, passports) {
        (Arch::Alexnet, false) => "AlexNetNormal",
        (Arch::Alexnet, true) => "AlexNetPassport",
        (Arch::Resnet9, false) => "ResNet9",
        (Arch::Resnet18, false) => "ResNet18",
        (Arch::Resnet9, true) => "ResNet9Passport",
        (Arch::Resnet18, true) => "ResNet18Passport",
    };
    let floats = |v: &[f32]| serde_json::to_string(v).unwrap_or_default();
    [
        ("format", "pt".to_string()),
        ("producer", "deepipr-rs".into()),
        ("keys", if style == KeyStyle::Reference { "reference" } else { "burn" }.into()),
        ("module", module.into()),
        ("arch", c.arch.name().into()),
        ("scheme", info.scheme.name().into()),
        ("num_classes", c.num_classes.to_string()),
        ("in_channels", c.in_channels.to_string()),
        ("input_size", c.input_size.to_string()),
        ("width", c.width.to_string()),
        ("norm", norm.into()),
        ("mean", floats(&info.mean)),
        ("std", floats(&info.std)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes `tensors` and `metadata` as a safetensors file at `path`, atomically (a temporary
/// file renamed over it).
///
/// # Errors
/// [`ExportError::Write`] naming the file.
pub fn write(tensors: &[StateTensor], metadata: HashMap<String, String>, path: &Path) -> Result<(), ExportError> {
    let fail = |message: String| ExportError::Write { path: path.display().to_string(), message };
    let bytes: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| match &t.data {
            Data::F32(v) => (t.name.clone(), safetensors::Dtype::F32, t.shape.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Data::I64(v) => (t.name.clone(), safetensors::Dtype::I64, t.shape.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, dtype, shape, data)| safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let encoded = safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
    ipr_models::write_atomic(path, &encoded, None).map_err(|e| fail(e.to_string()))
}
