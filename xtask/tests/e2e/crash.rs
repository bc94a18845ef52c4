//! Crash safety of `cargo xtask run`, end to end: a run killed with SIGKILL in the middle of an
//! epoch or of a checkpoint commit leaves only whole files (and hidden temporary files nothing
//! reads) and resumes to the same bits as a run never interrupted; a run folder that cannot be
//! written, and a write that fails part-way (a full disk, simulated with a file-size limit),
//! end in clear errors naming the file, never in a panic or a torn file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{json, read, serial, write_plan};

/// The longest one `xtask` process may take before the test gives up on it, so that a hang can
/// never stall CI. A run of the plan below takes seconds on an idle machine; the margin is for
/// a loaded one.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);

/// Epochs of the killed stage.
const EPOCHS: usize = 4;

/// One V1 stage on the synthetic task (512 training images of 32×32 px, 4 classes): each epoch
/// takes long enough (1.5 s on 2 cores) to be killed in the middle. The learning rate drops at
/// epoch 3, after the first resume, and momentum and weight decay are on, so a resume that
/// loses the optimiser state or the schedule changes the bits.
const PLAN: &str = r#"
name = "crash"
seed = 11
[data]
dataset = "synthetic"
[model]
arch = "alexnet"
width = 0.25
[train]
batch_size = 16
lr_steps = [2]
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
key_type = "random"
passport = "LAYOUT"
epochs = 4
"#;

/// A two-epoch V0 stage of the smallest model: for the error cases, which fail before or at
/// its first checkpoint.
const TINY: &str = r#"
name = "tiny"
seed = 2
[data]
dataset = "synthetic"
[model]
arch = "alexnet"
width = 0.125
[train]
batch_size = 64
lr_steps = []
[[stage]]
name = "v0"
kind = "train"
scheme = "v0"
epochs = 2
"#;


