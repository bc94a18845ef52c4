//! Reading state dicts saved by the PyTorch reference implementation of DeepIPR
//! (github.com/kamwoh/DeepIPR), so that a model trained with PyTorch can be verified here.
//!
//! [`inspect_reference`] tells what a `.pth` file holds (architecture, input size, classes,
//! width, normalisation, scheme, passport layers and their signatures) from its keys and shapes
//! alone; [`load_reference`] builds that model and fills every parameter and running statistic
//! from the file, checking every shape and refusing keys the model has no place for.
//!
//! Keys (reference → ours), for a conv block `B` (`features.4`, `layer4.0.shortcut`):
//! - `B.conv.weight`, `B.conv.bias`, `B.bn.{weight,bias,running_mean,running_var}`: the same;
//! - V1 `PassportBlock`: `B.key`, `B.skey`: the same; `B.b` is the layer's signature;
//! - V2/V3 `PassportPrivateBlock`: `B.scale`, `B.bias` (γ_pub, β_pub) → `B.bn.weight`,
//!   `B.bn.bias`; `B.key_private`, `B.skey_private` → `B.key`, `B.skey`; the reference's one
//!   shared `B.bn.running_*` → both `B.bn.running_*` and `B.private_bn.running_*`;
//! - linear layers: `classifier` (32 px AlexNet) and `linear` (ResNet) keep their names,
//!   the 224 px AlexNet's `classifier.{1,4,6}` become `deep_classifier.{1,4,6}`; weights are
//!   transposed (PyTorch `[out, in]`, burn `[in, out]`).
//!
//! `B.weight` (an alias of `B.conv.weight`), `B.sign_loss.b` / `B.sign_loss_private.b` (aliases
//! of `B.b`) and `num_batches_tracked` carry nothing more and are skipped. A file whose keys sit
//! under a common prefix (`module.` from `DataParallel`, `state_dict.` from a checkpoint
//! dictionary) is read under that prefix.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::{bf16, f16};
use ipr_models::{Arch, LayerSignature, Layout, ModelError, Net, NetConfig, ParamMapper, Scheme, block_specs, map_params, param_paths};
use ipr_passport::{NormKind, Signature};
use pytorch_reader::{DType, PytorchReader};

/// What a reference checkpoint holds, read from its keys and shapes by [`inspect_reference`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceInfo {
    /// The model's config: architecture, classes, input channels and size, width, norm.
    pub config: NetConfig,
    /// [`Scheme::V1`] (public passports, `PassportBlock`), [`Scheme::V2`] (private passports,
    /// `PassportPrivateBlock`, schemes V2 and V3) or [`Scheme::V0`] (no passport layer).
    pub scheme: Scheme,
    /// Our block paths of the passport layers (`4`, `layer4.0.shortcut`), in forward order.
    pub passport_paths: Vec<String>,
    /// The signature of each passport layer (the reference's buffer `b`), in forward order.
    pub signatures: Vec<LayerSignature>,
}

