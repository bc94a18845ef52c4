//! The orchestrator of the DeepIPR workspace, as a library: the experiment-plan parser (also
//! driven by the fuzz targets in `fuzz/`), the stage runners, the third-party verifier command
//! and the benchmark. The command line itself is `src/main.rs`.
//!
//! Modules, each one job: `plan/` (the TOML schema and its resolution), `keys`/`sections`
//! (plan tables and sections), `stages/` (running a plan: train and verify stages), `attacks/`
//! (one module per attack stage), `ctx` (what stages share), `data`, `device`, `report`, `plot`,
//! `lock` (the run folder's lock), `verify` (`cargo xtask verify`), `bench`.
#![deny(missing_docs)]

mod attacks;
pub mod bench;
mod ctx;
mod data;
mod device;
mod dispute;
pub mod export;
pub mod fetch;
mod keys;
mod lock;
pub mod owner;
pub mod plan;
mod plot;
mod report;
mod sections;
pub mod stages;
pub mod verify;

pub use report::Headline;

use std::path::{Path, PathBuf};

/// The workspace root: plans' relative paths (layouts, data) and `runs/` resolve against it.
/// Under `cargo xtask` / `cargo run` that is the workspace of the manifest; a binary started
/// directly uses the current folder.
pub fn project_root() -> PathBuf {
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => Path::new(&dir).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}
