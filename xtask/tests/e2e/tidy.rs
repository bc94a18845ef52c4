//! Conventions of the workspace, checked by `cargo test`: every Rust file opens with a `//!`
//! doc line and has no trailing whitespace, no stubs (`todo!`, `unimplemented!`, `dbg!`) and no
//! skipped or panic-expecting tests; every library crate documents itself with a runnable
//! example and denies missing docs; `ipr-verify` stays free of training and tooling crates.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_is_tidy() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask"), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    // Built from pieces so that this file does not match itself.
    let banned = [["todo", "!("].concat(), ["unimplemented", "!("].concat(), ["dbg", "!("].concat(), ["#[", "ignore]"].concat(), ["#[", "should_panic"].concat()];
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root()).unwrap().display();
        if !text.starts_with("//!") {
            problems.push(format!("{shown}: does not start with a `//!` doc line"));
        }
        for (i, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!("{shown}:{}: trailing whitespace", i + 1));
            }
            for b in &banned {
                if line.contains(b.as_str()) {
                    problems.push(format!("{shown}:{}: `{b}`", i + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_library_crate_documents_itself_with_an_example() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let lib = entry.unwrap().path().join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap();
        assert!(text.contains("# Example"), "{}: the crate doc needs a runnable `# Example`", lib.display());
        assert!(text.contains("#![deny(missing_docs)]"), "{}: add #![deny(missing_docs)]", lib.display());
    }
}

/// The verifier's own dependency tree, as `cargo build -p ipr-verify` resolves it (features
/// unified for that package alone, not with the rest of the workspace): no training, optimiser,
/// dataset, plotting, command-line, async-runtime, network or progress-bar crate.
#[test]
fn the_verifier_depends_on_no_training_or_tooling_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-p", "ipr-verify", "-e", "normal", "--prefix", "none", "-f", "{p}"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: std::collections::BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains("burn-core") && crates.contains("pytorch-reader"), "unexpected tree: {crates:?}");
    let banned = [
        "ipr-schemes", "ipr-data", "ipr-attacks", "burn-train", "burn-optim", "burn-dataset", "burn-autodiff", "burn-rl",
        "plotters", "clap", "indicatif", "tokio", "async-std", "smol", "reqwest", "ureq", "hyper", "csv", "tracing-subscriber",
    ];
    for name in banned {
        assert!(!crates.contains(name), "ipr-verify pulls in `{name}`");
    }
}

/// `unsafe` lives in the one kernel crate, each block under a `SAFETY:` comment; every other
/// crate takes the workspace lints, which forbid it.
#[test]
fn unsafe_code_stays_in_the_kernel_crate() {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root().join("crates")).unwrap().map(|e| e.unwrap().path().join("Cargo.toml")).collect();
    manifests.push(root().join("xtask/Cargo.toml"));
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let kernel = manifest.parent().unwrap().ends_with("ipr-conv");
        if kernel {
            assert!(text.contains("unsafe_code = \"deny\""), "{}: deny unsafe code outside marked blocks", manifest.display());
        } else {
            assert!(text.contains("[lints]\nworkspace = true"), "{}: take the workspace lints", manifest.display());
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("crates/ipr-conv/src"), &mut files);
    let opening = ["unsafe", " {"].concat();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with(&opening) {
                let reason = lines[..i].iter().rev().take(8).any(|l| l.contains("// SAFETY:"));
                assert!(reason, "{}:{}: an `unsafe` block without a `// SAFETY:` reason above it", file.display(), i + 1);
            }
        }
    }
}
