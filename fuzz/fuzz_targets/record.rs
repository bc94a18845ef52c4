//! The model-record loader of the verifier (`cargo xtask verify --model M.bpk`): any bytes
//! load into the tiny model (`ipr_fuzz::tiny_model`) as the verifier tries them, as a V1 model
//! and as a public model, or are an error naming the file; a loaded model keeps its parameter
//! shapes and is verified against a claim without a panic.
#![no_main]

use ipr_fuzz::{FILE, assert_names, file, tiny_layout, tiny_model};
use ipr_models::{AlexNet, LayerPassports, LayerSignature, load_module_bytes, param_paths};
use ipr_verify::{Claim, Evidence, Thresholds, verify};
use libfuzzer_sys::fuzz_target;

/// The two models a record is tried in, and a claim on each: signatures, and the owner's
/// passports for the public model.
struct Fixture {
    v1: AlexNet,
    public: AlexNet,
    signatures: Vec<LayerSignature>,
    passports: Vec<LayerPassports>,
}

thread_local! {
    static FIXTURE: Fixture = {
        let v1 = tiny_model(Some(false));
        let signatures = tiny_layout(false)
            .signatures(&v1, 7)
            .expect("signatures fit")
            .into_iter()
            .map(|(path, signature)| LayerSignature { path, signature })
            .collect();
        let passports = LayerPassports::of(&tiny_model(Some(true)));
        Fixture { v1, public: tiny_model(None), signatures, passports }
    };
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.with(|f| {
        for (model, passports) in [(&f.v1, &[][..]), (&f.public, &f.passports[..])] {
            let loaded = match load_module_bytes(model.clone(), data.to_vec(), file()) {
                Ok(loaded) => loaded,
                Err(e) => {
                    assert_names(&e.to_string(), FILE);
                    continue;
                }
            };
            assert_eq!(param_paths(&loaded), param_paths(model), "the record changed the model's shapes");
            let claim = Claim { passports, weights_sha256: Some("00"), ..Claim::new(&f.signatures) };
            let verdict = verify(&loaded, &claim, &Evidence::default(), &Thresholds::default());
            assert!(verdict.is_ok(), "{verdict:?}");
        }
    });
});
