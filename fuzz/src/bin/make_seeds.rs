//! Writes the seed corpus of every fuzz target into `seeds/<target>/` (the folder given as the
//! first argument, default `seeds`): small valid inputs the fuzzer mutates. The `pth` seeds
//! come from `seeds/make_pth_seeds.py` (PyTorch).
#![allow(clippy::print_stdout)]

// Linked for the coverage hooks that `cargo fuzz build` compiles every binary with.
extern crate libfuzzer_sys;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ipr_data::{TriggerSetConfig, generate_trigger_set, write_trigger_set};
use ipr_fuzz::{tiny_config, tiny_layout, tiny_model};
use ipr_models::{BUNDLE_FORMAT, LayerPassports, LayerSignature, OwnerBundle, Scheme, save_module, weights_digest};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let folder = dir.join(target);
    fs::create_dir_all(&folder)?;
    fs::write(folder.join(name), bytes)?;
    println!("{target}/{name}: {} bytes", bytes.len());
    Ok(())
}

/// `[len of first: u16 LE][first][second]`, as `ipr_fuzz::split` reads it.
fn pair(first: &[u8], second: &[u8]) -> Result<Vec<u8>> {
    let mut out = u16::try_from(first.len())?.to_le_bytes().to_vec();
    out.extend(first);
    out.extend(second);
    Ok(out)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn idx(dir: &Path) -> Result<()> {
    let mut images: Vec<u8> = [0x0803u32, 3, 2, 2].iter().flat_map(|v| v.to_be_bytes()).collect();
    images.extend(0..12u8);
    let mut labels: Vec<u8> = [0x0801u32, 3].iter().flat_map(|v| v.to_be_bytes()).collect();
    labels.extend([3, 1, 9]);
    write(dir, "idx", "raw", &pair(&images, &labels)?)?;
    write(dir, "idx", "gzipped", &pair(&gzip(&images)?, &gzip(&labels)?)?)
}

fn cifar(dir: &Path) -> Result<()> {
    for (which, label_bytes, labels) in [(0u8, 1, [3u8, 9]), (1, 2, [42, 99])] {
        let mut out = vec![which];
        for (r, label) in labels.iter().enumerate() {
            out.extend(std::iter::repeat_n(*label, label_bytes));
            out.extend((0..3072).map(|i| (i * 7 + r) as u8));
        }
        write(dir, "cifar", if which == 0 { "cifar10" } else { "cifar100" }, &out)?;
    }
    Ok(())
}

fn trigger(dir: &Path) -> Result<()> {
    let config = TriggerSetConfig { n: 2, size: 8, channels: 3, num_classes: 10, seed: 1 };
    let set = generate_trigger_set(&config)?;
    let tmp = tempfile::tempdir()?;
    write_trigger_set(&set, tmp.path(), false)?;
    let jpeg = fs::read(tmp.path().join("pics/1.jpg"))?;
    let mut png = Vec::new();
    let gray: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
    image::GrayImage::from_raw(8, 8, gray)
        .ok_or("8x8 gray image")?
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    // Options: [flags (1: RGB, 2: resize), crop - 1, resize - crop].
    write(dir, "trigger", "jpeg-rgb-crop8", &[[1u8, 7, 0].as_slice(), &pair(b"3\n7\n", &jpeg)?].concat())?;
    write(dir, "trigger", "png-gray-resize", &[[2u8, 3, 4].as_slice(), &pair(b"6.000000000000000000e+00\n", &png)?].concat())
}

fn models(dir: &Path) -> Result<()> {
    let (v1, public, private) = (tiny_model(Some(false)), tiny_model(None), tiny_model(Some(true)));
    let tmp = tempfile::tempdir()?;
    for (name, model) in [("v1.bpk", &v1), ("public.bpk", &public)] {
        let path = tmp.path().join(name);
        save_module(model, &path)?;
        write(dir, "record", name, &fs::read(&path)?)?;
    }
    let layers: Vec<LayerSignature> = tiny_layout(false)
        .signatures(&v1, 7)?
        .into_iter()
        .map(|(path, signature)| LayerSignature { path, signature })
        .collect();
    let bundle = |scheme: Scheme, weights: String, passports| OwnerBundle {
        format: BUNDLE_FORMAT,
        scheme,
        model: tiny_config(),
        layers: layers.clone(),
        weights_sha256: weights,
        passports,
        owner: None,
    };
    let v1_bundle = bundle(Scheme::V1, weights_digest(&v1), vec![]);
    let v2_bundle = bundle(Scheme::V2, weights_digest(&public), LayerPassports::of(&private));
    write(dir, "bundle", "v1.json", &serde_json::to_vec(&v1_bundle)?)?;
    write(dir, "bundle", "v2.json", &serde_json::to_vec(&v2_bundle)?)
}

fn copy_all(from: &Path, dir: &Path, target: &str) -> Result<()> {
    let mut files: Vec<PathBuf> = fs::read_dir(from)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    files.sort();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "toml")) {
        let name = file.file_name().and_then(|n| n.to_str()).ok_or("file name")?;
        write(dir, target, name, &fs::read(file)?)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "seeds".into()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    copy_all(&root.join("experiments"), &dir, "plan")?;
    copy_all(&root.join("configs/passport"), &dir, "layout")?;
    idx(&dir)?;
    cifar(&dir)?;
    trigger(&dir)?;
    models(&dir)
}
