//! `--demo`: the exporter against the built-in simulated Graph API.
//!
//! Starts the simulator on a loopback port, registers a few Pages, campaigns and WhatsApp
//! accounts with it, and writes the config a user would write for them, which then goes
//! through the normal loader: demo mode exercises the same path as production.

use std::path::Path;

use anyhow::Context as _;

use crate::config::{self, Config};
use crate::simulator::{FakeGraphApi, TemplateAnalytics, TokenInfo};

/// The token the simulated objects accept. Not a secret: it only opens the simulator.
const DEMO_TOKEN: &str = "demo-token";
/// The second Page's own token, whose data access runs out soon.
const DEMO_PAGE_TOKEN: &str = "demo-page-token";
/// The simulated app whose app token checks the demo tokens.
const DEMO_APP_ID: &str = "1000000000000";
/// Not a secret either: it only opens the simulator.
const DEMO_APP_SECRET: &str = "demo-app-secret";

/// Starts the simulator with demo objects and returns it with the matching config.
pub async fn start() -> anyhow::Result<(FakeGraphApi, Config)> {
    let fake = FakeGraphApi::start()
        .await
        .context("starting the simulated Graph API")?;
    fake.simulate_page("100000000000001", DEMO_TOKEN);
    fake.simulate_page("100000000000002", DEMO_PAGE_TOKEN);
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
    // Token health: the demo app checks both tokens; the second Page's token loses its data
    // access in five days, which the status page shows as a warning.
    fake.set_app(DEMO_APP_ID, DEMO_APP_SECRET);
    fake.set_token_info(
        DEMO_PAGE_TOKEN,
        TokenInfo::valid("PAGE", chrono::Utc::now().timestamp() + 5 * 86_400),
    );
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
  app_id: "{DEMO_APP_ID}"
  app_secret: {DEMO_APP_SECRET}
pages:
  - id: "100000000000001"
    interval: 10s
  - id: "100000000000002"
    interval: 15s
    access_token: {DEMO_PAGE_TOKEN}
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