/// Why a reference checkpoint cannot be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The file cannot be read as a PyTorch checkpoint at all.
    #[error("`{file}` is not a PyTorch checkpoint ({reason}): expected a state dict saved by torch.save")]
    NotCheckpoint {
        /// The file.
        file: String,
        /// What the reader said.
        reason: String,
    },
    /// The checkpoint holds neither an AlexNet nor a ResNet of the reference.
    #[error(
        "`{file}` is not a DeepIPR AlexNet/ResNet state dict: none of its {count} tensors is \
         `features.0.conv.weight` (AlexNet) or `convbnrelu_1.conv.weight` (ResNet)"
    )]
    UnknownArch {
        /// The file.
        file: String,
        /// Tensors in the file.
        count: usize,
    },
    /// A key the model needs is missing.
    #[error("`{file}` has no `{key}`: it is not a DeepIPR {model} state dict")]
    MissingKey {
        /// The file.
        file: String,
        /// The missing key.
        key: String,
        /// The model the file was read as.
        model: String,
    },
    /// A tensor has another shape than the model needs.
    #[error("`{file}`: `{key}` has shape {found:?}, but a DeepIPR {model} needs {expected}")]
    Shape {
        /// The file.
        file: String,
        /// The key.
        key: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// What the model needs.
        expected: String,
        /// The model the file was read as.
        model: String,
    },
    /// A tensor that should hold floats holds another type.
    #[error("`{file}`: `{key}` holds {dtype} values, but a float tensor is expected")]
    DType {
        /// The file.
        file: String,
        /// The key.
        key: String,
        /// The element type found.
        dtype: String,
    },
    /// A tensor's data cannot be read.
    #[error("`{file}`: `{key}` cannot be read ({reason}): the file is truncated or corrupt; save it again")]
    Read {
        /// The file.
        file: String,
        /// The key.
        key: String,
        /// What the reader said.
        reason: String,
    },
    /// The file holds a tensor the model has no place for.
    #[error(
        "`{file}` has `{key}`, which a DeepIPR {model} does not have: the file holds another \
         architecture or passport layout; inspect it with `inspect_reference` and load it with that"
    )]
    Unexpected {
        /// The file.
        file: String,
        /// The key left over.
        key: String,
        /// The model the file was read as.
        model: String,
    },
    /// Public (V1) and private (V2/V3) passport layers in one file.
    #[error(
        "`{file}` mixes public passport layers (`{v1}`, V1) and private ones (`{v2}`, V2/V3); \
         a DeepIPR model uses one scheme"
    )]
    MixedSchemes {
        /// The file.
        file: String,
        /// A V1 layer.
        v1: String,
        /// A V2/V3 layer.
        v2: String,
    },
    /// The model asked for is of another architecture than the file's.
    #[error(
        "`{file}` holds a DeepIPR {found}, which cannot be loaded into `{wanted}`: load it into the model \
         type of its architecture"
    )]
    WrongModel {
        /// The file.
        file: String,
        /// The architecture of the file.
        found: String,
        /// The model type asked for (`AlexNet`, `ResNet`).
        wanted: String,
    },
    /// The model the file describes cannot be built.
    #[error("`{file}`: cannot build a DeepIPR {model} for it: {source}")]
    Model {
        /// The file.
        file: String,
        /// The model the file was read as.
        model: String,
        /// Why.
        #[source]
        source: Box<ModelError>,
    },
}

/// The stem conv weights of each family; the keys of a state dict sit under the shortest prefix
/// that precedes one of them.
const STEMS: [&str; 2] = ["features.0.conv.weight", "convbnrelu_1.conv.weight"];

/// The tensors of a state dict, keyed without the file's common prefix.
struct StateDict {
    file: String,
    tensors: HashMap<String, pytorch_reader::Tensor>,
}

