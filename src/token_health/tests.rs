//! The board: tokens in use, answers, and the families rendered from them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{Credentials, Granularity, PageTarget, Schedule, WabaTarget};

fn credentials(token: &str) -> Credentials {
    Credentials {
        token: AccessToken::new(token),
        file: None,
    }
}

fn schedule() -> Schedule {
    Schedule {
        interval: Duration::from_secs(900),
        stale_after: Duration::from_secs(2700),
    }
}

fn token_use(token: &str, kinds: &[TargetKind]) -> TokenUse {
    let token = AccessToken::new(token);
    TokenUse {
        token_id: *token.id(),
        token,
        kinds: kinds.iter().copied().collect(),
        discovery: BTreeSet::new(),
        targets: kinds.len(),
    }
}

fn info(valid: bool, scopes: &[&str]) -> TokenInfo {
    TokenInfo {
        valid,
        kind: Some("SYSTEM_USER".to_owned()),
        expires: Some(Expiry::Never),
        data_access_expires: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        app_id: Some("1".to_owned()),
        error: None,
    }
}

fn on() -> TokenBoard {
    let board = TokenBoard::default();
    board.set_interval(Some(Duration::from_secs(3600)));
    board
}

/// One sample as `(name, labels, value)`.
type Line = (String, Vec<(String, String)>, f64);

