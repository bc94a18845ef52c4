//! The owner-bundle loader and what the verifier does with a bundle: any JSON is a bundle or
//! an error naming the file; a bundle's config and layout are checked, and one claiming the
//! tiny model (`ipr_fuzz::tiny_config`) is verified against it, its private passports
//! restored into the public model, without a panic.
#![no_main]

use ipr_fuzz::{FILE, assert_names, file, tiny_config, tiny_model};
use ipr_models::{AlexNet, Layout, Net, OwnerBundle, restore_private};
use ipr_verify::{Claim, Evidence, Thresholds, verify};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// The tiny V1 model and the tiny public model.
    static MODELS: (AlexNet, AlexNet) = (tiny_model(Some(false)), tiny_model(None));
}

fuzz_target!(|data: &[u8]| {
    let bundle = match OwnerBundle::from_json(data, file()) {
        Ok(bundle) => bundle,
        Err(e) => return assert_names(&e.to_string(), FILE),
    };
    let private = !bundle.passports.is_empty();
    let layout = Layout::structure(bundle.layers.iter().map(|l| l.path.clone()), private);
    if bundle.model.check().is_err() || bundle.model != tiny_config() {
        return;
    }
    MODELS.with(|(v1, public)| {
        let valid: Vec<String> = public.blocks().into_iter().map(|(p, _)| p).collect();
        if layout.check(&valid, "alexnet").is_err() {
            return;
        }
        let model = if private { public } else { v1 };
        let verdict = verify(model, &Claim::from(&bundle), &Evidence::default(), &Thresholds::default());
        assert!(verdict.is_ok(), "{verdict:?}");
        if private {
            let _ = restore_private(public.clone(), &bundle.passports);
        }
    });
});
