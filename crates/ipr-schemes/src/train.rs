//! The one training loop: every scheme and attack trains through [`train`].
//!
//! Each epoch ends with an evaluation on the test split, a row in `history.csv`, and a
//! checkpoint (model, optimiser state, history) written atomically; `state.json` is written last
//! and is the commit point, so a run killed at any moment resumes from its last completed epoch.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use ipr_data::Loader;
use ipr_models::{LayerSignature, Net, load_module, remove_stale_temporaries, save_module_with_mode, write_atomic};
use ipr_passport::Route;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use ipr_verify::check_signatures;

use crate::eval::{correct_count, evaluate, scalar};
use crate::{Objective, SchemeError, TrainConfig};

/// One row of `history.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss (cross entropy plus sign losses).
    pub train_loss: f64,
    /// Training accuracy (augmented batches, training mode).
    pub train_acc: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy (the public path of a private passport model).
    pub test_acc: f64,
    /// Test accuracy of the private path (private passport models only).
    pub private_acc: Option<f64>,
    /// Mean signature detection rate over passport layers (none without passport layers).
    pub detection: Option<f64>,
    /// Wall time of the epoch in seconds, evaluation included.
    pub seconds: f64,
}

/// What the checkpoint's `state.json` records.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    epochs_done: usize,
    best_acc: f64,
    history: Vec<EpochRow>,
    /// What the epoch hook measured after each epoch (runs with a hook only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    probes: Vec<serde_json::Value>,
}

/// The data of a training run.
#[derive(Clone, Copy)]
pub struct TrainData<'a> {
    /// Training batches (shuffled, augmented).
    pub train: &'a Loader,
    /// Test batches.
    pub test: &'a Loader,
}

/// Where and how a model trains: the settings, the data, the (autodiff) device and the run
/// folder that holds `history.csv`, `best.bpk` and the checkpoint.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    /// The settings.
    pub config: &'a TrainConfig,
    /// Training and test batches.
    pub data: TrainData<'a>,
    /// The autodiff device the model was built on.
    pub device: &'a Device,
    /// The run folder.
    pub dir: &'a Path,
}

/// The result of a training run.
pub struct TrainOutcome<M, P = ()> {
    /// The model after the last epoch (on the training device).
    pub model: M,
    /// One row per epoch.
    pub history: Vec<EpochRow>,
    /// Best test accuracy over epochs (its model is `best.bpk`).
    pub best_acc: f64,
    /// The epoch the run resumed after, if it resumed.
    pub resumed_after: Option<usize>,
    /// What the epoch hook measured after each epoch ([`train_probed`]; empty otherwise).
    pub probes: Vec<P>,
}

fn file_err(action: &'static str, path: &Path, e: impl std::fmt::Display) -> SchemeError {
    SchemeError::File { action, path: path.to_path_buf(), message: e.to_string() }
}

fn checkpoint_dir(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

/// Trains `model` (built on `run.device`, an autodiff device) with `objective` for
/// `run.config.epochs` epochs, writing `history.csv`, `best.bpk` and `checkpoint/` into
/// `run.dir`. If the folder holds a checkpoint, the run resumes after its last completed epoch.
///
/// # Errors
/// A file that cannot be written or read, a checkpoint of another model, or a diverged loss.
pub fn train<M: Net>(model: M, objective: &dyn Objective<M>, signatures: &[LayerSignature], run: &Run<'_>) -> Result<TrainOutcome<M>, SchemeError> {
    let out = run_epochs(model, objective, signatures, run, None)?;
    Ok(TrainOutcome { model: out.model, history: out.history, best_acc: out.best_acc, resumed_after: out.resumed_after, probes: vec![] })
}

/// [`train`] with an epoch hook: `on_epoch` measures the evaluation snapshot of the model after
/// every epoch (detection through trained weights, distances to passports, …). What it returns is
/// committed with the epoch's checkpoint, so a resumed run hands back every epoch's measurement
/// and measures only the epochs it trains.
///
/// # Errors
/// Those of [`train`], or a checkpoint whose measurements do not match its epochs.
pub fn train_probed<M: Net, P: Serialize + DeserializeOwned>(
    model: M,
    objective: &dyn Objective<M>,
    signatures: &[LayerSignature],
    run: &Run<'_>,
    on_epoch: &mut dyn FnMut(&M) -> P,
) -> Result<TrainOutcome<M, P>, SchemeError> {
    let state = checkpoint_dir(run.dir).join("state.json");
    let mut hook = |m: &M| serde_json::to_value(on_epoch(m)).map_err(|e| file_err("encode", &state, e));
    let out = run_epochs(model, objective, signatures, run, Some(&mut hook))?;
    let probes = out
        .probes
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| file_err("read", &state, format!("{e}; delete the stage folder to run it again"))))
        .collect::<Result<_, _>>()?;
    Ok(TrainOutcome { model: out.model, history: out.history, best_acc: out.best_acc, resumed_after: out.resumed_after, probes })
}

