//! `--demo`: the exporter against the built-in simulated Graph API.
//!
//! Starts the simulator on a loopback port, registers a few Pages, campaigns and WhatsApp
//! accounts with it, and writes the config a user would write for them, which then goes
//! through the normal loader: demo mode exercises the same path as production.

use std::path::Path;

use anyhow::Context as _;

use crate::config::{self, Config};
use crate::simulator::{self, FakeGraphApi, Fault, TemplateAnalytics, TokenInfo};

/// The token the simulated objects accept. Not a secret: it only opens the simulator.
const DEMO_TOKEN: &str = "demo-token";
/// The Pages the demo token manages (`GET /me/accounts`).
const DEMO_PAGES: [&str; 3] = ["100000000000001", "100000000000002", "100000000000003"];
/// The business whose WhatsApp accounts discovery lists.
const DEMO_BUSINESS: &str = "105000000000001";
/// The second Page's own token (discovery finds it), whose data access runs out soon.
const DEMO_PAGE_TOKEN: &str = "demo-page-token-2";
/// The simulated app whose app token checks the demo tokens.
const DEMO_APP_ID: &str = "1000000000000";
/// Not a secret either: it only opens the simulator.
const DEMO_APP_SECRET: &str = "demo-app-secret";

/// A Marketing API version near its end, on purpose (see [`start`]).
const DEMO_MARKETING_VERSION: &str = "v25.0";

/// Starts the simulator with demo objects and returns it with the matching config.
pub async fn start() -> anyhow::Result<(FakeGraphApi, Config)> {
    let fake = FakeGraphApi::start()
        .await
        .context("starting the simulated Graph API")?;
    // Page 1 is listed in the config; discovery (GET /me/accounts) finds it too, along with
    // Pages 2 and 3, which it polls with their own Page tokens. The listed one wins.
    fake.simulate_page("100000000000001", DEMO_TOKEN);
    fake.simulate_page("100000000000002", DEMO_PAGE_TOKEN);
    fake.simulate_page("100000000000003", "demo-page-token-3");
    fake.grant_pages(DEMO_TOKEN, &DEMO_PAGES);
    for (page, name) in
        DEMO_PAGES
            .iter()
            .zip(["Demo Coffee Roasters", "Demo Bike Repair", "Demo Bakery"])
    {
        fake.set_name(page, name);
    }
    for (campaign, name) in [
        ("120200000000001", "Spring sale"),
        ("120200000000002", "Loyalty reminders"),
        ("120200000000003", "Winter win-back"),
    ] {
        fake.simulate_campaign(campaign, DEMO_TOKEN);
        fake.set_name(campaign, name);
    }
    // The demo pins the Marketing API to v25.0, which Meta ends on 2027-02-23, to show what
    // the exporter makes of an ending version: `--config.check` warns, and Meta upgrades the
    // campaign and ad-account reads early (served v26.0, with X-Ad-Api-Version-Warning). Once
    // v25.0 has expired, the third campaign plays an endpoint Meta cannot upgrade (2635).
    fake.reject_expired_marketing_version("120200000000003");
    fake.simulate_ad_account("act_106000000000001", DEMO_TOKEN);
    fake.set_name("act_106000000000001", "Demo ads");
    // Account 1 is listed; the business owns it and account 2, and account 3 is a client's.
    for (waba, name) in [
        ("104000000000001", "Demo Support Line"),
        ("104000000000002", "Demo Partner-billed"),
        ("104000000000003", "Demo Client Account"),
    ] {
        fake.simulate_waba(waba, DEMO_TOKEN);
        fake.set_name(waba, name);
    }
    fake.simulate_business(
        DEMO_BUSINESS,
        DEMO_TOKEN,
        &["104000000000001", "104000000000002"],
        &["104000000000003"],
    );
    fake.set_partner_billed("104000000000002", true);
    // Service messages are charged from 2026-10-01: the accounts with costs show the change
    // (SERVICE turns REGULAR and costs something) on the dashboard's service panel.
    fake.set_service_billed("104000000000001", true);
    fake.set_service_billed("104000000000003", true);
    // The client's account is shared without management rights: its phone-number list is
    // refused (#200), which the exporter shows as a read switched off while the account's
    // analytics, costs and templates go on.
    fake.fail_edge_always(
        "104000000000003",
        "phone_numbers",
        Fault::whatsapp_permission_denied(),
    );
    fake.set_template_analytics("104000000000002", TemplateAnalytics::NotEnabled);
    // One number under two Messaging accounts (the WABA split): the partner-billed account
    // lists the support line's first number too, whose own series the support line exports.
    fake.share_phone_number("104000000000001", "104000000000002");
    // Health (health_status on the node read): the partner-billed account is LIMITED, as in
    // Meta's example, and the client's account BLOCKED by its payment method.
    for (waba, health) in [
        (
            "104000000000002",
            simulator::health_limited("104000000000002"),
        ),
        (
            "104000000000003",
            simulator::health_blocked("104000000000003"),
        ),
    ] {
        fake.fixed_field(waba, "health_status", health);
    }
    // Each number's own health rides on the phone-number list: the support line's second
    // number is LIMITED, as in Meta's example (its display name awaits approval). The
    // partner-billed account's list does not carry the field, so its numbers are read on
    // their own nodes, hourly.
    fake.set_phone_health("104000000000001", Some(simulator::phone_health_limited()));
    fake.refuse_list_health("104000000000002");
    // The partner-billed account writes its portfolio's limit the other way Meta does (2000
    // rather than TIER_2K); the other accounts answer the simulator's TIER_10K.
    fake.fixed_field(
        "104000000000002",
        "whatsapp_business_manager_messaging_limit",
        serde_json::json!("2000"),
    );
    // Token health: the demo app checks every token in use, the discovered Page tokens too;
    // the second Page's token loses its data access in five days, which the status page shows
    // as a warning.
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
  marketing_version: {DEMO_MARKETING_VERSION}
pages:
  - id: "100000000000001"
    interval: 10s
discovery:
  interval: 5m
  pages:
    defaults:
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
  whatsapp_business_accounts:
    business_ids: ["{DEMO_BUSINESS}"]
    defaults:
      interval: 1m
      granularity: DAY
      conversations: {{}}
      templates: {{}}
ad_accounts:
  - id: act_106000000000001
    interval: 30s
    date_preset: last_7d
campaigns:
  - id: "120200000000001"
    interval: 15s
    date_preset: last_30d
  - id: "120200000000002"
    interval: 20s
    fields: [marketing_messages_delivered, marketing_messages_read_rate, marketing_messages_spend]
    time_range: {{since: "2026-01-01", until: "2026-06-30"}}
  - id: "120200000000003"
    interval: 30s
whatsapp_business_accounts:
  - id: "104000000000001"
    interval: 1m
    granularity: HALF_HOUR
    pricing:
      dimensions: [PRICING_CATEGORY, PRICING_TYPE, COUNTRY, PHONE, TIER]
    conversations: {{}}
    templates: {{}}
"#
    )
}
