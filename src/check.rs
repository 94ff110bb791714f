//! `--config.check`: a readable account of what a config would poll, and whether the API
//! versions it pins still work ([`version_notices`], which start-up and reloads log too).

use std::fmt::Write as _;

use crate::catalog::versions::{self, Api, Standing};
use crate::config::{CampaignDates, Config, Credentials, Pattern};
use crate::shard::Shard;
use crate::target::Target;

/// Describes every target, its schedule and its requests, then the warnings.
pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Graph API: {}/{} (campaigns and ad accounts: {}; appsecret_proof {}), at most {} requests in flight, {} retries",
        config.graph_api.base_url,
        config.graph_api.version,
        config.graph_api.marketing_version,
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
            Target::Campaign(campaign) | Target::AdAccount(campaign) => {
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
                        "    - phone_numbers: quality rating, messaging limit, throughput and health_status"
                    );
                }
            }
        }
    }
    describe_discovery(config, &mut out);
    describe_token_health(config, &mut out);
    if !config.warnings.is_empty() {
        let _ = writeln!(out, "{} warning(s):", config.warnings.len());
        for warning in &config.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
    out
}

/// What Meta's version schedule says about the configured versions on one day.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VersionNotices {
    /// Reads that Meta upgrades or rejects already: `--config.check` fails on these.
    pub errors: Vec<String>,
    /// Versions past their end where Meta still answers, or near their end.
    pub warnings: Vec<String>,
}

/// The configured versions against Meta's schedule (`catalog::versions`) at `now_unix`,
/// for the Graph API and the Marketing API separately, each notice naming the key to change.
///
/// An expired Marketing API version is an error because Meta then rejects some campaign
/// reads with 2635 and upgrades others silently; an expired Graph version is only a warning,
/// as Meta serves it with the next version without failing. Without campaign or ad-account
/// targets nothing reads the Marketing API, so its version is not judged.
pub fn version_notices(config: &Config, now_unix: i64) -> VersionNotices {
    let today = crate::calendar::pacific_date(now_unix);
    let api = &config.graph_api;
    let mut notices = VersionNotices::default();
    if let Some(notice) = versions::notice(Api::Graph, "graph_api.version", &api.version, today) {
        notices.warnings.push(notice);
    }
    let reads_marketing = Target::all(config)
        .iter()
        .any(|target| matches!(target, Target::Campaign(_) | Target::AdAccount(_)));
    if !reads_marketing {
        return notices;
    }
    // Unset, the Marketing version is `graph_api.version`; naming both says what to change.
    let key = if api.marketing_version == api.version {
        "graph_api.marketing_version (unset, so graph_api.version)"
    } else {
        "graph_api.marketing_version"
    };
    let marketing = &api.marketing_version;
    if let Some(notice) = versions::notice(Api::Marketing, key, marketing, today) {
        match versions::standing(Api::Marketing, marketing, today) {
            Standing::Expired { .. } => notices.errors.push(notice),
            _ => notices.warnings.push(notice),
        }
    }
    notices
}

