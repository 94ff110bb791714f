//! WABA analytics bodies: the first 8 bytes pick "now" (years 2000-2100), the rest is the
//! body. Never a panic; counts finite and not negative; the bucket ended at or before now.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta_messaging_exporter::config::Granularity;
use meta_messaging_exporter::convert::whatsapp::{self, Selection};

const YEAR_2000: i64 = 946_684_800;
const CENTURY: i64 = 3_155_760_000;

fuzz_target!(|data: &[u8]| {
    let Some((now, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now = YEAR_2000 + i64::from_le_bytes(*now).rem_euclid(CENTURY);
    let Ok(body) = serde_json::from_slice(body) else {
        return;
    };
    for granularity in [Granularity::HalfHour, Granularity::Day, Granularity::Month] {
        let selection = Selection {
            waba_id: "1",
            granularity,
            phone_number: None,
            country_code: None,
        };
        if let Ok(converted) = whatsapp::convert(selection, now, &body) {
            for family in &converted.families {
                for sample in &family.samples {
                    assert!(sample.value.is_finite() && sample.value >= 0.0, "{family:?}");
                }
            }
            let end = converted.families[2].samples[0].value;
            assert!(end <= now as f64, "bucket ends at {end}, after {now}");
        }
    }
});
