//! The parts of `cargo xtask` that other crates reach: the experiment-plan parser (for the
//! fuzz targets in `fuzz/` and for tests). The command-line tool itself is `src/main.rs`.
#![deny(missing_docs)]

pub mod plan;