/// `xtask run PLAN --runs RUNS` with stdout and stderr appended to `log`.
fn xtask_run(plan: &Path, runs: &Path, log: &Path) -> Command {
    let out = File::options().create(true).append(true).open(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    cmd
}



/// Waits for `child`, killing it and failing the test after [`PROCESS_TIMEOUT`].
fn wait(child: &mut Child, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xtask ran longer than {PROCESS_TIMEOUT:?}; killed it. Log:\n{}", read(log));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the plan to the end and returns its log.
fn run_to_end(plan: &Path, runs: &Path, log: &Path) -> String {
    let mut child = xtask_run(plan, runs, log).spawn().unwrap();
    let status = wait(&mut child, log);
    let text = read(log);
    assert!(status.success(), "xtask failed ({status}):\n{text}");
    text
}

/// The committed checkpoint of a stage: `epochs_done` and the last epoch's wall time. While the
/// run writes, `state.json` is replaced atomically, so whenever it exists it parses.
fn committed(stage: &Path) -> Option<(usize, f64)> {
    let path = stage.join("checkpoint/state.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let state: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} read while running is torn: {e}\n{text}", path.display()));
    let done = state["epochs_done"].as_u64().unwrap() as usize;
    let seconds = state["history"].as_array().unwrap().last().map_or(0.0, |row| row["seconds"].as_f64().unwrap());
    Some((done, seconds))
}

/// When [`run_and_kill`] kills.
#[derive(Clone, Copy, PartialEq)]
enum Kill {
    /// In the middle of the epoch after the one awaited: 40% of an epoch's time after its commit.
    MidEpoch,
    /// As soon as the run writes a file after the awaited epoch's commit (a `write_atomic`
    /// temporary file of the process appears): inside the next epoch's checkpoint commit.
    InCommit,
}

/// The `write_atomic` temporary files of process `pid` in a stage folder and its checkpoint.
fn temps_of(stage: &Path, pid: u32) -> Vec<String> {
    let suffix = format!(".tmp-{pid}");
    [stage.to_path_buf(), stage.join("checkpoint")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(&suffix))
        .collect()
}

/// Starts the plan, waits until epoch `after` is committed, and kills the process with SIGKILL
/// `when` says. An in-commit kill that sees no commit in progress (a very fast disk) falls back
/// to a mid-epoch kill in the epoch after. Returns the killed process's id and the epochs
/// committed when it died.
fn run_and_kill(plan: &Path, runs: &Path, log: &Path, after: usize, when: Kill) -> (u32, usize) {
    let stage = runs.join("crash/v1");
    let mut child = xtask_run(plan, runs, log).spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let mut seconds = None;
    let mut caught = Vec::new();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before epoch {after} was committed and it could be killed: \
                 if it succeeded, enlarge the plan (more images, a wider model) so that epochs last longer. Log:\n{}",
                read(log)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("epoch {after} not committed after {PROCESS_TIMEOUT:?}. Log:\n{}", read(log));
        }
        match (when, seconds, committed(&stage)) {
            (Kill::MidEpoch, None, Some((done, s))) if done >= after => break std::thread::sleep(Duration::from_secs_f64(0.4 * s)),
            (Kill::InCommit, None, Some((done, s))) if done >= after => seconds = Some((done, s)),
            (Kill::InCommit, Some((seen, s)), Some((done, _))) => {
                caught = temps_of(&stage, pid);
                if !caught.is_empty() {
                    break;
                }
                if done > seen {
                    eprintln!("note: no commit caught in progress; killing in the middle of the next epoch");
                    break std::thread::sleep(Duration::from_secs_f64(0.4 * s));
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_micros(if seconds.is_some() { 200 } else { 10_000 }));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it was killed ({status}): enlarge the plan");
    let (done, _) = committed(&stage).unwrap();
    assert!(
        done < EPOCHS && !stage.join("summary.json").exists(),
        "every epoch was done before the kill (epoch {done}/{EPOCHS}): enlarge the plan so that epochs last longer"
    );
    match when {
        Kill::MidEpoch if done != after => eprintln!("note: the kill landed after epoch {done}, not in epoch {}", after + 1),
        Kill::InCommit if !caught.is_empty() => eprintln!("killed in the commit of epoch {} while writing {caught:?}", after + 1),
        _ => {}
    }
    (pid, done)
}

/// Checks the checkpoint a kill left: the records `state.json` names exist, and `history.csv`
/// has a row per committed epoch, or one more (written just before `state.json`).
fn assert_committed(stage: &Path, done: usize) {
    for file in [format!("epoch-{done}.bpk"), format!("epoch-{done}.optim.bpk")] {
        assert!(stage.join("checkpoint").join(&file).exists(), "state.json names epoch {done}, but {file} is missing");
    }
    let rows = history_without_seconds(stage).len() - 1;
    assert!(rows == done || rows == done + 1, "history.csv has {rows} epochs, the checkpoint {done}");
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Temporary files of `write_atomic` (`.<name>.tmp-<pid>`) under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(dir, &mut all);
    all.retain(|p| p.file_name().unwrap().to_str().unwrap().contains(".tmp-"));
    all
}

/// Checks that every file under `dir` is whole: JSON and TOML parse, every CSV row has the
/// header's columns, every burnpack record decodes (a truncated one does not). Temporary files
/// may be left only by the killed processes `killed`, hidden and named so that nothing reads
/// them as data. Returns the temporary files found.
fn check_whole(dir: &Path, killed: &[u32]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut temps = Vec::new();
    for path in all {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some((_, pid)) = name.rsplit_once(".tmp-") {
            assert!(name.starts_with('.'), "{}: a temporary file that is not hidden", path.display());
            let pid: u32 = pid.parse().unwrap_or_else(|_| panic!("{}: not a temporary file of write_atomic", path.display()));
            assert!(killed.contains(&pid), "{}: left by process {pid}, which was not killed", path.display());
            temps.push(path);
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                json(&path);
            }
            Some("toml") => {
                read(&path).parse::<toml::Table>().unwrap_or_else(|e| panic!("{} is not whole TOML: {e}", path.display()));
            }
            Some("csv") => {
                let text = read(&path);
                assert!(text.ends_with('\n'), "{} ends mid-line", path.display());
                let mut lines = text.lines();
                let columns = lines.next().unwrap_or_else(|| panic!("{} is empty", path.display())).split(',').count();
                for line in lines {
                    assert_eq!(line.split(',').count(), columns, "{}: a row of another width: {line}", path.display());
                }
            }
            Some("bpk") => {
                // Decoding checks every tensor's bytes lie within the file.
                let bytes = burn::tensor::Bytes::from_bytes_vec(std::fs::read(&path).unwrap());
                let record = burn::store::ModuleRecord::from_bytes(bytes)
                    .unwrap_or_else(|e| panic!("{} is not a whole record: {e:?}", path.display()));
                assert!(!record.is_empty(), "{} holds no tensor", path.display());
            }
            _ => {}
        }
    }
    temps
}

/// The weights digest of the model record `file` of a train stage, loaded into the model its
/// `model.json` describes: a digest of every float tensor's path, shape and bits, the whole
/// record (checked), but not its parameter ids, which are drawn at random when a model is built
/// and so differ between two processes even where every weight is equal.
fn record_digest(stage: &Path, file: &str) -> String {
    let card = json(&stage.join("model.json"));
    let config: ipr_models::NetConfig = serde_json::from_value(card["model"].clone()).unwrap();
    let layers = card["passport_layers"].as_array().unwrap();
    let layout = ipr_models::Layout::from_entries(
        layers.iter().map(|p| (p.as_str().unwrap().to_owned(), ipr_passport::SignatureSpec::Random)),
    );
    let model: ipr_models::AlexNet = ipr_models::Net::init(&config, &layout, &burn::prelude::Device::flex()).unwrap();
    let path = stage.join(file);
    let model = ipr_models::load_module(model, &path).unwrap_or_else(|e| panic!("{e}"));
    let bytes = burn::tensor::Bytes::from_bytes_vec(std::fs::read(&path).unwrap());
    let tensors = burn::store::ModuleRecord::from_bytes(bytes).unwrap().len();
    assert_eq!(ipr_models::param_paths(&model).len(), tensors, "{file}: the digest would miss tensors that are not float");
    ipr_models::weights_digest(&model)
}

/// `history.csv` without its wall-time column.
fn history_without_seconds(stage: &Path) -> Vec<String> {
    let text = read(&stage.join("history.csv"));
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let seconds = header.iter().position(|c| *c == "seconds").expect("history.csv has a `seconds` column");
    text.lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split(',').collect();
            cells.remove(seconds);
            cells.join(",")
        })
        .collect()
}