impl StateDict {
    fn open(path: &Path) -> Result<Self, ReferenceError> {
        let file = path.display().to_string();
        let not_checkpoint = |reason: String| ReferenceError::NotCheckpoint { file: file.clone(), reason };
        // The reader parses untrusted bytes; a bug in it must not end the verifier.
        let opened = std::panic::catch_unwind(|| PytorchReader::new(path))
            .map_err(|_| not_checkpoint("the reader failed on its contents".into()))?;
        let all = opened.map_err(|e| not_checkpoint(e.to_string()))?.into_tensors();
        if all.is_empty() {
            return Err(not_checkpoint("it holds no tensors".into()));
        }
        let prefix = all
            .keys()
            .filter_map(|k| STEMS.iter().find_map(|stem| k.strip_suffix(stem)))
            .filter(|p| p.is_empty() || p.ends_with('.'))
            .min_by_key(|p| p.len())
            .map(str::to_string);
        let Some(prefix) = prefix else {
            return Err(ReferenceError::UnknownArch { file, count: all.len() });
        };
        let tensors = all.into_iter().filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?.to_string(), t))).collect();
        Ok(Self { file, tensors })
    }

    fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors.keys().any(|k| k.starts_with(prefix))
    }

    fn missing(&self, key: &str, model: &str) -> ReferenceError {
        ReferenceError::MissingKey { file: self.file.clone(), key: key.into(), model: model.into() }
    }

    fn shape_error(&self, key: &str, found: &[usize], expected: String, model: &str) -> ReferenceError {
        ReferenceError::Shape {
            file: self.file.clone(),
            key: key.into(),
            found: found.to_vec(),
            expected,
            model: model.into(),
        }
    }

    fn require(&self, key: &str, model: &str) -> Result<&pytorch_reader::Tensor, ReferenceError> {
        self.tensors.get(key).ok_or_else(|| self.missing(key, model))
    }

    /// The shape of `key`, which must have rank `N` (`what` describes it in the error).
    fn dims<const N: usize>(&self, key: &str, model: &str, what: &str) -> Result<[usize; N], ReferenceError> {
        let shape = self.require(key, model)?.shape();
        shape.try_into().map_err(|_| self.shape_error(key, shape, what.into(), model))
    }

    /// The values of `key` as `f32`, row-major.
    fn floats(&self, key: &str, model: &str) -> Result<Vec<f32>, ReferenceError> {
        let tensor = self.require(key, model)?;
        let read_error = |reason: String| ReferenceError::Read { file: self.file.clone(), key: key.into(), reason };
        let bytes = tensor.read().map_err(|e| read_error(e.to_string()))?;
        if bytes.len() != tensor.byte_len() {
            return Err(read_error(format!("{} bytes instead of {}", bytes.len(), tensor.byte_len())));
        }
        let values = match tensor.dtype() {
            DType::F32 => bytes.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                .collect(),
            DType::F16 => {
                bytes.chunks_exact(2).map(|c| f16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32()).collect()
            }
            DType::BF16 => {
                bytes.chunks_exact(2).map(|c| bf16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32()).collect()
            }
            other => {
                return Err(ReferenceError::DType {
                    file: self.file.clone(),
                    key: key.into(),
                    dtype: format!("{other:?}").to_lowercase(),
                });
            }
        };
        Ok(values)
    }
}

/// The family name used in messages before the config is known.
fn family(arch: Arch) -> &'static str {
    match arch {
        Arch::Alexnet => "AlexNet",
        Arch::Resnet9 => "ResNet-9",
        Arch::Resnet18 => "ResNet-18",
    }
}

/// A model's name in messages: `AlexNet (32 px, width 0.5, 10 classes, bn, V1)`.
fn describe(config: &NetConfig, scheme: Scheme) -> String {
    let norm = match config.norm {
        NormKind::Bn => "bn",
        NormKind::Gn => "gn",
        NormKind::In => "in",
        NormKind::None => "no norm",
    };
    format!(
        "{} ({} px, width {}, {} classes, {norm}, {})",
        family(config.arch),
        config.input_size,
        config.width,
        config.num_classes,
        scheme.name().to_uppercase()
    )
}

/// `(our block path, key prefix in the file, reference output channels)` of every conv block
/// of the architecture, in forward order, from the models' own block table.
fn block_candidates(arch: Arch) -> Vec<(String, String, usize)> {
    block_specs(&NetConfig::new(arch, 2)).into_iter().map(|b| (b.path, b.record_prefix, b.base_channels)).collect()
}

/// The normalisation the reference used: running statistics mean batch norm; affine weights
/// without them group norm (`GroupNorm(C/16, C)`); a conv bias no norm; none of these instance
/// norm (the reference's `InstanceNorm2d` is not affine and keeps no statistics).
fn detect_norm(sd: &StateDict, prefixes: &[&str]) -> NormKind {
    let any = |leaf: &str| prefixes.iter().any(|p| sd.has(&format!("{p}.{leaf}")));
    if any("bn.running_mean") {
        NormKind::Bn
    } else if any("bn.weight") {
        NormKind::Gn
    } else if any("conv.bias") {
        NormKind::None
    } else {
        NormKind::In
    }
}

