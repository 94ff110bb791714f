//! `backfill`: the history the running exporter would have served, as an OpenMetrics file for
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! Each target's history is read in as few calls as Meta allows and then *replayed*: for
//! every step instant, the answer a live poll at that instant would have received is cut
//! from the history and handed to the same converter the live exporter uses, so names, labels
//! and value rules cannot drift apart. What cannot be replayed (a value covering a range that
//! ends at the poll itself, a current state such as a phone number's quality rating) is left
//! out, and the summary says so.
//!
//! - [`range`]: `--since`, `--until` and `--step`, checked before any call.
//! - [`output`]: `--output` checked before any call, the directory the run writes in, and
//!   the file renamed into place when complete (or stdout).
//! - [`estimate`]: the samples and bytes expected, printed before the reads; `--max-bytes`.
//! - [`page`], [`campaign`], [`whatsapp`]: one read path each, history read and replayed.
//! - [`history`]: one target's samples, as runs, and their OpenMetrics lines.
//! - [`spill`]: each finished target's lines on disk, per family, joined at the end, so
//!   memory holds one target at a time rather than the whole history.
//! - [`progress`]: a progress bar on a terminal, log lines elsewhere.
//!
//! SIGTERM or Ctrl-C (the `shutdown` token [`run`] is given) stops the run wherever it is;
//! the partial directory goes with it, and the error says nothing was written.
//!
//! Calls go through the live exporter's [`GraphClient`], so batching, retries, the rate
//! limiter and the call budgets are the same; where the live exporter would skip a poll
//! because the limiter holds a pause, backfill waits the pause out.

pub mod campaign;
pub mod estimate;
pub mod history;
pub mod output;
pub mod page;
pub mod progress;
pub mod range;
pub mod spill;
pub mod whatsapp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use self::estimate::Estimate;
use self::history::History;
use self::output::{Output, OutputError};
use self::progress::Progress;
use self::range::Span;
use self::spill::Spill;
use crate::cli::BackfillFlags;
use crate::clock::Clock;
use crate::config::Config;
use crate::discovery::{self, Inventory};
use crate::graph::ratelimit::RateLimiter;
use crate::graph::{ErrorClass, GraphClient, GraphError, GraphRequest};
use crate::poller::campaign::InsightsObject;
use crate::poller::names::{self, InfoKind};
use crate::printable::printable;
use crate::redact::Redactor;
use crate::secret::AccessToken;
use crate::self_metrics::ExporterMetrics;
use crate::target::{Target, TargetKey, TargetKind};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

/// How often a throttled call is tried again (each after the limiter's pause) before its
/// target fails.
const MAX_THROTTLED_RETRIES: u32 = 8;

/// What a backfill run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Targets asked for history.
    pub targets: usize,
    /// Samples gathered.
    pub samples: u64,
    /// Series gathered.
    pub series: usize,
    /// API calls made (entries of batch calls included).
    pub calls: u64,
    /// HTTP requests they went out in.
    pub http_requests: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Targets that could not be backfilled, each with Meta's error.
    pub failed: Vec<(TargetKey, String)>,
    /// What was left out and why, by target.
    pub notes: Vec<(TargetKey, String)>,
    /// Bytes of OpenMetrics text written.
    pub bytes: u64,
    /// What was expected before the reads.
    pub estimate: Estimate,
    /// `--output` as given.
    pub output: String,
}

/// The Graph API client every call of one backfill goes through (discovery included, so they
/// share the limiter and its budgets), and the counters the summary reads.
pub struct Session {
    client: GraphClient,
    metrics: ExporterMetrics,
    clock: Arc<dyn Clock>,
}