/// The epochs a run's log says it trained (`epoch N/4: …`).
fn trained_epochs(log: &str) -> Vec<usize> {
    log.lines()
        .filter_map(|line| line.split_once("epoch ").and_then(|(_, rest)| rest.split_once(&format!("/{EPOCHS}:"))))
        .filter_map(|(n, _)| n.parse().ok())
        .collect()
}

/// Checks that a run's log resumed after epoch `done` and trained exactly the epochs after it.
fn assert_resumed(log: &str, done: usize) {
    let resumed = log
        .lines()
        .find(|l| l.contains("resuming after the last completed epoch"))
        .unwrap_or_else(|| panic!("the rerun did not resume:\n{log}"));
    assert!(resumed.contains(&format!("epoch={done}")), "resumed at the wrong epoch (expected {done}): {resumed}");
    assert_eq!(trained_epochs(log), ((done + 1)..=EPOCHS).collect::<Vec<_>>(), "epochs trained after resuming:\n{log}");
}

/// SIGKILL twice, in the middle of an epoch and then inside a checkpoint commit, then a run to
/// the end: the files stay whole at every kill, each rerun resumes after the last committed
/// epoch, and the result is bit for bit that of a run never interrupted.
#[test]
fn killed_run_resumes_to_the_same_bits() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), PLAN);
    let started = Instant::now();

    let reference = tmp.path().join("reference");
    let log = run_to_end(&plan, &reference, &tmp.path().join("reference.log"));
    assert_eq!(trained_epochs(&log), (1..=EPOCHS).collect::<Vec<_>>(), "{log}");
    let uninterrupted = started.elapsed();

    let runs = tmp.path().join("runs");
    let stage = runs.join("crash/v1");
    let mut killed = Vec::new();
    let (pid, first) = run_and_kill(&plan, &runs, &tmp.path().join("kill-1.log"), 1, Kill::MidEpoch);
    killed.push(pid);
    check_whole(&runs, &killed);
    assert_committed(&stage, first);
    let ckpt = stage.join("checkpoint");
    let mut done = first;
    if first + 1 < EPOCHS {
        let log = tmp.path().join("kill-2.log");
        let (pid, second) = run_and_kill(&plan, &runs, &log, first, Kill::InCommit);
        killed.push(pid);
        assert!(read(&log).contains(&format!("epoch={first}")), "{}", read(&log));
        check_whole(&runs, &killed);
        assert_committed(&stage, second);
        done = second;
    }
    // A kill between a commit and its clean-up leaves the files of the epoch before it, which
    // no later commit names. The window is too short for a timed kill: plant them instead; the
    // next commit must remove them.
    for ext in ["bpk", "optim.bpk"] {
        std::fs::copy(ckpt.join(format!("epoch-{done}.{ext}")), ckpt.join(format!("epoch-{}.{ext}", done - 1))).unwrap();
    }
    let log = run_to_end(&plan, &runs, &tmp.path().join("resume.log"));
    assert_resumed(&log, done);
    let temps = check_whole(&runs, &killed);
    let epoch_seconds: Vec<String> = json(&reference.join("crash/v1/checkpoint/state.json"))["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| format!("{:.1}", row["seconds"].as_f64().unwrap()))
        .collect();
    eprintln!(
        "epochs committed at the kills: {first}, then {done}; uninterrupted run {:.1} s (epochs {} s), \
         whole test {:.1} s; temporary files left by the kills: {temps:?}",
        uninterrupted.as_secs_f64(),
        epoch_seconds.join(", "),
        started.elapsed().as_secs_f64()
    );

    // The same bits as the uninterrupted run.
    let expected = reference.join("crash/v1");
    assert_eq!(history_without_seconds(&stage), history_without_seconds(&expected), "history.csv differs");
    assert_eq!(history_without_seconds(&stage).len(), EPOCHS + 1);
    let (summary, reference_summary) = (json(&stage.join("summary.json")), json(&expected.join("summary.json")));
    for key in ["epochs", "train_images", "test_acc", "best_test_acc", "train_acc", "detection"] {
        assert_eq!(summary[key], reference_summary[key], "summary.json `{key}` differs");
    }
    // The claim, less the owner's signature over it (which covers the time it was made).
    let claim = |p: &Path| {
        let mut v = json(p);
        v.as_object_mut().unwrap().remove("owner");
        v
    };
    assert_eq!(claim(&stage.join("owner.json")), claim(&expected.join("owner.json")), "owner.json differs");
    for file in ["model.json", "stage.toml"] {
        assert_eq!(read(&stage.join(file)), read(&expected.join(file)), "{file} differs");
    }
    // Model records compare by content: their parameter ids are random per process. The
    // optimiser's record is keyed by those ids and cannot be compared across processes; a lost
    // or wrong momentum after a resume shows in the weights of the epochs after it.
    for file in ["model.bpk", "best.bpk", "checkpoint/epoch-4.bpk"] {
        assert_eq!(record_digest(&stage, file), record_digest(&expected, file), "{file} differs from the uninterrupted run's");
    }
    let weights = json(&stage.join("owner.json"))["weights_sha256"].clone();
    assert_eq!(weights, record_digest(&stage, "model.bpk").as_str(), "owner.json names other weights");
    let (state, reference_state) = (json(&ckpt.join("state.json")), json(&expected.join("checkpoint/state.json")));
    assert_eq!(state["epochs_done"], EPOCHS);
    assert_eq!(state["best_acc"], reference_state["best_acc"]);
    assert_eq!(json(&stage.join("headline.json"))["result"], json(&expected.join("headline.json"))["result"]);

    // The checkpoint holds the last epoch only (and what the kills left, which nothing reads).
    let mut names: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.contains(".tmp-"))
        .collect();
    names.sort();
    assert_eq!(names, ["epoch-4.bpk", "epoch-4.optim.bpk", "state.json"]);
}

