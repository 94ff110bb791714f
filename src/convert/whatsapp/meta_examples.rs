//! Meta's own example answers from its WhatsApp analytics reference (graph-api.md 5.1 and
//! 5.3), which the converters' unit tests and the integration tests both check against: one
//! copy, so the numbers tested are the numbers Meta documents.

use serde_json::{json, Value};

/// Template ids of the template analytics example.
pub const TEMPLATE_IDS: [&str; 2] = ["1421988012088524", "2632273056924580"];

/// Meta's `pricing_analytics` example: six points in the 2025-06-01 Pacific day (US) and one on
/// 2025-06-05 (India), with dimensions PRICING_CATEGORY, PRICING_TYPE, TIER, COUNTRY.
pub fn pricing_analytics() -> Value {
    let us = |kind: &str, category: &str, tier: Option<&str>, volume: i64, cost: f64| {
        let mut point = json!({"start": 1_748_761_200, "end": 1_748_847_600, "country": "US",
            "pricing_type": kind, "pricing_category": category, "volume": volume, "cost": cost});
        if let Some(tier) = tier {
            point["tier"] = json!(tier);
        }
        point
    };
    json!({"data": [{"data_points": [
        us("REGULAR", "MARKETING", Some("0:MAX"), 4, 40.0),
        us("REGULAR", "MARKETING_LITE", Some("0:MAX"), 1, 10.0),
        us("REGULAR", "UTILITY", Some("0:2"), 1, 10.0),
        us("REGULAR", "AUTHENTICATION", Some("0:2"), 1, 10.0),
        us("FREE_CUSTOMER_SERVICE", "UTILITY", None, 1, 0.0),
        us("FREE_CUSTOMER_SERVICE", "SERVICE", None, 2, 0.0),
        {"start": 1_749_106_800, "end": 1_749_193_200, "country": "IN", "pricing_type": "REGULAR",
         "pricing_category": "AUTHENTICATION_INTERNATIONAL", "tier": "0:750000", "volume": 2, "cost": 4.6}
    ]}]})
}

/// Meta's template analytics example: the UTC day 1718064000-1718150400 of two templates, one
/// with quick-reply and URL button clicks.
pub fn template_analytics() -> Value {
    let [a, b] = TEMPLATE_IDS;
    json!({"data": [{"granularity": "DAILY", "data_points": [
        {"template_id": a, "start": 1_718_064_000, "end": 1_718_150_400, "sent": 1, "delivered": 1, "read": 1,
         "cost": [{"type": "amount_spent", "value": 0.01}, {"type": "cost_per_delivered", "value": 0.01}]},
        {"template_id": b, "start": 1_718_064_000, "end": 1_718_150_400, "sent": 1, "delivered": 1, "read": 1,
         "clicked": [{"type": "quick_reply_button", "button_content": "Contact Support", "count": 108},
                     {"type": "unique_url_button", "button_content": "Tell me more", "count": 16}],
         "cost": [{"type": "amount_spent", "value": 0.03}]}
    ]}], "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}})
}
