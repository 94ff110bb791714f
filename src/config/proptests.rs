//! Property tests: no text makes [`from_yaml`] panic, every error it returns is a message, and
//! no message shows a secret.
//!
//! Documents come from a generator of the config's own shape (known sections and keys, with
//! values that are usually plausible and sometimes any YAML at all), optionally cut short or
//! with a YAML fragment spliced in, so that parse errors, type errors and every validation rule
//! are reached. Secrets reach the loader the ways a real config has them: `${VAR}` in a token
//! or app secret, in every malformed variant, and token files. Variables that do not hold
//! secrets appear only in the other keys, since their values are quoted in messages by design
//! (a token written into an `id` would be used as the id, and no message rule can help that).

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use serde_yaml::{Mapping, Value};

use super::*;
use crate::proptest_support::{any_text, config, regex};

/// The secret every secret-bearing variable and token file holds, in some form.
const MARKER: &str = "EAAB-proptest-marker-5c1d";

fn env(name: &str) -> Option<String> {
    let value = match name {
        "TOKEN" => MARKER.to_owned(),
        "SPACED_TOKEN" => format!("{MARKER} {MARKER}"),
        "NEWLINE_TOKEN" => format!("{MARKER}\n"),
        "CONTROL_TOKEN" => format!("{MARKER}\u{7}"),
        "QUOTED_TOKEN" => format!("\"{MARKER}\""),
        "REFERENCE_TOKEN" => format!("${{{MARKER}}}"),
        "EMPTY" => String::new(),
        "PAGE_ID" => "1122334455".to_owned(),
        "PERIOD" => "week".to_owned(),
        "INTERVAL" => "5m".to_owned(),
        _ => return None,
    };
    Some(value)
}

/// Writes the token files a generated document may name into `dir`.
fn write_token_files(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("token"), MARKER)?;
    std::fs::write(dir.join("spaced"), format!("{MARKER} {MARKER}\n"))?;
    std::fs::write(dir.join("empty"), "")?;
    let mut not_utf8 = MARKER.as_bytes().to_vec();
    not_utf8.push(0xff);
    std::fs::write(dir.join("binary"), not_utf8)?;
    std::fs::create_dir(dir.join("directory"))
}

fn string(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

/// Any YAML scalar, including the ones a string key must reject.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any_text().prop_map(Value::String),
        regex("[a-z0-9_ .:/${}-]{0,16}").prop_map(Value::String),
    ]
}

/// Any YAML value, a few levels deep.
fn yaml() -> impl Strategy<Value = Value> {
    // Built here, not in the closure: proptest calls the closure again for every case.
    let key = scalar().boxed();
    scalar().prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|pairs| Value::Mapping(pairs.into_iter().collect())),
        ]
    })
}

/// A value from `plausible` most of the time, else any YAML.
fn mostly(plausible: &[&str]) -> BoxedStrategy<Value> {
    let plausible: Vec<String> = plausible.iter().map(|text| (*text).to_owned()).collect();
    // Rare enough that most documents get past parsing to the rules, where secrets are used.
    prop_oneof![
        40 => select(plausible).prop_map(Value::String),
        1 => yaml(),
    ]
    .boxed()
}

/// A secret as a config writes it: references to secret variables, well and badly formed.
fn secret() -> BoxedStrategy<Value> {
    mostly(&[
        "${TOKEN}",
        " ${TOKEN} ",
        "${SPACED_TOKEN}",
        "${NEWLINE_TOKEN}",
        "${CONTROL_TOKEN}",
        "${QUOTED_TOKEN}",
        "${REFERENCE_TOKEN}",
        "${TOKEN}${MISSING}",
        "${MISSING}${TOKEN}",
        "${TOKEN} and ${TOKEN}",
        "x${TOKEN}",
        "${TOKEN",
        "${TOKEN}}",
        "${ TOKEN }",
        "$${TOKEN}${TOKEN}",
        "${EMPTY}",
        "${EMPTY}${TOKEN}",
        "",
    ])
}

fn token_file() -> BoxedStrategy<Value> {
    mostly(&[
        "token",
        "spaced",
        "empty",
        "binary",
        "directory",
        "absent",
        "",
        "${MISSING}",
    ])
}

fn duration() -> BoxedStrategy<Value> {
    mostly(&[
        "15m",
        "1s",
        "500ms",
        "0s",
        "1h 30m",
        "28d",
        "91d",
        "366d",
        "99999999999999999999d",
        "-1s",
        "soon",
        "${INTERVAL}",
        "${MISSING}",
        "",
    ])
}

