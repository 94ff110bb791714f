//! Config loading tests: defaults, every error naming its key, warnings, expansion, secrets.

use std::sync::Arc;

use super::validate::{human, DAY_SECS};
use super::*;

/// A token distinctive enough that finding it in a message can only mean a leak.
const TOKEN: &str = "EAAB-marker-token-7f3c9e";
const CAMPAIGN_TOKEN: &str = "EAAB-campaign-marker-51d0";

fn env(name: &str) -> Option<String> {
    let value = match name {
        "META_ACCESS_TOKEN" => TOKEN,
        "CAMPAIGN_TOKEN" => CAMPAIGN_TOKEN,
        "META_APP_SECRET" => "app-secret-marker-93ab",
        "SPACED_TOKEN" => "EAAB-marker token-7f3c9e",
        "EMPTY" => "",
        "PAGE_ID" => "1122334455",
        "COUNTRY" => "BR",
        "METRIC" => "page_messages_sent",
        _ => return None,
    };
    Some(value.to_owned())
}

fn parse_in(yaml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    from_yaml(yaml, "test.yaml", &env, base_dir)
}

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    parse_in(yaml, Path::new("/nonexistent"))
}

fn valid(yaml: &str) -> Config {
    parse(yaml).unwrap_or_else(|error| panic!("expected a valid config, got: {error}"))
}

