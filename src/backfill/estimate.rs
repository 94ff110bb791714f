//! How big a backfill will be, guessed from the config before any history is read: each
//! target's series (from its metrics, fields, breakdowns and dimensions) times its steps,
//! and each series' line length. `--max-bytes` refuses a run whose guess exceeds it.
//!
//! What Meta will answer is not known in advance (how many countries a WhatsApp account
//! sends to, how many templates it has), so the guess takes typical counts, chosen against
//! the demo: 90 days of it at the default step were guessed at 13.6 GB and wrote 10.5 GB,
//! an overestimate being the safer side for `--max-bytes`.

use std::fmt;

use super::campaign::INCLUDES_TODAY;
use super::range::Span;
use crate::config::{CampaignDates, Period};
use crate::target::Target;

/// Series a breakdown dimension multiplies a Page metric by (Meta's channels and message
/// types are a handful each).
const PER_PAGE_BREAKDOWN: u64 = 2;
/// Series per dimension of a WhatsApp billing field, for each of its two metrics (the demo's
/// five dimensions made 29 and 42).
const PER_BILLING_DIMENSION: u64 = 7;
/// Templates guessed for an account whose config lists none (all approved ones are read).
const TEMPLATES_GUESSED: u64 = 5;
/// A sample line without its labels: name, value, timestamp, separators.
const LINE_BASE: u64 = 60;
/// One label in a sample line, `name="value",`.
const PER_LABEL: u64 = 20;

/// Samples and bytes a backfill is expected to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Samples.
    pub samples: u64,
    /// Bytes of OpenMetrics text.
    pub bytes: u64,
}

impl Estimate {
    /// The guess for `targets` over `span`.
    pub fn of(targets: &[Target], span: &Span) -> Estimate {
        let mut estimate = Estimate::default();
        for target in targets {
            let steps = span
                .instants(span.step_for(target.schedule().interval))
                .count() as u64;
            for (series, labels) in series(target) {
                let samples = series * steps;
                estimate.samples += samples;
                estimate.bytes += samples * (LINE_BASE + PER_LABEL * labels);
            }
        }
        estimate
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "about {} samples, {} ({} bytes)",
            self.samples,
            bytesize::ByteSize(self.bytes).display().iec(),
            self.bytes
        )
    }
}

/// A target's guessed series, as (how many, labels each).
fn series(target: &Target) -> Vec<(u64, u64)> {
    // Every target has an info series carrying its name.
    let mut series = vec![(1, 2)];
    match target {
        Target::Page(page) => {
            for metric in &page.metrics {
                if metric.period == Period::TotalOverRange {
                    continue;
                }
                let breakdowns = metric.breakdowns.len() as u32;
                series.push((
                    PER_PAGE_BREAKDOWN.saturating_pow(breakdowns),
                    2 + u64::from(breakdowns),
                ));
            }
        }
        Target::Campaign(campaign) | Target::AdAccount(campaign) => {
            if let CampaignDates::Preset(preset) = &campaign.dates {
                if INCLUDES_TODAY.contains(&preset.as_str()) {
                    return Vec::new();
                }
            }
            series.push((campaign.fields.len() as u64, 2));
        }
        Target::Waba(waba) => {
            // sent, delivered and the bucket's end.
            series.push((3, 2));
            for billing in [&waba.pricing, &waba.conversations].into_iter().flatten() {
                let dimensions = billing.dimensions.len() as u64;
                series.push((
                    2 * PER_BILLING_DIMENSION * dimensions.max(1),
                    3 + dimensions,
                ));
                series.push((1, 2));
            }
            if let Some(templates) = &waba.templates {
                let count = match templates.ids.len() as u64 {
                    0 => TEMPLATES_GUESSED,
                    listed => listed,
                };
                series.push((count * (1 + templates.metrics.len() as u64), 4));
                series.push((1, 2));
            }
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_guess_grows_with_the_steps_and_reads_as_a_size() {
        let yaml = "graph_api:\n  access_token: t\ncampaigns:\n  - id: \"1\"\n    date_preset: last_7d\n    fields: [a, b, c]\n  - id: \"2\"\n    date_preset: today\n    fields: [a]\n";
        let config = crate::config::from_yaml(
            yaml,
            "test config",
            &|_: &str| None,
            std::path::Path::new("."),
        )
        .expect("config");
        let targets = Target::all(&config);
        let day = |step: u64| {
            Span::new(0, 86_400, Some(Duration::from_secs(step)), 86_400, &[]).expect("span")
        };
        let hourly = Estimate::of(&targets, &day(3600));
        // Three fields and the name, 24 steps; `today` cannot be replayed and adds nothing.
        assert_eq!(hourly.samples, 4 * 24);
        assert_eq!(hourly.bytes, 4 * 24 * (LINE_BASE + 2 * PER_LABEL));
        let minutely = Estimate::of(&targets, &day(60));
        assert_eq!(minutely.samples, 60 * hourly.samples);
        assert_eq!(
            minutely.to_string(),
            "about 5760 samples, 562.5 KiB (576000 bytes)"
        );
    }
}
