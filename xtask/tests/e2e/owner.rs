//! Owner keys, signed claims, receipts and disputes from the command line, as a user meets
//! them: a key with loose permissions or a damaged key stops a plan with the fix; a claim
//! changed after signing does not prove ownership; a thief presenting the owner's bundle under
//! its own key loses the dispute, and a receipt of another claim is reported.

use std::path::Path;

use ipr_models::{OwnerBundle, OwnerKey};

use crate::support::{json, serial, text, write_plan, xtask};

/// A V1 stage on the synthetic task, signed with the key named by `KEY`.
const PLAN: &str = r#"
name = "owned"
seed = 6
[data]
dataset = "synthetic"
[model]
arch = "alexnet"
width = 0.125
[owner]
key = "KEY"
[train]
batch_size = 32
lr_steps = []
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
key_type = "random"
passport = "LAYOUT"
epochs = 3
[[stage]]
name = "null"
kind = "calibrate"
from = "v1"
models = 2
epochs = 1
"#;

fn run(plan: &Path, runs: &Path) -> std::process::Output {
    xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()])
}

#[test]
fn keys_claims_and_disputes_from_the_command_line() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    assert!(xtask(&["keys", "new", "--out", keys.to_str().unwrap()]).status.success());
    let key = keys.join("owner.key");
    let plan = write_plan(tmp.path(), &PLAN.replace("KEY", key.to_str().unwrap()));
    let runs = tmp.path().join("runs");

    // A secret key others can read, then a damaged one: exit 2 with the fix, before training.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = run(&plan, &runs);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(&format!("chmod 600 {}", key.display())) && !text(&out).contains("stage `v1` starting"), "{}", text(&out));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let whole = std::fs::read(&key).unwrap();
    std::fs::write(&key, &whole[..whole.len() / 2]).unwrap();
    let out = run(&plan, &runs);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not an owner key") && text(&out).contains("cargo xtask keys new"), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    std::fs::write(&key, &whole).unwrap();

    let out = run(&plan, &runs);
    assert!(out.status.success(), "{}", text(&out));
    let stage = runs.join("owned/v1");
    // The empirical null: independent models carry the claim's bits at chance, none is owned.
    let null = json(&runs.join("owned/null/summary.json"));
    let rows = null["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{null}");
    for r in rows {
        let agreement = r["agreement"].as_f64().unwrap();
        assert!((0.2..0.8).contains(&agreement) && r["decision"] != "Owned", "{null}");
        assert!(r["text_agreement"].as_f64().is_some() && r["other_agreement"].as_f64().is_some(), "{null}");
    }
    assert_eq!(null["false_owned"], 0.0, "{null}");
    let (model, owner) = (stage.join("model.bpk"), stage.join("owner.json"));
    let verdict = xtask(&["verify", "--model", model.to_str().unwrap(), "--owner", owner.to_str().unwrap(), "--json"]);
    assert_eq!(verdict.status.code(), Some(0), "{}", text(&verdict));
    let v: serde_json::Value = serde_json::from_slice(&verdict.stdout).unwrap();
    assert_eq!(v["verdict"]["binding"]["binding"], "holds", "{v}");
    assert_eq!(v["verdict"]["claim_signature"]["signature"], "valid", "{v}");

    // One bit of the claim changed after signing: the signature no longer verifies.
    let mut changed = json(&owner);
    let bit = &mut changed["layers"][0]["signature"]["bits"][0];
    *bit = serde_json::json!(-bit.as_i64().unwrap());
    let tampered = tmp.path().join("tampered.json");
    ipr_models::write_atomic(&tampered, &serde_json::to_vec(&changed).unwrap(), Some(0o600)).unwrap();
    let out = xtask(&["verify", "--model", model.to_str().unwrap(), "--owner", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("signature does not verify") && !text(&out).contains("verdict: OWNED"), "{}", text(&out));

    // The thief presents the owner's bundle under its own key, dated earlier.
    let bundle = OwnerBundle::load(&owner).unwrap();
    let mut stolen = bundle.clone();
    stolen.sign(&OwnerKey::from_seed(99), bundle.owner.as_ref().unwrap().created - 10);
    let thief = tmp.path().join("thief.json");
    stolen.save(&thief, false).unwrap();
    let thief_receipt = tmp.path().join("thief-receipt.json");
    assert!(xtask(&["register", "--owner", thief.to_str().unwrap(), "--out", thief_receipt.to_str().unwrap()]).status.success());
    let dispute = |extra: &[&str]| {
        let (owner, thief) = (format!("owner={}", owner.display()), format!("thief={}", thief.display()));
        let mut a = vec!["verify", "--model", model.to_str().unwrap(), "--owner", &owner, "--owner", &thief];
        a.extend(extra);
        xtask(&a)
    };
    let receipt = stage.join("receipt.json");
    let out = dispute(&["--receipt", receipt.to_str().unwrap(), "--receipt", thief_receipt.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["dispute"]["supported"], "owner", "{d}");
    let thief_status = &d["dispute"]["claims"][1][1];
    assert_eq!(thief_status["status"], "derived", "{d}");
    assert!(thief_status["why"].as_str().unwrap().contains("bound bits"), "{d}");
    // A receipt of another claim under the owner's key is reported, not taken as the owner's.
    let mut other = bundle.clone();
    other.weights_sha256 = "00".into();
    other.sign(&ipr_models::OwnerKey::load(&key).unwrap(), 1);
    let other_receipt = tmp.path().join("other-receipt.json");
    std::fs::write(&other_receipt, serde_json::to_vec(&ipr_models::Receipt::of(&other).unwrap()).unwrap()).unwrap();
    let out = dispute(&["--receipt", other_receipt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("receipt does not match") && text(&out).contains("commits to another claim"), "{}", text(&out));
    // Registering an unsigned bundle is an error naming the file.
    let mut unsigned = bundle;
    unsigned.owner = None;
    let plain = tmp.path().join("unsigned.json");
    unsigned.save(&plain, false).unwrap();
    let out = xtask(&["register", "--owner", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unsigned.json") && text(&out).contains("not signed"), "{}", text(&out));
}
