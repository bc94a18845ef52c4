//! Passport layers for DeepIPR (Fan, Ng, Chan; NeurIPS 2019, TPAMI 2021).
//!
//! A passport layer is a conv block whose per-channel scale γ and shift β are not learnt
//! directly: they are computed from secret passport tensors through the block's own conv
//! weights. Forged passports yield wrong γ/β and wreck the network, and the signs of γ carry
//! the owner's [`Signature`], written in by the [`sign_loss`].
//!
//! This crate knows nothing about models: every architecture builds its conv blocks from the one
//! [`ConvBlock`] type.
//!
//! # Example
//! ```
//! use burn::prelude::*;
//! use ipr_passport::{ConvBlockConfig, Signature, SignatureSpec, sign_loss, detection_rate};
//!
//! let device = Device::flex();
//! let block = ConvBlockConfig::new(3, 16, 3).with_padding(1).with_passport(Some([8, 8])).init(&device);
//! let out = block.forward(Tensor::zeros([2, 3, 8, 8], &device));
//! assert_eq!(out.out.dims(), [2, 16, 8, 8]);
//!
//! let signature = Signature::generate(&SignatureSpec::Text("ok".into()), 16, "demo", 7).unwrap();
//! let gamma = out.gamma.unwrap();
//! let bits = Tensor::<1>::from_floats(signature.as_f32().as_slice(), &device);
//! let loss = sign_loss(gamma.clone(), bits, 0.1);
//! assert_eq!(loss.dims(), [1]);
//! let rate = detection_rate(&gamma.into_data().try_to_vec::<f32>().unwrap(), &signature);
//! assert!((0.0..=1.0).contains(&rate));
//! ```
#![deny(missing_docs)]

mod block;
mod error;
mod loss;
mod norm;
mod retrofit;
mod sampling;
mod signature;

pub use block::{BlockOutput, ConvBlock, ConvBlockConfig, Route};
pub use error::PassportError;
pub use loss::{GAMMA_DECAY, SIGN_MARGIN, sign_loss};
pub use norm::{Norm, NormKind};
pub use retrofit::RetrofitFit;
pub use sampling::{KeyType, Selection, select_passport};
pub use signature::{BOUND_DOMAIN, PassportValues, Signature, SignatureSpec, bound_bits, decode_text, detection_rate, matching_bits};