impl Session {
    /// A client for `config`'s Graph API settings, its own limiter and counters.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Session> {
        let metrics = ExporterMetrics::new().context("creating the call counters")?;
        let limiter = Arc::new(
            RateLimiter::new(config.rate_limits.clone(), metrics.clone()).with_clock(clock.clone()),
        );
        let client = GraphClient::new(&config.graph_api, &config.polling, metrics.clone(), limiter)
            .context("creating the Graph API client")?;
        Ok(Session {
            client,
            metrics,
            clock,
        })
    }

    /// Backfills `targets` over `span` into `spill`, each target's history as it finishes,
    /// and says what happened. A target that fails is named in the summary; the others'
    /// history is still written. Only failing to write the spill is an error.
    pub async fn collect(
        &self,
        config: &Config,
        targets: Vec<Target>,
        span: Span,
        progress: &Progress,
        spill: &mut Spill,
    ) -> anyhow::Result<Summary> {
        let started = Instant::now();
        let caller = Caller {
            client: &self.client,
            progress,
        };
        let mut summary = Summary {
            targets: targets.len(),
            ..Summary::default()
        };
        progress.start(targets.len());
        // Targets run side by side, as many as requests may be in flight; each gathers its own
        // history, which goes to disk as it finishes.
        let concurrency = config.polling.max_concurrent_requests.max(1);
        let redactor = &redactor(config, &targets);
        let caller = &caller;
        let span = &span;
        let mut finished = futures::stream::iter(targets.iter().enumerate().map(
            |(index, target)| async move {
                let key = target.key();
                progress.target_started(&key);
                let mut own = History::redacting(redactor.clone());
                let outcome = backfill_target(caller, target, span, &mut own).await;
                (index, key, outcome, own)
            },
        ))
        .buffer_unordered(concurrency);
        while let Some((index, key, outcome, own)) = finished.next().await {
            match outcome {
                Ok(notes) => {
                    let absorbed = spill
                        .absorb(index, own)
                        .context("writing the history read so far")?;
                    summary.samples += absorbed.samples;
                    summary.series += absorbed.series;
                    if let Some(first) = absorbed.duplicates.first() {
                        summary.notes.push((
                            key.clone(),
                            format!(
                                "{} series left out, another target had written them already (the first: {first})",
                                absorbed.duplicates.len()
                            ),
                        ));
                    }
                    summary
                        .notes
                        .extend(notes.into_iter().map(|note| (key.clone(), note)));
                    progress.target_done(&key, None);
                }
                Err(error) => {
                    progress.target_done(&key, Some(&error));
                    summary.failed.push((key, error));
                }
            }
        }
        drop(finished);
        summary.failed.sort();
        summary.notes.sort();
        summary.calls = counted(&self.metrics.api_requests);
        summary.http_requests = counted(&self.metrics.api_http_requests);
        summary.elapsed = started.elapsed();
        progress.finish();
        Ok(summary)
    }
}

/// Every secret the backfill's answers could echo: the targets' tokens, discovery's token and
/// the app secret.
fn redactor(config: &Config, targets: &[Target]) -> Redactor {
    let tokens = targets
        .iter()
        .map(|target| target.credentials().token.expose())
        .chain(
            config
                .discovery
                .iter()
                .map(|discovery| discovery.credentials.token.expose()),
        );
    let secret = config
        .graph_api
        .app_secret
        .as_ref()
        .map(|secret| secret.expose());
    Redactor::new(tokens.chain(secret))
}

/// A run stopped by SIGTERM or Ctrl-C.
#[derive(Debug, thiserror::Error)]
pub enum Interrupted {
    /// Before anything reached the output.
    #[error("interrupted by SIGTERM or Ctrl-C: nothing was written to {0}, and the partial files were removed")]
    NothingWritten(String),
    /// While the history streamed to stdout.
    #[error(
        "interrupted by SIGTERM or Ctrl-C: the history on stdout is incomplete (it has no `# EOF`)"
    )]
    StdoutIncomplete,
}