type Hook<'h, M> = Option<&'h mut dyn FnMut(&M) -> Result<serde_json::Value, SchemeError>>;

/// Reads the committed checkpoint of `dir` into `model` and `optim`, if there is one.
fn resume<M: Net>(model: M, optim: ModuleOptimizer, dir: &Path, probed: bool) -> Result<(M, ModuleOptimizer, Option<State>), SchemeError> {
    let ckpt = checkpoint_dir(dir);
    let state_path = ckpt.join("state.json");
    if !state_path.exists() {
        return Ok((model, optim, None));
    }
    let text = fs::read_to_string(&state_path).map_err(|e| file_err("read", &state_path, e))?;
    let state: State = serde_json::from_str(&text)
        .map_err(|e| file_err("parse", &state_path, format!("{e}; delete the checkpoint folder to start over")))?;
    let e = state.epochs_done;
    // A damaged checkpoint is refused with the way out: starting the stage over.
    let start_over = |err: String| format!("{err}; delete `{}` to train the stage from the start", ckpt.display());
    if probed && state.probes.len() != e {
        return Err(file_err("resume from", &state_path, start_over(format!("it holds {} measurements for {e} epochs", state.probes.len()))));
    }
    let model_path = ckpt.join(format!("epoch-{e}.bpk"));
    let model = load_module(model, &model_path).map_err(|err| file_err("resume from", &model_path, start_over(err.to_string())))?;
    let optim_path = ckpt.join(format!("epoch-{e}.optim.bpk"));
    let optim = optim.load(&optim_path).map_err(|err| file_err("resume from", &optim_path, start_over(err.to_string())))?;
    remove_other_epochs(&ckpt, e);
    tracing::info!(epoch = e, "resuming after the last completed epoch");
    Ok((model, optim, Some(state)))
}

/// The one training loop behind [`train`] and [`train_probed`].
fn run_epochs<M: Net>(
    model: M,
    objective: &dyn Objective<M>,
    signatures: &[LayerSignature],
    run: &Run<'_>,
    mut hook: Hook<'_, M>,
) -> Result<TrainOutcome<M, serde_json::Value>, SchemeError> {
    let Run { config, data, device, dir } = *run;
    config.check()?;
    let ckpt = checkpoint_dir(dir);
    fs::create_dir_all(&ckpt).map_err(|e| file_err("create", &ckpt, e))?;
    remove_stale_temporaries(&ckpt);
    let (mut model, mut optim, resumed) = resume(model, optimizer(config), dir, hook.is_some())?;
    let resumed_after = resumed.as_ref().map(|s| s.epochs_done);
    let mut state = resumed.unwrap_or(State { epochs_done: 0, best_acc: f64::NEG_INFINITY, history: vec![], probes: vec![] });

    for epoch in state.epochs_done..config.epochs {
        let started = Instant::now();
        let lr = config.lr_at(epoch);
        device.seed(config.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let bar = progress_bar(data.train.num_batches() as u64, epoch + 1, config.epochs);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, batch) in data.train.epoch(epoch as u64).enumerate() {
            let batch = batch?;
            let n = batch.labels.len();
            let (images, labels) = batch.to_tensors(device);
            let (next, value, hits) = train_step(model, objective, &mut optim, images, labels, lr);
            model = next;
            if !value.is_finite() {
                return Err(SchemeError::Diverged { epoch: epoch + 1, step, value: value as f32 });
            }
            correct += hits;
            loss_sum += value * n as f64;
            seen += n;
            bar.inc(1);
            bar.set_message(format!("loss {:.3} acc {:.1}%", loss_sum / seen as f64, 100.0 * correct as f64 / seen as f64));
        }
        bar.finish_and_clear();

        // One evaluation snapshot (no autodiff, running statistics synced) serves the test
        // evaluation, the detection, the hook, and the files written below.
        let snapshot = model.valid();
        let trained = Trained { lr, loss: loss_sum / seen.max(1) as f64, accuracy: correct as f64 / seen.max(1) as f64 };
        let row = evaluate_epoch(&snapshot, epoch, trained, signatures, run, started)?;
        if let Some(hook) = hook.as_mut() {
            state.probes.push(hook(&snapshot)?);
        }
        if row.test_acc > state.best_acc {
            state.best_acc = row.test_acc;
            save_module_with_mode(&snapshot, &dir.join("best.bpk"), secret_mode(&snapshot))?;
        }
        state.history.push(row);
        state.epochs_done = epoch + 1;
        commit_checkpoint(&snapshot, &optim, &state, dir)?;
    }
    Ok(TrainOutcome { model, history: state.history, best_acc: state.best_acc, resumed_after, probes: state.probes })
}

/// What an epoch's training steps measured.
struct Trained {
    lr: f64,
    loss: f64,
    accuracy: f64,
}

