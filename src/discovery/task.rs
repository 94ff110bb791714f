//! The discovery loop: every `discovery.interval`, starting at once, read every source and
//! report each source's answer (or error) to [`crate::app`], which owns the inventory.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::sources::{self, Found, FoundPage, FoundWaba};
use super::SourceKind;
use crate::clock::Clock;
use crate::config::DiscoveryConfig;
use crate::graph::GraphClient;
use crate::scheduler::GraphSource;

/// One source's answer in one run. Errors are the client's messages, which never hold a token.
#[derive(Debug, Clone)]
pub enum Report {
    /// `GET /me/accounts`.
    Pages {
        /// When the run ended (unix seconds).
        at: i64,
        /// What it listed.
        result: Result<Found<FoundPage>, String>,
    },
    /// Each business's owned and client accounts.
    WhatsappBusinessAccounts {
        /// When the run ended (unix seconds).
        at: i64,
        /// Per business id, what it listed.
        results: Vec<(String, Result<Found<FoundWaba>, String>)>,
    },
}

impl Report {
    /// The source the report is about.
    pub fn kind(&self) -> SourceKind {
        match self {
            Report::Pages { .. } => SourceKind::Pages,
            Report::WhatsappBusinessAccounts { .. } => SourceKind::WhatsappBusinessAccounts,
        }
    }

    /// Whether every read of the run succeeded.
    pub fn succeeded(&self) -> bool {
        match self {
            Report::Pages { result, .. } => result.is_ok(),
            Report::WhatsappBusinessAccounts { results, .. } => {
                results.iter().all(|(_, result)| result.is_ok())
            }
        }
    }

    /// The failures of the run, each naming what failed.
    pub fn errors(&self) -> Vec<String> {
        match self {
            Report::Pages { result, .. } => result.as_ref().err().cloned().into_iter().collect(),
            Report::WhatsappBusinessAccounts { results, .. } => results
                .iter()
                .filter_map(|(business, result)| {
                    result
                        .as_ref()
                        .err()
                        .map(|error| format!("business {business}: {error}"))
                })
                .collect(),
        }
    }

    /// When the run ended.
    pub fn at(&self) -> i64 {
        match self {
            Report::Pages { at, .. } | Report::WhatsappBusinessAccounts { at, .. } => *at,
        }
    }
}

/// Starts the loop for `config`; it stops when `cancel` is cancelled or the receiver is gone.
/// Every report goes out tagged with `generation`.
pub fn spawn(
    config: DiscoveryConfig,
    source: Arc<GraphSource>,
    clock: Arc<dyn Clock>,
    reports: mpsc::Sender<(u64, Report)>,
    generation: u64,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = run(config, source, clock, reports, generation) => {}
        }
    })
}

async fn run(
    config: DiscoveryConfig,
    source: Arc<GraphSource>,
    clock: Arc<dyn Clock>,
    reports: mpsc::Sender<(u64, Report)>,
    generation: u64,
) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let client = source.client();
        for report in run_once(&config, &client, clock.as_ref()).await {
            if reports.send((generation, report)).await.is_err() {
                return;
            }
        }
    }
}

/// Runs every configured source once and reports each: the loop's body, and what backfill
/// calls to find the targets the running exporter would have found.
pub async fn run_once(
    config: &DiscoveryConfig,
    client: &GraphClient,
    clock: &dyn Clock,
) -> Vec<Report> {
    let token = &config.credentials.token;
    let mut reports = Vec::new();
    if config.pages.is_some() {
        let result = sources::pages(client, token)
            .await
            .map_err(|error| error.to_string());
        if let Err(error) = &result {
            tracing::warn!(source = "pages", %error, "discovery failed; the Pages found before stay");
        }
        reports.push(Report::Pages {
            at: clock.now_unix(),
            result,
        });
    }
    if let Some(wabas) = &config.whatsapp_business_accounts {
        let mut results = Vec::with_capacity(wabas.business_ids.len());
        for business_id in &wabas.business_ids {
            let result = sources::whatsapp_business_accounts(client, token, business_id)
                .await
                .map_err(|error| error.to_string());
            if let Err(error) = &result {
                tracing::warn!(source = "whatsapp_business_accounts", business_id = %business_id, %error, "discovery failed; the accounts found before stay");
            }
            results.push((business_id.clone(), result));
        }
        reports.push(Report::WhatsappBusinessAccounts {
            at: clock.now_unix(),
            results,
        });
    }
    reports
}
