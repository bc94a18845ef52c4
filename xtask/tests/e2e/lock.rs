//! The run folder's lock: a second `cargo xtask run` of a plan whose folder another run holds
//! stops with exit status 2 naming that process, or waits for it with `--wait`; a run killed
//! with SIGKILL leaves no lock behind.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{serial, text, write_plan, xtask};

/// A V0 stage on the synthetic task that runs for a few seconds.
const PLAN: &str = r#"
name = "locked"
seed = 4
[data]
dataset = "synthetic"
[model]
arch = "alexnet"
width = 0.25
[train]
batch_size = 16
lr_steps = []
[[stage]]
name = "v0"
kind = "train"
scheme = "v0"
epochs = 3
"#;

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits until `path` holds the lock record of process `pid`.
fn wait_for_lock(path: &std::path::Path, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(path).is_ok_and(|t| t.starts_with(&format!("pid {pid} "))) {
        assert!(Instant::now() < deadline, "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_of_a_busy_folder_stops_or_waits_and_a_killed_run_leaves_no_lock() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), PLAN);
    let runs = tmp.path().join("runs");
    let args = ["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()];
    let lock_file = runs.join("locked/.lock");

    let mut first = spawn(&args);
    wait_for_lock(&lock_file, first.id());
    let second = xtask(&args);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    let msg = text(&second);
    assert!(msg.contains(&format!("in use by process pid {}", first.id())) && msg.contains("--wait"), "{msg}");
    assert!(!msg.contains("stage `v0` starting") && !msg.contains("panicked"), "{msg}");

    let mut wait_args = args.to_vec();
    wait_args.push("--wait");
    let waiting = xtask(&wait_args);
    assert!(first.wait().unwrap().success());
    assert!(waiting.status.success(), "{}", text(&waiting));
    assert!(text(&waiting).contains("waiting for it") && text(&waiting).contains("is complete; skipping"), "{}", text(&waiting));

    // Killed while it holds the folder: the next run goes ahead at once.
    std::fs::remove_dir_all(runs.join("locked/v0")).unwrap();
    let mut killed = spawn(&args);
    wait_for_lock(&lock_file, killed.id());
    killed.kill().unwrap();
    killed.wait().unwrap();
    let started = Instant::now();
    let after = xtask(&args);
    assert!(after.status.success(), "{}", text(&after));
    assert!(!text(&after).contains("in use"), "{}", text(&after));
    assert!(started.elapsed() < Duration::from_secs(300));
}
