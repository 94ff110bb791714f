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
//!
//! `--hang-share`, `--error-share`, `--throttle-share`, `--invalid-token-share` and
//! `--partial-share` give that share of the Pages a fault for good (a stalled answer, Graph's
//! 500, a Page rate limit, a token Meta refuses, a failing name read beside answering
//! insights), spread evenly over the tokens, and `--faults-out` writes which Pages got which:
//! `benches/fault_soak.py` measures what the healthy ones keep, `.ci/status-page.py` renders
//! the status page of 10,000 targets in every state.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use meta_messaging_exporter::simulator::{FakeGraphApi, Fault, Latency};

/// The token every simulated object accepts with `--tokens 1`; it opens nothing but the
/// simulator.
const TOKEN: &str = "sizing-token";

/// Which metrics each Page is polled for.
#[derive(Clone, Copy, ValueEnum)]
enum PageMetrics {
    /// The demo's heavier list: breakdowns by channel, topic and frequency, about 20 series
    /// in 5 requests per Page.
    Breakdowns,
    /// Ten daily metrics without breakdowns: 10 series in one request per Page.
    Flat,
}

/// The ten daily Page metrics without breakdowns of `--page-metrics flat`.
const FLAT_METRICS: [&str; 10] = [
    "page_messages_new_conversations_unique",
    "page_messages_blocked_conversations_unique",
    "page_messages_reported_conversations_unique",
    "page_messages_total_messaging_connections",
    "page_messages_sent",
    "page_messages_read_ratio",
    "page_messages_order_count",
    "page_messages_engagement",
    "page_messages_paid_order_earnings",
    "page_messages_with_business_outcomes",
];

/// Serve a simulated Graph API with many objects and write the config that polls them.
#[derive(Parser)]
struct Args {
    /// Pages.
    #[arg(long, default_value_t = 500)]
    pages: usize,
    /// The metrics each Page is polled for.
    #[arg(long, value_enum, default_value_t = PageMetrics::Breakdowns)]
    page_metrics: PageMetrics,
    /// How many tokens the Pages are spread over (round robin): 1 is one system-user token
    /// for all, as for WhatsApp accounts and campaigns; `--tokens` equal to `--pages` is a
    /// Page token each, as discovery gives. Campaigns and accounts always share one.
    #[arg(long, default_value_t = 1)]
    tokens: usize,
    /// Added to every answer, as Meta's own latency, e.g. 300ms.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Added to a batch call's answer once per entry, e.g. 10ms: a batch of 50 then takes
    /// `latency` + 500ms.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    batch_entry_latency: Duration,
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
    /// Share of the Pages whose answers stall for an hour (a hung connection or proxy).
    #[arg(long, default_value_t = 0.0)]
    hang_share: f64,
    /// Share of the Pages that always answer Graph's HTTP 500 (code 2, transient).
    #[arg(long, default_value_t = 0.0)]
    error_share: f64,
    /// Share of the Pages that are always rate limited (code 80001, the Page's own limit).
    #[arg(long, default_value_t = 0.0)]
    throttle_share: f64,
    /// Share of the Pages whose token Meta no longer accepts (code 190): disabled targets.
    #[arg(long, default_value_t = 0.0)]
    invalid_token_share: f64,
    /// Share of the Pages whose name read always answers Graph's 500 while their insights
    /// answer: partial polls.
    #[arg(long, default_value_t = 0.0)]
    partial_share: f64,
    /// Where to write, as JSON, which Pages got which fault.
    #[arg(long)]
    faults_out: Option<PathBuf>,
}

/// A fault given to a Page for good.
#[derive(Clone, Copy)]
enum PageFault {
    Hang,
    Error,
    Throttle,
    InvalidToken,
    Partial,
}

