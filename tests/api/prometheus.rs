//! deploy/ against a real Prometheus: the exporter (in process, polling the fake Graph API
//! every second) scraped every second by the `prometheus` binary with the alert rules of
//! deploy/prometheus/alerts.yml loaded. Through Prometheus' HTTP API the test checks that the
//! series arrive with the exporter's labels and values, that every PromQL expression in the
//! Grafana dashboard and in the alert rules runs (and returns data where the fake serves its
//! metrics), and that the rules evaluate cleanly; it also runs promtool on a live scrape and
//! on the rule files.
//!
//! It needs Debian's `prometheus` package (`prometheus` and `promtool` on PATH). Without it the
//! test is skipped with a message, unless REQUIRE_PROMETHEUS=1 (as in CI) makes that a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use meta_messaging_exporter::simulator::{
    health_blocked, health_limited, phone_health_limited, FakeGraphApi, Fault, TemplateAnalytics,
    TokenInfo, ALL_SCOPES,
};
use serde_json::{json, Value};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

/// Set to 1 to make a missing `prometheus` binary a failure instead of a skip.
const REQUIRE_ENV: &str = "REQUIRE_PROMETHEUS";
/// Upper bound of every wait: Prometheus' start, the first scrapes, the first rule evaluations.
const WAIT: Duration = Duration::from_secs(60);
/// The job name the alert rules expect (MetaMessagingExporterDown and ...Absent select it).
const JOB: &str = "meta-messaging-exporter";
/// What Grafana's `$__rate_interval` becomes here: 60 one-second scrapes.
const RATE_INTERVAL: &str = "1m";

/// Expressions allowed to return no data in this test, each with the reason. Every other
/// expression of the dashboard and the alert rules must return at least one series. An entry
/// that no longer names an expression fails the test, so the list cannot go stale.
/// The simulated app whose token checks every token in use.
const APP_ID: &str = "1234567890";
const APP_SECRET: &str = "prometheus-test-app-secret";
/// The Page token `/me/accounts` lists for the discovered Page.
const DISCOVERED_PAGE_TOKEN: &str = "EAAPage-discovered-token";

const MAY_BE_EMPTY: &[(&str, &str)] = &[
    // Legitimately quiet against a healthy exporter and fake.
    (
        "panel \"Throttling and backoff\" A",
        "the fake throttles no request unless a test asks it to",
    ),
    (
        "alert MetaMessagingRateLimitUsageHigh",
        "the fake reports usage far below the threshold",
    ),
    (
        "alert MetaMessagingThrottled",
        "the fake throttles no request unless a test asks it to",
    ),
    (
        "alert MetaMessagingConfigReloadFailed",
        "the config loaded and no reload failed",
    ),
    (
        "alert WhatsAppDailyCostHigh",
        "the simulated accounts spend a few dollars a day, below the example threshold of 100",
    ),
    (
        "alert WhatsAppPhoneNumberQualityYellow",
        "the simulated numbers are GREEN on most days, and the test sets one RED",
    ),
    (
        "alert MetaMessagingDiscoveryFailing",
        "discovery succeeds against the fake",
    ),
    // Alerts that must not fire against a healthy exporter and fake.
    ("alert MetaMessagingExporterDown", "the exporter is up"),
    (
        "alert MetaMessagingExporterAbsent",
        "the exporter is being scraped",
    ),
    (
        "alert MetaMessagingTargetFailing",
        "it may have no series yet: CAMPAIGN_OLD (2635) fails, but only for 3 intervals after its first poll; PAGE_REVOKED is disabled, which this alert leaves to TokenInvalid",
    ),
    (
        "alert MetaMessagingDataOlderThanExpected",
        "every target polls each second; it may match for a moment when a poll is late",
    ),
    (
        "alert MetaMessagingTargetDisabled",
        "the only disabled target has an invalid token, which is TokenInvalid's",
    ),
    (
        "alert MetaMessagingApiErrorRatioHigh",
        "only a handful of the requests fail",
    ),
    (
        "alert MetaPageBlockedConversationsSpike",
        "the simulated Pages have no spike",
    ),
    (
        "alert MetaPageReportedConversationsSpike",
        "the simulated Pages have no spike",
    ),
    (
        "alert MetaWhatsAppDeliveryRatioDrop",
        "the simulated accounts' delivery ratio is steady",
    ),
];