fn problems(yaml: &str) -> Vec<Problem> {
    match parse(yaml) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

/// The message of the one problem at `key`.
fn problem_at(yaml: &str, key: &str) -> String {
    let problems = problems(yaml);
    let at_key: Vec<&Problem> = problems.iter().filter(|p| p.key == key).collect();
    match at_key.as_slice() {
        [problem] => problem.message.clone(),
        _ => panic!("expected one problem at {key}, got {problems:#?}"),
    }
}

fn parse_error(yaml: &str) -> String {
    match parse(yaml) {
        Err(error @ ConfigError::Parse { .. }) => error.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn days(days: u64) -> Duration {
    Duration::from_secs(days * DAY_SECS)
}

const ONE_PAGE: &str = "
graph_api:
  access_token: ${META_ACCESS_TOKEN}
pages:
  - id: \"1\"
";

const FULL_EXAMPLE: &str = "
graph_api:
  base_url: https://graph.facebook.com/
  version: v26.0
  marketing_version: v27.0
  access_token: ${META_ACCESS_TOKEN}
  app_secret: ${META_APP_SECRET}
  app_id: 1234567890
  token_check_interval: 30m
  connect_timeout: 5s
  request_timeout: 45s
  max_response_bytes: 1048576
polling:
  max_concurrent_requests: 4
  max_retries: 5
  retry_initial_backoff: 500ms
  retry_max_backoff: 2m
  stale_after_intervals: 4
  startup_spread: 45s
  retry_dropped_after: 6h
  batch: false
  batch_window: 250ms
  batch_timeout: 20s
  max_series_per_target: 20000
  max_series_per_metric: 1000
pages:
  - id: \"${PAGE_ID}\"
    interval: 15m
    stale_after: 1h
    period: week
    metrics:
      - page_messages_new_conversations_unique
      - name: recurring_notifications_tokens
        period: total_over_range
        window: 28d
        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]
      - name: page_messages_sent
        breakdowns: [message_type]
campaigns:
  - id: \"120210000000000001\"
    access_token: ${CAMPAIGN_TOKEN}
    interval: 1h 30m
    fields: [marketing_messages_spend, marketing_messages_delivered]
    date_preset: last_7d
  - id: \"120210000000000002\"
    time_range: {since: 2025-01-01, until: 2025-01-31}
whatsapp_business_accounts:
  - id: \"102290129340398\"
    interval: 30m
    granularity: HALF_HOUR
    phone_numbers: [\"15550783881\"]
    country_codes: [US, BR]
";

#[test]
fn the_full_example_loads_with_every_value_as_written() {
    let config = valid(FULL_EXAMPLE);
    let default_credentials = Credentials {
        token: AccessToken::new(TOKEN),
        file: None,
    };
    assert_eq!(
        config.graph_api,
        GraphApiConfig {
            base_url: "https://graph.facebook.com".to_owned(),
            version: "v26.0".to_owned(),
            marketing_version: "v27.0".to_owned(),
            app_secret: Some(AppSecret::new("app-secret-marker-93ab")),
            app_id: Some("1234567890".to_owned()),
            token_check_interval: secs(1800),
            connect_timeout: secs(5),
            request_timeout: secs(45),
            max_response_bytes: 1_048_576,
        }
    );
    assert_eq!(
        config.polling,
        PollingConfig {
            max_concurrent_requests: 4,
            max_retries: 5,
            retry_initial_backoff: Duration::from_millis(500),
            retry_max_backoff: secs(120),
            stale_after_intervals: 4,
            startup_spread: secs(45),
            retry_dropped_after: secs(6 * 3600),
            batch: false,
            batch_window: Duration::from_millis(250),
            batch_timeout: secs(20),
            max_series_per_target: 20_000,
            max_series_per_metric: 1_000,
        }
    );
    assert_eq!(
        config.pages,
        vec![Arc::new(PageTarget {
            id: "1122334455".to_owned(),
            credentials: default_credentials.clone(),
            schedule: Schedule {
                interval: secs(15 * 60),
                stale_after: secs(60 * 60),
            },
            metrics: vec![
                PageMetric {
                    name: "page_messages_new_conversations_unique".to_owned(),
                    period: Period::Week,
                    window: None,
                    breakdowns: vec![],
                },
                PageMetric {
                    name: "recurring_notifications_tokens".to_owned(),
                    period: Period::TotalOverRange,
                    window: Some(days(28)),
                    breakdowns: vec![
                        "recurring_notifications_topic".to_owned(),
                        "recurring_notifications_frequency".to_owned(),
                    ],
                },
                PageMetric {
                    name: "page_messages_sent".to_owned(),
                    period: Period::Week,
                    window: None,
                    breakdowns: vec!["message_type".to_owned()],
                },
            ],
            origin: Origin::Static,
            name: None,
        })]
    );
    assert_eq!(
        config.campaigns,
        vec![
            Arc::new(CampaignTarget {
                id: "120210000000000001".to_owned(),
                credentials: Credentials {
                    token: AccessToken::new(CAMPAIGN_TOKEN),
                    file: None,
                },
                schedule: Schedule {
                    interval: secs(90 * 60),
                    stale_after: secs(4 * 90 * 60),
                },
                fields: vec![
                    "marketing_messages_spend".to_owned(),
                    "marketing_messages_delivered".to_owned(),
                ],
                dates: CampaignDates::Preset("last_7d".to_owned()),
            }),
            Arc::new(CampaignTarget {
                id: "120210000000000002".to_owned(),
                credentials: default_credentials.clone(),
                schedule: Schedule {
                    interval: secs(60 * 60),
                    stale_after: secs(4 * 60 * 60),
                },
                fields: catalog::CAMPAIGN_FIELDS
                    .iter()
                    .filter(|field| field.default)
                    .map(|field| field.name.to_owned())
                    .collect(),
                dates: CampaignDates::Range {
                    since: NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date"),
                    until: NaiveDate::from_ymd_opt(2025, 1, 31).expect("valid date"),
                },
            }),
        ]
    );
    assert_eq!(
        config.whatsapp_business_accounts,
        vec![Arc::new(WabaTarget {
            id: "102290129340398".to_owned(),
            credentials: default_credentials,
            schedule: Schedule {
                interval: secs(30 * 60),
                stale_after: secs(4 * 30 * 60),
            },
            granularity: Granularity::HalfHour,
            phone_numbers: vec!["15550783881".to_owned()],
            country_codes: vec!["US".to_owned(), "BR".to_owned()],
            pricing: Some(BillingAnalytics {
                field: BillingField::Pricing,
                granularity: BillingGranularity::Daily,
                dimensions: ["PRICING_CATEGORY", "PRICING_TYPE", "COUNTRY", "PHONE"]
                    .map(String::from)
                    .to_vec(),
                filters: Vec::new(),
            }),
            conversations: None,
            templates: None,
            phone_numbers_health: true,
            origin: crate::config::Origin::Static,
        })]
    );
    assert_eq!(config.warnings, Vec::<String>::new());
}

#[test]
fn a_minimal_page_gets_all_documented_metrics_with_period_day_and_the_default_schedule() {
    let config = valid(ONE_PAGE);
    assert_eq!(config.graph_api.base_url, "https://graph.facebook.com");
    assert_eq!(
        config.graph_api.version,
        crate::catalog::versions::DEFAULT_VERSION
    );
    assert_eq!(config.graph_api.app_secret, None);
    assert_eq!(config.graph_api.connect_timeout, secs(10));
    assert_eq!(config.graph_api.request_timeout, secs(30));
    assert_eq!(config.graph_api.max_response_bytes, 16 * 1024 * 1024);
    assert_eq!(
        config.polling,
        PollingConfig {
            max_concurrent_requests: 8,
            max_retries: 3,
            retry_initial_backoff: secs(1),
            retry_max_backoff: secs(60),
            stale_after_intervals: 3,
            startup_spread: secs(30),
            retry_dropped_after: secs(24 * 3600),
            batch: true,
            batch_window: secs(1),
            batch_timeout: secs(10),
            max_series_per_target: 10_000,
            max_series_per_metric: 5_000,
        }
    );
    let [page] = config.pages.as_slice() else {
        panic!("expected one page, got {:?}", config.pages);
    };
    assert_eq!(page.credentials.token.expose(), TOKEN);
    assert_eq!(page.credentials.file, None);
    assert_eq!(
        page.schedule,
        Schedule {
            interval: secs(15 * 60),
            stale_after: secs(45 * 60),
        }
    );
    assert_eq!(page.metrics.len(), 11);
    for (metric, documented) in page.metrics.iter().zip(catalog::PAGE_METRICS) {
        assert_eq!(metric.name, documented.name);
        assert_eq!(metric.period, Period::Day);
        assert_eq!(metric.window, None);
        assert!(metric.breakdowns.is_empty());
    }
    assert_eq!(config.warnings, Vec::<String>::new());
}

#[test]
fn minimal_campaigns_and_accounts_get_their_defaults() {
    let config = valid(
        "
graph_api: {access_token: t}
campaigns: [{id: \"1\"}]
whatsapp_business_accounts: [{id: \"2\"}]
",
    );
    let campaign = &config.campaigns[0];
    assert_eq!(campaign.fields.len(), 7);
    assert!(!campaign
        .fields
        .contains(&"marketing_messages_delivery_rate".to_owned()));
    assert_eq!(campaign.dates, CampaignDates::Preset("last_30d".to_owned()));
    assert_eq!(campaign.schedule.interval, secs(60 * 60));
    assert_eq!(campaign.schedule.stale_after, secs(3 * 60 * 60));
    let waba = &config.whatsapp_business_accounts[0];
    assert_eq!(waba.granularity, Granularity::Day);
    assert_eq!(waba.schedule.interval, secs(15 * 60));
    assert!(waba.phone_numbers.is_empty() && waba.country_codes.is_empty());
    // Pricing and phone-number health are on by default; conversations and templates are not.
    let pricing = waba.pricing.as_ref().expect("pricing on by default");
    assert_eq!(pricing.granularity, BillingGranularity::Daily);
    assert_eq!(
        pricing.dimensions,
        ["PRICING_CATEGORY", "PRICING_TYPE", "COUNTRY", "PHONE"]
    );
    assert!(pricing.filters.is_empty());
    assert!(waba.conversations.is_none() && waba.templates.is_none());
    assert!(waba.phone_numbers_health);
    assert_eq!(config.rate_limits.whatsapp_calls_per_hour, 150);
}

const WABA: &str = "graph_api: {access_token: t}\nwhatsapp_business_accounts:\n  - id: \"2\"\n";

#[test]
fn whatsapp_sections_take_switches_or_settings() {
    let config = valid(&format!(
        "{WABA}    pricing: false\n    conversations: true\n    templates:\n    phone_numbers_health: false\n"
    ));
    let waba = &config.whatsapp_business_accounts[0];
    assert!(waba.pricing.is_none());
    let conversations = waba.conversations.as_ref().expect("on");
    assert_eq!(conversations.field, BillingField::Conversations);
    assert_eq!(conversations.dimensions.len(), 5);
    let templates = waba.templates.as_ref().expect("an empty section is on");
    assert!(templates.ids.is_empty());
    assert_eq!(templates.metrics, TemplateSettings::KNOWN_METRICS);
    assert!(!waba.phone_numbers_health);

    let config = valid(&format!(
        "{WABA}    pricing:\n      granularity: MONTHLY\n      dimensions: [COUNTRY, TIER]\n      country_codes: [US]\n      pricing_types: [REGULAR]\n    templates:\n      ids: [1421988012088524]\n      metrics: [SENT, READ]\n"
    ));
    let waba = &config.whatsapp_business_accounts[0];
    let pricing = waba.pricing.as_ref().expect("on");
    assert_eq!(pricing.granularity, BillingGranularity::Monthly);
    assert_eq!(pricing.dimensions, ["COUNTRY", "TIER"]);
    assert_eq!(
        pricing.filters,
        vec![
            ("country_codes", vec!["US".to_owned()]),
            ("pricing_types", vec!["REGULAR".to_owned()])
        ]
    );
    let templates = waba.templates.as_ref().expect("on");
    assert_eq!(templates.ids, ["1421988012088524"]);
    assert_eq!(templates.metrics, ["SENT", "READ"]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn a_granularity_spelled_the_other_fields_way_is_an_error_naming_both_spellings() {
    let message = problem_at(
        &format!("{WABA}    pricing: {{granularity: DAY}}\n"),
        "whatsapp_business_accounts[0].pricing.granularity",
    );
    assert!(
        message.contains("HALF_HOUR, DAILY, MONTHLY")
            && message.contains("DAY and MONTH are the spellings of `analytics`"),
        "{message}"
    );
    let message = problem_at(
        &format!("{WABA}    granularity: DAILY\n"),
        "whatsapp_business_accounts[0].granularity",
    );
    assert!(
        message.contains("HALF_HOUR, DAY, MONTH")
            && message.contains("DAILY and MONTHLY are the spellings of pricing"),
        "{message}"
    );
    let message = problem_at(
        &format!("{WABA}    conversations: {{granularity: WEEKLY}}\n"),
        "whatsapp_business_accounts[0].conversations.granularity",
    );
    assert!(!message.contains("spellings of"), "{message}");
}

#[test]
fn unknown_dimensions_categories_and_metric_types_are_warnings_sent_as_written() {
    let config = valid(&format!(
        "{WABA}    pricing:\n      dimensions: [COUNTRY, REGION]\n      pricing_categories: [MARKETING, MARKETING_PLUS]\n    templates: {{metrics: [SENT, REPLIED]}}\n"
    ));
    let waba = &config.whatsapp_business_accounts[0];
    assert_eq!(
        waba.pricing.as_ref().expect("on").dimensions,
        ["COUNTRY", "REGION"]
    );
    let warnings = config.warnings.join("\n");
    for expected in [
        "whatsapp_business_accounts[0].pricing.dimensions[1]: REGION is not a dimension Meta documents",
        "whatsapp_business_accounts[0].pricing.pricing_categories[1]: MARKETING_PLUS is not a value Meta documents",
        "whatsapp_business_accounts[0].templates.metrics[1]: REPLIED is not a template metric type Meta documents",
    ] {
        assert!(warnings.contains(expected), "{expected} not in {warnings}");
    }
}

#[test]
fn malformed_whatsapp_settings_are_errors_naming_their_keys() {
    let problems = problems(&format!(
        "{WABA}    pricing:\n      dimensions: [country]\n      conversation_types: [REGULAR]\n      phone_numbers: [\"+1 555\"]\n    templates: {{ids: [abc], metrics: []}}\n"
    ));
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "whatsapp_business_accounts[0].pricing.dimensions[0]",
            "whatsapp_business_accounts[0].pricing.phone_numbers[0]",
            "whatsapp_business_accounts[0].pricing.conversation_types",
            "whatsapp_business_accounts[0].templates.ids[0]",
            "whatsapp_business_accounts[0].templates.metrics",
        ],
        "{problems:#?}"
    );
    let message = problem_at(
        &format!("{WABA}    pricing: {{conversation_types: [REGULAR]}}\n"),
        "whatsapp_business_accounts[0].pricing.conversation_types",
    );
    assert!(message.contains("is not a filter of pricing_analytics; it takes phone_numbers, country_codes, pricing_categories, pricing_types"), "{message}");
    assert!(
        parse_error(&format!("{WABA}    pricing: {{granularty: DAILY}}\n")).contains("granularty")
    );
    assert!(parse_error(&format!("{WABA}    pricing: 3\n"))
        .contains("true, false or a map of settings"));
    let message = problem_at(
        "graph_api: {access_token: t}\nrate_limits: {whatsapp_calls_per_hour: 0}\n",
        "rate_limits.whatsapp_calls_per_hour",
    );
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn a_page_period_applies_to_plain_entries_and_to_entries_without_their_own() {
    let config = valid(
        "
graph_api: {access_token: t}
pages:
  - id: \"1\"
    period: total_over_range
    metrics:
      - page_messages_sent
      - name: page_messages_read_ratio
        window: 7d
      - name: page_messages_engagement
        period: days_28
",
    );
    let metrics = &config.pages[0].metrics;
    assert_eq!(metrics[0].period, Period::TotalOverRange);
    assert_eq!(metrics[0].window, Some(days(28)));
    assert_eq!(metrics[1].period, Period::TotalOverRange);
    assert_eq!(metrics[1].window, Some(days(7)));
    assert_eq!(metrics[2].period, Period::Days28);
    assert_eq!(metrics[2].window, None);
}

#[test]
fn every_metric_defaults_to_the_page_period_when_no_metrics_are_listed() {
    let config = valid(
        "
graph_api: {access_token: t}
pages: [{id: \"1\", period: total_over_range}]
",
    );
    assert!(config.pages[0]
        .metrics
        .iter()
        .all(|m| m.period == Period::TotalOverRange && m.window == Some(days(28))));
}

#[test]
fn an_unknown_top_level_key_is_a_parse_error_naming_the_key_and_line() {
    let message = parse_error("pagez:\n  - id: \"1\"\n");
    assert!(
        message.starts_with("test.yaml: unknown field `pagez`"),
        "{message}"
    );
    assert!(message.contains("line 1 column 1"), "{message}");

    let message = parse_error("graph_api: {}\n\npagez: []\n");
    assert!(message.contains("unknown field `pagez`"), "{message}");
    assert!(message.contains("line 3 column 1"), "{message}");
}

#[test]
fn an_unknown_key_inside_a_page_names_its_path_and_line() {
    let message = parse_error("pages:\n  - id: \"1\"\n    intervall: 5m\n");
    assert!(
        message.contains("pages[0]: unknown field `intervall`"),
        "{message}"
    );
    assert!(message.contains("line 3 column 5"), "{message}");
}

#[test]
fn an_unknown_key_inside_a_metric_entry_names_its_path_and_line() {
    let message = parse_error(
            "pages:\n  - id: \"1\"\n    metrics:\n      - page_messages_sent\n      - name: page_messages_sent\n        perod: week\n",
        );
    assert!(
        message.contains("pages[0].metrics[1]: unknown field `perod`"),
        "{message}"
    );
    assert!(message.contains("line 6 column 9"), "{message}");
}

#[test]
fn a_metric_entry_of_the_wrong_shape_names_its_path() {
    let message = parse_error("pages:\n  - id: \"1\"\n    metrics:\n      - [a, b]\n");
    assert!(
        message.contains("pages[0].metrics[0]: invalid type: sequence, expected a metric name"),
        "{message}"
    );
    let message = parse_error("pages:\n  - id: \"1\"\n    metrics:\n      - period: day\n");
    assert!(
        message.contains("pages[0].metrics[0]: missing field `name`"),
        "{message}"
    );
}

#[test]
fn a_wrongly_typed_number_names_its_path() {
    let message = parse_error("polling:\n  max_retries: -1\n");
    assert!(message.contains("polling.max_retries"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn ids_and_phone_numbers_may_be_written_as_plain_integers() {
    let config = valid(
        "
graph_api: {access_token: t}
pages: [{id: 1122334455}]
whatsapp_business_accounts: [{id: 102290129340398, phone_numbers: [15550783881]}]
",
    );
    assert_eq!(config.pages[0].id, "1122334455");
    assert_eq!(config.whatsapp_business_accounts[0].id, "102290129340398");
    assert_eq!(
        config.whatsapp_business_accounts[0].phone_numbers,
        vec!["15550783881".to_owned()]
    );
}

#[test]
fn a_bad_duration_names_the_key_and_the_text() {
    let message = problem_at(
        "
graph_api: {access_token: t}
pages: [{id: \"1\", interval: 15 minutes please}]
",
        "pages[0].interval",
    );
    assert!(
        message.contains("\"15 minutes please\" is not a duration"),
        "{message}"
    );
}

#[test]
fn an_interval_below_one_second_is_a_problem() {
    let message = problem_at(
        "
graph_api: {access_token: t}
campaigns: [{id: \"1\", interval: 500ms}]
",
        "campaigns[0].interval",
    );
    assert_eq!(message, "must be at least 1s, not 500ms");
}

#[test]
fn an_interval_below_a_minute_is_a_warning_about_rate_limits() {
    let config = valid(
        "
graph_api: {access_token: t}
whatsapp_business_accounts: [{id: \"1\", interval: 30s}]
",
    );
    let [warning] = config.warnings.as_slice() else {
        panic!("expected one warning, got {:?}", config.warnings);
    };
    assert!(
        warning.starts_with("whatsapp_business_accounts[0].interval: 30s is shorter than 1m"),
        "{warning}"
    );
    assert!(warning.contains("rate limits"), "{warning}");
}

#[test]
fn stale_after_shorter_than_the_interval_is_a_problem() {
    let message = problem_at(
        "
graph_api: {access_token: t}
pages: [{id: \"1\", interval: 1h, stale_after: 30m}]
",
        "pages[0].stale_after",
    );
    assert_eq!(message, "must be at least the interval (1h), not 30m");
}

#[test]
fn stale_after_defaults_to_the_configured_number_of_intervals() {
    let config = valid(
        "
graph_api: {access_token: t}
polling: {stale_after_intervals: 5}
pages: [{id: \"1\", interval: 10m}]
",
    );
    assert_eq!(config.pages[0].schedule.stale_after, secs(50 * 60));
}

#[test]
fn an_unknown_period_lists_the_allowed_ones() {
    let yaml = "
graph_api: {access_token: t}
pages:
  - id: \"1\"
    period: weekly
    metrics:
      - name: page_messages_sent
        period: lifetime
";
    assert_eq!(
        problem_at(yaml, "pages[0].period"),
        "\"weekly\" is not a period; expected one of day, week, month, days_28, \
             total_over_range"
    );
    assert!(problem_at(yaml, "pages[0].metrics[0].period").starts_with("\"lifetime\""));
}

#[test]
fn an_unknown_granularity_lists_the_allowed_spellings() {
    let message = problem_at(
        "
graph_api: {access_token: t}
whatsapp_business_accounts: [{id: \"1\", granularity: day}]
",
        "whatsapp_business_accounts[0].granularity",
    );
    assert!(message.contains("HALF_HOUR, DAY, MONTH"), "{message}");
}

#[test]
fn duplicate_target_ids_name_both_places() {
    let problems = problems(
        "
graph_api: {access_token: t}
pages: [{id: \"123\"}, {id: \"456\"}, {id: \"123\"}]
campaigns: [{id: \"123\"}]
",
    );
    assert_eq!(
        problems,
        vec![Problem {
            key: "pages[2].id".to_owned(),
            message: "duplicate id \"123\", also at pages[0].id".to_owned(),
        }]
    );
}

#[test]
fn an_ad_account_written_with_and_without_act_is_one_account_listed_twice() {
    let problems = problems(
        "
graph_api: {access_token: t}
ad_accounts: [{id: act_5}, {id: \"5\"}, {id: \"6\"}]
",
    );
    assert_eq!(
        problems,
        vec![Problem {
            key: "ad_accounts[1].id".to_owned(),
            message: "duplicate id \"act_5\", also at ad_accounts[0].id".to_owned(),
        }]
    );
}

#[test]
fn an_id_that_cannot_go_into_a_url_path_is_a_problem() {
    let yaml = "
graph_api: {access_token: t}
pages: [{id: \"12/34\"}, {id: \"..\"}, {id: \"\"}, {id: \"act_1.2-3\"}]
";
    assert!(problem_at(yaml, "pages[0].id").contains("is not a valid id"));
    assert!(problem_at(yaml, "pages[1].id").contains("is not a valid id"));
    assert_eq!(problem_at(yaml, "pages[2].id"), "is empty");
    assert_eq!(problems(yaml).len(), 3);
}

#[test]
fn a_missing_environment_variable_names_the_variable_and_the_key() {
    let message = problem_at(
        "
graph_api: {access_token: t}
pages: [{id: \"1\", access_token: \"${PAGE_TOKEN}\"}]
",
        "pages[0].access_token",
    );
    assert_eq!(message, "environment variable PAGE_TOKEN is not set");
}

#[test]
fn malformed_references_name_the_key() {
    let yaml = "
graph_api: {access_token: \"${META_ACCESS_TOKEN\", version: \"${1X}\"}
";
    assert!(problem_at(yaml, "graph_api.access_token").contains("no closing"));
    assert!(problem_at(yaml, "graph_api.version").contains("variable name"));
}

#[test]
fn a_doubled_dollar_before_a_brace_is_a_literal() {
    let config = valid(
        "
graph_api: {access_token: \"tok$${literal}\"}
pages: [{id: \"1\"}]
",
    );
    assert_eq!(config.pages[0].credentials.token.expose(), "tok${literal}");
}

#[test]
fn variables_are_expanded_inside_list_items() {
    let config = valid(
        "
graph_api: {access_token: t}
pages:
  - id: ${PAGE_ID}
    metrics:
      - ${METRIC}
      - name: page_messages_read_ratio
        breakdowns:
          - ${EMPTY}message_type
campaigns:
  - id: \"1\"
    fields:
      - ${EMPTY}marketing_messages_spend
whatsapp_business_accounts:
  - id: \"2\"
    country_codes:
      - ${COUNTRY}
",
    );
    assert_eq!(config.pages[0].id, "1122334455");
    assert_eq!(config.pages[0].metrics[0].name, "page_messages_sent");
    assert_eq!(config.pages[0].metrics[1].breakdowns, vec!["message_type"]);
    assert_eq!(config.campaigns[0].fields, vec!["marketing_messages_spend"]);
    assert_eq!(
        config.whatsapp_business_accounts[0].country_codes,
        vec!["BR"]
    );
}

#[test]
fn both_token_forms_at_one_level_are_a_problem() {
    let message = problem_at(
        "
pages: [{id: \"1\", access_token: t, access_token_file: /run/token}]
",
        "pages[0].access_token_file",
    );
    assert_eq!(
        message,
        "is set together with access_token; set only one of them"
    );
}

#[test]
fn a_target_without_any_token_is_a_problem() {
    let message = problem_at("pages: [{id: \"1\"}]\n", "pages[0].access_token");
    assert!(
        message.starts_with("no access token is set here nor in graph_api"),
        "{message}"
    );
}

#[test]
fn a_target_token_overrides_the_default() {
    let config = valid(
        "
graph_api: {access_token: default}
pages: [{id: \"1\", access_token: own}, {id: \"2\"}]
",
    );
    assert_eq!(config.pages[0].credentials.token.expose(), "own");
    assert_eq!(config.pages[1].credentials.token.expose(), "default");
}

#[test]
fn a_broken_default_token_is_reported_once_not_for_every_target() {
    let problems = problems(
        "
graph_api: {access_token: \"${NOPE}\"}
pages: [{id: \"1\"}, {id: \"2\"}]
",
    );
    assert_eq!(
        problems,
        vec![Problem {
            key: "graph_api.access_token".to_owned(),
            message: "environment variable NOPE is not set".to_owned(),
        }]
    );
}

#[test]
fn an_empty_or_spaced_token_is_a_problem() {
    let yaml = "
pages:
  - {id: \"1\", access_token: \"${EMPTY}\"}
  - {id: \"2\", access_token: \"${SPACED_TOKEN}\"}
";
    assert_eq!(problem_at(yaml, "pages[0].access_token"), "is empty");
    assert!(problem_at(yaml, "pages[1].access_token").contains("whitespace"));
}

#[test]
fn a_token_file_is_read_trimmed_and_remembered() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("token"), format!("  {TOKEN}\n\n")).expect("token file written");
    let config = parse_in(
        "
graph_api: {access_token_file: token}
pages: [{id: \"1\"}]
",
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let credentials = &config.pages[0].credentials;
    assert_eq!(credentials.token.expose(), TOKEN);
    assert_eq!(credentials.file, Some(dir.path().join("token")));
}

#[test]
fn an_absolute_token_file_path_ignores_the_base_directory() {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), TOKEN).expect("token file written");
    let yaml = format!(
        "pages: [{{id: \"1\", access_token_file: \"{}\"}}]\n",
        file.path().display()
    );
    let config = valid(&yaml);
    assert_eq!(
        config.pages[0].credentials.file.as_deref(),
        Some(file.path())
    );
}

#[test]
fn an_unreadable_or_empty_token_file_names_the_key_and_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("empty"), "\n").expect("token file written");
    let result = parse_in(
        "
pages:
  - {id: \"1\", access_token_file: missing}
  - {id: \"2\", access_token_file: empty}
",
        dir.path(),
    );
    let Err(ConfigError::Invalid { problems, .. }) = result else {
        panic!("expected problems, got {result:?}");
    };
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].key, "pages[0].access_token_file");
    assert!(problems[0].message.starts_with(&format!(
        "cannot read token file {}",
        dir.path().join("missing").display()
    )));
    assert_eq!(problems[1].key, "pages[1].access_token_file");
    assert_eq!(
        problems[1].message,
        format!("token file {} is empty", dir.path().join("empty").display())
    );
}

#[test]
fn a_bad_base_url_is_a_problem() {
    for base_url in [
        "graph.facebook.com",
        "ftp://graph.facebook.com",
        "https://graph.facebook.com/?debug=all",
        "https://graph.facebook.com/#x",
    ] {
        let yaml = format!("graph_api: {{base_url: \"{base_url}\"}}\n");
        let message = problem_at(&yaml, "graph_api.base_url");
        assert!(message.contains(base_url), "{message}");
    }
}

#[test]
fn a_base_url_with_credentials_is_a_problem_that_does_not_repeat_them() {
    let message = problem_at(
        "graph_api: {base_url: \"https://user:hunter2@graph.example\"}\n",
        "graph_api.base_url",
    );
    assert!(message.contains("user name or password"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn a_base_url_is_kept_without_its_trailing_slash() {
    let config = valid("graph_api: {base_url: \"http://localhost:8080/graph/\"}\n");
    assert_eq!(config.graph_api.base_url, "http://localhost:8080/graph");
}

#[test]
fn a_bad_version_is_a_problem() {
    for version in ["23.0", "v23", "v23.0.1", "V23.0", "v.0", "vx.y"] {
        let yaml = format!("graph_api: {{version: \"{version}\"}}\n");
        let message = problem_at(&yaml, "graph_api.version");
        assert!(message.contains("is not a Graph API version"), "{message}");
    }
}

#[test]
fn the_marketing_version_follows_the_graph_version_unless_set() {
    let config = valid("graph_api: {version: v26.0}\n");
    assert_eq!(config.graph_api.marketing_version, "v26.0");
    let config = valid(ONE_PAGE);
    assert_eq!(
        config.graph_api.marketing_version,
        crate::catalog::versions::DEFAULT_VERSION
    );
    let config = valid("graph_api: {version: v24.0, marketing_version: v27.0}\n");
    assert_eq!(config.graph_api.version, "v24.0");
    assert_eq!(config.graph_api.marketing_version, "v27.0");
}

#[test]
fn a_bad_marketing_version_is_a_problem_naming_its_key() {
    for version in ["27.0", "v27", "v27.0.1"] {
        let yaml = format!("graph_api: {{marketing_version: \"{version}\"}}\n");
        let message = problem_at(&yaml, "graph_api.marketing_version");
        assert!(message.contains("is not a Graph API version"), "{message}");
    }
}

#[test]
fn a_bad_date_preset_lists_the_allowed_ones() {
    let message = problem_at(
        "
graph_api: {access_token: t}
campaigns: [{id: \"1\", date_preset: last_31d}]
",
        "campaigns[0].date_preset",
    );
    assert!(
        message.starts_with("\"last_31d\" is not a date preset"),
        "{message}"
    );
    assert!(message.contains("last_30d"), "{message}");
}

#[test]
fn a_date_preset_and_a_time_range_together_are_a_problem() {
    let message = problem_at(
        "
graph_api: {access_token: t}
campaigns:
  - id: \"1\"
    date_preset: last_7d
    time_range: {since: 2025-01-01, until: 2025-01-31}
",
        "campaigns[0].time_range",
    );
    assert_eq!(
        message,
        "cannot be combined with date_preset; set one of them"
    );
}

#[test]
fn a_time_range_needs_ordered_calendar_dates() {
    let yaml = "
graph_api: {access_token: t}
campaigns:
  - {id: \"1\", time_range: {since: 2025-02-30, until: 2025-1-31}}
  - {id: \"2\", time_range: {since: 2025-02-01, until: 2025-01-31}}
";
    assert!(problem_at(yaml, "campaigns[0].time_range.since").contains("YYYY-MM-DD"));
    assert!(problem_at(yaml, "campaigns[0].time_range.until").contains("YYYY-MM-DD"));
    assert_eq!(
        problem_at(yaml, "campaigns[1].time_range.until"),
        "2025-01-31 is before since (2025-02-01)"
    );
}

#[test]
fn bad_or_repeated_country_codes_and_phone_numbers_are_problems() {
    let yaml = "
graph_api: {access_token: t}
whatsapp_business_accounts:
  - id: \"1\"
    phone_numbers: [\"+15550783881\", \"15550783881\", \"15550783881\"]
    country_codes: [us, USA, BR, BR]
";
    assert!(
        problem_at(yaml, "whatsapp_business_accounts[0].phone_numbers[0]").contains("digits only")
    );
    assert_eq!(
        problem_at(yaml, "whatsapp_business_accounts[0].phone_numbers[2]"),
        "duplicate phone number \"15550783881\", also at \
             whatsapp_business_accounts[0].phone_numbers[1]"
    );
    assert!(
        problem_at(yaml, "whatsapp_business_accounts[0].country_codes[0]")
            .contains("is not a country code")
    );
    assert!(
        problem_at(yaml, "whatsapp_business_accounts[0].country_codes[1]")
            .contains("is not a country code")
    );
    assert!(
        problem_at(yaml, "whatsapp_business_accounts[0].country_codes[3]")
            .starts_with("duplicate country code \"BR\"")
    );
}

#[test]
fn a_breakdown_named_like_a_reserved_label_is_a_problem() {
    let yaml = "
graph_api: {access_token: t}
pages:
  - id: \"1\"
    metrics:
      - name: page_messages_sent
        breakdowns: [page_id, period, __name__, message-type, message_type, message_type]
";
    let key = "pages[0].metrics[0].breakdowns";
    assert!(problem_at(yaml, &format!("{key}[0]")).contains("label the exporter sets"));
    assert!(problem_at(yaml, &format!("{key}[1]")).contains("label the exporter sets"));
    assert!(problem_at(yaml, &format!("{key}[2]")).contains("reserves"));
    assert!(problem_at(yaml, &format!("{key}[3]")).contains("not a valid breakdown"));
    assert!(problem_at(yaml, &format!("{key}[5]")).starts_with("duplicate breakdown"));
    assert_eq!(problems(yaml).len(), 5);
}

#[test]
fn unknown_metric_field_and_breakdown_names_are_warnings_not_errors() {
    let config = valid(
        "
graph_api: {access_token: t}
pages:
  - id: \"1\"
    metrics:
      - page_messages_brand_new
      - name: page_messages_sent
        breakdowns: [message_mood, engagement_source]
campaigns:
  - id: \"2\"
    fields: [marketing_messages_delivery_rate, marketing_messages_vibes]
",
    );
    assert_eq!(config.pages[0].metrics[0].name, "page_messages_brand_new");
    assert_eq!(config.warnings.len(), 4, "{:#?}", config.warnings);
    assert!(config.warnings[0]
        .starts_with("pages[0].metrics[0]: page_messages_brand_new is not one of"));
    assert!(config.warnings[1]
        .starts_with("pages[0].metrics[1].breakdowns[0]: message_mood is not a Page"));
    assert!(config.warnings[2].starts_with(
        "pages[0].metrics[1].breakdowns[1]: Meta does not document breakdown \
             engagement_source for page_messages_sent"
    ));
    assert!(config.warnings[3]
        .starts_with("campaigns[0].fields[1]: marketing_messages_vibes is not a campaign"));
}

#[test]
fn names_that_cannot_become_prometheus_names_are_problems() {
    let yaml = "
graph_api: {access_token: t}
pages: [{id: \"1\", metrics: [page-messages-sent, {name: 1st_metric}]}]
campaigns: [{id: \"2\", fields: [\"spend rate\"]}]
";
    assert!(problem_at(yaml, "pages[0].metrics[0]").contains("not a valid metric name"));
    assert!(problem_at(yaml, "pages[0].metrics[1].name").contains("not a valid metric name"));
    assert!(problem_at(yaml, "campaigns[0].fields[0]").contains("not a valid field name"));
}

#[test]
fn repeated_metric_entries_are_problems_whatever_their_window_or_breakdown_order() {
    let yaml = "
graph_api: {access_token: t}
pages:
  - id: \"1\"
    metrics:
      - page_messages_sent
      - {name: page_messages_sent, period: day, window: 7d}
      - {name: page_messages_sent, breakdowns: [message_type, campaign_id]}
      - {name: page_messages_sent, breakdowns: [campaign_id, message_type]}
      - {name: page_messages_sent, period: week}
";
    let problems = problems(yaml);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0].key, "pages[0].metrics[1]");
    assert!(problems[0].message.ends_with("also at pages[0].metrics[0]"));
    assert_eq!(problems[1].key, "pages[0].metrics[3]");
    assert!(problems[1].message.ends_with("also at pages[0].metrics[2]"));
}

#[test]
fn empty_metric_and_field_lists_are_problems() {
    let yaml = "
graph_api: {access_token: t}
pages: [{id: \"1\", metrics: []}]
campaigns: [{id: \"2\", fields: []}]
";
    assert!(problem_at(yaml, "pages[0].metrics").starts_with("is empty"));
    assert!(problem_at(yaml, "campaigns[0].fields").starts_with("is empty"));
}

#[test]
fn a_window_must_be_positive_and_at_most_ninety_days() {
    let yaml = "
graph_api: {access_token: t}
pages:
  - id: \"1\"
    metrics:
      - {name: page_messages_sent, window: 0s}
      - {name: page_messages_read_ratio, window: 91d}
      - {name: page_messages_engagement, window: 90d}
";
    assert!(problem_at(yaml, "pages[0].metrics[0].window").starts_with("must be longer"));
    assert!(problem_at(yaml, "pages[0].metrics[1].window").ends_with("not 91d"));
    assert_eq!(problems(yaml).len(), 2);
}

#[test]
fn polling_and_graph_api_numbers_outside_their_ranges_are_problems() {
    let yaml = "
graph_api:
  max_response_bytes: 1000
  connect_timeout: 0s
polling:
  max_concurrent_requests: 0
  max_retries: 11
  retry_initial_backoff: 5s
  retry_max_backoff: 1s
  stale_after_intervals: 0
";
    assert_eq!(
        problem_at(yaml, "graph_api.max_response_bytes"),
        "must be at least 1024, not 1000"
    );
    assert_eq!(
        problem_at(yaml, "graph_api.connect_timeout"),
        "must be longer than 0s"
    );
    assert_eq!(
        problem_at(yaml, "polling.max_concurrent_requests"),
        "must be between 1 and 1000, not 0"
    );
    assert_eq!(
        problem_at(yaml, "polling.max_retries"),
        "must be at most 10, not 11"
    );
    assert_eq!(
        problem_at(yaml, "polling.retry_max_backoff"),
        "must be at least retry_initial_backoff (5s), not 1s"
    );
    assert_eq!(
        problem_at(yaml, "polling.stale_after_intervals"),
        "must be at least 1, not 0"
    );
    assert_eq!(
        problem_at(
            "polling: {max_concurrent_requests: 1001}\n",
            "polling.max_concurrent_requests"
        ),
        "must be between 1 and 1000, not 1001"
    );
}

#[test]
fn a_batch_timeout_of_zero_or_not_below_the_request_timeout_is_a_problem() {
    assert_eq!(
        problem_at("polling: {batch_timeout: 0s}\n", "polling.batch_timeout"),
        "must be longer than 0s"
    );
    assert_eq!(
        problem_at("polling: {batch_timeout: 30s}\n", "polling.batch_timeout"),
        "must be below graph_api.request_timeout (30s), not 30s: past it a batch's entries go again alone, which must cost less than a single call's timeout"
    );
    assert_eq!(
        problem_at(
            "graph_api: {request_timeout: 5s}\npolling: {batch_timeout: 8s}\n",
            "polling.batch_timeout"
        ),
        "must be below graph_api.request_timeout (5s), not 8s: past it a batch's entries go again alone, which must cost less than a single call's timeout"
    );
}

#[test]
fn a_short_request_timeout_halves_the_default_batch_timeout() {
    let config = crate::config::from_yaml(
        "graph_api: {access_token: t, request_timeout: 4s}\npages: [{id: \"1\"}]\n",
        "test.yaml",
        &|_: &str| None,
        std::path::Path::new("/"),
    )
    .expect("a valid config");
    assert_eq!(config.polling.batch_timeout, secs(2));
}

#[test]
fn a_batch_window_of_zero_or_over_ten_seconds_is_a_problem() {
    assert_eq!(
        problem_at("polling: {batch_window: 0s}\n", "polling.batch_window"),
        "must be longer than 0s"
    );
    assert_eq!(
        problem_at("polling: {batch_window: 11s}\n", "polling.batch_window"),
        "must be at most 10s, not 11s: every batched request waits up to this long"
    );
    let message = parse_error("polling: {batch: maybe}\n");
    assert!(message.contains("polling.batch"), "{message}");
}

#[test]
fn a_duration_over_a_year_is_a_problem() {
    let message = problem_at(
        "
graph_api: {access_token: t}
pages: [{id: \"1\", stale_after: 400d}]
",
        "pages[0].stale_after",
    );
    assert_eq!(message, "must be at most 365d, not 400d");
}

#[test]
fn a_config_without_targets_is_valid_with_a_warning() {
    for yaml in ["", "graph_api: {access_token: t}\npages: []\n"] {
        let config = valid(yaml);
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("nothing to poll"));
    }
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let error = parse(
        "
graph_api: {version: \"23\", base_url: \"ftp://x\"}
polling: {max_retries: 20}
pages:
  - id: \"1\"
    interval: soon
    period: fortnight
campaigns:
  - id: \"2\"
    date_preset: someday
whatsapp_business_accounts:
  - id: \"3\"
    granularity: WEEK
",
    )
    .err()
    .unwrap_or_else(|| panic!("expected an error"));
    let ConfigError::Invalid { problems, .. } = &error else {
        panic!("expected problems, got {error:?}");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "graph_api.base_url",
            "graph_api.version",
            "polling.max_retries",
            "pages[0].access_token",
            "pages[0].interval",
            "pages[0].period",
            "campaigns[0].access_token",
            "campaigns[0].date_preset",
            "whatsapp_business_accounts[0].access_token",
            "whatsapp_business_accounts[0].granularity",
        ]
    );
    let text = error.to_string();
    assert!(
        text.starts_with("test.yaml: 10 problems:\n  - graph_api.base_url: "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 11);
}

#[test]
fn a_single_problem_is_counted_in_the_singular() {
    let error = ConfigError::Invalid {
        source_name: "c.yaml".to_owned(),
        problems: vec![Problem {
            key: "pages[0].id".to_owned(),
            message: "is empty".to_owned(),
        }],
    };
    assert_eq!(
        error.to_string(),
        "c.yaml: 1 problem:\n  - pages[0].id: is empty"
    );
}

#[test]
fn a_token_never_appears_in_any_message() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("spaced"), format!("{TOKEN} {TOKEN}\n"))
        .expect("token file written");
    std::fs::write(dir.path().join("good"), TOKEN).expect("token file written");
    let yaml = "
graph_api:
  access_token: ${META_ACCESS_TOKEN}
  app_secret: \"${SPACED_TOKEN}\"
  version: nope
pages:
  - {id: \"1\", access_token: \"${SPACED_TOKEN}\"}
  - {id: \"2\", access_token_file: spaced}
  - {id: \"3\", access_token_file: good, interval: 5s}
  - {id: \"4\", access_token: \"${META_ACCESS_TOKEN}${NOPE}\"}
  - {id: \"4\", access_token: \"${META_ACCESS_TOKEN}\", access_token_file: good}
campaigns:
  - {id: \"5\", access_token: \"${CAMPAIGN_TOKEN}\", date_preset: never}
";
    let result = parse_in(yaml, dir.path());
    let Err(error) = &result else {
        panic!("expected an error, got {result:?}");
    };
    let ConfigError::Invalid { problems, .. } = error else {
        panic!("expected problems, got {error:?}");
    };
    assert!(problems.len() >= 6, "{problems:#?}");
    let printed = format!("{error}\n{error:?}");
    for secret in [TOKEN, CAMPAIGN_TOKEN, "marker token", "7f3c9e"] {
        assert!(
            !printed.contains(secret),
            "{secret} leaked into:\n{printed}"
        );
    }

    // The warnings of a valid config must not leak it either.
    let config = parse_in(
        "pages: [{id: \"1\", access_token_file: good, interval: 5s}]\n",
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    assert!(!config.warnings.is_empty());
    assert!(!format!("{config:?}").contains("7f3c9e"));
}

#[test]
fn load_resolves_token_files_next_to_the_config_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("token"), TOKEN).expect("token file written");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "graph_api: {access_token_file: token}\npages: [{id: \"1\"}]\n",
    )
    .expect("config written");
    let config = load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.pages[0].credentials.token.expose(), TOKEN);
    assert_eq!(
        config.pages[0].credentials.file,
        Some(dir.path().join("token"))
    );
}

#[test]
fn load_names_a_file_it_cannot_read() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("absent.yaml");
    let error = load(&path)
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert!(matches!(error, ConfigError::Read { .. }));
    assert_eq!(
        error.to_string(),
        format!("cannot read config file {}", path.display())
    );
}

#[test]
fn problems_in_a_loaded_file_are_attributed_to_its_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "pages: [{id: \"\"}]\n").expect("config written");
    let error = load(&path)
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: 2 problems:", path.display())),
        "{error}"
    );
}

#[test]
fn durations_in_messages_are_written_the_way_the_config_writes_them() {
    assert_eq!(human(days(90)).to_string(), "90d");
    assert_eq!(human(secs(90 * 60)).to_string(), "1h 30m");
    assert_eq!(human(Duration::from_millis(1500)).to_string(), "1s 500ms");
    assert_eq!(human(Duration::ZERO).to_string(), "0s");
}

#[test]
fn alias_bombs_and_deep_nesting_are_parse_errors_not_exhaustion() {
    // Nine levels of nine aliases each would expand to 387 million names; the typed parse
    // stops at the first list where a metric name belongs.
    let mut bomb =
        String::from("pages:\n  - {id: \"0\", metrics: &a0 [x, x, x, x, x, x, x, x, x]}\n");
    for level in 1..9 {
        let items = vec![format!("*a{}", level - 1); 9].join(", ");
        bomb.push_str(&format!(
            "  - {{id: \"{level}\", metrics: &a{level} [{items}]}}\n"
        ));
    }
    let message = parse_error(&bomb);
    assert!(
        message.starts_with("test.yaml: pages[1].metrics[0]: "),
        "{message}"
    );

    // Nesting within the scan's bound still meets the parser's own recursion limit.
    let deep = format!("pages: {}{}", "[".repeat(60), "]".repeat(60));
    let message = parse_error(&deep);
    assert!(message.starts_with("test.yaml: pages[0]: "), "{message}");
}

#[test]
fn token_health_needs_an_app_id_of_digits_and_a_check_interval_of_a_minute_or_more() {
    let config = valid(ONE_PAGE);
    assert_eq!(config.graph_api.app_id, None);
    assert_eq!(config.graph_api.token_check_interval, secs(3600));
    let yaml =
        |extra: &str| format!("graph_api:\n  access_token: x\n{extra}pages:\n  - id: \"1\"\n");
    assert!(problem_at(
        &yaml("  app_id: app-1\n  app_secret: s\n"),
        "graph_api.app_id"
    )
    .contains("digits only"));
    assert!(problem_at(
        &yaml("  token_check_interval: 10s\n"),
        "graph_api.token_check_interval"
    )
    .contains("at least 1m"));
    let without_secret = valid(&yaml("  app_id: 42\n"));
    assert!(without_secret
        .warnings
        .iter()
        .any(|warning| warning.contains("graph_api.app_id") && warning.contains("app_secret")));
}

const DISCOVERY: &str = "
graph_api:
  access_token: ${META_ACCESS_TOKEN}
discovery:
  interval: 30m
  pages:
    include: [\"^Acme\", \"^42$\"]
    exclude: [Test]
    defaults: {interval: 5m, metrics: [page_messages_sent]}
  whatsapp_business_accounts:
    business_ids: [123, \"456\"]
    defaults: {interval: 20m, pricing: false, templates: {}}
";

#[test]
fn discovery_loads_with_its_filters_and_defaults_checked_like_entries() {
    let config = valid(DISCOVERY);
    assert!(
        config
            .warnings
            .iter()
            .all(|w| !w.contains("nothing to poll")),
        "{:?}",
        config.warnings
    );
    let discovery = config.discovery.expect("discovery");
    assert_eq!(discovery.interval, secs(1800));
    assert_eq!(config_names_interval(DISCOVERY), secs(1800));
    assert_eq!(discovery.credentials.token.expose(), TOKEN);
    let pages = discovery.pages.expect("pages");
    assert_eq!(pages.defaults.schedule.interval, secs(300));
    assert_eq!(pages.defaults.metrics.len(), 1);
    assert_eq!(pages.defaults.origin, Origin::Discovered);
    assert!(pages.filter.admits("1", Some("Acme Shoes")));
    assert!(pages.filter.admits("42", None));
    assert!(!pages.filter.admits("420", Some("Other")));
    assert!(
        !pages.filter.admits("7", Some("Acme Test Page")),
        "exclude wins"
    );
    let wabas = discovery.whatsapp_business_accounts.expect("wabas");
    assert_eq!(wabas.business_ids, vec!["123", "456"]);
    assert_eq!(wabas.defaults.pricing, None);
    assert!(wabas.defaults.templates.is_some());
    assert_eq!(wabas.defaults.credentials.token.expose(), TOKEN);
}

fn config_names_interval(yaml: &str) -> Duration {
    valid(yaml).names_interval()
}

#[test]
fn discovery_problems_name_their_keys() {
    let yaml = "
graph_api:
  access_token: x
discovery:
  interval: 10s
  pages:
    include: [\"(unclosed\"]
    defaults: {id: \"9\", interval: 0s}
  whatsapp_business_accounts:
    business_ids: []
";
    assert!(problem_at(yaml, "discovery.interval").contains("at least 1m"));
    assert!(problem_at(yaml, "discovery.pages.include[0]").contains("not a regular expression"));
    assert!(problem_at(yaml, "discovery.pages.defaults.id").contains("come from discovery"));
    assert!(
        problem_at(yaml, "discovery.whatsapp_business_accounts.business_ids").contains("empty")
    );
    let bad_key =
        "graph_api:\n  access_token: x\ndiscovery:\n  pages:\n    defaults: {intervall: 5m}\n";
    assert!(problem_at(bad_key, "discovery.pages.defaults").contains("intervall"));
    let bad_value =
        "graph_api:\n  access_token: x\ndiscovery:\n  pages:\n    defaults: {interval: 0s}\n";
    assert!(problem_at(bad_value, "discovery.pages.defaults.interval").contains("at least"));
    let token = "graph_api:\n  access_token: x\ndiscovery:\n  whatsapp_business_accounts:\n    business_ids: [1]\n    defaults: {access_token: y}\n";
    let message = problem_at(
        token,
        "discovery.whatsapp_business_accounts.defaults.access_token",
    );
    assert!(message.contains("graph_api token"), "{message}");
    let no_token = "discovery:\n  pages: {}\n";
    assert!(problem_at(no_token, "discovery").contains("graph_api.access_token"));
}

#[test]
fn ad_account_ids_are_act_prefixed_and_take_a_campaigns_keys() {
    let yaml = "
graph_api:
  access_token: ${META_ACCESS_TOKEN}
ad_accounts:
  - id: act_123
    date_preset: last_7d
  - id: 456
    time_range: {since: 2025-01-01, until: 2025-01-31}
";
    let config = valid(yaml);
    let ids: Vec<&str> = config.ad_accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, vec!["act_123", "act_456"]);
    assert_eq!(config.ad_accounts[0].schedule.interval, secs(3600));
    assert_eq!(
        config.ad_accounts[0].dates,
        CampaignDates::Preset("last_7d".to_owned())
    );
    let bad = "graph_api:\n  access_token: x\nad_accounts:\n  - id: act_12x\n";
    assert!(problem_at(bad, "ad_accounts[0].id").contains("act_ followed by digits"));
}

#[test]
fn deeply_nested_yaml_is_refused_before_parsing_naming_the_line() {
    // 100,000 levels: the parser would take minutes; the scan refuses it at once.
    let deep = format!(
        "graph_api: {{access_token: t}}\npages: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let message = parse_error(&deep);
    assert!(
        message.contains("line 2: collections nested more than 64 deep"),
        "{message}"
    );
    let indented = format!("graph_api:\n{}access_token: t\n", " ".repeat(300));
    assert!(parse_error(&indented).contains("indented by 300 spaces"));
    // Brackets inside quotes, comments and plain text with an apostrophe count for nothing
    // or as they should.
    let fine = format!(
        "graph_api: {{access_token: \"{}\"}} # {}\npages: [{{id: \"1\", name: Joe's}}]\n",
        "[".repeat(100),
        "{".repeat(100)
    );
    assert!(nesting_problem(&fine).is_none());
    let hidden = format!("pages: Joe's {}\n", "[".repeat(100));
    assert!(nesting_problem(&hidden).is_some());
}

#[test]
fn a_config_file_larger_than_4_mib_is_refused_without_reading_it_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let mut text = String::from("graph_api: {access_token: t}\n");
    text.push_str(&"# padding\n".repeat(500_000));
    std::fs::write(&path, text).expect("write");
    let error = load(&path).expect_err("too large");
    let shown = format!("{error:#}");
    assert!(shown.contains("cannot read config file"), "{shown}");
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some("larger than 4 MiB, far more than any config")
    );
}
