//! Campaign insights bodies: never a panic, and every value finite and, for documented
//! fields, not negative.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta_messaging_exporter::config::CampaignDates;
use meta_messaging_exporter::convert::campaign;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice(data) else {
        return;
    };
    let fields = [
        "marketing_messages_spend".to_owned(),
        "marketing_messages_delivered".to_owned(),
        "x".to_owned(),
    ];
    let dates = CampaignDates::Preset("last_30d".to_owned());
    if let Ok(converted) = campaign::convert("1", &dates, &fields, &body) {
        for family in &converted.families {
            let value = family.samples[0].value;
            assert!(value.is_finite(), "{family:?}");
            assert!(family.name == "meta_x" || value >= 0.0, "{family:?}");
        }
    }
});
