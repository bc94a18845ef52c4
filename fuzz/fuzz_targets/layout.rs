//! The passport-layout parser: any text is a layout or an error naming the file; a parsed
//! layout is checked against AlexNet's and ResNet-18's block paths and its signatures are
//! generated for layers of several widths, as a train stage does.
#![no_main]

use ipr_fuzz::assert_names;
use ipr_models::Layout;
use ipr_passport::Signature;
use libfuzzer_sys::fuzz_target;

const ALEXNET: [&str; 5] = ["0", "2", "4", "5", "6"];
const RESNET: [&str; 4] = ["convbnrelu_1", "layer4.0.convbnrelu_1", "layer4.0.convbn_2", "layer4.0.shortcut"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let layout = match Layout::parse(text, "fuzz-layout.toml") {
        Ok(layout) => layout,
        Err(e) => return assert_names(&e.to_string(), "fuzz-layout.toml"),
    };
    for (arch, paths) in [("alexnet", &ALEXNET[..]), ("resnet18", &RESNET[..])] {
        let valid: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        if let Err(e) = layout.check(&valid, arch) {
            assert_names(&e.to_string(), "fuzz-layout.toml");
        }
    }
    for (i, (path, spec)) in layout.layers().enumerate() {
        for channels in [1, 8, 64, 512] {
            if let Ok(sig) = Signature::generate(spec, channels, path, i as u64) {
                assert_eq!(sig.len(), channels);
            }
        }
    }
});