/// The epoch's row of `history.csv`: test accuracy of each path and signature detection of the
/// evaluation snapshot.
fn evaluate_epoch<M: Net>(
    snapshot: &M,
    epoch: usize,
    trained: Trained,
    signatures: &[LayerSignature],
    run: &Run<'_>,
    started: Instant,
) -> Result<EpochRow, SchemeError> {
    let eval_device = run.device.clone().without_autodiff();
    let test = evaluate(&snapshot.clone().fold_route(Route::Public), run.data.test, &eval_device)?;
    let private_acc = snapshot
        .is_private()
        .then(|| evaluate(&snapshot.clone().fold_route(Route::Private), run.data.test, &eval_device))
        .transpose()?
        .map(|r| r.accuracy);
    let detection = (!signatures.is_empty()).then(|| check_signatures(snapshot, signatures).mean_rate());
    let row = EpochRow {
        epoch: epoch + 1,
        lr: trained.lr,
        train_loss: trained.loss,
        train_acc: trained.accuracy,
        test_loss: test.loss,
        test_acc: test.accuracy,
        private_acc,
        detection,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(
        "epoch {}/{}: loss {:.4} train {:.2}% test {:.2}%{}{} ({:.0}s)",
        row.epoch,
        run.config.epochs,
        row.train_loss,
        100.0 * row.train_acc,
        100.0 * row.test_acc,
        row.private_acc.map_or(String::new(), |a| format!(" private {:.2}%", 100.0 * a)),
        row.detection.map_or(String::new(), |d| format!(" detection {:.1}%", 100.0 * d)),
        row.seconds
    );
    Ok(row)
}

/// The optimiser of a training run: SGD with momentum (no dampening, as PyTorch), L2 weight
/// decay, and optional gradient clipping by norm (per parameter tensor).
pub fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    SgdConfig::new()
        .with_gradient_clipping(config.grad_clip.map(|n| GradientClippingConfig::Norm(n as f32)))
        .with_momentum(Some(MomentumConfig::new().with_momentum(config.momentum).with_dampening(0.0)))
        .with_weight_decay((config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)))
        .init()
}

/// One optimisation step: forward, loss, backward, update. Returns the updated model, the loss
/// value and the number of correctly classified images of the batch.
pub fn train_step<M: Net>(
    model: M,
    objective: &dyn Objective<M>,
    optim: &mut ModuleOptimizer,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    lr: f64,
) -> (M, f64, usize) {
    let out = objective.step(&model, images, labels.clone());
    let value = scalar(out.loss.clone());
    let hits = correct_count(out.logits.detach(), labels);
    let grads = GradientsParams::from_grads(out.loss.backward(), &model);
    (optim.step(lr, model, grads), value, hits)
}

/// Owner-only permissions for a record holding private passports.
fn secret_mode<M: Net>(model: &M) -> Option<u32> {
    model.is_private().then_some(0o600)
}

fn progress_bar(len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Writes the model (an evaluation snapshot), the optimiser state and the history of the
/// completed epoch, then `state.json` (the commit point), then removes every other epoch's files.
fn commit_checkpoint<M: Net>(
    snapshot: &M,
    optim: &ModuleOptimizer,
    state: &State,
    dir: &Path,
) -> Result<(), SchemeError> {
    let ckpt = checkpoint_dir(dir);
    let e = state.epochs_done;
    save_module_with_mode(snapshot, &ckpt.join(format!("epoch-{e}.bpk")), secret_mode(snapshot))?;
    let optim_path = ckpt.join(format!("epoch-{e}.optim.bpk"));
    let bytes = optim.into_bytes().map_err(|err| file_err("encode", &optim_path, err))?;
    write_atomic(&optim_path, &bytes, None)?;
    write_history(&state.history, &dir.join("history.csv"))?;
    let json = serde_json::to_vec_pretty(state).map_err(|err| file_err("encode", &ckpt, err))?;
    write_atomic(&ckpt.join("state.json"), &json, None)?;
    remove_other_epochs(&ckpt, e);
    Ok(())
}

/// Removes the checkpoint files of every epoch but `e`, the committed one: not only the
/// previous epoch's, since a run killed between a commit and this clean-up leaves files that no
/// later commit names (and after the last epoch no later commit comes; a resume cleans up too).
fn remove_other_epochs(ckpt: &Path, e: usize) {
    for entry in fs::read_dir(ckpt).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let epoch = name.to_str().and_then(|n| n.strip_prefix("epoch-")).and_then(|n| n.split('.').next());
        if epoch.is_some_and(|k| k.parse::<usize>().ok() != Some(e)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes the history as CSV, atomically.
///
/// # Errors
/// A write error naming the file.
pub fn write_history(rows: &[EpochRow], path: &Path) -> Result<(), SchemeError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(|e| file_err("encode", path, e))?;
    }
    let bytes = writer.into_inner().map_err(|e| file_err("encode", path, e))?;
    write_atomic(path, &bytes, None)?;
    Ok(())
}
