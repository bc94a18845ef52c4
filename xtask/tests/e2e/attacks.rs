//! Every attack stage end to end on the real Fashion-MNIST, as a user runs it: the plan report's
//! summary table, each stage's table and curve, and the measurements that must hold whatever the
//! training reached (pruning everything, flipping every sign).

use std::path::Path;
use std::process::Command;

use crate::support::{json, need_fashion_mnist, serial, write_plan};

const PLAN: &str = r#"
name = "attacks"
seed = 2
[data]
dataset = "fashion-mnist"
train_per_class = 60
test_subset = 500
[model]
arch = "alexnet"
width = 0.125
[train]
batch_size = 32
lr_steps = []
epochs = 1
[[stage]]
name = "baseline"
kind = "train"
scheme = "v0"
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
pretrained = "baseline"
passport = "LAYOUT"
epochs = 2
[[stage]]
name = "rtal"
kind = "attack"
attack = "finetune"
from = "v1"
classes = [5, 6, 7, 8, 9]
epochs = 1
[[stage]]
name = "prune"
kind = "attack"
attack = "prune"
from = "v1"
percents = [0.0, 50.0, 100.0]
[[stage]]
name = "flip"
kind = "attack"
attack = "flip"
from = "v1"
fractions = [0.0, 0.5, 1.0]
[[stage]]
name = "forge"
kind = "attack"
attack = "forge"
from = "v1"
source = "noise"
draws = 1
[[stage]]
name = "reverse"
kind = "attack"
attack = "reverse"
from = "v1"
epochs = 1
[[stage]]
name = "optimise"
kind = "attack"
attack = "optimise-passport"
from = "v1"
flip = 0.1
epochs = 1
[[stage]]
name = "steal"
kind = "attack"
attack = "steal"
from = "v1"
[[stage]]
name = "overwrite"
kind = "attack"
attack = "overwrite"
from = "v1"
epochs = 1
[[stage]]
name = "cerb"
kind = "attack"
attack = "substitute"
from = "v1"
erb = "cerb"
data_fraction = 0.5
epochs = 2
"#;


fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

#[test]
fn every_attack_runs_and_reports() {
    let _serial = serial();
    need_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), PLAN);
    let runs = tmp.path().join("runs");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{log}");
    let dir = runs.join("attacks");

    // The summary table names every attack stage, with a verdict.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let summary = report.split("## Attacks").nth(1).expect("an attack summary table");
    for stage in ["rtal", "prune", "flip", "forge", "reverse", "optimise", "cerb"] {
        assert!(summary.lines().any(|l| l.starts_with(&format!("| {stage} |"))), "{stage} missing from the summary:\n{report}");
        let line = json(&dir.join(stage).join("attack.json"));
        assert!(["Owned", "NotOwned", "Inconclusive"].contains(&line["verdict"].as_str().unwrap()), "{line}");
    }
    // A curve for every attack with a sweep or epochs.
    for png in ["prune/prune.png", "flip/flip.png", "rtal/epochs.png", "reverse/epochs.png", "optimise/epochs.png", "cerb/epochs.png"] {
        assert!(is_png(&dir.join(png)), "{png} is not a PNG");
        assert!(report.contains(&format!("]({png})")), "the report does not show {png}");
    }

    // Pruning everything leaves chance and no γ; flipping every sign leaves none of the bits.
    let prune = json(&dir.join("prune/summary.json"));
    let rows = prune["rows"].as_array().unwrap();
    assert_eq!(rows[0]["detection"], 1.0, "the trained V1 model carries its signature: {prune}");
    assert!(rows[2]["accuracy"].as_f64().unwrap() <= 0.2, "{prune}");
    let flip = json(&dir.join("flip/summary.json"));
    let rows = flip["rows"].as_array().unwrap();
    assert_eq!((rows[0]["detection"].as_f64(), rows[2]["detection"].as_f64()), (Some(1.0), Some(0.0)), "{flip}");
    // Flipping γ signs does not change the conv weights the verifier reads γ through.
    assert_eq!(flip["verdict"]["decision"], "Owned", "{flip}");

    // The training attacks measured every epoch.
    let optimise = json(&dir.join("optimise/summary.json"));
    assert_eq!(optimise["probes"].as_array().unwrap().len(), 1);
    assert!(optimise["forger_verdict"]["decision"].is_string(), "{optimise}");
    let cerb = json(&dir.join("cerb/summary.json"));
    assert_eq!(cerb["probes"].as_array().unwrap().len(), 2);
    assert_eq!(cerb["train_images"], 300, "half of the 600 training images");
    let rtal = json(&dir.join("rtal/summary.json"));
    assert!(rtal["probes"][0]["passport_detection"].as_f64().is_some(), "{rtal}");

    // Every attack settles a dispute between the owner's claim and the attacker's; the report
    // opens with their table. Whatever the tiny models reached, the attacker's claim never
    // holds where it is copied, needs an accessory block, or was written over the owner's.
    assert!(report.starts_with("# Plan `attacks`\n\n## Disputes"), "{report}");
    let attacker = |stage: &str| {
        let rows = json(&dir.join(stage).join("dispute.json"));
        let row = rows.as_array().unwrap().iter().find(|r| r["claimant"] == "attacker").cloned().unwrap();
        (row["verdict"].as_str().unwrap().to_string(), row["reason"].as_str().unwrap().to_string())
    };
    for stage in ["rtal", "prune", "flip", "forge", "reverse", "optimise", "steal", "overwrite", "cerb"] {
        assert_ne!(attacker(stage).0, "supported", "{stage}: {:?}", attacker(stage));
    }
    let (verdict, reason) = attacker("cerb");
    assert!(verdict == "rejected" && reason.contains("not the architecture") && reason.contains("erb"), "{reason}");
    let (verdict, reason) = attacker("steal");
    assert!(verdict == "derived" && reason.contains("bound bits"), "{reason}");
    // The attacker's claim is written owner-only, its receipt beside it.
    assert!(dir.join("steal/attacker.json").exists() && dir.join("steal/attacker_receipt.json").exists());
}
