//! `cargo xtask`: the orchestrator of the DeepIPR workspace.
//!
//! `cargo xtask run PLAN` runs a TOML experiment plan (see `experiments/`): its stages train
//! models, verify signatures and attack passports, each writing a self-describing folder under
//! `runs/<plan>/<stage>/`, and the plan's summary lands in `runs/<plan>/report.md`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::{bench, plan, project_root, stages, verify};

/// Protect trained networks with DeepIPR digital passports.
#[derive(Parser)]
#[command(name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment plan (TOML); complete stages are skipped, an interrupted one resumes.
    Run {
        /// The plan, e.g. experiments/quickstart.toml.
        plan: PathBuf,
        /// Replace an existing owner bundle even if its signatures differ.
        #[arg(long)]
        force: bool,
        /// Folder the plan's run folder is created in (default: `runs/` in the workspace).
        #[arg(long, value_name = "DIR")]
        runs: Option<PathBuf>,
        /// When another run of this plan holds its run folder, wait for it to finish instead
        /// of stopping.
        #[arg(long)]
        wait: bool,
    },
    /// Check an ownership claim: a model file against an owner bundle. Exit status 0: owned;
    /// 1: not owned or inconclusive; 2: an error.
    Verify {
        /// The model: a record written by this tool (a V1 model, a V2/V3 public model, or an
        /// owner's model) or a state dict saved by the PyTorch reference (`.pth`).
        #[arg(long, value_name = "PATH")]
        model: PathBuf,
        /// The owner bundle (`owner.json`). Optional for a PyTorch checkpoint, whose own
        /// passports and signatures are then used.
        #[arg(long, value_name = "PATH")]
        owner: Option<PathBuf>,
        /// Test data for the fidelity check: fashion-mnist, mnist, cifar10 or cifar100.
        #[arg(long, value_name = "DATASET")]
        data: Option<String>,
        /// The dataset's folder (default: the plans' default for that dataset).
        #[arg(long, value_name = "DIR")]
        data_root: Option<PathBuf>,
        /// A trigger set (pics/ and labels-cifar.txt) for the black-box check; needs --data.
        #[arg(long, value_name = "DIR")]
        trigger: Option<PathBuf>,
        /// Forged-passport draws in the fidelity check.
        #[arg(long, default_value_t = 5)]
        forged: usize,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make data files.
    Data {
        #[command(subcommand)]
        what: DataCommand,
    },
    /// Time the training step and evaluation (AlexNet, ResNet-18; V0, V1, V2; 32 px) on random data.
    Bench {
        /// `cpu`, `cuda`, `cuda:N` or `vulkan`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Timed steps per configuration, after 2 warm-up steps.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Batch size.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Where the JSON results go.
        #[arg(long, default_value = "runs/bench/bench.json")]
        out: PathBuf,
        /// Also run the PyTorch peer (bench/pytorch_peer.py) on each configuration, right
        /// after ours, and print the ratios ours/PyTorch.
        #[arg(long)]
        vs_pytorch: bool,
        /// Measure only these configurations, e.g. `alexnet-v1` (repeatable).
        #[arg(long, value_name = "ARCH-SCHEME")]
        only: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Generate a secret trigger set (abstract patterns, uniformly random labels) in the
    /// format of Adi et al.: OUT/pics/1.jpg … N.jpg and OUT/labels-cifar.txt.
    TriggerSet {
        /// Images.
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Side in pixels (the dataset's: 32 for CIFAR, 28 for Fashion-MNIST).
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// 3 for colour, 1 for gray.
        #[arg(long, default_value_t = 3)]
        channels: usize,
        /// Labels are drawn from 0..classes.
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Seed of patterns and labels: keep it secret, like the set.
        #[arg(long)]
        seed: u64,
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace a set already in DIR.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Verify { model, owner, data, data_root, trigger, forged, json } => {
            let data = data
                .map(|name| {
                    serde_json::from_value::<plan::DatasetKind>(serde_json::Value::String(name.clone())).map_err(|_| {
                        anyhow::anyhow!("--data {name}: unknown dataset; use fashion-mnist, mnist, cifar10 or cifar100")
                    })
                })
                .transpose()?;
            let request = verify::Request { model, owner, data, data_root, trigger, forged, json };
            let outcome = verify::run(&request)?;
            print!("{}", outcome.output);
            Ok(match outcome.decision {
                ipr_verify::Decision::Owned => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            })
        }
        Command::Run { plan, force, runs, wait } => {
            let root = project_root();
            let plan = plan::Plan::load(&plan, &root)?;
            for note in &plan.notes {
                tracing::warn!("{note}");
            }
            let runs = runs.unwrap_or_else(|| root.join("runs"));
            let headlines = stages::run_plan(&plan, &stages::Options { runs: &runs, force, wait })?;
            println!("\nplan `{}` (results in {}):", plan.name, runs.join(&plan.name).display());
            for h in headlines {
                println!("  {:<12} {:<7} {}", h.stage, h.kind, h.result);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { what: DataCommand::TriggerSet { n, size, channels, classes, seed, out, force } } => {
            let config = ipr_data::TriggerSetConfig { n, size, channels, num_classes: classes, seed };
            let set = ipr_data::generate_trigger_set(&config)?;
            ipr_data::write_trigger_set(&set, &out, force)?;
            println!("trigger set of {n} images ({channels}×{size}×{size}, labels 0..{classes}) written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { device, steps, batch, out, vs_pytorch, only } => {
            anyhow::ensure!(steps > 0 && batch > 0, "--steps and --batch must be at least 1");
            bench::run(&bench::Options { device, steps, batch, out, vs_pytorch, only })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