/// Runs `backfill` for `flags` over `config`'s targets: checks the span and `--output`,
/// finds the targets, estimates the size, reads and replays their history, writes it. The
/// summary names the targets that failed; the caller decides the exit code. When `shutdown`
/// is cancelled the run stops, removes what it wrote and returns [`Interrupted`].
pub async fn run(
    config: &Config,
    flags: &BackfillFlags,
    clock: Arc<dyn Clock>,
    progress: &Progress,
    shutdown: CancellationToken,
) -> anyhow::Result<Summary> {
    let since = range::parse_instant("--since", &flags.since)?;
    let until = range::parse_instant("--until", &flags.until)?;
    // Checked before any call, discovery's included: the kinds discovery can add count too.
    let mut kinds: Vec<TargetKind> = Target::all(config).iter().map(|t| t.key().kind).collect();
    if let Some(discovery) = &config.discovery {
        if discovery.pages.is_some() {
            kinds.push(TargetKind::Page);
        }
        if discovery.whatsapp_business_accounts.is_some() {
            kinds.push(TargetKind::WhatsappBusinessAccount);
        }
    }
    let span = Span::new(since, until, flags.step, clock.now_unix(), &kinds)?;
    let output = Output::parse(&flags.output);
    // Before any call too: a write that would fail must not wait for hours of reads.
    let prepared = output.prepare(flags.force)?;
    let shown = match &output {
        Output::Stdout => "stdout".to_owned(),
        Output::File(path) => path.display().to_string(),
    };
    let nothing_written = || Interrupted::NothingWritten(shown.clone());
    let session = Session::new(config, clock)?;
    let targets = tokio::select! {
        () = shutdown.cancelled() => return Err(nothing_written().into()),
        targets = session.targets(config) => targets?,
    };
    let estimate = Estimate::of(&targets, &span);
    progress.estimate(&format!(
        "backfill of {} targets from {} to {}: expect {estimate} (an estimate from the config; Meta's answers decide)",
        targets.len(),
        range::format_time(span.since),
        range::format_time(span.until),
    ));
    if let Some(max) = flags.max_bytes {
        if estimate.bytes > max {
            anyhow::bail!(
                "--max-bytes {}: the estimate is {}, more than allowed, so no history was read. Shorten the span, raise --step, or raise --max-bytes",
                bytesize::ByteSize(max).display().iec(),
                bytesize::ByteSize(estimate.bytes).display().iec(),
            );
        }
    }
    let mut spill = Spill::new(prepared.dir());
    let mut summary = tokio::select! {
        () = shutdown.cancelled() => return Err(nothing_written().into()),
        summary = session.collect(config, targets, span, progress, &mut spill) => summary?,
    };
    summary.estimate = estimate;
    // The join is blocking file I/O: on the blocking pool, with a flag it looks at between
    // chunks, so a signal during a join of gigabytes still stops it soon.
    let stop = Arc::new(AtomicBool::new(false));
    let mut join = tokio::task::spawn_blocking({
        let stop = stop.clone();
        move || prepared.finish(spill, &stop)
    });
    let joined = tokio::select! {
        joined = &mut join => joined,
        () = shutdown.cancelled() => {
            stop.store(true, Ordering::Relaxed);
            // Waited for, so the partial directory is gone before the error is printed.
            let _ = join.await;
            return Err(match output {
                Output::Stdout => Interrupted::StdoutIncomplete,
                Output::File(_) => nothing_written(),
            }
            .into());
        }
    };
    summary.bytes = match joined.context("joining the history")? {
        Ok(bytes) => bytes,
        Err(OutputError::Stopped(_)) => return Err(nothing_written().into()),
        Err(error) => return Err(error.into()),
    };
    summary.output = flags.output.clone();
    Ok(summary)
}

impl Summary {
    /// The lines printed at the end: what was written, what was left out, what failed.
    pub fn report(&self) -> String {
        let mut out = format!(
            "backfilled {} of {} targets: {} samples in {} series, {} API calls in {} HTTP requests, {:.1} s; wrote {} bytes to {}\n",
            self.targets - self.failed.len(),
            self.targets,
            self.samples,
            self.series,
            self.calls,
            self.http_requests,
            self.elapsed.as_secs_f64(),
            self.bytes,
            if self.output == "-" { "stdout" } else { &self.output },
        );
        // One line per distinct note: five hundred discovered Pages with the same metric left
        // out make one line, not five hundred.
        let mut by_note: std::collections::BTreeMap<&str, Vec<&TargetKey>> = Default::default();
        for (key, note) in &self.notes {
            by_note.entry(note).or_default().push(key);
        }
        for (note, keys) in by_note {
            // A note can quote Meta (a message, a name): no byte of it may act on a terminal.
            let note = printable(note);
            match keys.as_slice() {
                [key] => out.push_str(&format!("note: {key}: {note}\n")),
                keys => {
                    let named: Vec<String> =
                        keys.iter().take(3).map(|key| key.to_string()).collect();
                    let more = keys.len().saturating_sub(3);
                    let tail = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "note: {} targets ({}{tail}): {note}\n",
                        keys.len(),
                        named.join(", ")
                    ));
                }
            }
        }
        out
    }

    /// The error for a run with failed targets: each one with Meta's error.
    pub fn failure(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let mut out = format!(
            "could not backfill {} of {} targets (the others were written):",
            self.failed.len(),
            self.targets
        );
        for (key, error) in &self.failed {
            out.push_str(&format!("\n  {key}: {}", printable(error)));
        }
        Some(out)
    }
}

/// One target's history, by its read path.
async fn backfill_target(
    caller: &Caller<'_>,
    target: &Target,
    span: &Span,
    history: &mut History,
) -> Result<Vec<String>, String> {
    match target {
        Target::Page(page) => page::backfill(caller, page, span, history).await,
        Target::Campaign(campaign) => {
            campaign::backfill(caller, campaign, InsightsObject::Campaign, span, history).await
        }
        Target::AdAccount(account) => {
            campaign::backfill(caller, account, InsightsObject::AdAccount, span, history).await
        }
        Target::Waba(waba) => whatsapp::backfill(caller, waba, span, history).await,
    }
}

