//! The PyTorch-checkpoint reader of the verifier (`cargo xtask verify --model M.pth`): any
//! bytes, written to a file, are inspected as a reference state dict or refused with an error
//! naming the file; one inspected is loaded into the model it describes and verified against
//! its own signatures, without a panic.
#![no_main]

use std::path::PathBuf;

use burn::prelude::Device;
use ipr_models::{AlexNet, Arch, Net, ResNet};
use ipr_verify::{Claim, Evidence, ReferenceInfo, Thresholds, inspect_reference, load_reference, verify};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// The file each input is written to (the reader reads files, not bytes).
    static PATH: PathBuf = std::env::temp_dir().join(format!("ipr-fuzz-pth-{}.pth", std::process::id()));
}

/// Loads the checkpoint at `path` into `M` and verifies it against its own signatures.
fn load_and_verify<M: Net>(path: &std::path::Path, info: &ReferenceInfo) {
    let name = path.display().to_string();
    match load_reference::<M>(path, info, &Device::flex()) {
        Ok(model) => {
            let claim = Claim::new(&info.signatures);
            let verdict = verify(&model, &claim, &Evidence::default(), &Thresholds::default());
            assert!(verdict.is_ok(), "{verdict:?}");
        }
        Err(e) => ipr_fuzz::assert_names(&e.to_string(), &name),
    }
}

fuzz_target!(|data: &[u8]| {
    PATH.with(|path| {
        std::fs::write(path, data).expect("the temporary folder is writable");
        let name = path.display().to_string();
        let info = match inspect_reference(path) {
            Ok(info) => info,
            Err(e) => return ipr_fuzz::assert_names(&e.to_string(), &name),
        };
        match info.config.arch {
            Arch::Alexnet => load_and_verify::<AlexNet>(path, &info),
            Arch::Resnet9 | Arch::Resnet18 => load_and_verify::<ResNet>(path, &info),
        }
    });
});
