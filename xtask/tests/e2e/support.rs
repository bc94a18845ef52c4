//! What the end-to-end tests share: running the `xtask` binary, reading what it wrote, and
//! writing plans.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The passport layout the test plans use: three layers, one with a 3-character text.
pub const LAYOUT: &str = "4 = \"IPR\"\n5 = true\n6 = true\n";

/// Held by every test that runs `xtask` processes: they run one at a time, as separate test
/// binaries would, so that a test timing a process does not share the cores with another.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `xtask ARGS` to the end.
pub fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).env("RUST_LOG", "info").output().unwrap()
}

/// Everything a process printed.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A file's text; the test fails naming the file when it cannot be read.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A JSON file; the test fails naming the file when it is not whole JSON.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{} is not whole JSON: {e}", path.display()))
}

/// Writes [`LAYOUT`] as `dir/layout.toml` and the plan `body` (its `LAYOUT` replaced by that
/// file's path) as `dir/plan.toml`; returns the plan's path.
pub fn write_plan(dir: &Path, body: &str) -> PathBuf {
    let layout = dir.join("layout.toml");
    std::fs::write(&layout, LAYOUT).unwrap();
    let path = dir.join("plan.toml");
    std::fs::write(&path, body.replace("LAYOUT", layout.to_str().unwrap())).unwrap();
    path
}

/// Fails the test with the fix when the real Fashion-MNIST is not installed.
pub fn need_fashion_mnist() {
    assert!(Path::new("/usr/share/datasets/fashion-mnist").exists(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
}