impl Session {
    /// The listed targets and, when discovery is configured, the ones it finds now. A
    /// discovery source that fails is an error: a backfill silently missing the accounts it
    /// would have found is worse than one that says so.
    pub async fn targets(&self, config: &Config) -> anyhow::Result<Vec<Target>> {
        let mut targets = Target::all(config);
        let Some(discovery_config) = &config.discovery else {
            return Ok(targets);
        };
        let mut inventory = Inventory::default();
        let reports =
            discovery::task::run_once(discovery_config, &self.client, self.clock.as_ref()).await;
        for report in reports {
            if !report.succeeded() {
                anyhow::bail!(
                    "discovery of {} failed: {}",
                    report.kind().as_str(),
                    report.errors().join("; ")
                );
            }
            inventory.record(&report);
        }
        targets.extend(inventory.targets(config).targets);
        Ok(targets)
    }
}

/// The client, and what waits on the limiter's pauses: a backfill has no next poll to wait
/// for, so it waits here.
pub struct Caller<'a> {
    client: &'a GraphClient,
    progress: &'a Progress,
}

impl Caller<'_> {
    /// The version Graph API (non-Marketing) calls go out with.
    pub fn graph_version(&self) -> &str {
        self.client.version(crate::graph::Api::Graph)
    }

    /// `GET` with `token`, waiting out the limiter's pauses and retrying throttles after them.
    pub async fn get(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> Result<Value, GraphError> {
        self.waiting_out_pauses(|| self.client.get(request, token))
            .await
    }

    /// Every page of a list edge, the same way (a paused list is read again from its first
    /// page: lists are short, and a cursor would not outlive the pause).
    pub async fn get_pages(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        max_pages: usize,
    ) -> Result<crate::graph::Pages, GraphError> {
        self.waiting_out_pauses(|| self.client.get_pages(request, token, max_pages))
            .await
    }

    /// Runs `call` until it is answered: a pause of the limiter is slept out, a throttle is
    /// tried again (it meets the pause the limiter took from it) up to
    /// [`MAX_THROTTLED_RETRIES`] times.
    async fn waiting_out_pauses<T, Call, Fut>(&self, mut call: Call) -> Result<T, GraphError>
    where
        Call: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, GraphError>>,
    {
        let mut throttled = 0;
        loop {
            match call().await {
                Err(GraphError::Paused { scope, remaining }) => {
                    self.progress.paused(scope, remaining);
                    tokio::time::sleep(remaining.max(Duration::from_secs(1))).await;
                }
                Err(error)
                    if error.class() == ErrorClass::Throttled
                        && throttled < MAX_THROTTLED_RETRIES =>
                {
                    throttled += 1;
                }
                answer => return answer,
            }
        }
    }

    /// The info series of `id` (`meta_page_info` and the like) with its name as read now:
    /// history has no names, and a name on every past sample keeps dashboards' joins working.
    async fn info_family(
        &self,
        kind: InfoKind,
        id: &str,
        fields: &str,
        token: &AccessToken,
        known: Option<&str>,
        origin: crate::config::Origin,
    ) -> Option<crate::exposition::Family> {
        let names = match known {
            Some(name) => names::ObjectNames {
                name: Some(name.to_owned()),
                currency: None,
            },
            None => match self
                .get(
                    &GraphRequest::object_fields(id, fields).in_api(kind.api),
                    token,
                )
                .await
            {
                Ok(body) => names::parse(&body),
                Err(error) => {
                    tracing::warn!(object_id = id, %error, "reading the object's name failed; its history has no info series");
                    return None;
                }
            },
        };
        names::info_family(kind, id, &names, origin)
    }
}

/// The sum of a counter over all its label sets.
fn counted(counter: &prometheus::IntCounterVec) -> u64 {
    use prometheus::core::Collector as _;
    counter
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_counter().value() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: &str) -> TargetKey {
        TargetKey::page(id)
    }

    #[test]
    fn the_report_gives_each_note_one_line_and_the_failure_names_every_target() {
        let summary = Summary {
            targets: 6,
            samples: 10,
            series: 2,
            calls: 7,
            http_requests: 3,
            elapsed: Duration::from_millis(1500),
            failed: vec![(page("9"), "Graph API error 190: expired".into())],
            notes: ["1", "2", "3", "4", "5"]
                .iter()
                .map(|id| (page(id), "x left out".to_owned()))
                .chain([(page("1"), "y left out".to_owned())])
                .collect(),
            bytes: 99,
            estimate: Estimate::default(),
            output: "-".into(),
        };
        assert_eq!(
            summary.report(),
            "backfilled 5 of 6 targets: 10 samples in 2 series, 7 API calls in 3 HTTP requests, 1.5 s; wrote 99 bytes to stdout\n\
             note: 5 targets (page 1, page 2, page 3 and 2 more): x left out\n\
             note: page 1: y left out\n"
        );
        assert_eq!(
            summary.failure().as_deref(),
            Some("could not backfill 1 of 6 targets (the others were written):\n  page 9: Graph API error 190: expired")
        );
    }
}