/// The `--config.check` lines of `notices`: nothing when every version is current.
pub fn describe_versions(notices: &VersionNotices) -> String {
    let mut out = String::new();
    if !notices.errors.is_empty() {
        let _ = writeln!(out, "{} API version error(s):", notices.errors.len());
        for error in &notices.errors {
            let _ = writeln!(out, "  - {error}");
        }
    }
    if !notices.warnings.is_empty() {
        let _ = writeln!(out, "{} API version warning(s):", notices.warnings.len());
        for warning in &notices.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
    out
}

/// Logs [`version_notices`] at start-up and after a reload: the exporter keeps running on an
/// expired Marketing API version (Page and WhatsApp reads still work), so that one is logged
/// at error level to be seen.
pub fn log_version_notices(config: &Config, now_unix: i64) {
    let notices = version_notices(config, now_unix);
    for error in &notices.errors {
        tracing::error!(problem = %error, "API version expired: campaign and ad-account reads are upgraded or rejected by Meta");
    }
    for warning in &notices.warnings {
        tracing::warn!(warning = %warning, "API version");
    }
}

/// What discovery would read, without calling Meta: the sources, filters and defaults.
fn describe_discovery(config: &Config, out: &mut String) {
    let Some(discovery) = &config.discovery else {
        let _ = writeln!(out, "Discovery: off (no `discovery` section)");
        return;
    };
    let _ = writeln!(
        out,
        "Discovery every {} with the graph_api token ({}); not called by --config.check:",
        humantime::format_duration(discovery.interval),
        token_source(&discovery.credentials),
    );
    let patterns = |name: &str, list: &[Pattern]| {
        if list.is_empty() {
            String::new()
        } else {
            let shown: Vec<String> = list.iter().map(|p| format!("{:?}", p.0.as_str())).collect();
            format!(", {name} {}", shown.join(" "))
        }
    };
    if let Some(pages) = &discovery.pages {
        let _ = writeln!(
            out,
            "  - Pages from GET /me/accounts, each polled with its own Page token{}{}; every {}, {} metric(s) each",
            patterns("include", &pages.filter.include),
            patterns("exclude", &pages.filter.exclude),
            humantime::format_duration(pages.defaults.schedule.interval),
            pages.defaults.metrics.len(),
        );
    }
    if let Some(wabas) = &discovery.whatsapp_business_accounts {
        let _ = writeln!(
            out,
            "  - WhatsApp Business Accounts owned by and shared with business(es) {}{}{}; every {}, granularity {}",
            wabas.business_ids.join(", "),
            patterns("include", &wabas.filter.include),
            patterns("exclude", &wabas.filter.exclude),
            humantime::format_duration(wabas.defaults.schedule.interval),
            wabas.defaults.granularity.as_str(),
        );
    }
    let _ = writeln!(
        out,
        "  A listed target with the same id wins; a found one is removed after missing from {} successful runs in a row.",
        crate::discovery::inventory::MISSES_BEFORE_REMOVAL
    );
}

fn describe_token_health(config: &Config, out: &mut String) {
    let api = &config.graph_api;
    let _ = match (&api.app_id, &api.app_secret) {
        (Some(app_id), Some(_)) => writeln!(
            out,
            "Token health: every token in use checked with debug_token (app {app_id}) every {}",
            humantime::format_duration(api.token_check_interval)
        ),
        _ => writeln!(
            out,
            "Token health: off (set graph_api.app_id and graph_api.app_secret to turn it on)"
        ),
    };
}

/// Which of the listed targets `shard` polls; nothing when one instance polls them all.
/// Discovered targets are shared out the same way once found.
pub fn describe_shard(config: &Config, shard: Shard) -> String {
    if shard.total() == 1 {
        return String::new();
    }
    let targets = Target::all(config);
    let mine: Vec<String> = targets
        .iter()
        .map(Target::key)
        .filter(|key| shard.owns(key))
        .map(|key| key.to_string())
        .collect();
    let mut out = format!(
        "{shard}: polls {} of the {} listed targets (and its share of those discovery finds)",
        mine.len(),
        targets.len()
    );
    if !mine.is_empty() {
        out.push_str(&format!(": {}", mine.join(", ")));
    }
    out.push('\n');
    out
}

fn token_source(credentials: &Credentials) -> String {
    match &credentials.file {
        Some(path) => format!("from file {}", path.display()),
        None => "set".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock as _;
    use crate::config::from_yaml;
    use std::path::Path;

    fn describe_yaml(yaml: &str) -> String {
        let config = from_yaml(yaml, "test", &|_: &str| None, Path::new(".")).expect("valid");
        describe(&config)
    }

    /// 2026-12-04 at noon UTC (04:00 in Meta's Pacific time, the same day), the day
    /// graph-api.md 7.1 was written.
    fn on_the_day_of_the_table() -> i64 {
        crate::clock::FixedClock::new(1_796_385_600).now_unix()
    }

    fn notices(graph_api: &str, targets: &str) -> VersionNotices {
        let yaml = format!("graph_api:\n  access_token: t\n{graph_api}{targets}");
        let config = from_yaml(&yaml, "test", &|_: &str| None, Path::new(".")).expect("valid");
        version_notices(&config, on_the_day_of_the_table())
    }

    const CAMPAIGN: &str = "campaigns:\n  - id: \"1\"\n";
    const PAGE: &str = "pages:\n  - id: \"1\"\n";

    #[test]
    fn v23_with_a_campaign_is_an_error_naming_both_keys_as_the_marketing_version_is_unset() {
        let found = notices("  version: v23.0\n", CAMPAIGN);
        assert_eq!(found.errors.len(), 1, "{found:?}");
        assert!(
            found.errors[0].starts_with(
                "graph_api.marketing_version (unset, so graph_api.version): v23.0 expired in the Marketing API on 2026-06-09"
            ),
            "{found:?}"
        );
        assert_eq!(
            found.warnings,
            Vec::<String>::new(),
            "Graph keeps v23.0 until 2027-10-08"
        );
    }

    #[test]
    fn an_expired_marketing_version_set_on_its_own_is_an_error_naming_its_key() {
        let found = notices("  version: v27.0\n  marketing_version: v24.0\n", CAMPAIGN);
        assert_eq!(found.errors.len(), 1, "{found:?}");
        assert!(
            found.errors[0].starts_with(
                "graph_api.marketing_version: v24.0 expired in the Marketing API on 2026-11-10"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn v25_is_a_warning_as_its_marketing_end_is_within_ninety_days() {
        let found = notices("  version: v25.0\n", CAMPAIGN);
        assert_eq!(found.errors, Vec::<String>::new());
        assert_eq!(
            found.warnings,
            ["graph_api.marketing_version (unset, so graph_api.version): v25.0 stops working in the Marketing API on 2027-02-23 (81 days from now); move to a newer version before then"]
        );
    }

    #[test]
    fn a_graph_version_near_its_end_is_a_warning_naming_graph_api_version() {
        let found = notices("  version: v21.0\n", PAGE);
        assert_eq!(found.errors, Vec::<String>::new());
        assert_eq!(found.warnings.len(), 1, "{found:?}");
        assert!(
            found.warnings[0].starts_with(
                "graph_api.version: v21.0 stops working in the Graph API on 2027-01-21"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn without_campaigns_or_ad_accounts_the_marketing_version_is_not_judged() {
        assert_eq!(
            notices("  version: v23.0\n", PAGE),
            VersionNotices::default()
        );
    }

    #[test]
    fn the_default_versions_give_no_notice() {
        assert_eq!(notices("", CAMPAIGN), VersionNotices::default());
        assert_eq!(describe_versions(&VersionNotices::default()), "");
    }

    #[test]
    fn a_shard_lists_the_listed_targets_it_polls() {
        let yaml = "graph_api:\n  access_token: t\npages:\n  - id: \"1\"\n  - id: \"2\"\n  - id: \"3\"\n  - id: \"4\"\n";
        let config = from_yaml(yaml, "test", &|_: &str| None, Path::new(".")).expect("valid");
        assert_eq!(describe_shard(&config, Shard::default()), "");
        let lines: Vec<String> = (0..2)
            .map(|index| describe_shard(&config, Shard::new(index, 2).expect("shard")))
            .collect();
        assert!(lines[0].starts_with("shard 0 of 2: polls "), "{lines:?}");
        let counted: usize = lines.iter().map(|line| line.matches("page ").count()).sum();
        assert_eq!(
            counted, 4,
            "each listed Page is in one shard's list: {lines:?}"
        );
    }

    #[test]
    fn discovery_and_token_health_say_what_they_would_read_without_calling_meta() {
        let text = describe_yaml(
            "graph_api:\n  access_token: t\n  app_id: 42\n  app_secret: s\ndiscovery:\n  pages:\n    include: [\"^Acme\"]\n  whatsapp_business_accounts:\n    business_ids: [\"7\"]\nad_accounts:\n  - id: \"9\"\n",
        );
        assert!(text.contains("Discovery every 1h"), "{text}");
        assert!(text.contains("Pages from GET /me/accounts, each polled with its own Page token, include \"^Acme\""), "{text}");
        assert!(
            text.contains("owned by and shared with business(es) 7"),
            "{text}"
        );
        assert!(text.contains("ad_account act_9: every 1h"), "{text}");
        assert!(
            text.contains("checked with debug_token (app 42) every 1h"),
            "{text}"
        );
        let plain = describe_yaml("graph_api:\n  access_token: t\npages:\n  - id: \"1\"\n");
        assert!(plain.contains("Discovery: off"), "{plain}");
        assert!(
            plain.contains("Token health: off (set graph_api.app_id and graph_api.app_secret"),
            "{plain}"
        );
    }
}
