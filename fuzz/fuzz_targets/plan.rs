//! The experiment-plan parser (`cargo xtask run PLAN`): any text is a plan or an error that
//! names the plan file, never a panic.
#![no_main]

use std::path::Path;

use ipr_fuzz::assert_names;
use libfuzzer_sys::fuzz_target;
use xtask::plan::Plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Plan::parse(text, "fuzz-plan.toml", Path::new("/fuzz-root")) {
        assert_names(&format!("{e:#}"), "fuzz-plan.toml");
    }
});