impl PageFault {
    fn name(self) -> &'static str {
        match self {
            Self::Hang => "hang",
            Self::Error => "error",
            Self::Throttle => "throttle",
            Self::InvalidToken => "invalid_token",
            Self::Partial => "partial",
        }
    }

    fn fault(self) -> Fault {
        match self {
            Self::Hang => Fault::Stall(Duration::from_secs(3600)),
            Self::Error => Fault::transient(),
            Self::Throttle => Fault::throttled(80001),
            Self::InvalidToken => Fault::invalid_token(),
            Self::Partial => Fault::transient(),
        }
    }

    /// Gives Page `id` this fault for good: its name read alone for a partial one.
    fn apply(self, fake: &FakeGraphApi, id: &str) {
        match self {
            Self::Partial => fake.fail_query_always(id, "fields=name", self.fault()),
            _ => fake.fail_always(id, self.fault()),
        }
    }
}

/// The fault of Page `n`: the Pages of each token are numbered on their own (`n / tokens`),
/// so every token gets its share of each fault.
fn page_fault(args: &Args, n: usize) -> Option<PageFault> {
    let per_token = args.pages.div_ceil(args.tokens).max(1);
    let position = (n / args.tokens) as f64 / per_token as f64;
    let mut bound = 0.0;
    for (share, fault) in [
        (args.hang_share, PageFault::Hang),
        (args.error_share, PageFault::Error),
        (args.throttle_share, PageFault::Throttle),
        (args.invalid_token_share, PageFault::InvalidToken),
        (args.partial_share, PageFault::Partial),
    ] {
        bound += share;
        if position < bound {
            return Some(fault);
        }
    }
    None
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.tokens >= 1, "--tokens must be at least 1");
    let shares = [
        args.hang_share,
        args.error_share,
        args.throttle_share,
        args.invalid_token_share,
        args.partial_share,
    ];
    anyhow::ensure!(
        shares.iter().all(|share| (0.0..=1.0).contains(share))
            && shares.iter().sum::<f64>() <= 1.0,
        "--hang-share, --error-share, --throttle-share, --invalid-token-share and --partial-share are shares between 0 and 1 that add up to at most 1"
    );
    let mut faults: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let fake = FakeGraphApi::start()
        .await
        .context("starting the simulated Graph API")?;
    fake.set_latency(Latency {
        per_request: args.latency,
        per_batch_entry: args.batch_entry_latency,
    });
    let mut yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\npages:\n",
        fake.base_url()
    );
    for n in 0..args.pages {
        let id = format!("1{n:014}");
        let token = if args.tokens == 1 {
            TOKEN.to_owned()
        } else {
            format!("{TOKEN}-{}", n % args.tokens)
        };
        fake.simulate_page(&id, &token);
        if let Some(fault) = page_fault(&args, n) {
            fault.apply(&fake, &id);
            faults.entry(fault.name()).or_default().push(id.clone());
        }
        let _ = write!(
            yaml,
            "  - id: \"{id}\"\n    interval: {interval}\n",
            interval = args.interval
        );
        if args.tokens > 1 {
            let _ = writeln!(yaml, "    access_token: {token}");
        }
        match args.page_metrics {
            PageMetrics::Breakdowns => yaml.push_str("    metrics:\n      - page_messages_new_conversations_unique\n      - page_messages_blocked_conversations_unique\n      - page_messages_reported_conversations_unique\n      - page_messages_total_messaging_connections\n      - name: page_messages_sent\n        breakdowns: [messaging_channel]\n      - name: page_messages_read_ratio\n        breakdowns: [messaging_channel]\n      - name: page_messages_engagement\n        breakdowns: [messaging_channel, message_type]\n      - name: recurring_notifications_tokens\n        period: total_over_range\n        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]\n"),
            PageMetrics::Flat => {
                let _ = writeln!(yaml, "    metrics: [{}]", FLAT_METRICS.join(", "));
            }
        }
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
    if let Some(path) = &args.faults_out {
        let json = serde_json::to_string_pretty(&faults).context("encoding the faults")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
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
