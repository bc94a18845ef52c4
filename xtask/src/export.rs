//! `cargo xtask export`: a model record of this tool as a PyTorch state dict in safetensors
//! (`ipr-export`), read with its model card, refusing an owner's private model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use ipr_export::{ExportInfo, KeyStyle, metadata, state_dict, write};
use ipr_models::{AlexNet, Arch, Layout, Net, ResNet, load_module};

use crate::ctx::{ModelCard, read_card};

/// What the command was asked.
pub struct Request {
    /// The record: `model.bpk`, `best.bpk` or `public.bpk` of a train stage.
    pub model: PathBuf,
    /// The safetensors file to write.
    pub out: PathBuf,
    /// Key names.
    pub keys: KeyStyle,
}

/// The card beside a record: `public.json` for `public.bpk`, else `model.json`.
fn card_of(model: &Path) -> Result<(ModelCard, bool)> {
    let dir = model.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let public = model.file_name().is_some_and(|n| n == "public.bpk");
    let name = if public { "public" } else { "model" };
    let card = read_card(dir, name, "export reads the model card a train stage writes beside the record; pass a model.bpk or public.bpk of a train stage")?;
    Ok((card, public))
}

/// Exports the record; returns what to tell the user.
///
/// # Errors
/// A record or card that cannot be read, an owner's private model, or a model the reference's
/// modules cannot hold.
pub fn run(request: &Request) -> Result<String> {
    let (card, public) = card_of(&request.model)?;
    let device = Device::flex();
    match card.model.arch {
        Arch::Alexnet => export::<AlexNet>(request, &card, public, &device),
        Arch::Resnet9 | Arch::Resnet18 => export::<ResNet>(request, &card, public, &device),
    }
}

fn export<M: Net>(request: &Request, card: &ModelCard, public: bool, device: &Device) -> Result<String> {
    if card.scheme.is_private() && !public {
        bail!(
            "`{}` is an owner's {} model: it holds the private passports, the owner's secret; export the public model beside it (`{}`)",
            request.model.display(),
            card.scheme,
            request.model.with_file_name("public.bpk").display()
        );
    }
    let layout = if public { Layout::none() } else { Layout::structure(card.passport_layers.iter().cloned(), false) };
    let model = load_module(M::init(&card.model, &layout, device)?, &request.model)?;
    let normalization = card.normalization.clone().context("the model card holds no input normalisation (a card written before it was kept): re-run the train stage")?;
    let info = ExportInfo { config: card.model.clone(), scheme: card.scheme, mean: normalization.mean, std: normalization.std };
    let tensors = state_dict(&model, &info, request.keys).with_context(|| format!("exporting `{}`", request.model.display()))?;
    write(&tensors, metadata(&model, &info, request.keys), &request.out)?;
    let strict = if card.scheme.has_passports() && !public {
        "load it with strict=False: the signature buffers `b` and `sign_loss.b` are the owner's and are not in the file (the forward pass does not read them)"
    } else {
        "load it with strict=True"
    };
    let width = if card.model.width == 1.0 { String::new() } else { format!("; width {} (the reference's classes are width 1: build them with these channel counts)", card.model.width) };
    Ok(format!(
        "{} tensors of `{}` written to {}: {} {} with {} classes, {} input channels at {} px{width}; {strict}",
        tensors.len(),
        request.model.display(),
        request.out.display(),
        card.model.arch.name(),
        card.scheme,
        card.model.num_classes,
        card.model.in_channels,
        card.model.input_size
    ))
}