/// The id of the `nobody` user, who cannot write a folder of mode `0555`.
const NOBODY: u32 = 65534;

/// Whether a process as `uid` can create a file in `dir`; `None` if it cannot be started as
/// that user.
#[cfg(unix)]
fn can_write_as(dir: &Path, uid: Option<u32>) -> Option<bool> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "touch \"$0/.probe\" 2>/dev/null", dir.to_str().unwrap()]);
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let status = cmd.status().ok()?;
    let _ = std::fs::remove_file(dir.join(".probe"));
    Some(status.success())
}

/// A run folder that cannot be written: exit status 2 and an error naming the folder or file
/// that could not be made, before any training. Root ignores the mode bits, so as root the
/// runs are made as `nobody`, and skipped with a note if that is not possible.
#[cfg(unix)]
#[test]
fn read_only_run_folder_is_a_clear_error() {
    let _serial = serial();
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let plan = write_plan(tmp.path(), TINY);
    // Two cases: the folder of all runs is read-only, and a stage folder of an earlier run is.
    let runs = tmp.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let other = tmp.path().join("other");
    let stage = other.join("tiny/v0");
    std::fs::create_dir_all(&stage).unwrap();
    let cases = [(&runs, runs.join("tiny")), (&other, stage.join("stage.toml"))];
    let read_only = std::fs::Permissions::from_mode(0o555);
    std::fs::set_permissions(&runs, read_only.clone()).unwrap();
    std::fs::set_permissions(&stage, read_only).unwrap();
    // The plan's run folder itself stays writable (to whoever runs the test), so that the run
    // takes its lock there and fails at the stage folder.
    std::fs::set_permissions(other.join("tiny"), std::fs::Permissions::from_mode(0o777)).unwrap();

    let user = match (can_write_as(&runs, None), can_write_as(&runs, Some(NOBODY))) {
        (Some(false), _) => None,
        (_, Some(false)) => Some(NOBODY),
        _ => {
            eprintln!("note: skipped: running as root, and a process as `nobody` cannot be started or can write a 0555 folder");
            return;
        }
    };
    eprintln!("running as {}", user.map_or("this user".into(), |uid| format!("uid {uid} (nobody), since this user is root")));
    for (dir, needle) in cases {
        let log = tmp.path().join("read-only.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = xtask_run(&plan, dir, &log);
        if let Some(uid) = user {
            cmd.uid(uid).gid(uid);
        }
        let status = wait(&mut cmd.spawn().unwrap(), &log);
        let text = read(&log);
        assert_eq!(status.code(), Some(2), "{text}");
        assert!(text.contains(&format!("`{}`", needle.display())), "the error does not name {}:\n{text}", needle.display());
        assert!(!text.contains("panicked") && !text.contains("stage `v0` starting"), "{text}");
        assert!(temp_files(dir).is_empty(), "{text}");
        eprintln!("{}", text.lines().find(|l| l.starts_with("error:")).unwrap_or_default());
    }
}

/// A write that fails part-way, as on a full disk (simulated without privileges: a file-size
/// limit makes a write past it fail with `EFBIG`, as `ENOSPC` fails it on a full disk): the run
/// stops with exit status 2 and an error naming the record, leaves no temporary file and commits
/// no checkpoint, and a rerun with room to write starts the stage afresh and completes.
#[cfg(unix)]
#[test]
fn failing_write_is_a_clear_error_and_leaves_no_torn_file() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), TINY);
    let runs = tmp.path().join("runs");
    let log = tmp.path().join("full.log");
    // 16 blocks (8 KiB in dash, 16 KiB in bash): room for stage.toml, not for a model record.
    // SIGXFSZ is ignored, so the write fails with an error instead of killing the process.
    let out = File::create(&log).unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -f 16 && exec \"$@\"", "sh", env!("CARGO_BIN_EXE_xtask"), "run"])
        .args([plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let status = wait(&mut child, &log);
    let text = read(&log);
    assert_eq!(status.code(), Some(2), "{text}");
    let stage = runs.join("tiny/v0");
    let error = text.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line:\n{text}"));
    assert!(error.contains("cannot write") && error.contains(&stage.display().to_string()) && error.contains(".bpk`"), "{error}");
    assert!(!text.contains("panicked"), "{text}");
    eprintln!("{error}");
    assert!(temp_files(&runs).is_empty(), "temporary files left: {:?}", temp_files(&runs));
    assert!(!stage.join("checkpoint/state.json").exists(), "a checkpoint was committed");
    check_whole(&runs, &[]);

    let text = run_to_end(&plan, &runs, &tmp.path().join("after.log"));
    assert!(!text.contains("resuming"), "{text}");
    assert!(stage.join("summary.json").exists() && temp_files(&runs).is_empty());
    check_whole(&runs, &[]);
}

/// The environment variable that makes [`write_atomic_child_process`] act.
const CHILD: &str = "IPR_CRASH_WRITE_ATOMIC_TARGET";

/// The library path: `write_atomic` replacing a file, in a process whose file-size limit makes
/// the write fail part-way, returns an error naming the file and leaves the old file whole; into
/// a folder that does not exist, it fails naming the file and creates nothing.
#[cfg(unix)]
#[test]
fn failing_write_atomic_keeps_the_old_file() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("state.json");
    std::fs::write(&target, "{\"old\": true}").unwrap();
    let out = Command::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -f 16 && exec \"$@\"", "sh"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "crash::write_atomic_child_process", "--nocapture", "--test-threads", "1"])
        .env(CHILD, &target)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    let error = text.lines().find_map(|l| l.split_once("write_atomic: ").map(|(_, e)| e)).unwrap_or_else(|| panic!("{text}"));
    assert!(error.contains("cannot write") && error.contains(&format!("`{}`", target.display())), "{error}");
    assert_eq!(read(&target), "{\"old\": true}", "the old file was damaged");
    assert!(temp_files(tmp.path()).is_empty(), "{:?}", temp_files(tmp.path()));

    let missing = tmp.path().join("no-such-folder/state.json");
    let error = ipr_models::write_atomic(&missing, b"{}", None).unwrap_err().to_string();
    assert!(error.contains(&format!("`{}`", missing.display())), "{error}");
    assert!(!tmp.path().join("no-such-folder").exists());
}

/// Not a check on its own: the child process of [`failing_write_atomic_keeps_the_old_file`],
/// which sets [`CHILD`] and a file-size limit; without them it does nothing.
#[test]
fn write_atomic_child_process() {
    let Some(target) = std::env::var_os(CHILD) else { return };
    let result = ipr_models::write_atomic(Path::new(&target), &vec![b' '; 1 << 20], None);
    eprintln!("write_atomic: {}", result.err().map_or("succeeded".into(), |e| e.to_string()));
}