/// Reads what the reference checkpoint at `path` holds, from its keys and shapes: the
/// architecture (AlexNet when it has `features.*`, ResNet-18 when it has `layer4.1.*`, ResNet-9
/// when only `layer4.0.*`), the input size (AlexNet: `classifier.weight` for 32 px,
/// `classifier.1.weight` for 224 px; ResNet: a 3×3 or 7×7 stem), the classes, input channels,
/// width (the multiplier that reproduces every conv block's output channels), norm, scheme,
/// passport layers and their signatures (the sign of each layer's `b`).
///
/// Only shapes are checked here; [`load_reference`] checks every tensor.
///
/// # Errors
/// A [`ReferenceError`] naming the file: not a PyTorch checkpoint, not a DeepIPR AlexNet or
/// ResNet, a missing key or a shape that fits no config, or V1 and V2 layers mixed.
pub fn inspect_reference(path: &Path) -> Result<ReferenceInfo, ReferenceError> {
    let sd = StateDict::open(path)?;
    let arch = if sd.has("features.0.conv.weight") {
        Arch::Alexnet
    } else if sd.has_prefix("layer4.1.") {
        Arch::Resnet18
    } else if sd.has_prefix("layer4.0.") {
        Arch::Resnet9
    } else {
        return Err(sd.missing("layer4.0.convbnrelu_1.conv.weight", "ResNet"));
    };
    let model = family(arch);
    let conv_shape = "[out, in, k, k]";
    let stem_key = if arch == Arch::Alexnet { STEMS[0] } else { STEMS[1] };
    let [stem_out, in_channels, kernel, _] = sd.dims::<4>(stem_key, model, conv_shape)?;
    let input_size = match arch {
        Arch::Alexnet if sd.has("classifier.weight") => 32,
        Arch::Alexnet if sd.has("classifier.1.weight") => 224,
        Arch::Alexnet => return Err(sd.missing("classifier.weight", model)),
        _ => match kernel {
            3 => 32,
            7 => 224,
            _ => {
                let shape = [stem_out, in_channels, kernel, kernel];
                let expected = "a 3×3 (32 px) or 7×7 (224 px) stem kernel".to_string();
                return Err(sd.shape_error(stem_key, &shape, expected, model));
            }
        },
    };
    let head = match (arch, input_size) {
        (Arch::Alexnet, 32) => "classifier.weight",
        (Arch::Alexnet, _) => "classifier.6.weight",
        _ => "linear.weight",
    };
    let [num_classes, _] = sd.dims::<2>(head, model, "[classes, features]")?;

    let blocks: Vec<(String, String, usize)> =
        block_candidates(arch).into_iter().filter(|(_, prefix, _)| sd.has(&format!("{prefix}.conv.weight"))).collect();
    let mut outs = Vec::new(); // (reference channels, channels in the file)
    for (_, prefix, base) in &blocks {
        let [out, ..] = sd.dims::<4>(&format!("{prefix}.conv.weight"), model, conv_shape)?;
        outs.push((*base, out));
    }
    let prefixes: Vec<&str> = blocks.iter().map(|(_, p, _)| p.as_str()).collect();
    let mut config = NetConfig {
        arch,
        num_classes,
        in_channels,
        input_size,
        width: stem_out as f64 / 64.0,
        norm: detect_norm(&sd, &prefixes),
    };
    // The widest block pins the width most precisely; take the first candidate that
    // reproduces every block (else keep the stem's and let the load name the first misfit).
    let mut candidates = outs.clone();
    candidates.sort_by_key(|&(base, _)| Reverse(base));
    let fits = |width: f64| {
        let c = NetConfig { width, ..config.clone() };
        outs.iter().all(|&(base, out)| c.channels(base) == out)
    };
    if let Some(width) = candidates.iter().map(|&(base, out)| out as f64 / base as f64).find(|&w| fits(w)) {
        config.width = width;
    }
    config.check().map_err(|e| ReferenceError::Model {
        file: sd.file.clone(),
        model: model.into(),
        source: Box::new(e),
    })?;

    let (mut v1, mut v2) = (None, None);
    let (mut passport_paths, mut signatures) = (Vec::new(), Vec::new());
    for ((path, prefix, _), &(_, out)) in blocks.iter().zip(&outs) {
        let private = sd.has(&format!("{prefix}.skey_private"));
        if private {
            v2.get_or_insert_with(|| prefix.clone());
        } else if sd.has(&format!("{prefix}.skey")) {
            v1.get_or_insert_with(|| prefix.clone());
        } else {
            continue;
        }
        let loss = if private { "sign_loss_private" } else { "sign_loss" };
        let bits_key = [format!("{prefix}.b"), format!("{prefix}.{loss}.b")]
            .into_iter()
            .find(|k| sd.has(k))
            .ok_or_else(|| sd.missing(&format!("{prefix}.b"), model))?;
        let b = sd.floats(&bits_key, model)?;
        if b.len() != out {
            let found = sd.require(&bits_key, model)?.shape().to_vec();
            return Err(sd.shape_error(&bits_key, &found, format!("[{out}] (one bit per output channel)"), model));
        }
        let bits = b.iter().map(|&v| if v < 0.0 { -1 } else { 1 }).collect();
        passport_paths.push(path.clone());
        signatures.push(LayerSignature { path: path.clone(), signature: Signature { bits, text: None, bound_from: None } });
    }
    let scheme = match (v1, v2) {
        (Some(v1), Some(v2)) => return Err(ReferenceError::MixedSchemes { file: sd.file, v1, v2 }),
        (_, Some(_)) => Scheme::V2,
        (Some(_), None) => Scheme::V1,
        (None, None) => Scheme::V0,
    };
    Ok(ReferenceInfo { config, scheme, passport_paths, signatures })
}

