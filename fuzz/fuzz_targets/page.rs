//! Page insights bodies: never a panic, and every sample publishable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta_messaging_exporter::convert::page;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice(data) else {
        return;
    };
    if let Ok(converted) = page::convert("1", "day", &body) {
        for family in &converted.families {
            for sample in &family.samples {
                assert!(sample.value.is_finite(), "{family:?}");
            }
        }
    }
});
