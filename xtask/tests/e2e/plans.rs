//! `cargo xtask run` end to end, as a user runs it: a small plan on the real Fashion-MNIST, its
//! re-run, and the errors a user mistake must produce.

use std::path::{Path, PathBuf};

use crate::support::{json, need_fashion_mnist, serial, text, write_plan, xtask};




const SMALL: &str = r#"
name = "small"
seed = 3
[data]
dataset = "fashion-mnist"
train_per_class = 60
test_subset = 1000
[model]
arch = "alexnet"
width = 0.125
[train]
batch_size = 32
lr_steps = []
[[stage]]
name = "baseline"
kind = "train"
scheme = "v0"
epochs = 1
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
pretrained = "baseline"
passport = "LAYOUT"
epochs = 2
[[stage]]
name = "verify"
kind = "verify"
from = "v1"
[[stage]]
name = "forge"
kind = "attack"
attack = "forge"
from = "v1"
pretrained = "baseline"
draws = 2
"#;

/// The small plan with a layout of three passport layers, one with a 3-character text.
fn small(dir: &Path) -> String {
    let layout = dir.join("layout.toml");
    std::fs::write(&layout, crate::support::LAYOUT).unwrap();
    SMALL.replace("LAYOUT", layout.to_str().unwrap())
}


#[test]
fn small_plan_on_real_fashion_mnist_runs_then_skips() {
    let _serial = serial();
    need_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &small(tmp.path()));
    let runs = tmp.path().join("runs");
    let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = runs.join("small");
    for file in ["report.md", "baseline/model.bpk", "baseline/history.csv", "v1/owner.json", "v1/stage.toml", "verify/summary.json", "forge/summary.json"] {
        assert!(dir.join(file).exists(), "missing {file}");
    }
    // The owner bundle is the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("v1/owner.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The baseline has no owner bundle; the verify stage reads the V1 bundle.
    assert!(!dir.join("baseline/owner.json").exists());
    let verify = json(&dir.join("verify/summary.json"));
    assert_eq!(verify["weights_match"], true);
    let total = verify["signature"]["total"].as_u64().unwrap();
    assert_eq!(total, 48 + 32 + 32, "bits of features 4, 5, 6 at width 1/8");
    assert!(verify["fidelity"]["genuine_acc"].as_f64().is_some(), "{verify}");
    let baseline = json(&dir.join("baseline/summary.json"));
    assert!(baseline["test_acc"].as_f64().unwrap() > 0.2, "{baseline}");
    let forge = json(&dir.join("forge/summary.json"));
    assert_eq!(forge["forged"].as_array().unwrap().len(), 2);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("| baseline | train |") && report.contains("forged passports"), "{report}");

    verify_cli(&dir.join("v1/model.bpk"), &dir.join("v1/owner.json"), tmp.path());

    // A second run finds every stage complete and redoes nothing.
    let again = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(text(&again).matches("is complete; skipping").count(), 4, "{}", text(&again));

    // Changing a stage's settings does not silently reuse its folder.
    let plan = write_plan(tmp.path(), &small(tmp.path()).replace("epochs = 1", "epochs = 2"));
    let changed = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(2));
    assert!(text(&changed).contains("other settings"), "{}", text(&changed));
}