/// Builds the model `info` describes (see [`inspect_reference`]) and fills every parameter and
/// running statistic from the reference checkpoint at `path`: conv weights, norms (γ_pub/β_pub
/// of a private layer included), passports and linear layers (transposed). Passports stay out
/// of training (`require_grad = false`), and the norms' training flags are those of a freshly
/// built model.
///
/// # Errors
/// A [`ReferenceError`] naming the file and the key: not a PyTorch checkpoint, a key missing, a
/// shape other than the model's, a non-float tensor, unreadable data, a key left over that the
/// model has no place for, or `M` of another architecture than `info`.
pub fn load_reference<M: Net>(path: &Path, info: &ReferenceInfo, device: &Device) -> Result<M, ReferenceError> {
    let sd = StateDict::open(path)?;
    let model_name = describe(&info.config, info.scheme);
    let private = info.scheme.is_private();
    if family_of::<M>(info.config.arch, device) != Some(info.config.arch == Arch::Alexnet) {
        let wanted = std::any::type_name::<M>().rsplit("::").next().unwrap_or("this model").to_string();
        return Err(ReferenceError::WrongModel { file: sd.file, found: family(info.config.arch).into(), wanted });
    }
    let layout = Layout::structure(info.passport_paths.iter().cloned(), private);
    let model = M::init(&info.config, &layout, device).map_err(|e| ReferenceError::Model {
        file: sd.file.clone(),
        model: model_name.clone(),
        source: Box::new(e),
    })?;

    let record_paths: HashSet<String> = param_paths(&model).into_iter().map(|(p, _)| p).collect();
    let mut blocks = HashMap::new();
    for (path, block) in model.blocks() {
        let prefix = [format!("features.{path}"), path.clone()]
            .into_iter()
            .find(|p| record_paths.contains(&format!("{p}.conv.weight")))
            .unwrap_or(path);
        blocks.insert(prefix, BlockKind { passport: block.is_passport(), private: block.is_private() });
    }

    let mut filler = Filler {
        sd: &sd,
        model: &model_name,
        device: device.clone(),
        blocks: &blocks,
        norm: info.config.norm,
        used: HashSet::new(),
        error: None,
    };
    let model = map_params(model, &mut filler);
    let Filler { used, error, .. } = filler;
    if let Some(error) = error {
        return Err(error);
    }
    let mut left: Vec<&String> = sd.tensors.keys().filter(|k| !used.contains(*k) && !skippable(k, &blocks)).collect();
    left.sort();
    if let Some(key) = left.first() {
        return Err(ReferenceError::Unexpected { file: sd.file.clone(), key: (*key).clone(), model: model_name });
    }
    Ok(model)
}

/// Whether `M` builds an AlexNet (`Some(true)`) or a ResNet (`Some(false)`) for `arch`, or
/// refuses it (`None`), found by building it at the smallest width.
fn family_of<M: Net>(arch: Arch, device: &Device) -> Option<bool> {
    let probe =
        NetConfig { arch, num_classes: 2, in_channels: 1, input_size: 32, width: 1.0 / 64.0, norm: NormKind::None };
    let model = M::init(&probe, &Layout::none(), device).ok()?;
    model.blocks().first().map(|(path, _)| path == "0")
}

