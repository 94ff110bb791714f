//! `--config.check`: a readable account of what a config would poll.

use std::fmt::Write as _;

use crate::config::{CampaignDates, Config, Credentials};
use crate::target::Target;

/// Describes every target, its schedule and its requests, then the warnings.
pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Graph API: {}/{} (appsecret_proof {}), at most {} requests in flight, {} retries",
        config.graph_api.base_url,
        config.graph_api.version,
        if config.graph_api.app_secret.is_some() {
            "on"
        } else {
            "off"
        },
        config.polling.max_concurrent_requests,
        config.polling.max_retries,
    );
    let _ = writeln!(
        out,
        "First polls within {} of a start or reload; rejected metrics asked for again after {}",
        humantime::format_duration(config.polling.startup_spread),
        humantime::format_duration(config.polling.retry_dropped_after),
    );
    let targets = Target::all(config);
    let _ = writeln!(out, "{} target(s):", targets.len());
    for target in &targets {
        let schedule = target.schedule();
        let _ = write!(
            out,
            "  {}: every {}, stale after {}, token {}",
            target.key(),
            humantime::format_duration(schedule.interval),
            humantime::format_duration(schedule.stale_after),
            token_source(target.credentials()),
        );
        match target {
            Target::Page(page) => {
                let _ = writeln!(out, ", {} metric(s):", page.metrics.len());
                for metric in &page.metrics {
                    let window = metric
                        .window
                        .map(|w| format!(", window {}", humantime::format_duration(w)))
                        .unwrap_or_default();
                    let breakdowns = if metric.breakdowns.is_empty() {
                        String::new()
                    } else {
                        format!(", breakdown {}", metric.breakdowns.join(","))
                    };
                    let _ = writeln!(
                        out,
                        "    - {} (period {}{window}{breakdowns})",
                        metric.name,
                        metric.period.as_str()
                    );
                }
            }
            Target::Campaign(campaign) => {
                let dates = match &campaign.dates {
                    CampaignDates::Preset(preset) => format!("date_preset {preset}"),
                    CampaignDates::Range { since, until } => format!("time_range {since}..{until}"),
                };
                let _ = writeln!(out, ", {dates}, fields: {}", campaign.fields.join(", "));
            }
            Target::Waba(waba) => {
                let filters = |name: &str, list: &[String]| {
                    if list.is_empty() {
                        String::new()
                    } else {
                        format!(", {name} {}", list.join(","))
                    }
                };
                let _ = writeln!(
                    out,
                    ", granularity {}{}{}",
                    waba.granularity.as_str(),
                    filters("phone_numbers", &waba.phone_numbers),
                    filters("country_codes", &waba.country_codes),
                );
                for billing in [&waba.pricing, &waba.conversations].into_iter().flatten() {
                    let mut line = format!(
                        "    - {} {} by {}",
                        billing.field.field_name(),
                        billing.granularity.as_str(),
                        billing.dimensions.join(",")
                    );
                    for (filter, values) in &billing.filters {
                        line.push_str(&filters(filter, values));
                    }
                    let _ = writeln!(out, "{line}");
                }
                if let Some(templates) = &waba.templates {
                    let which = if templates.ids.is_empty() {
                        "every APPROVED template".to_owned()
                    } else {
                        format!("templates {}", templates.ids.join(","))
                    };
                    let _ = writeln!(
                        out,
                        "    - template_analytics of {which}: {}",
                        templates.metrics.join(",")
                    );
                }
                if waba.phone_numbers_health {
                    let _ = writeln!(
                        out,
                        "    - phone_numbers: quality rating and messaging limit"
                    );
                }
            }
        }
    }
    if !config.warnings.is_empty() {
        let _ = writeln!(out, "{} warning(s):", config.warnings.len());
        for warning in &config.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
    out
}

fn token_source(credentials: &Credentials) -> String {
    match &credentials.file {
        Some(path) => format!("from file {}", path.display()),
        None => "set".to_owned(),
    }
}