/// Every user mistake ends in exit status 2 with a message naming the file, the key and the
/// fix, never a panic.
#[test]
fn user_mistakes_are_clear_errors() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let good = small(tmp.path());
    let cases: &[(&str, String, &[&str])] = &[
        ("unknown key", good.replace("epochs = 1", "epoks = 1"), &["plan.toml", "line 18", "epoks"]),
        ("bad value", good.replace("width = 0.125", "width = \"narrow\""), &["plan.toml", "width"]),
        ("unknown from", good.replace("from = \"v1\"\n[[stage]]", "from = \"v2\"\n[[stage]]"), &["`from`", "`v2`", "baseline, v1"]),
        ("cuda without feature", good.replace("seed = 3", "seed = 3\ndevice = \"cuda\""), &["device = \"cuda\"", "--features cuda", "internet", "device = \"cpu\""]),
        ("vulkan without feature", good.replace("seed = 3", "seed = 3\ndevice = \"vulkan\""), &["device = \"vulkan\"", "--features vulkan", "device = \"cpu\""]),
        ("missing dataset", good.replace("train_per_class = 60", "train_per_class = 60\nroot = \"/nonexistent/fmnist\""), &["/nonexistent/fmnist", "dataset-fashion-mnist"]),
        ("missing layout", good.replace("layout.toml", "nope.toml"), &["nope.toml", "passport"]),
        ("layout path", good.replace("layout.toml", "bad.toml"), &["bad.toml", "`9`", "valid paths: 0, 2, 4, 5, 6"]),
        ("signature too long", good.replace("layout.toml", "long.toml"), &["`4`", "48 channels", "at most 6 characters"]),
        ("init of an unknown stage", good.replace("scheme = \"v1\"", "scheme = \"v1\"\ninit = \"base\""), &["`init`", "`base`", "baseline"]),
        ("init on v0", good.replace("scheme = \"v0\"", "scheme = \"v0\"\ninit = \"baseline\""), &["`init`", "scheme v0", "v1, v2 or v3"]),
        ("init from a passport stage", good.replace("from = \"v1\"\n[[stage]]", "from = \"v1\"\n[[stage]]\nname = \"v2\"\nkind = \"train\"\nscheme = \"v2\"\nkey_type = \"random\"\ninit = \"v1\"\n[[stage]]"), &["`init`", "`v1` is not a v0 stage"]),
    ];
    std::fs::write(tmp.path().join("bad.toml"), "9 = true\n").unwrap();
    std::fs::write(tmp.path().join("long.toml"), "4 = \"much too long\"\n").unwrap();
    for (i, (what, body, needles)) in cases.iter().enumerate() {
        let plan = write_plan(tmp.path(), body);
        let runs = tmp.path().join(format!("runs-{i}"));
        let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {msg}");
        assert!(!msg.contains("stage `baseline` starting"), "{what}: the mistake must be found before training: {msg}");
        for needle in *needles {
            assert!(msg.contains(needle), "{what}: `{needle}` not in: {msg}");
        }
        assert!(!msg.contains("panicked") && !msg.contains("RUST_BACKTRACE"), "{what}: {msg}");
    }
}

const PRIVATE: &str = r#"
name = "private"
seed = 5
[data]
dataset = "fashion-mnist"
train_per_class = 60
test_subset = 1000
[model]
arch = "alexnet"
width = 0.125
[train]
batch_size = 32
lr_steps = []
epochs = 2
[[stage]]
name = "baseline"
kind = "train"
scheme = "v0"
epochs = 1
[[stage]]
name = "v3"
kind = "train"
scheme = "v3"
pretrained = "baseline"
passport = "LAYOUT"
trigger_set = "generate"
trigger_images = 40
triggers_per_batch = 4
passport_source = "trigger"
[[stage]]
name = "verify"
kind = "verify"
from = "v3"
"#;