/// Alerts that must be firing, with a label that identifies the series that fires them.
const MUST_FIRE: &[(&str, &str, &str)] = &[
    ("MetaMessagingTokenInvalid", "target_id", "PAGE_REVOKED"),
    // PAGE_REVOKED's token, which Meta cannot parse and so gives no type.
    ("MetaTokenReportedInvalid", "type", "unknown"),
    (
        "MetaMessagingMetricRejected",
        "item",
        "page_messages_order_count",
    ),
    ("MetaApiVersionRejected", "target_id", "CAMPAIGN_OLD"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_exporter_and_runs_every_dashboard_and_alert_expression() {
    let Some(prometheus) = prometheus_or_skip(
        "prometheus_scrapes_the_exporter_and_runs_every_dashboard_and_alert_expression",
    ) else {
        return;
    };
    let promtool = find_on_path("promtool").expect("promtool is on PATH beside prometheus");
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");

    // The slowest check needs no exporter: start it now so it overlaps the waits below.
    let rule_tests = {
        let promtool = promtool.clone();
        let deploy = deploy.clone();
        std::thread::spawn(move || promtool_rule_checks(&promtool, &deploy))
    };

    let fake = FakeGraphApi::start().await.expect("fake Graph API");
    // Freeze the fake's clock so that every poll returns the same numbers and the exporter's
    // /metrics and Prometheus can be compared whatever poll each saw last.
    fake.set_now(Some(unix_now()));
    fake.simulate_page("PAGE1", TOKEN);
    fake.simulate_page("PAGE2", TOKEN);
    fake.retire_metric_named("PAGE2", "page_messages_order_count");
    fake.simulate_page("PAGE_REVOKED", "a-token-the-exporter-does-not-have");
    fake.fixed_response(
        "PAGE_FIXED",
        TOKEN,
        json!({"data": [
            {"name": "page_messages_new_conversations_unique", "period": "day", "values": [{"value": 42, "end_time": "1704268800"}]},
            {"name": "page_messages_blocked_conversations_unique", "period": "day", "values": [{"value": "7", "end_time": "1704268800"}]},
            {"name": "page_messages_reported_conversations_unique", "period": "day", "values": [{"value": 3, "end_time": "1704268800"}]},
            {"name": "page_messages_paid_order_earnings", "period": "day", "values": [{"value": "NaN", "end_time": "1704268800"}]}
        ]}),
    );
    // One transient failure, retried within the poll: gives the retry counter a series.
    fake.fail_next("PAGE1", 1, Fault::transient());
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.simulate_campaign("CAMPAIGN2", TOKEN);
    // The Marketing API is pinned to v24.0, expired on the fake's clock: Meta upgrades the
    // campaign and ad-account reads (version info, warnings, the ending-soon and upgraded
    // rules get series) and rejects CAMPAIGN_OLD's with 2635 (MetaApiVersionRejected).
    fake.simulate_campaign("CAMPAIGN_OLD", TOKEN);
    fake.reject_expired_marketing_version("CAMPAIGN_OLD");
    fake.simulate_waba("WABA1", TOKEN);
    fake.simulate_waba("WABA2", TOKEN);
    // The second account is in the states the "feature unavailable" panel and alert are for.
    fake.set_partner_billed("WABA2", true);
    fake.set_template_analytics("WABA2", TemplateAnalytics::NotEnabled);
    // Service messages charged from 2026-10-01 (the fake's now is later): the first account's
    // SERVICE points carry a cost, which the dashboard's service panel shows.
    fake.set_service_billed("WABA1", true);
    // A number rated RED, so WhatsAppPhoneNumberQualityRed's expression has something to match.
    fake.set_phone_quality("WABA1", Some("RED"));
    // WABA2 is BLOCKED and the discovered account LIMITED (health_status), so both health
    // rules have series to match.
    fake.fixed_field("WABA2", "health_status", health_blocked("WABA2"));
    fake.fixed_field(
        "WABA_DISCOVERED",
        "health_status",
        health_limited("WABA_DISCOVERED"),
    );
    // A number LIMITED on its own (Meta's example), from WABA1's phone-number list; WABA2's
    // list does not carry the field, so its numbers are read on their own nodes.
    fake.set_phone_health("WABA1", Some(phone_health_limited()));
    fake.refuse_list_health("WABA2");
    // Discovery finds a Page (with its own Page token) and a business's account; an ad
    // account is listed. Token health checks every token: the discovered Page's token expires
    // in three days, loses data access in five and lacks read_insights, and PAGE_REVOKED's own
    // token is one Meta does not know, so each token alert has a series to fire on.
    fake.simulate_page("PAGE_DISCOVERED", DISCOVERED_PAGE_TOKEN);
    fake.set_name("PAGE_DISCOVERED", "Discovered Page");
    fake.grant_pages(TOKEN, &["PAGE_DISCOVERED"]);
    fake.simulate_waba("WABA_DISCOVERED", TOKEN);
    fake.simulate_business("900", TOKEN, &["WABA_DISCOVERED"], &[]);
    fake.simulate_ad_account("act_1", TOKEN);
    fake.set_app(APP_ID, APP_SECRET);
    let now = unix_now();
    fake.set_token_info(
        DISCOVERED_PAGE_TOKEN,
        TokenInfo {
            expires_at: now + 3 * 86_400,
            scopes: ALL_SCOPES
                .iter()
                .filter(|scope| **scope != "read_insights")
                .map(|scope| (*scope).to_owned())
                .collect(),
            ..TokenInfo::valid("PAGE", now + 5 * 86_400)
        },
    );
    let preamble = preamble(&fake).replace(
        "  request_timeout: 2s\n",
        &format!("  request_timeout: 2s\n  marketing_version: v24.0\n  app_id: \"{APP_ID}\"\n  app_secret: {APP_SECRET}\n"),
    );
    let yaml = format!(
        "{}pages:
  - id: PAGE1
    interval: 1s
  - id: PAGE2
    interval: 1s
    metrics:
      - page_messages_new_conversations_unique
      - page_messages_blocked_conversations_unique
      - page_messages_order_count
      - name: page_messages_sent
        breakdowns: [messaging_channel]
      - name: page_messages_read_ratio
        breakdowns: [messaging_channel]
      - name: page_messages_engagement
        breakdowns: [messaging_channel, message_type]
      - name: recurring_notifications_tokens
        period: total_over_range
        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]
  - id: PAGE_FIXED
    interval: 1s
    metrics:
      - page_messages_new_conversations_unique
      - page_messages_blocked_conversations_unique
      - page_messages_reported_conversations_unique
      - page_messages_paid_order_earnings
  - id: PAGE_REVOKED
    interval: 1s
    access_token: a-token-meta-does-not-know
campaigns:
  - id: CAMPAIGN1
    interval: 1s
  - id: CAMPAIGN2
    interval: 1s
    date_preset: last_7d
  - id: CAMPAIGN_OLD
    interval: 1s
whatsapp_business_accounts:
  - id: WABA1
    interval: 1s
    conversations: {{}}
    templates: {{}}
  - id: WABA2
    interval: 1s
    phone_numbers: [\"15550000001\", \"15550000002\"]
    templates: {{}}
ad_accounts:
  - id: act_1
    interval: 1s
discovery:
  pages:
    defaults: {{interval: 1s}}
  whatsapp_business_accounts:
    business_ids: [\"900\"]
    defaults: {{interval: 1s, templates: {{}}}}
",
        preamble
    );
    let exporter = TestExporter::start(&yaml).await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let server = PrometheusServer::start(&prometheus, dir.path(), &[exporter.address], &deploy);
    let api = PrometheusApi::new(server.url.clone());
    api.wait_until("Prometheus is ready", &server, || async {
        api.get_text("/-/ready").await.is_some()
    })
    .await;

    // Data: the fixed Page's known values, then two scrapes' worth of samples for rate().
    api.wait_until("the fixed Page's 42 new conversations", &server, || async {
        api.query_values("meta_page_messages_new_conversations_unique{page_id=\"PAGE_FIXED\"}")
            .await
            == vec![42.0]
    })
    .await;
    api.wait_until(
        "every kind of target to be up and rate() to have samples",
        &server,
        || async {
            let up = api
                .query_values(&format!(
                    "meta_messaging_exporter_target_up{{job=\"{JOB}\"}} == 1"
                ))
                .await;
            let rates = api
                .query_values("rate(meta_messaging_exporter_api_requests_total[1m])")
                .await;
            // Every target but PAGE_REVOKED: 3 listed Pages, 2 campaigns, 2 listed accounts,
            // the ad account, and the discovered Page and account.
            up.len() == 10 && !rates.is_empty()
        },
    )
    .await;

    let mut failures = Vec::new();
    check_target(&api, exporter.address, &mut failures).await;
    check_fixed_values(&api, exporter.address, &mut failures).await;
    check_values_match_the_exporter(&api, &exporter, &server, &mut failures).await;
    check_live_scrape_with_promtool(&promtool, &exporter, &mut failures).await;
    check_expressions(&api, &deploy, &mut failures).await;
    check_rules_evaluate(&api, &server, &deploy, &mut failures).await;
    // Joined off the runtime's workers, which keep serving the exporter meanwhile.
    let joined = tokio::task::spawn_blocking(move || rule_tests.join())
        .await
        .expect("join the promtool thread");
    match joined {
        Ok(problems) => failures.extend(problems),
        Err(_) => failures.push("the promtool thread panicked".to_owned()),
    }

    drop(server);
    exporter.stop().await;
    assert!(
        failures.is_empty(),
        "{} problem(s) with deploy/ against a real Prometheus:\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// The scrape target is the exporter, healthy, under the job name the alerts expect.
async fn check_target(
    api: &PrometheusApi,
    exporter: std::net::SocketAddr,
    failures: &mut Vec<String>,
) {
    let targets = api.get_json("/api/v1/targets?state=active").await;
    let active = targets["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if active.len() != 1 {
        failures.push(format!("expected 1 active target, got {targets}"));
        return;
    }
    let target = &active[0];
    let expected = [
        ("health", "up"),
        ("scrapeUrl", &format!("http://{exporter}/metrics")),
        ("lastError", ""),
    ];
    for (key, value) in expected {
        if target[key] != value {
            failures.push(format!(
                "target {key} is {}, expected {value:?}",
                target[key]
            ));
        }
    }
    if target["labels"]["job"] != JOB {
        failures.push(format!(
            "target job is {}, expected {JOB}",
            target["labels"]["job"]
        ));
    }
}

/// Values the fake answers verbatim arrive unchanged, with exactly the exporter's labels.
async fn check_fixed_values(
    api: &PrometheusApi,
    exporter: std::net::SocketAddr,
    failures: &mut Vec<String>,
) {
    for (metric, expected) in [
        ("meta_page_messages_new_conversations_unique", 42.0),
        ("meta_page_messages_blocked_conversations_unique", 7.0),
        ("meta_page_messages_reported_conversations_unique", 3.0),
    ] {
        let result = api
            .query(&format!("{metric}{{page_id=\"PAGE_FIXED\"}}"))
            .await;
        let series = result.as_array().cloned().unwrap_or_default();
        let [only] = series.as_slice() else {
            failures.push(format!(
                "{metric}{{page_id=\"PAGE_FIXED\"}}: expected one series, got {result}"
            ));
            continue;
        };
        let labels: BTreeMap<String, String> =
            serde_json::from_value(only["metric"].clone()).unwrap_or_default();
        let instance = exporter.to_string();
        let expected_labels: BTreeMap<String, String> = [
            ("__name__", metric),
            ("instance", &instance),
            ("job", JOB),
            ("page_id", "PAGE_FIXED"),
            ("period", "day"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if labels != expected_labels {
            failures.push(format!(
                "{metric}: labels {labels:?}, expected {expected_labels:?}"
            ));
        }
        if sample_value(only) != Some(expected) {
            failures.push(format!(
                "{metric}: value {}, expected {expected}",
                only["value"]
            ));
        }
    }
    // "NaN" is not a number Meta meant: skipped and counted, never exported.
    let earnings = api
        .query_values("meta_page_messages_paid_order_earnings{page_id=\"PAGE_FIXED\"}")
        .await;
    if !earnings.is_empty() {
        failures.push(format!(
            "an unreadable earnings value was exported: {earnings:?}"
        ));
    }
}

/// Every series of a few families, as the exporter serves it, is in Prometheus with the same
/// labels (plus job and instance) and value. The fake's frozen clock keeps the values still, so
/// the two agree once Prometheus has scraped the exporter's latest poll.
async fn check_values_match_the_exporter(
    api: &PrometheusApi,
    exporter: &TestExporter,
    server: &PrometheusServer,
    failures: &mut Vec<String>,
) {
    const FAMILIES: &[&str] = &[
        "meta_page_messages_sent",
        "meta_page_messages_read_ratio",
        "meta_recurring_notifications_tokens",
        "meta_marketing_messages_delivered",
        "meta_marketing_messages_spend",
        "meta_marketing_messages_read_rate",
        "meta_whatsapp_analytics_sent",
        "meta_whatsapp_analytics_delivered",
        "meta_messaging_exporter_target_interval_seconds",
        "meta_messaging_exporter_target_disabled",
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let scrape = exporter.scrape().await;
        let mut mismatches = Vec::new();
        let mut compared = 0;
        for family in FAMILIES {
            let series = scrape.series(family, &[]);
            if series.is_empty() {
                mismatches.push(format!("the exporter serves no {family}"));
            }
            for (labels, value) in series {
                compared += 1;
                let selector = selector(family, &labels);
                let got = api.query_values(&selector).await;
                if got != vec![value] {
                    mismatches.push(format!("{selector}: exporter {value}, Prometheus {got:?}"));
                }
            }
        }
        if mismatches.is_empty() {
            assert!(compared > 30, "only {compared} series compared");
            return;
        }
        if tokio::time::Instant::now() > deadline {
            failures.extend(mismatches);
            failures.push(format!(
                "(after {WAIT:?}; Prometheus log: {})",
                server.log_tail()
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `promtool check metrics` reports nothing about a live scrape.
async fn check_live_scrape_with_promtool(
    promtool: &Path,
    exporter: &TestExporter,
    failures: &mut Vec<String>,
) {
    let scrape: Scrape = exporter.scrape().await;
    let promtool = promtool.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool check metrics");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(scrape.text.as_bytes())
            .expect("write the scrape to promtool");
        child.wait_with_output().expect("promtool check metrics")
    })
    .await
    .expect("promtool task");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // promtool exits 3 for lint findings and 1 for a scrape it cannot parse; it must report
    // nothing at all (names that Prometheus reserves are renamed by the exporter).
    let findings: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    if !output.status.success() || !findings.is_empty() {
        failures.push(format!(
            "promtool check metrics on a live scrape ({}): {}",
            output.status,
            findings.join("\n")
        ));
    }
}

/// One PromQL expression from deploy/, named for messages and the allow-list.
struct Expression {
    name: String,
    expr: String,
}

/// Every query of the dashboard (panels and variables) and every rule expression runs, and
/// returns data unless allow-listed.
async fn check_expressions(api: &PrometheusApi, deploy: &Path, failures: &mut Vec<String>) {
    let mut expressions = dashboard_expressions(deploy);
    let dashboard_count = expressions.len();
    expressions.extend(rule_expressions(deploy));
    assert!(
        dashboard_count > 40 && expressions.len() > dashboard_count + 10,
        "found only {dashboard_count} dashboard and {} rule expressions",
        expressions.len() - dashboard_count
    );
    let allowed: BTreeMap<&str, &str> = MAY_BE_EMPTY.iter().copied().collect();
    let names: BTreeSet<&str> = expressions.iter().map(|e| e.name.as_str()).collect();
    for name in allowed.keys() {
        if !names.contains(name) {
            failures.push(format!(
                "MAY_BE_EMPTY names {name}, which is no longer an expression in deploy/"
            ));
        }
    }
    for expression in &expressions {
        let response = api.query_raw(&expression.expr).await;
        if response["status"] != "success" {
            failures.push(format!(
                "{} does not run: {}\n    {}",
                expression.name, response["error"], expression.expr
            ));
            continue;
        }
        let empty = match &response["data"]["result"] {
            Value::Array(series) => series.is_empty(),
            // A scalar, e.g. a `vector(0)`-guarded count reduced to one number.
            other => other.is_null(),
        };
        if empty && !allowed.contains_key(expression.name.as_str()) {
            failures.push(format!(
                "{} returns no data (add it to MAY_BE_EMPTY only if that is legitimate)\n    {}",
                expression.name, expression.expr
            ));
        }
        // A panel the allow-list excuses but that shows data now: the entry no longer
        // applies and would hide the panel breaking later.
        if !empty
            && expression.name.starts_with("panel ")
            && allowed.contains_key(expression.name.as_str())
        {
            failures.push(format!(
                "{} is listed in MAY_BE_EMPTY but returns data: remove the entry\n    {}",
                expression.name, expression.expr
            ));
        }
    }
}

/// The dashboard's panel queries and variable queries, with template variables substituted
/// the way "All" expands them (`.*`) and `label_values(selector, label)` turned into the
/// equivalent PromQL.
fn dashboard_expressions(deploy: &Path) -> Vec<Expression> {
    let path = deploy.join("grafana/dashboards/meta-messaging-exporter.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            expressions.push(Expression {
                name: format!(
                    "panel {} {}",
                    panel["title"],
                    target["refId"].as_str().expect("refId")
                ),
                expr: substitute(target["expr"].as_str().expect("expr")),
            });
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        let Some(definition) = variable["definition"].as_str() else {
            continue;
        };
        // query_result(expr) runs expr as it is: the variables that show names take ids and
        // names from its labels with a regex.
        if let Some(expr) = definition
            .strip_prefix("query_result(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            expressions.push(Expression {
                name: format!("variable {}", variable["name"]),
                expr: substitute(expr),
            });
            continue;
        }
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| {
                panic!("variable query {definition} is not label_values(...) or query_result(...)")
            });
        let (selector, label) = inner
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("label_values needs a selector and a label: {definition}"));
        expressions.push(Expression {
            name: format!("variable {}", variable["name"]),
            expr: substitute(&format!("count by ({}) ({selector})", label.trim())),
        });
    }
    expressions
}

/// Grafana's variables as Prometheus sees them once Grafana has expanded them.
fn substitute(expr: &str) -> String {
    let mut out = expr
        .replace("${__rate_interval}", RATE_INTERVAL)
        .replace("$__rate_interval", RATE_INTERVAL);
    for name in [
        "datasource",
        "job",
        "page",
        "period",
        "campaign",
        "ad_account",
        "waba",
    ] {
        out = out
            .replace(&format!("${{{name}}}"), ".*")
            .replace(&format!("${name}"), ".*");
    }
    assert!(
        !out.contains('$'),
        "unknown template variable left in {expr}"
    );
    out
}

/// Every alerting and recording rule's expression.
fn rule_expressions(deploy: &Path) -> Vec<Expression> {
    let text =
        std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).expect("read alerts.yml");
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).expect("alerts.yml is YAML");
    let mut expressions = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .map(|alert| format!("alert {alert}"))
                .or_else(|| {
                    rule["record"]
                        .as_str()
                        .map(|record| format!("record {record}"))
                })
                .expect("a rule is an alert or a record");
            expressions.push(Expression {
                name,
                expr: rule["expr"].as_str().expect("expr").to_owned(),
            });
        }
    }
    expressions
}