fn id() -> BoxedStrategy<Value> {
    prop_oneof![
        20 => mostly(&[
            "1",
            "100000000000001",
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "${PAGE_ID}",
            "${MISSING}",
            "${EMPTY}",
            "é",
        ]),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        40 => (0u64..2000).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => scalar(),
    ]
    .boxed()
}

fn list(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![
        40 => prop::collection::vec(item, 0..4).prop_map(Value::Sequence),
        1 => yaml(),
    ]
    .boxed()
}

/// A mapping with each present key's value; unknown keys (misspellings) now and then. `id`,
/// which every target needs, is nearly always there.
fn section(keys: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let entries: Vec<BoxedStrategy<Option<(Value, Value)>>> = keys
        .into_iter()
        .map(|(key, value)| {
            let presence = if key == "id" { 0.97 } else { 0.5 };
            prop::option::weighted(presence, value)
                .prop_map(move |value| value.map(|value| (string(key), value)))
                .boxed()
        })
        .collect();
    let unknown = prop::option::weighted(0.02, (regex("[a-z_]{1,12}"), scalar()))
        .prop_map(|entry| entry.map(|(key, value)| (string(key), value)));
    (entries, unknown)
        .prop_map(|(entries, unknown)| {
            Value::Mapping(
                entries
                    .into_iter()
                    .chain([unknown])
                    .flatten()
                    .collect::<Mapping>(),
            )
        })
        .boxed()
}

fn metric_entry() -> BoxedStrategy<Value> {
    let name = mostly(&[
        "page_messages_sent",
        "recurring_notifications_tokens",
        "page_fans",
        "9x",
        "a-b",
        "${MISSING}",
        "",
    ]);
    let period = mostly(&[
        "day",
        "week",
        "days_28",
        "total_over_range",
        "lifetime",
        "${PERIOD}",
        "",
    ]);
    let breakdowns = list(mostly(&[
        "messaging_channel",
        "message_type",
        "page_id",
        "period",
        "key",
        "9x",
        "",
    ]));
    prop_oneof![
        1 => name.clone(),
        1 => section(vec![
            ("name", name),
            ("period", period),
            ("window", duration()),
            ("breakdowns", breakdowns),
        ]),
    ]
    .boxed()
}

fn date() -> BoxedStrategy<Value> {
    mostly(&[
        "2025-01-01",
        "2025-01-31",
        "2024-02-30",
        "2025-1-5",
        "+2025-01-01",
        "yesterday",
        "",
    ])
}

fn document() -> impl Strategy<Value = Value> {
    let graph_api = section(vec![
        (
            "base_url",
            mostly(&[
                "https://graph.facebook.com",
                "http://127.0.0.1:1/",
                "ftp://x",
                "https://user:pass@h",
                "https://h/?q=1",
                "https://h/#f",
                "not a url",
                "",
            ]),
        ),
        (
            "version",
            mostly(&["v23.0", "v1.2", "23.0", "v", "v.", "${MISSING}"]),
        ),
        ("access_token", secret()),
        ("access_token_file", token_file()),
        ("app_secret", secret()),
        ("connect_timeout", duration()),
        ("request_timeout", duration()),
        ("max_response_bytes", number()),
    ]);
    let polling = section(vec![
        ("max_concurrent_requests", number()),
        ("max_retries", number()),
        ("retry_initial_backoff", duration()),
        ("retry_max_backoff", duration()),
        ("stale_after_intervals", number()),
    ]);
    let page = section(vec![
        ("id", id()),
        ("access_token", secret()),
        ("access_token_file", token_file()),
        ("interval", duration()),
        ("stale_after", duration()),
        (
            "period",
            mostly(&[
                "day",
                "week",
                "month",
                "days_28",
                "total_over_range",
                "year",
                "${PERIOD}",
            ]),
        ),
        ("metrics", list(metric_entry())),
    ]);
    let campaign = section(vec![
        ("id", id()),
        ("access_token", secret()),
        ("access_token_file", token_file()),
        ("interval", duration()),
        ("stale_after", duration()),
        (
            "fields",
            list(mostly(&[
                "marketing_messages_spend",
                "marketing_messages_new",
                "9x",
                "",
            ])),
        ),
        ("date_preset", mostly(&["last_30d", "last_7d", "never", ""])),
        (
            "time_range",
            section(vec![("since", date()), ("until", date())]),
        ),
    ]);
    let waba = section(vec![
        ("id", id()),
        ("access_token", secret()),
        ("access_token_file", token_file()),
        ("interval", duration()),
        ("stale_after", duration()),
        (
            "granularity",
            mostly(&["HALF_HOUR", "DAY", "MONTH", "day", "WEEK"]),
        ),
        (
            "phone_numbers",
            list(
                prop_oneof![
                    mostly(&["15550000001", "+1 555", ""]),
                    any::<u64>().prop_map(Value::from).boxed()
                ]
                .boxed(),
            ),
        ),
        (
            "country_codes",
            list(mostly(&["US", "BR", "us", "USA", ""])),
        ),
    ]);
    section(vec![
        ("graph_api", graph_api),
        ("polling", polling),
        ("pages", list(page)),
        ("campaigns", list(campaign)),
        ("whatsapp_business_accounts", list(waba)),
    ])
}

