//! The simulated Graph API on its own, with as many Pages, campaigns and WhatsApp accounts as
//! asked for, and the exporter config that polls all of them: for sizing and load tests of a
//! separately started exporter, whose memory and CPU are then its own.
//!
//! ```sh
//! cargo run --release --example simulated_graph_api -- \
//!     --pages 500 --campaigns 250 --wabas 250 --interval 1m --config-out /tmp/sizing.yaml &
//! ./target/release/meta-messaging-exporter --config.file=/tmp/sizing.yaml
//! ```
//!
//! deploy/README.md ("Memory and CPU") gives the figures measured this way. The simulator
//! serves until Ctrl-C.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use meta_messaging_exporter::simulator::FakeGraphApi;

/// The one token every simulated object accepts; it opens nothing but the simulator.
const TOKEN: &str = "sizing-token";

/// Serve a simulated Graph API with many objects and write the config that polls them.
#[derive(Parser)]
struct Args {
    /// Pages, each with the demo's heavier metric list (breakdowns by channel, topic and
    /// frequency: about 20 series per Page).
    #[arg(long, default_value_t = 500)]
    pages: usize,
    /// Marketing-message campaigns (7 fields each).
    #[arg(long, default_value_t = 250)]
    campaigns: usize,
    /// WhatsApp Business Accounts, each filtered by two phone numbers (two requests each).
    #[arg(long, default_value_t = 250)]
    wabas: usize,
    /// Poll interval of every target, e.g. 1m. Shorter than production on purpose: it packs
    /// hours of polling into minutes.
    #[arg(long, default_value = "1m")]
    interval: String,
    /// Where to write the exporter config.
    #[arg(long)]
    config_out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fake = FakeGraphApi::start()
        .await
        .context("starting the simulated Graph API")?;
    let mut yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\npages:\n",
        fake.base_url()
    );
    for n in 0..args.pages {
        let id = format!("1{n:014}");
        fake.simulate_page(&id, TOKEN);
        let _ = write!(
            yaml,
            "  - id: \"{id}\"\n    interval: {interval}\n    metrics:\n      - page_messages_new_conversations_unique\n      - page_messages_blocked_conversations_unique\n      - page_messages_reported_conversations_unique\n      - page_messages_total_messaging_connections\n      - name: page_messages_sent\n        breakdowns: [messaging_channel]\n      - name: page_messages_read_ratio\n        breakdowns: [messaging_channel]\n      - name: page_messages_engagement\n        breakdowns: [messaging_channel, message_type]\n      - name: recurring_notifications_tokens\n        period: total_over_range\n        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]\n",
            interval = args.interval
        );
    }
    yaml.push_str("campaigns:\n");
    for n in 0..args.campaigns {
        let id = format!("12{n:013}");
        fake.simulate_campaign(&id, TOKEN);
        let _ = writeln!(yaml, "  - id: \"{id}\"\n    interval: {}", args.interval);
    }
    yaml.push_str("whatsapp_business_accounts:\n");
    for n in 0..args.wabas {
        let id = format!("104{n:012}");
        fake.simulate_waba(&id, TOKEN);
        let _ = writeln!(
            yaml,
            "  - id: \"{id}\"\n    interval: {}\n    granularity: DAY\n    phone_numbers: [\"15550000001\", \"15550000002\"]",
            args.interval
        );
    }
    std::fs::write(&args.config_out, yaml)
        .with_context(|| format!("writing {}", args.config_out.display()))?;
    eprintln!(
        "simulated Graph API at {} with {} Pages, {} campaigns, {} WhatsApp accounts; config in {}",
        fake.base_url(),
        args.pages,
        args.campaigns,
        args.wabas,
        args.config_out.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(fake);
    Ok(())
}