/// Prometheus evaluates every rule without error, and the alerts this setup provokes fire.
async fn check_rules_evaluate(
    api: &PrometheusApi,
    server: &PrometheusServer,
    deploy: &Path,
    failures: &mut Vec<String>,
) {
    let expected = rule_expressions(deploy).len();
    let deadline = tokio::time::Instant::now() + WAIT;
    let rules = loop {
        let rules = all_rules(&api.get_json("/api/v1/rules").await);
        let evaluated = rules.len() == expected
            && rules.iter().all(|rule| {
                // Never evaluated yet: Go's zero time.
                !rule["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            });
        let firing = MUST_FIRE.iter().all(|(alert, label, value)| {
            rules.iter().any(|rule| {
                rule["name"] == *alert
                    && rule["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|a| a["state"] == "firing" && a["labels"][*label] == *value)
            })
        });
        if evaluated && firing {
            break rules;
        }
        if tokio::time::Instant::now() > deadline {
            failures.push(format!(
                "within {WAIT:?}, Prometheus did not evaluate all {expected} rules or not all of {MUST_FIRE:?} fired; rules: {}; Prometheus log: {}",
                Value::Array(rules),
                server.log_tail()
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for rule in &rules {
        if rule["health"] != "ok" || rule["lastError"].as_str().is_some_and(|e| !e.is_empty()) {
            failures.push(format!(
                "rule {} is unhealthy: {}",
                rule["name"], rule["lastError"]
            ));
        }
    }
}

fn all_rules(response: &Value) -> Vec<Value> {
    response["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// promtool's own checks of deploy/prometheus: the rules, their unit tests and the example
/// configuration. Returns the problems found.
fn promtool_rule_checks(promtool: &Path, deploy: &Path) -> Vec<String> {
    let prometheus = deploy.join("prometheus");
    let runs: [&[&str]; 4] = [
        &["check", "rules", "alerts.yml"],
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "alerts_test.yml"],
        &["test", "rules", "business_alerts_test.yml"],
    ];
    let mut problems = Vec::new();
    for args in runs {
        let output: Output = Command::new(promtool)
            .args(args)
            .current_dir(&prometheus)
            .output()
            .expect("run promtool");
        if !output.status.success() {
            problems.push(format!(
                "promtool {} failed:\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    problems
}

/// `name{label="value",...}` matching exactly one series; values are escaped for PromQL.
fn selector(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = format!("{name}{{job=\"{JOB}\"");
    for (key, value) in labels {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(out, ",{key}=\"{escaped}\"");
    }
    out.push('}');
    out
}

/// The values of an instant query's result, sorted.
fn sorted_values(result: &Value) -> Vec<f64> {
    let mut values: Vec<f64> = result
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(sample_value)
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

fn sample_value(series: &Value) -> Option<f64> {
    series["value"][1].as_str()?.parse().ok()
}

/// The `prometheus` binary, or `None` after saying loudly on stderr that `test` is skipped;
/// with `REQUIRE_PROMETHEUS=1` (CI) a missing binary fails the test instead.
pub(crate) fn prometheus_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_on_path("prometheus");
    if found.is_none() {
        let required = std::env::var(REQUIRE_ENV).is_ok_and(|value| value == "1");
        assert!(
            !required,
            "{REQUIRE_ENV}=1 but `prometheus` is not on PATH; install it (Debian: apt-get install prometheus)"
        );
        // Written to the process' stderr, not with eprintln!: the test harness captures the
        // print macros of passing tests, and a skip nobody sees is worse than none.
        let _ = writeln!(
            std::io::stderr(),
            "\n==================================================================\n\
             SKIPPED {test}:\n\
             `prometheus` is not on PATH, so deploy/ was NOT checked against a real Prometheus.\n\
             Install it (Debian: apt-get install prometheus, which brings promtool) and rerun;\n\
             CI sets {REQUIRE_ENV}=1, which turns this skip into a failure.\n\
             =================================================================="
        );
    }
    found
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

fn find_on_path(binary: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

/// A Prometheus server on a free loopback port, killed when dropped, even when the test fails.
pub(crate) struct PrometheusServer {
    child: Child,
    pub(crate) url: String,
    log: PathBuf,
}

impl PrometheusServer {
    fn start(
        binary: &Path,
        dir: &Path,
        exporters: &[std::net::SocketAddr],
        deploy: &Path,
    ) -> PrometheusServer {
        let rules = deploy.join("prometheus/alerts.yml");
        let targets: Vec<String> = exporters.iter().map(|a| format!("\"{a}\"")).collect();
        let config = format!(
            "rule_files:\n  - {rules}\nscrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [{targets}]\n",
            rules = rules.display(),
            targets = targets.join(", ")
        );
        Self::start_on(binary, dir, &dir.join("data"), &config)
    }

    /// Prometheus on the TSDB at `data` (which may hold backfilled blocks), with `config`
    /// (rules and scrape configs, or nothing) after one-second global intervals. Retention is
    /// a year, so no backfilled block is old enough to be deleted at start.
    pub(crate) fn start_on(
        binary: &Path,
        dir: &Path,
        data: &Path,
        config: &str,
    ) -> PrometheusServer {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(
            &config_path,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n{config}"
            ),
        )
        .expect("write prometheus.yml");
        // Bound and released at once: a small race with other processes, not with this test.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("create the Prometheus log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=1y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start prometheus");
        PrometheusServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// The end of Prometheus' log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus' HTTP API.
pub(crate) struct PrometheusApi {
    url: String,
    http: reqwest::Client,
}

impl PrometheusApi {
    pub(crate) fn new(url: String) -> PrometheusApi {
        PrometheusApi {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        }
    }

    /// The body of a 200 answer, or None.
    pub(crate) async fn get_text(&self, path: &str) -> Option<String> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    async fn get_json(&self, path: &str) -> Value {
        let text = self.get_text(path).await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The whole answer of an instant query, errors included.
    async fn query_raw(&self, expr: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .expect("query Prometheus");
        let text = response.text().await.expect("Prometheus' answer");
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"status": "error", "error": text}))
    }

    /// The sorted values of an instant query at the past instant `at` (unix seconds).
    pub(crate) async fn query_at(&self, expr: &str, at: i64) -> Vec<f64> {
        let answer = self
            .api_get(
                "/api/v1/query",
                &[("query", expr), ("time", &at.to_string())],
            )
            .await;
        sorted_values(&answer["data"]["result"])
    }

    /// How many values a range query of `expr` over `[start, end]` at `step` seconds returns,
    /// over all its series.
    pub(crate) async fn range_points(&self, expr: &str, start: i64, end: i64, step: i64) -> usize {
        let (start, end, step) = (start.to_string(), end.to_string(), step.to_string());
        let answer = self
            .api_get(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", &step),
                ],
            )
            .await;
        answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| series["values"].as_array().map_or(0, Vec::len))
            .sum()
    }

    /// A query API answer that must succeed.
    async fn api_get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .await
            .expect("query Prometheus");
        let text = response.text().await.expect("Prometheus' answer");
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| json!({"status": "error", "error": text}));
        assert_eq!(answer["status"], "success", "{path} {params:?}: {answer}");
        answer
    }

    /// The result of an instant query that must succeed.
    async fn query(&self, expr: &str) -> Value {
        let answer = self.query_raw(expr).await;
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        answer["data"]["result"].clone()
    }

    /// The values of an instant query's series, sorted.
    async fn query_values(&self, expr: &str) -> Vec<f64> {
        sorted_values(&self.query(expr).await)
    }

    /// Polls `ready` every 250ms until it holds; false after [`WAIT`].
    async fn try_wait_until<F, Fut>(&self, mut ready: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if ready().await {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Like [`PrometheusApi::try_wait_until`], failing the test with Prometheus' log on timeout.
    pub(crate) async fn wait_until<F, Fut>(&self, what: &str, server: &PrometheusServer, ready: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        assert!(
            self.try_wait_until(ready).await,
            "timed out after {WAIT:?} waiting for {what}; Prometheus log:\n{}",
            server.log_tail()
        );
    }
}

/// Three shards scraped by one Prometheus: every Page's series arrives exactly once, from one
/// instance, and the three instances together cover every Page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scraping_three_shards_sees_every_series_once() {
    let Some(prometheus) =
        prometheus_or_skip("prometheus_scraping_three_shards_sees_every_series_once")
    else {
        return;
    };
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let fake = FakeGraphApi::start().await.expect("fake Graph API");
    fake.set_now(Some(unix_now()));
    let mut yaml = format!("{}pages:\n", preamble(&fake));
    const PAGES: usize = 30;
    for n in 0..PAGES {
        let id = format!("SHARDED{n:02}");
        fake.simulate_page(&id, TOKEN);
        yaml.push_str(&format!(
            "  - id: {id}\n    interval: 1s\n    metrics: [page_messages_sent]\n"
        ));
    }
    let lookup = |_: &str| None;
    let config = meta_messaging_exporter::config::from_yaml(&yaml, "test", &lookup, Path::new("."))
        .expect("valid config");
    let mut exporters = Vec::new();
    for index in 0..3 {
        let options = meta_messaging_exporter::app::Options {
            shard: meta_messaging_exporter::shard::Shard::new(index, 3).expect("shard"),
            ..crate::helpers::test_options()
        };
        exporters.push(TestExporter::start_with_config(config.clone(), options).await);
    }
    let addresses: Vec<std::net::SocketAddr> = exporters.iter().map(|e| e.address).collect();
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = PrometheusServer::start(&prometheus, dir.path(), &addresses, &deploy);
    let api = PrometheusApi::new(server.url.clone());
    api.wait_until("Prometheus is ready", &server, || async {
        api.get_text("/-/ready").await.is_some()
    })
    .await;
    api.wait_until(
        "every Page's series from the three shards",
        &server,
        || async {
            api.query_values("count(count by (page_id) (meta_page_messages_sent))")
                .await
                == vec![PAGES as f64]
        },
    )
    .await;
    // Once each: no Page's series comes from two instances.
    assert_eq!(
        api.query_values("count by (page_id) (meta_page_messages_sent) > 1")
            .await,
        Vec::<f64>::new()
    );
    assert_eq!(
        api.query_values("count(count by (instance) (meta_page_messages_sent))")
            .await,
        vec![3.0],
        "each of the three shards serves some Pages"
    );
    assert_eq!(
        api.query_values("count(meta_messaging_exporter_shard_info{total_shards=\"3\"})")
            .await,
        vec![3.0]
    );
    drop(server);
    for exporter in exporters {
        exporter.stop().await;
    }
}