/// The document as text, sometimes cut short or with a YAML fragment spliced in.
fn document_text() -> impl Strategy<Value = String> {
    let fragment = select(vec![
        ": ",
        "- ",
        "\t",
        "\n  ",
        "&a ",
        "*a",
        "*b",
        "!!binary ",
        "<<: *a\n",
        "{",
        "]",
        "'",
        "\"",
        "? ",
        "%YAML 1.2\n",
        "---\n",
        "...\n",
        "#",
        "\u{feff}",
    ]);
    (
        document(),
        any::<prop::sample::Index>(),
        prop::option::weighted(0.2, (any::<bool>(), fragment)),
    )
        .prop_map(|(document, at, change)| {
            let mut text = serde_yaml::to_string(&document).unwrap_or_default();
            if let Some((cut, fragment)) = change {
                let boundaries: Vec<usize> = text
                    .char_indices()
                    .map(|(index, _)| index)
                    .chain([text.len()])
                    .collect();
                let at = boundaries[at.index(boundaries.len())];
                if cut {
                    text.truncate(at);
                } else {
                    text.insert_str(at, fragment);
                }
            }
            text
        })
}

/// Whatever came out: an error that says something and shows no secret, or a config whose
/// warnings and debug form show no secret.
fn check_outcome(result: &Result<Config, ConfigError>) -> Result<(), TestCaseError> {
    match result {
        Err(error) => {
            let message = error.to_string();
            prop_assert!(!message.trim().is_empty(), "{error:?} displays as nothing");
            let printed = format!("{message}\n{error:?}");
            prop_assert!(
                !printed.contains(MARKER),
                "the secret leaked into:\n{printed}"
            );
            if let ConfigError::Invalid { problems, .. } = error {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert!(
                        !problem.key.is_empty() && !problem.message.is_empty(),
                        "{problem:?}"
                    );
                }
            }
        }
        Ok(config) => {
            let printed = format!("{:?}\n{}", config, config.warnings.join("\n"));
            prop_assert!(
                !printed.contains(MARKER),
                "the secret leaked into:\n{printed}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_a_config_or_an_error_message(
        text in prop_oneof![
            any_text(),
            regex("([a-z_]{1,8}:|-|  |\n|\\[|\\]|\\{|\\}|,|&a|\\*a|!![a-z]+|\"|'|[0-9]+|#|\\$\\{[A-Z]*\\}?)*"),
        ],
    ) {
        // Random text can put a reference in any key, and keys other than secrets quote what
        // it expands to, so variables here hold nothing secret. A directory that does not
        // exist: token files named by random text are never read.
        let env = |name: &str| Some(format!("value-of-{name}"));
        check_outcome(&from_yaml(&text, "fuzz.yaml", &env, Path::new("/nonexistent/fuzz")))?;
    }
}

/// Written out instead of with `proptest!` so that one directory of token files serves every
/// case: creating one per case would make this test spend most of its time on the file system.
#[test]
fn generated_configs_load_or_fail_with_messages_that_never_show_a_secret() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_token_files(dir.path()).expect("token files written");
    let config = ProptestConfig {
        source_file: Some(file!()),
        ..config()
    };
    let result = proptest::test_runner::TestRunner::new(config).run(&document_text(), |text| {
        check_outcome(&from_yaml(&text, "fuzz.yaml", &env, dir.path()))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