/// V3 end to end on real data: the owner's files are owner-only, the public model is
/// distributable, runs in the model built without passports with the public path's accuracy,
/// and with the owner bundle proves the signature.
#[test]
fn private_passport_plan_writes_a_public_model_and_an_owner_bundle() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout.toml");
    std::fs::write(&layout, "4 = \"IPR\"\n5 = true\n6 = true\n").unwrap();
    // The owner's key, made as a user makes it; never replaced without --force.
    let keys = tmp.path().join("keys");
    let made = xtask(&["keys", "new", "--out", keys.to_str().unwrap()]);
    assert!(made.status.success(), "{}", text(&made));
    let again = xtask(&["keys", "new", "--out", keys.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("never overwritten") && text(&again).contains("--force"), "{}", text(&again));
    let key_file = json(&keys.join("owner.key"));
    let (secret, public_key) = (key_file["secret"].as_str().unwrap().to_string(), key_file["public"].as_str().unwrap().to_string());
    assert_eq!(json(&keys.join("owner.pub"))["public"], public_key.as_str());
    assert!(json(&keys.join("owner.pub")).get("secret").is_none());
    let body = PRIVATE.replace("LAYOUT", layout.to_str().unwrap()).replace("[model]", &format!("[owner]\nkey = \"{}\"\n[model]", keys.join("owner.key").display()));
    let plan = write_plan(tmp.path(), &body);
    let runs = tmp.path().join("runs");
    let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = runs.join("private/v3");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(keys.join("owner.key")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        for secret in ["owner.json", "model.bpk", "best.bpk", "trigger"] {
            assert_eq!(mode(secret) & 0o077, 0, "{secret} is readable by others");
        }
        assert_eq!(mode("public.bpk") & 0o044, 0o044, "the public model is meant to be shared");
    }
    let public = std::fs::read(dir.join("public.bpk")).unwrap();
    assert!(!public.windows(4).any(|w| w == b"skey"), "passports in the public model");
    // The public model as a PyTorch state dict: written inside the run folder, so the secrets
    // scan below covers it; the owner's model is refused.
    let exported = runs.join("private/public.safetensors");
    let export = xtask(&["export", "--model", dir.join("public.bpk").to_str().unwrap(), "--out", exported.to_str().unwrap()]);
    assert!(export.status.success() && text(&export).contains("strict=True"), "{}", text(&export));
    let refused = xtask(&["export", "--model", dir.join("model.bpk").to_str().unwrap(), "--out", tmp.path().join("owner.safetensors").to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("owner's v3 model") && text(&refused).contains("public.bpk") && !tmp.path().join("owner.safetensors").exists(), "{}", text(&refused));
    let bundle = json(&dir.join("owner.json"));
    no_secret_outside_the_owner_files(&bundle, &runs.join("private"), &text(&out));
    // The secret key is in its file alone: not in the bundle, the receipt, any run file or the log.
    assert_eq!(bundle["owner"]["public_key"], public_key.as_str(), "the claim names the owner's key");
    let mut every = vec![dir.join("owner.json")];
    let mut stack = vec![runs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { every.push(p) }
        }
    }
    let secret_bytes = (0..32).map(|i| u8::from_str_radix(&secret[2 * i..2 * i + 2], 16).unwrap()).collect::<Vec<u8>>();
    for file in &every {
        let content = std::fs::read(file).unwrap();
        assert!(!String::from_utf8_lossy(&content).contains(&secret) && !content.windows(32).any(|w| w == secret_bytes.as_slice()), "the secret key in {}", file.display());
    }
    assert!(!text(&out).contains(&secret), "the secret key in the log");
    // The receipt commits to the claim and shows no passport and no bit; `register` writes the same.
    let receipt = json(&dir.join("receipt.json"));
    assert_eq!(receipt["public_key"], public_key.as_str());
    let registered = tmp.path().join("registered.json");
    let reg = xtask(&["register", "--owner", dir.join("owner.json").to_str().unwrap(), "--out", registered.to_str().unwrap()]);
    assert!(reg.status.success(), "{}", text(&reg));
    assert_eq!(json(&registered), receipt);
    assert_eq!(bundle["scheme"], "v3");
    assert_eq!(bundle["passports"].as_array().unwrap().len(), 3);
    let summary = json(&dir.join("summary.json"));
    let (public_path, public_file) = (summary["test_acc"].as_f64().unwrap(), summary["public_model_test_acc"].as_f64().unwrap());
    assert!((public_path - public_file).abs() <= 0.001, "public path {public_path} vs public.bpk {public_file}");
    assert!(summary["private_test_acc"].as_f64().unwrap() > 0.1, "{summary}");
    let trigger = &summary["trigger"];
    assert_eq!(trigger["images"], 40);
    assert!(trigger["public_acc"].as_f64().is_some() && trigger["control"][0] == "baseline", "{trigger}");
    let verify = json(&runs.join("private/verify/summary.json"));
    assert_eq!(verify["weights_match"], true, "{verify}");
    assert_eq!(verify["black_box"]["images"], 40, "{verify}");
    // The private path the verifier rebuilds from the public model and the bundle is the one
    // the owner trained.
    let rebuilt = verify["fidelity"]["genuine_acc"].as_f64().unwrap();
    let trained = summary["private_test_acc"].as_f64().unwrap();
    assert!((rebuilt - trained).abs() <= 0.001, "rebuilt private path {rebuilt} vs trained {trained}");
    assert_eq!(verify["fidelity"]["public_acc"].as_f64().unwrap(), public_path, "{verify}");
    // A third party holds the public model and the owner bundle.
    let cli = xtask(&["verify", "--model", dir.join("public.bpk").to_str().unwrap(), "--owner", dir.join("owner.json").to_str().unwrap(), "--json"]);
    assert!(cli.status.code() == Some(0) || cli.status.code() == Some(1), "{}", text(&cli));
    let verdict: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(verdict["verdict"]["signature"], verify["signature"], "the CLI and the verify stage disagree");
    assert_eq!(verify["signature"]["total"], 48 + 32 + 32);
    assert!(verify["signature"]["agreement"].as_f64().unwrap() > 0.9, "{verify}");
}

