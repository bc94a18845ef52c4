//! The networks of DeepIPR: AlexNet and ResNet-9/18, each buildable as a normal model or with
//! passport layers from one code path, driven by a passport [`Layout`].
//!
//! Every conv block is an [`ipr_passport::ConvBlock`]; which ones are passport layers is data.
//! Parameter paths mirror the reference implementation's state dicts
//! (`features.4.conv.weight`, `layer4.0.shortcut.key`, …).
//!
//! **Architecture Invariant:** models know nothing about plans, training or attacks.
//!
//! # Example
//! ```
//! use burn::prelude::*;
//! use ipr_models::{AlexNet, Arch, Layout, Net, NetConfig};
//!
//! let device = Device::flex();
//! let mut config = NetConfig::new(Arch::Alexnet, 10);
//! config.in_channels = 1;
//! config.width = 0.25;
//! let layout = Layout::parse("4 = true\n5 = \"hi\"\n6 = false\n", "example").unwrap();
//! let net = AlexNet::init(&config, &layout, &device).unwrap();
//! assert_eq!(net.passport_paths(), ["4", "5"]);
//!
//! let out = net.forward(Tensor::zeros([2, 1, 32, 32], &device));
//! assert_eq!(out.logits.dims(), [2, 10]);
//! assert_eq!(out.gammas.len(), 2);
//! let signatures = layout.signatures(&net, 7).unwrap();
//! assert_eq!(signatures[1].1.text.as_deref(), Some("hi"));
//! ```
#![deny(missing_docs)]

mod alexnet;
mod blocks;
mod bundle;
mod error;
mod layout;
mod net;
mod owner;
mod params;
mod resnet;
mod retrofit;
mod sampling;
mod scheme;
mod store;

pub use alexnet::AlexNet;
pub use bundle::{BUNDLE_FORMAT, BundleError, LayerPassports, LayerSignature, OwnerBundle, noise_passports, restore_private};
pub use error::ModelError;
pub use layout::Layout;
pub use net::{Arch, Net, NetConfig, NetOutput};
pub use owner::{ClaimSignature, OWNER_FORMAT, OwnerError, OwnerKey, PublicKey, Receipt, public_path};
pub use blocks::{BlockSpec, block_specs};
pub use params::{ParamMapper, ParamVisitor, map_params, param_paths, param_values, tensor_values, visit_params};
pub use resnet::{BasicBlock, ResNet};
pub use retrofit::{align_signs, retrofit};
pub use sampling::sample_passports;
pub use scheme::Scheme;
pub use store::{
    StoreError, load_module, load_module_bytes, load_module_without, record_tensors, remove_stale_temporaries, save_module, save_module_with_mode, weights_digest, write_atomic,
};
