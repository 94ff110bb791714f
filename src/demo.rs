//! `--demo`: the exporter against the built-in simulated Graph API.
//!
//! Starts the simulator on a loopback port, registers a few Pages, campaigns and WhatsApp
//! accounts with it, and writes the config a user would write for them, which then goes
//! through the normal loader: demo mode exercises the same path as production.

use std::path::Path;

use anyhow::Context as _;

use crate::config::{self, Config};
use crate::simulator::{FakeGraphApi, TemplateAnalytics};

/// The token the simulated objects accept. Not a secret: it only opens the simulator.
const DEMO_TOKEN: &str = "demo-token";

/// Starts the simulator with demo objects and returns it with the matching config.
pub async fn start() -> anyhow::Result<(FakeGraphApi, Config)> {
    let fake = FakeGraphApi::start()
        .await
        .context("starting the simulated Graph API")?;
    for page in ["100000000000001", "100000000000002"] {
        fake.simulate_page(page, DEMO_TOKEN);
    }
    for campaign in ["120200000000001", "120200000000002"] {
        fake.simulate_campaign(campaign, DEMO_TOKEN);
    }
    for waba in ["104000000000001", "104000000000002"] {
        fake.simulate_waba(waba, DEMO_TOKEN);
    }
    // The second account shows the states a real one can be in: billed through a solution
    // partner (volumes without costs) and template analytics not confirmed on it.
    fake.set_partner_billed("104000000000002", true);
    fake.set_template_analytics("104000000000002", TemplateAnalytics::NotEnabled);
    let yaml = demo_yaml(&fake.base_url());
    let lookup = |_: &str| None;
    let config = config::from_yaml(&yaml, "demo config", &lookup, Path::new("."))
        .context("building the demo config")?;
    Ok((fake, config))
}

/// The config a user would write for the demo objects, with short intervals so series show
/// up within seconds.
fn demo_yaml(base_url: &str) -> String {
    format!(
        r#"graph_api:
  base_url: {base_url}
  access_token: {DEMO_TOKEN}
pages:
  - id: "100000000000001"
    interval: 10s
  - id: "100000000000002"
    interval: 15s
    metrics:
      - page_messages_new_conversations_unique
      - page_messages_blocked_conversations_unique
      - page_messages_reported_conversations_unique
      - page_messages_total_messaging_connections
      - name: page_messages_sent
        breakdowns: [messaging_channel]
      - name: page_messages_read_ratio
        breakdowns: [messaging_channel]
      - name: page_messages_engagement
        breakdowns: [messaging_channel, message_type]
      - name: recurring_notifications_tokens
        period: total_over_range
        window: 28d
        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]
campaigns:
  - id: "120200000000001"
    interval: 15s
    date_preset: last_30d
  - id: "120200000000002"
    interval: 20s
    fields: [marketing_messages_delivered, marketing_messages_read_rate, marketing_messages_spend]
    time_range: {{since: "2026-01-01", until: "2026-06-30"}}
whatsapp_business_accounts:
  - id: "104000000000001"
    interval: 1m
    granularity: HALF_HOUR
    pricing:
      dimensions: [PRICING_CATEGORY, PRICING_TYPE, COUNTRY, PHONE, TIER]
    conversations: {{}}
    templates: {{}}
  - id: "104000000000002"
    interval: 1m
    granularity: DAY
    phone_numbers: ["15550000001", "15550000002"]
    conversations: {{}}
    templates: {{}}
"#
    )
}