#[test]
fn trigger_set_mistakes_are_clear_errors() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout.toml");
    std::fs::write(&layout, "5 = true\n").unwrap();
    let good = PRIVATE.replace("LAYOUT", layout.to_str().unwrap());
    let cases: &[(&str, String, &[&str])] = &[
        ("v3 without a set", good.replace("trigger_set = \"generate\"\ntrigger_images = 40\n", ""), &["trigger_set", "scheme v3 needs"]),
        ("set on v2", good.replace("scheme = \"v3\"", "scheme = \"v2\""), &["trigger_set", "only scheme v3"]),
        ("missing folder", good.replace("trigger_set = \"generate\"\ntrigger_images = 40\n", "trigger_set = \"/nonexistent/triggers\"\n"), &["/nonexistent/triggers", "labels-cifar.txt", "trigger_set"]),
        ("too few to sample", good.replace("trigger_images = 40", "trigger_images = 10"), &["10 images", "at least 40"]),
    ];
    for (i, (what, body, needles)) in cases.iter().enumerate() {
        let plan = write_plan(tmp.path(), body);
        let runs = tmp.path().join(format!("runs-{i}"));
        let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {msg}");
        for needle in *needles {
            assert!(msg.contains(needle), "{what}: `{needle}` not in: {msg}");
        }
        assert!(!msg.contains("panicked") && !msg.contains("RUST_BACKTRACE"), "{what}: {msg}");
    }
}