/// Every sample, in family order.
fn samples(board: &TokenBoard) -> Vec<Line> {
    board
        .families()
        .into_iter()
        .flat_map(|family| {
            let name = family.name;
            family
                .samples
                .into_iter()
                .map(move |sample| (name.clone(), sample.labels, sample.value))
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn page(id: &str, token: &str) -> Target {
    Target::Page(Arc::new(PageTarget {
        id: id.to_owned(),
        credentials: credentials(token),
        schedule: schedule(),
        metrics: Vec::new(),
        origin: crate::config::Origin::Discovered,
        name: None,
    }))
}

#[test]
fn targets_sharing_a_token_are_one_use_with_every_kind_and_the_count() {
    let waba = Target::Waba(Arc::new(WabaTarget {
        id: "W".to_owned(),
        credentials: credentials("shared"),
        schedule: schedule(),
        granularity: Granularity::Day,
        phone_numbers: Vec::new(),
        country_codes: Vec::new(),
        pricing: None,
        conversations: None,
        templates: None,
        phone_numbers_health: false,
        origin: crate::config::Origin::Static,
    }));
    let uses = token_uses(&[page("1", "shared"), page("2", "own"), waba], None);
    assert_eq!(uses.len(), 2);
    let shared = uses
        .iter()
        .find(|u| u.token.expose() == "shared")
        .expect("shared token");
    assert_eq!(
        shared.kinds,
        BTreeSet::from([TargetKind::Page, TargetKind::WhatsappBusinessAccount])
    );
    assert_eq!(shared.targets, 2);
    assert_eq!(shared.token_id, *AccessToken::new("shared").id());
    let printed = format!("{uses:?}");
    assert!(
        !printed.contains("shared\"") && !printed.contains("\"own"),
        "{printed}"
    );
}

#[test]
fn families_carry_validity_expiries_and_the_scopes_each_token_lacks() {
    let board = on();
    let valid = token_use("a", &[TargetKind::Page, TargetKind::Campaign]);
    let invalid = token_use("b", &[TargetKind::Page]);
    let unchecked = token_use("c", &[TargetKind::Campaign]);
    board.set_uses(&[valid.clone(), invalid.clone(), unchecked]);
    let mut expiring = info(
        true,
        &[
            "pages_messaging",
            "pages_read_engagement",
            "pages_show_list",
            "read_insights",
        ],
    );
    expiring.kind = None;
    expiring.expires = Some(Expiry::At(1_800_000_000));
    expiring.data_access_expires = Some(1_795_000_000);
    assert!(!board.token_checked(&valid.token_id, expiring, 10));
    assert!(
        board.token_checked(&invalid.token_id, info(false, &[]), 10),
        "newly invalid"
    );
    assert!(
        !board.token_checked(&invalid.token_id, info(false, &[]), 20),
        "still invalid"
    );

    let (a, b) = (valid.token_id.label(), invalid.token_id.label());
    let (a, b) = (a.as_str(), b.as_str());
    let mut expected = vec![
        (
            "meta_token_valid",
            labels(&[("token_id", a), ("type", "unknown")]),
            1.0,
        ),
        (
            "meta_token_valid",
            labels(&[("token_id", b), ("type", "SYSTEM_USER")]),
            0.0,
        ),
        (
            "meta_token_expires_timestamp_seconds",
            labels(&[("token_id", a)]),
            1_800_000_000.0,
        ),
        (
            "meta_token_expires_timestamp_seconds",
            labels(&[("token_id", b)]),
            f64::INFINITY,
        ),
        (
            "meta_token_data_access_expires_timestamp_seconds",
            labels(&[("token_id", a)]),
            1_795_000_000.0,
        ),
        // The campaign needs ads_read; the invalid token gets no missing-scope series.
        (
            "meta_token_missing_scope",
            labels(&[("token_id", a), ("scope", "ads_read")]),
            1.0,
        ),
    ];
    let mut actual = samples(&board);
    // The success timestamp comes only with a batch answer.
    assert!(actual
        .iter()
        .all(|(name, _, _)| !name.contains("last_success")));
    board.batch_succeeded(30);
    actual = samples(&board);
    expected.push((
        "meta_messaging_exporter_token_check_last_success_timestamp_seconds",
        Vec::new(),
        30.0,
    ));
    let expected: Vec<Line> = expected
        .into_iter()
        .map(|(name, labels, value)| (name.to_owned(), labels, value))
        .collect();
    let sort = |mut v: Vec<Line>| {
        v.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        v
    };
    assert_eq!(sort(actual), sort(expected));
}

#[test]
fn a_token_no_longer_in_use_loses_its_series_and_one_still_in_use_keeps_its_answer() {
    let board = on();
    let kept = token_use("kept", &[TargetKind::WhatsappBusinessAccount]);
    let gone = token_use("gone", &[TargetKind::WhatsappBusinessAccount]);
    board.set_uses(&[kept.clone(), gone.clone()]);
    board.token_checked(
        &kept.token_id,
        info(true, &["whatsapp_business_management"]),
        1,
    );
    board.token_checked(&gone.token_id, info(true, &[]), 1);
    assert!(samples(&board)
        .iter()
        .any(|(_, l, _)| l.contains(&("token_id".to_owned(), gone.token_id.label()))));

    board.set_uses(std::slice::from_ref(&kept));
    let after = samples(&board);
    assert!(
        after
            .iter()
            .all(|(_, l, _)| !l.contains(&("token_id".to_owned(), gone.token_id.label()))),
        "{after:?}"
    );
    assert!(
        after.iter().any(|(name, l, _)| name == "meta_token_valid"
            && l.contains(&("token_id".to_owned(), kept.token_id.label()))),
        "{after:?}"
    );
    // An answer arriving for a token that went away meanwhile is dropped.
    board.token_checked(&gone.token_id, info(true, &[]), 2);
    assert_eq!(board.token_ids(), BTreeSet::from([kept.token_id]));
}

#[test]
fn tokens_with_the_same_label_are_two_tokens_in_use_with_their_own_answers() {
    let (a, b) = crate::secret::COLLIDING_TOKENS;
    let uses = token_uses(&[page("1", a), page("2", b)], None);
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert_eq!(uses[0].token_id.label(), uses[1].token_id.label());
    let board = on();
    board.set_uses(&uses);
    board.token_checked(&uses[0].token_id, info(true, &[]), 1);
    board.token_checked(&uses[1].token_id, info(false, &[]), 1);
    let report = board.report();
    let validity: Vec<Option<bool>> = report
        .tokens
        .iter()
        .map(|token| token.info.as_ref().map(|info| info.valid))
        .collect();
    assert_eq!(validity, vec![Some(true), Some(false)]);
}

#[test]
fn off_renders_nothing_and_forgets_the_answers() {
    let board = on();
    let token = token_use("t", &[TargetKind::Page]);
    board.set_uses(std::slice::from_ref(&token));
    board.token_checked(&token.token_id, info(true, &[]), 1);
    assert!(!board.families().is_empty());
    assert!(board.encode().contains("meta_token_valid{"));

    board.set_interval(None);
    assert!(board.families().is_empty());
    assert_eq!(board.encode(), "");
    let report = board.report();
    assert_eq!(report.interval, None);
    assert!(report.tokens.iter().all(|t| t.info.is_none()));
}

#[test]
fn the_encoded_text_has_gauges_and_a_counter_of_check_errors_by_reason() {
    let board = on();
    let token = token_use("t", &[TargetKind::Campaign]);
    board.set_uses(std::slice::from_ref(&token));
    board.batch_failed(
        std::slice::from_ref(&token.token_id),
        "api_error",
        "Graph API error code 190: bad app token".to_owned(),
        5,
    );
    board.token_failed(&token.token_id, "not_answered", "timed out".to_owned(), 6);
    let text = board.encode();
    assert!(
        text.contains("# TYPE meta_messaging_exporter_token_check_errors_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("meta_messaging_exporter_token_check_errors_total{reason=\"api_error\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "meta_messaging_exporter_token_check_errors_total{reason=\"not_answered\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("meta_messaging_exporter_token_check_errors_total{reason=\"timeout\"} 0\n"),
        "{text}"
    );
    // Nothing answered yet: no token gauges, and no header without samples.
    assert!(!text.contains("# TYPE meta_token_"), "{text}");
    let report = board.report();
    assert_eq!(
        report.last_error.as_ref().map(|e| e.message.as_str()),
        Some("Graph API error code 190: bad app token")
    );
    assert_eq!(
        report.tokens[0]
            .last_error
            .as_ref()
            .map(|e| (e.message.as_str(), e.at)),
        Some(("timed out", 6))
    );

    board.token_checked(&token.token_id, info(true, &["ads_read"]), 7);
    let text = board.encode();
    let family = format!(
        "# HELP meta_token_valid {}\n# TYPE meta_token_valid gauge\nmeta_token_valid{{token_id=\"{}\",type=\"SYSTEM_USER\"}} 1\n",
        board.families()[0].help,
        token.token_id
    );
    assert!(text.contains(&family), "{text}");
    assert!(
        text.contains(&format!(
            "meta_token_expires_timestamp_seconds{{token_id=\"{}\"}} +Inf\n",
            token.token_id
        )),
        "{text}"
    );
    assert_eq!(
        board.report().tokens[0].last_error,
        None,
        "an answer clears the token's error"
    );
}

#[test]
fn the_token_discovery_lists_with_is_in_use_for_discoverys_permissions() {
    let yaml = "graph_api:\n  access_token: system-token\ndiscovery:\n  pages: {}\n  whatsapp_business_accounts:\n    business_ids: [\"1\"]\n";
    let config = crate::config::from_yaml(yaml, "test", &|_: &str| None, std::path::Path::new("."))
        .expect("valid config");
    let uses = token_uses(&[], config.discovery.as_ref());
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].token.expose(), "system-token");
    assert_eq!(uses[0].targets, 0);
    assert_eq!(
        uses[0].discovery,
        BTreeSet::from([
            crate::discovery::SourceKind::Pages,
            crate::discovery::SourceKind::WhatsappBusinessAccounts
        ])
    );
    let missing = crate::token_health::scopes::missing_for_uses(
        &uses[0].kinds,
        &uses[0].discovery,
        &BTreeSet::from(["pages_show_list".to_owned()]),
    );
    assert_eq!(
        missing,
        vec!["business_management", "whatsapp_business_management"]
    );
}