/// What a conv block of our model is.
#[derive(Clone, Copy)]
struct BlockKind {
    passport: bool,
    private: bool,
}

/// Whether a key left over carries nothing the model needs: a batch counter, or a passport
/// layer's alias of its conv weight or of its signature.
fn skippable(key: &str, blocks: &HashMap<String, BlockKind>) -> bool {
    if key.ends_with(".num_batches_tracked") {
        return true;
    }
    blocks.iter().any(|(prefix, kind)| {
        kind.passport
            && key
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|leaf| matches!(leaf, "weight" | "b" | "sign_loss.b" | "sign_loss_private.b"))
    })
}

/// Replaces every float parameter of a model, by its record path, with the file's tensor.
struct Filler<'a> {
    sd: &'a StateDict,
    model: &'a str,
    device: Device,
    blocks: &'a HashMap<String, BlockKind>,
    norm: NormKind,
    used: HashSet<String>,
    error: Option<ReferenceError>,
}

impl Filler<'_> {
    /// The file's key for our record path, and the value to fill with when the reference
    /// has no such tensor (the affine of an instance norm, which the reference lacks).
    fn file_key(&self, path: &str) -> (String, Option<f32>) {
        let block = self.blocks.iter().find_map(|(prefix, kind)| {
            let rest = path.strip_prefix(prefix.as_str())?.strip_prefix('.')?;
            Some((prefix, *kind, rest))
        });
        let Some((prefix, kind, rest)) = block else {
            // A linear layer: the 224 px AlexNet's head is `classifier.{1,4,6}` in the reference.
            return match path.strip_prefix("deep_classifier.") {
                Some(rest) => (format!("classifier.{rest}"), None),
                None => (path.to_string(), None),
            };
        };
        let leaf = match (kind.private, rest) {
            (true, "bn.weight") => "scale",
            (true, "bn.bias") => "bias",
            (true, "key") => "key_private",
            (true, "skey") => "skey_private",
            (true, "private_bn.running_mean") => "bn.running_mean",
            (true, "private_bn.running_var") => "bn.running_var",
            _ => rest,
        };
        let default = match (self.norm, kind.passport, rest) {
            (NormKind::In, false, "bn.weight") => Some(1.0),
            (NormKind::In, false, "bn.bias") => Some(0.0),
            _ => None,
        };
        (format!("{prefix}.{leaf}"), default)
    }

    /// The values for the parameter at `path` of shape `shape`, in our layout.
    fn values(&mut self, path: &str, shape: &[usize]) -> Result<Vec<f32>, ReferenceError> {
        let (key, default) = self.file_key(path);
        let Some(tensor) = self.sd.tensors.get(&key) else {
            return match default {
                Some(v) => Ok(vec![v; shape.iter().product()]),
                None => Err(self.sd.missing(&key, self.model)),
            };
        };
        // Linear weights are the only rank-2 parameters: PyTorch `[out, in]`, burn `[in, out]`.
        let transpose = shape.len() == 2;
        let expected: Vec<usize> = if transpose { vec![shape[1], shape[0]] } else { shape.to_vec() };
        if tensor.shape() != expected.as_slice() {
            return Err(self.sd.shape_error(&key, tensor.shape(), format!("{expected:?}"), self.model));
        }
        let values = self.sd.floats(&key, self.model)?;
        self.used.insert(key);
        if !transpose {
            return Ok(values);
        }
        let (rows, cols) = (expected[0], expected[1]);
        Ok((0..cols).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| values[r * cols + c]).collect())
    }
}

impl ParamMapper for Filler<'_> {
    fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let shape = param.lazy_shape().to_vec();
        match self.values(path, &shape) {
            Ok(values) => {
                let device = self.device.clone();
                param.map(move |old| {
                    let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
                    if old.is_require_grad() { tensor.require_grad() } else { tensor }
                })
            }
            Err(error) => {
                self.error = Some(error);
                param
            }
        }
    }
}