/// `cargo xtask verify` on a V1 model: its own bundle proves ownership (exit 0); a bundle with
/// other signatures is chance (exit 1, p near 1/2); broken inputs are errors (exit 2).
fn verify_cli(model: &Path, owner: &Path, tmp: &Path) {
    let (model_arg, owner_arg) = (model.to_str().unwrap(), owner.to_str().unwrap());
    let out = xtask(&["verify", "--model", model_arg, "--owner", owner_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("verdict: OWNED") && text(&out).contains("\"IPR\""), "{}", text(&out));

    // Another owner's claim: the same layers, other (pseudo-random) signature bits.
    let mut bundle = json(owner);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for layer in bundle["layers"].as_array_mut().unwrap() {
        layer["signature"]["text"] = serde_json::Value::Null;
        for bit in layer["signature"]["bits"].as_array_mut().unwrap() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *bit = serde_json::json!(if state & 1 == 1 { 1 } else { -1 });
        }
    }
    let other = tmp.join("other-owner.json");
    write_secret(&other, &serde_json::to_vec(&bundle).unwrap());
    let out = xtask(&["verify", "--model", model_arg, "--owner", other.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["verdict"]["decision"], "NotOwned", "{verdict}");
    let p = verdict["verdict"]["signature"]["log10_false_claim"].as_f64().unwrap();
    assert!(p > -2.0, "log10 p = {p}");

    // Broken inputs: exit 2 with a message naming the file, never a panic.
    let truncated = tmp.join("truncated.bpk");
    let bytes = std::fs::read(model).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    bundle["model"]["arch"] = serde_json::json!("resnet18");
    let foreign = tmp.join("resnet-owner.json");
    write_secret(&foreign, &serde_json::to_vec(&bundle).unwrap());
    let cases = [
        (truncated.to_str().unwrap(), owner_arg, "truncated.bpk"),
        (model_arg, foreign.to_str().unwrap(), "resnet18"),
        (model_arg, "/nonexistent/owner.json", "/nonexistent/owner.json"),
        (owner_arg, owner_arg, "owner.json"),
    ];
    for (m, o, needle) in cases {
        let out = xtask(&["verify", "--model", m, "--owner", o]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{m} / {o}: {msg}");
        assert!(msg.contains(needle) && !msg.contains("panicked"), "{m} / {o}: {msg}");
    }
}

fn write_secret(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The owner's secrets (passport values, signature bits) appear in no log line, report, summary,
/// card or public model: only in the owner's own files (bundle, owner model, checkpoints,
/// trigger set).
fn no_secret_outside_the_owner_files(bundle: &serde_json::Value, run: &Path, log: &str) {
    let owner_only = ["owner.json", "model.bpk", "best.bpk", "checkpoint", "trigger"];
    let mut shared = Vec::new();
    let mut stack = vec![run.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if dir.ends_with("baseline") || owner_only.contains(&name) {
                continue;
            }
            if path.is_dir() { stack.push(path) } else { shared.push(path) }
        }
    }
    assert!(shared.iter().any(|p| p.ends_with("public.bpk")) && shared.iter().any(|p| p.ends_with("report.md")) && shared.iter().any(|p| p.ends_with("public.safetensors")), "{shared:?}");
    let mut files: Vec<(String, Vec<u8>)> = shared.iter().map(|p| (p.display().to_string(), std::fs::read(p).unwrap())).collect();
    files.push(("the log".into(), log.as_bytes().to_vec()));
    for layer in bundle["passports"].as_array().unwrap() {
        let values: Vec<f32> = layer["skey"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        // Four consecutive non-zero passport values (sampled passports are post-ReLU activations,
        // mostly zeros), as text (any of them) and as f32 bytes.
        let at = values.windows(4).position(|w| w.iter().all(|v| v.abs() > 1e-3)).expect("non-zero passport values");
        let window = &values[at..at + 4];
        let words: Vec<String> = window.iter().map(|v| v.to_string()).filter(|w| w.len() >= 6).collect();
        let bytes: Vec<u8> = window.iter().flat_map(|v| v.to_le_bytes()).collect();
        for (name, content) in &files {
            assert!(!content.windows(bytes.len()).any(|w| w == bytes.as_slice()), "passport bytes in {name}");
            let text = String::from_utf8_lossy(content);
            for word in &words {
                assert!(!text.contains(word.as_str()), "passport value {word} in {name}");
            }
        }
    }
    for layer in bundle["layers"].as_array().unwrap() {
        let bits: Vec<String> = layer["signature"]["bits"].as_array().unwrap().iter().take(24).map(|b| b.to_string()).collect();
        for (name, content) in &files {
            let text: String = String::from_utf8_lossy(content).chars().filter(|c| !c.is_whitespace()).collect();
            assert!(!text.contains(&bits.join(",")), "signature bits in {name}");
        }
    }
}

/// A one-stage plan on the synthetic task: `ARCH` at `WIDTH`, stage `STAGE` of scheme `SCHEME`.
const SYNTHETIC: &str = r#"
name = "NAME"
seed = 4
[data]
dataset = "synthetic"
[model]
arch = "ARCH"
width = WIDTH
[train]
batch_size = 64
lr_steps = []
[[stage]]
name = "STAGE"
kind = "train"
scheme = "SCHEME"
key_type = "random"
epochs = EPOCHS
"#;

/// Writes a synthetic plan of `epochs` epochs and runs it when `run`; returns its run folder.
fn synthetic_run(dir: &Path, name: &str, arch: &str, width: &str, scheme: &str, epochs: usize, run: bool) -> PathBuf {
    let mut body = SYNTHETIC.replace("NAME", name).replace("ARCH", arch).replace("WIDTH", width).replace("SCHEME", scheme);
    body = body.replace("STAGE", scheme).replace("EPOCHS", &epochs.to_string());
    if scheme == "v1" {
        let layout = dir.join(format!("{name}-layout.toml"));
        std::fs::write(&layout, "5 = true\n6 = true\n").unwrap();
        body += &format!("passport = \"{}\"\n", layout.display());
    } else {
        body = body.replace("key_type = \"random\"\n", "");
    }
    let plan = dir.join(format!("{name}.toml"));
    std::fs::write(&plan, body).unwrap();
    let runs = dir.join("runs");
    if run {
        let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
    }
    runs.join(name)
}

/// A model file or a checkpoint of another architecture (or width) than the one expected: the
/// verifier's model against an owner bundle of another model, a PyTorch checkpoint of another
/// architecture than the bundle's, and a train stage resuming from a checkpoint another model
/// wrote. Each is an error (exit 2) naming the file and the fix, never a panic.
#[test]
fn checkpoint_of_another_architecture_is_a_clear_error() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let alexnet = synthetic_run(tmp.path(), "alex", "alexnet", "0.125", "v1", 1, true);
    let resnet = synthetic_run(tmp.path(), "res", "resnet9", "0.0625", "v0", 1, true);
    let (owner, resnet_model) = (alexnet.join("v1/owner.json"), resnet.join("v0/model.bpk"));
    let wider = synthetic_run(tmp.path(), "wide", "alexnet", "0.25", "v0", 1, true).join("v0/model.bpk");
    let pth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ipr-verify/tests/fixtures/resnet18_v1.pth");
    // A V0 stage of AlexNet whose checkpoint folder holds a ResNet's record as its epoch 1.
    let resume = synthetic_run(tmp.path(), "resume", "alexnet", "0.125", "v0", 2, false);
    let checkpoint = resume.join("v0/checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    std::fs::copy(&resnet_model, checkpoint.join("epoch-1.bpk")).unwrap();
    std::fs::write(checkpoint.join("state.json"), r#"{"epochs_done":1,"best_acc":0.0,"history":[]}"#).unwrap();
    let resume_plan = tmp.path().join("resume.toml").to_str().unwrap().to_string();
    let runs = tmp.path().join("runs").to_str().unwrap().to_string();

    let (owner, resnet_model, wider, pth) = (owner.to_str().unwrap(), resnet_model.to_str().unwrap(), wider.to_str().unwrap(), pth.to_str().unwrap());
    let cases: &[(&str, Vec<&str>, &[&str])] = &[
        ("resnet record, alexnet bundle", vec!["verify", "--model", resnet_model, "--owner", owner], &[resnet_model, "owner bundle", "model alexnet of width 0.125", "pass the model file"]),
        ("wider record, alexnet bundle", vec!["verify", "--model", wider, "--owner", owner], &[wider, "width 0.125", "pass the model file"]),
        ("resnet checkpoint, alexnet bundle", vec!["verify", "--model", pth, "--owner", owner], &["resnet18_v1.pth", "alexnet", "resnet18", "pass the bundle of this model"]),
        ("resume from a resnet checkpoint", vec!["run", &resume_plan, "--runs", &runs], &["epoch-1.bpk", "does not fit this model", "another architecture", "delete", "checkpoint"]),
    ];
    for (what, args, needles) in cases {
        let out = xtask(args);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {msg}");
        for needle in *needles {
            assert!(msg.contains(needle), "{what}: `{needle}` not in: {msg}");
        }
        assert!(!msg.contains("panicked") && !msg.contains("RUST_BACKTRACE"), "{what}: {msg}");
    }
}

const RETROFIT: &str = r#"
name = "retrofit"
seed = 4
[data]
dataset = "fashion-mnist"
train_per_class = 60
test_subset = 1000
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
epochs = 4
lr = 0.01
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
init = "baseline"
pretrained = "baseline"
passport = "LAYOUT"
lr = 0.001
[[stage]]
name = "v2"
kind = "train"
scheme = "v2"
init = "baseline"
passport = "LAYOUT"
key_type = "random"
epochs = 3
lr = 0.01
[[stage]]
name = "verify"
kind = "verify"
from = "v1"
"#;

/// Passports retrofitted into a trained V0 on real data: before any training the V1 passport
/// path and both V2 paths score exactly what the baseline scores, every bit of the (bound)
/// signature is in γ from the start, and the verifier finds it after the fine-tune.
#[test]
fn retrofitted_passports_start_from_the_trained_model() {
    let _serial = serial();
    need_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), RETROFIT);
    let runs = tmp.path().join("runs");
    let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = runs.join("retrofit");
    let baseline = json(&dir.join("baseline/summary.json"))["test_acc"].as_f64().unwrap();
    assert!(baseline > 0.4, "{baseline}");
    for stage in ["v1", "v2"] {
        let summary = json(&dir.join(format!("{stage}/summary.json")));
        let retrofit = &summary["retrofit"];
        assert_eq!(retrofit["from"], "baseline", "{summary}");
        // The same 1 000 test images: the function is the baseline's up to rounding.
        for path in ["private_acc", "public_acc"] {
            let start = retrofit[path].as_f64().unwrap();
            assert!((start - baseline).abs() <= 0.002, "{stage} {path}: {start} vs baseline {baseline}");
        }
        // V1 turns filters to carry the signature from the start; V2 leaves it to the sign loss,
        // so that its public path does not show it.
        let negated = retrofit["negated"].as_u64().unwrap();
        assert_eq!(negated > 0, stage == "v1", "{summary}");
        // V1 carries every bit from the start; V2's sign loss writes them while it trains.
        let agreement = summary["detection"]["agreement"].as_f64().unwrap();
        assert!(if stage == "v1" { agreement == 1.0 } else { agreement >= 0.9 }, "{stage}: {summary}");
        if stage == "v1" {
            assert!(summary["test_acc"].as_f64().unwrap() > baseline - 0.05, "{summary}");
        }
    }
    assert!(std::fs::read_to_string(dir.join("v1/stage.toml")).unwrap().contains("init = \"baseline\""));
    let verify = json(&dir.join("verify/summary.json"));
    assert_eq!(verify["signature"]["matched"], verify["signature"]["total"], "{verify}");
}

const RETROFIT_PTH: &str = r#"
name = "retrofit_pth"
seed = 4
[data]
dataset = "fashion-mnist"
train_per_class = 30
test_subset = 1000
[model]
arch = "alexnet"
width = 0.125
[train]
batch_size = 32
lr_steps = []
epochs = 1
lr = 0.001
[[stage]]
name = "v1"
kind = "train"
scheme = "v1"
init = "INIT"
passport = "LAYOUT"
key_type = "random"
"#;

/// A PyTorch checkpoint of the reference's normal AlexNet as the retrofit's start: the V1
/// model starts at its accuracy with every bit; a checkpoint of another width, or one with passports, is refused
/// before training with the file, the mismatch and the fix.
#[test]
fn a_reference_checkpoint_can_be_retrofitted_and_a_mismatch_is_a_clear_error() {
    let _serial = serial();
    need_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ipr-verify/tests/fixtures/alexnet_v0.pth");
    let body = RETROFIT_PTH.replace("INIT", fixture.to_str().unwrap());
    let plan = write_plan(tmp.path(), &body);
    let runs = tmp.path().join("runs");
    let out = xtask(&["run", plan.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let summary = json(&runs.join("retrofit_pth/v1/summary.json"));
    let retrofit = &summary["retrofit"];
    let (private, public) = (retrofit["private_acc"].as_f64().unwrap(), retrofit["public_acc"].as_f64().unwrap());
    assert!(public > 0.6 && (private - public).abs() <= 0.002, "the checkpoint's weights: {summary}");
    assert_eq!(summary["detection"]["matched"], summary["detection"]["total"], "{summary}");

    let reference_v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ipr-verify/tests/fixtures/alexnet_v1.pth");
    let cases = [
        (body.replace("width = 0.125", "width = 0.25"), vec!["alexnet_v0.pth", "width 0.125", "width 0.25", "[model]"]),
        (body.replace(fixture.to_str().unwrap(), reference_v1.to_str().unwrap()), vec!["alexnet_v1.pth", "V1 checkpoint", "AlexNetNormal"]),
        (body.replace(fixture.to_str().unwrap(), "/nonexistent/model.pth"), vec!["/nonexistent/model.pth"]),
    ];
    for (i, (body, needles)) in cases.iter().enumerate() {
        let plan = write_plan(tmp.path(), body);
        let out = xtask(&["run", plan.to_str().unwrap(), "--runs", tmp.path().join(format!("bad-{i}")).to_str().unwrap()]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(!msg.contains("stage `v1` starting") && !msg.contains("panicked"), "{msg}");
        for needle in needles {
            assert!(msg.contains(needle), "`{needle}` not in: {msg}");
        }
    }
}
