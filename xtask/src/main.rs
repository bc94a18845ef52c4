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

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Check an ownership claim: a model file against an owner bundle; with two or more
    /// `--owner`, settle a dispute between the claimants. Exit status 0: owned (in a dispute:
    /// exactly one claim supported); 1: not owned, inconclusive, no claim supported or
    /// ambiguous; 2: an error.
    Verify(VerifyArgs),
    /// Owner keys: `keys new --out DIR` makes an Ed25519 key pair (DIR/owner.key, mode 0600,
    /// and DIR/owner.pub).
    Keys {
        #[command(subcommand)]
        what: KeysCommand,
    },
    /// Write the registration receipt of a signed owner bundle: the claim's digest, the owner's
    /// public key, the time and the signature (no passport, no signature bit). Publish it, or
    /// have it timestamped, before releasing the model.
    Register {
        /// The owner bundle (`owner.json`).
        #[arg(long, value_name = "PATH")]
        owner: PathBuf,
        /// Where the receipt goes (default: `receipt.json` beside the bundle).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Write a model as a PyTorch state dict in safetensors, with the reference's key names:
    /// a V0 model or a V2/V3 public model (`public.bpk`) loads into the reference's normal
    /// modules with strict=True, a V1 model into its passport modules with strict=False (the
    /// owner's signature is not written). An owner's private model is refused.
    Export {
        /// The record: `public.bpk` (V2/V3), `model.bpk` (V0, V1) of a train stage.
        #[arg(long, value_name = "PATH")]
        model: PathBuf,
        /// The safetensors file to write.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// `reference` (the DeepIPR reference's PyTorch modules) or `burn` (our record's names).
        #[arg(long, default_value = "reference")]
        keys: String,
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

/// The arguments of `cargo xtask verify`.
#[derive(clap::Args)]
struct VerifyArgs {
    /// The model: a record written by this tool (a V1 model, a V2/V3 public model, or an
    /// owner's model) or a state dict saved by the PyTorch reference (`.pth`).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// An owner bundle (`owner.json`), as `PATH` or `NAME=PATH` (the name the reports give
    /// the claimant). Optional for a PyTorch checkpoint, whose own passports and signatures
    /// are then used. Repeat it for a dispute between claimants.
    #[arg(long, value_name = "[NAME=]PATH")]
    owner: Vec<String>,
    /// A registration receipt of a claim (`cargo xtask register`); repeatable.
    #[arg(long, value_name = "PATH")]
    receipt: Vec<PathBuf>,
    /// A claimant's own published model, `NAME=PATH` (NAME as in --owner): each other claim
    /// is also checked against it. Repeatable.
    #[arg(long, value_name = "NAME=PATH")]
    original: Vec<String>,
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
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new owner key pair.
    New {
        /// Folder of the key pair (made if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace a key already there.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download a dataset's official files (cifar10, cifar100, mnist, fashion-mnist), check
    /// their SHA-256 and unpack them where plans read them by default (`data/<name>`). An
    /// interrupted download resumes when run again.
    Fetch {
        /// cifar10, cifar100, mnist or fashion-mnist.
        name: String,
        /// The dataset's folder (default: `data/<name>` in the project).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Another host serving the same file names (also DEEPIPR_DATA_MIRROR).
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
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

/// `NAME=PATH` as `(NAME, PATH)`; a plain `PATH` is named by itself.
fn named(arg: &str) -> (String, PathBuf) {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => (name.to_string(), PathBuf::from(path)),
        _ => (arg.to_string(), PathBuf::from(arg)),
    }
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
        Command::Verify(args) => verify_command(args),
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
        Command::Export { model, out, keys } => {
            let keys = match keys.as_str() {
                "reference" => ipr_export::KeyStyle::Reference,
                "burn" => ipr_export::KeyStyle::Burn,
                other => anyhow::bail!("--keys {other}: use `reference` or `burn`"),
            };
            println!("{}", xtask::export::run(&xtask::export::Request { model, out, keys })?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { what: KeysCommand::New { out, force } } => {
            std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", out.display()))?;
            let key = ipr_models::OwnerKey::generate().map_err(anyhow::Error::msg)?;
            let public = key.save(&out.join("owner.key"), force)?;
            println!("owner key written to {} (mode 0600; keep it secret), public key {} in {}", out.join("owner.key").display(), key.public().hex(), public.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Register { owner, out } => {
            let bundle = ipr_models::OwnerBundle::load(&owner)?;
            anyhow::ensure!(
                bundle.signature_valid() == Some(true),
                "`{}`: {}; only a bundle signed by its owner's key can be registered",
                owner.display(),
                if bundle.owner.is_none() { "the bundle is not signed" } else { "the bundle's signature does not verify (it was changed after signing)" }
            );
            let receipt = ipr_models::Receipt::of(&bundle)?;
            let out = out.unwrap_or_else(|| owner.with_file_name("receipt.json"));
            ipr_models::write_atomic(&out, &serde_json::to_vec_pretty(&receipt)?, None)?;
            println!("receipt of {} written to {}: commitment {}", owner.display(), out.display(), receipt.commitment);
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { what: DataCommand::Fetch { name, root, mirror } } => fetch_command(&name, root, mirror),
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

/// `cargo xtask verify`: one claim's verdict, or a dispute between several.
fn verify_command(args: VerifyArgs) -> Result<ExitCode> {
    let VerifyArgs { model, owner, receipt, original, data, data_root, trigger, forged, json } = args;
    let data = data
        .map(|name| {
            serde_json::from_value::<plan::DatasetKind>(serde_json::Value::String(name.clone()))
                .map_err(|_| anyhow::anyhow!("--data {name}: unknown dataset; use fashion-mnist, mnist, cifar10 or cifar100"))
        })
        .transpose()?;
    let owners: Vec<(String, PathBuf)> = owner.iter().map(|o| named(o)).collect();
    let originals = original
        .iter()
        .map(|o| {
            o.split_once('=')
                .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
                .ok_or_else(|| anyhow::anyhow!("--original {o}: write NAME=PATH, with NAME as in --owner NAME=PATH"))
        })
        .collect::<Result<Vec<_>>>()?;
    let request = verify::Request { model, owners, receipts: receipt, originals, data, data_root, trigger, forged, json };
    let outcome = verify::run(&request)?;
    print!("{}", outcome.output);
    Ok(if outcome.owned { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `cargo xtask data fetch NAME`: a dataset's official files into the plans' default folder.
fn fetch_command(name: &str, root: Option<PathBuf>, mirror: Option<String>) -> Result<ExitCode> {
    let source = xtask::fetch::source(name)?;
    let kind: plan::DatasetKind = serde_json::from_value(serde_json::Value::String(name.to_string()))?;
    let project = project_root();
    let system = std::path::Path::new(ipr_data::FASHION_MNIST_DIR);
    if root.is_none() && kind == plan::DatasetKind::FashionMnist && system.is_dir() {
        println!("Fashion-MNIST is installed at {} (the plans' default); nothing to fetch (pass --root DIR for a copy of your own)", system.display());
        return Ok(ExitCode::SUCCESS);
    }
    let root = match root {
        Some(r) if r.is_relative() => project.join(r),
        Some(r) => r,
        None => kind.fetch_root(&project).expect("every fetchable dataset has a folder"),
    };
    let client = xtask::fetch::Client::new(mirror, std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if xtask::fetch::fetch(&client, &source, &root)? {
        println!("{name} fetched into {}", root.display());
    } else {
        println!("{} exists; nothing fetched (move it away to fetch {name} again)", root.display());
    }
    Ok(ExitCode::SUCCESS)
}
