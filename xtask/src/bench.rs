//! `cargo xtask bench`: the training-step time and evaluation throughput of the real training
//! step (`ipr_schemes::train_step`) on random data, for AlexNet and ResNet-18 at 32 px, batch 64,
//! schemes V0, V1 and V2 (both paths, shared prefix; evaluation of V2 is its public model).
// The benchmark's table, printed as each configuration is measured, is its output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use ipr_models::{AlexNet, Arch, LayerSignature, Layout, Net, NetConfig, ResNet};
use ipr_schemes::{PassportObjective, TrainConfig, eval_form, optimizer, train_step};
use serde::{Deserialize, Serialize};

/// One measured configuration.
#[derive(Debug, Serialize, Deserialize)]
pub struct Row {
    arch: String,
    scheme: String,
    step_median_s: f64,
    step_min_s: f64,
    step_max_s: f64,
    eval_images_per_s: f64,
    /// Peak resident memory of the process so far (`VmHWM`), in MiB, after this configuration.
    #[serde(default)]
    peak_rss_mib: f64,
    /// The PyTorch peer's row for the same configuration (`--vs-pytorch`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pytorch: Option<Box<Row>>,
}

/// Runs `bench/pytorch_peer.py` for one configuration and reads its row back.
fn pytorch_row(arch: &str, scheme: &str, steps: usize, batch: usize, device: &str) -> Result<Row> {
    let root = crate::project_root();
    let out = std::env::temp_dir().join(format!("pytorch-peer-{}-{arch}-{scheme}.json", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(root.join("bench/pytorch_peer.py"))
        .args(["--only", &format!("{arch}-{scheme}"), "--steps", &steps.to_string(), "--batch", &batch.to_string()])
        .args(["--device", if device == "cpu" { "cpu" } else { "cuda" }, "--json"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run python3 for the PyTorch peer")?;
    anyhow::ensure!(status.success(), "the PyTorch peer failed on {arch} {scheme} (run bench/pytorch_peer.py by hand to see why)");
    let rows: Vec<Row> = serde_json::from_slice(&std::fs::read(&out)?).context("the PyTorch peer wrote no readable JSON")?;
    let _ = std::fs::remove_file(&out);
    rows.into_iter().next().context("the PyTorch peer wrote no row")
}

/// What `cargo xtask bench` measures.
pub struct Options {
    /// `cpu`, `cuda`, `cuda:N` or `vulkan`.
    pub device: String,
    /// Timed steps per configuration.
    pub steps: usize,
    /// Batch size.
    pub batch: usize,
    /// Where the JSON results go.
    pub out: PathBuf,
    /// Whether the PyTorch peer runs after each configuration.
    pub vs_pytorch: bool,
    /// Only these `arch-scheme` configurations (all when empty).
    pub only: Vec<String>,
}

/// Peak resident memory of this process so far, in MiB (`VmHWM` of `/proc/self/status`; 0
/// where there is no such file).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Augmented training batches per second that the data loader builds on its own (synthetic
/// 32×32×3 images, random crop and flip, batch 64, one worker), in images/s.
fn data_pipeline(batch: usize) -> Result<f64> {
    use ipr_data::{Loader, LoaderConfig, Normalization, SyntheticConfig, Transform, synthetic};
    let set = std::sync::Arc::new(synthetic(&SyntheticConfig { n: 8192, height: 32, width: 32, channels: 3, ..SyntheticConfig::default() })?);
    let transform = Transform { pad_to: None, crop_padding: 4, hflip: true, normalization: Normalization { mean: vec![0.5; 3], std: vec![0.25; 3] } };
    let loader = Loader::new(set, transform, LoaderConfig::train(batch, 1))?;
    let device = Device::flex();
    let started = Instant::now();
    let mut images = 0;
    for b in loader.epoch(0) {
        let (x, _) = b?.to_tensors(&device);
        images += x.dims()[0];
    }
    Ok(images as f64 / started.elapsed().as_secs_f64())
}

/// Measures every configuration, prints a table and writes JSON to `out`. With `vs_pytorch`,
/// the PyTorch peer (`bench/pytorch_peer.py`) measures each configuration right after ours, on
/// the same machine, and the ratio ours/PyTorch is printed.
pub fn run(options: &Options) -> Result<Vec<Row>> {
    let Options { device: device_name, steps, batch, out, vs_pytorch, only } = options;
    let (device_name, steps, batch, vs_pytorch) = (device_name.as_str(), *steps, *batch, *vs_pytorch);
    let device = crate::device::select(device_name)?;
    if vs_pytorch {
        let torch = std::process::Command::new("python3").args(["-c", "import torch"]).output();
        anyhow::ensure!(
            torch.is_ok_and(|o| o.status.success()),
            "--vs-pytorch needs PyTorch: `python3 -c \"import torch\"` fails here (pip install torch)"
        );
    }
    let mut rows = Vec::new();
    for arch in [Arch::Alexnet, Arch::Resnet18] {
        for scheme in ["v0", "v1", "v2"] {
            if !only.is_empty() && !only.iter().any(|o| *o == format!("{}-{scheme}", arch.name())) {
                continue;
            }
            let layout = if scheme == "v0" {
                Layout::none()
            } else {
                let path = crate::project_root().join("configs/passport").join(format!("{}.toml", arch.name()));
                Layout::parse(&std::fs::read_to_string(&path)?, &path.display().to_string())?.with_private(scheme == "v2")
            };
            let mut row = match arch {
                Arch::Alexnet => measure::<AlexNet>(arch, scheme, &layout, &device, steps, batch)?,
                _ => measure::<ResNet>(arch, scheme, &layout, &device, steps, batch)?,
            };
            row.peak_rss_mib = peak_rss_mib();
            println!(
                "{:<9} {:<3} step median {:.3} s (min {:.3}, max {:.3}), eval {:.0} images/s, peak RSS so far {:.0} MiB",
                row.arch, row.scheme, row.step_median_s, row.step_min_s, row.step_max_s, row.eval_images_per_s, row.peak_rss_mib
            );
            if vs_pytorch {
                let peer = pytorch_row(arch.name(), scheme, steps, batch, device_name)?;
                println!(
                    "{:<9} {:<3}   PyTorch step {:.3} s, eval {:.0} images/s: ours/PyTorch step {:.2}, eval throughput {:.2}",
                    "",
                    "",
                    peer.step_median_s,
                    peer.eval_images_per_s,
                    row.step_median_s / peer.step_median_s,
                    row.eval_images_per_s / peer.eval_images_per_s
                );
                row.pytorch = Some(Box::new(peer));
            }
            rows.push(row);
        }
    }
    for arch in [Arch::Alexnet, Arch::Resnet18] {
        let step = |scheme: &str| rows.iter().find(|r| r.arch == arch.name() && r.scheme == scheme).map(|r| r.step_median_s);
        if let (Some(v0), Some(v1), Some(v2)) = (step("v0"), step("v1"), step("v2")) {
            println!("{:<9} step time V1/V0 {:.2}, V2/V1 {:.2}, V2/V0 {:.2}", arch.name(), v1 / v0, v2 / v1, v2 / v0);
        }
    }
    println!("data pipeline: {:.0} augmented 32×32×3 images/s (one worker, batch {batch})", data_pipeline(batch)?);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_vec_pretty(&rows)?)?;
    println!("written to {}", out.display());
    Ok(rows)
}

fn measure<M: Net>(
    arch: Arch,
    scheme: &'static str,
    layout: &Layout,
    device: &Device,
    steps: usize,
    batch: usize,
) -> Result<Row> {
    let ad = device.clone().autodiff();
    ad.seed(1);
    let config = NetConfig::new(arch, 10);
    let mut model = M::init(&config, layout, &ad)?;
    let signatures: Vec<LayerSignature> = layout
        .signatures(&model, 1)?
        .into_iter()
        .map(|(path, signature)| LayerSignature { path, signature })
        .collect();
    let objective = PassportObjective::new(&signatures, 0.1, &ad);
    let mut optim = optimizer(&TrainConfig::default());
    let images = Tensor::<4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &ad);
    let labels = Tensor::<1, Int>::from_data(TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]), &ad);
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps + 2 {
        let started = Instant::now();
        let (next, loss, _) = train_step(model, &objective, &mut optim, images.clone(), labels.clone(), 0.01);
        model = next;
        anyhow::ensure!(loss.is_finite(), "the benchmark loss diverged");
        if i >= 2 {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let eval = eval_form(&model, ipr_passport::Route::Public);
    let plain = device.clone().without_autodiff();
    let eval_images = Tensor::<4>::random([256, 3, 32, 32], Distribution::Normal(0.0, 1.0), &plain);
    let _ = eval.forward(eval_images.clone()).logits.into_data();
    let started = Instant::now();
    let rounds = 4;
    for _ in 0..rounds {
        let _ = eval.forward(eval_images.clone()).logits.into_data();
    }
    Ok(Row {
        arch: arch.name().into(),
        scheme: scheme.into(),
        step_median_s: times[times.len() / 2],
        step_min_s: times[0],
        step_max_s: times[times.len() - 1],
        eval_images_per_s: (256 * rounds) as f64 / started.elapsed().as_secs_f64(),
        peak_rss_mib: 0.0,
        pytorch: None,
    })
}
