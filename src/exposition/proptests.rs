//! Property tests: whatever the label values and HELP texts (any Unicode, quotes, backslashes,
//! newlines) and whatever the values, the encoding reads back to the same families.
//!
//! [`parse_strict`] is a deliberately small reader of exactly the subset the encoder writes,
//! rejecting anything else (an unknown escape, a raw newline inside a value, a sample outside
//! its family), so a lenient reader cannot hide an encoding mistake. The output is also checked
//! against `prom_text_format_parser`, a general parser of the format, as a second opinion.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{encode, write_sample, Family, Sample, SamplesByLabels};
use crate::proptest_support::{any_text, config, regex};

/// One family as read back from the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedFamily {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) samples: Vec<(Vec<(String, String)>, f64)>,
}

/// Reads exposition text made of `# HELP`, `# TYPE <name> gauge` and sample lines, unescaping
/// label values and HELP text; any other construct is an error.
pub(crate) fn parse_strict(text: &str) -> Result<Vec<ParsedFamily>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let body = text
        .strip_suffix('\n')
        .ok_or("the text does not end in a newline")?;
    let mut families: Vec<ParsedFamily> = Vec::new();
    let mut lines = body.split('\n').peekable();
    while let Some(line) = lines.next() {
        let help_line = line
            .strip_prefix("# HELP ")
            .ok_or_else(|| format!("expected # HELP, got {line:?}"))?;
        let (name, help) = help_line
            .split_once(' ')
            .ok_or_else(|| format!("HELP without text: {line:?}"))?;
        check_name(name)?;
        let type_line = lines.next().ok_or("HELP without TYPE")?;
        if type_line != format!("# TYPE {name} gauge") {
            return Err(format!("expected TYPE for {name}, got {type_line:?}"));
        }
        let mut family = ParsedFamily {
            name: name.to_owned(),
            help: unescape(help, false)?,
            samples: Vec::new(),
        };
        while let Some(line) = lines.next_if(|line| !line.starts_with('#')) {
            let (sample_name, labels, value) = parse_sample(line)?;
            if sample_name != name {
                return Err(format!("sample {sample_name} inside family {name}"));
            }
            family.samples.push((labels, value));
        }
        families.push(family);
    }
    Ok(families)
}

fn check_name(name: &str) -> Result<(), String> {
    if super::is_valid_name(name) {
        Ok(())
    } else {
        Err(format!("invalid name {name:?}"))
    }
}

type ParsedSample = (String, Vec<(String, String)>, f64);

fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            let (label, after_name) = rest
                .split_once("=\"")
                .ok_or_else(|| format!("label without =\" in {line:?}"))?;
            check_name(label)?;
            let (value, after_value) = split_quoted(after_name)
                .ok_or_else(|| format!("unterminated label value in {line:?}"))?;
            labels.push((label.to_owned(), unescape(value, true)?));
            if let Some(next) = after_value.strip_prefix(',') {
                rest = next;
            } else if let Some(end) = after_value.strip_prefix('}') {
                rest = end;
                break;
            } else {
                return Err(format!("expected , or }} in {line:?}"));
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("expected one space before the value in {line:?}"))?;
    Ok((name.to_owned(), labels, parse_value(value)?))
}

/// Splits at the first `"` not escaped by a backslash: (inside, after the quote).
fn split_quoted(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some((&text[..index], &text[index + 1..])),
            _ => {}
        }
    }
    None
}

/// Undoes the format's escapes: `\\` and `\n`, plus `\"` in label values. Any other escape
/// is an error, since the encoder never writes one.
fn unescape(text: &str, label_value: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if label_value => out.push('"'),
            other => return Err(format!("unknown escape \\{other:?} in {text:?}")),
        }
    }
    Ok(out)
}

/// A value as Go's `ParseFloat` reads it, limited to the spellings the format documents.
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => return Ok(f64::NAN),
        "+Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let decimal = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && text.chars().any(|c| c.is_ascii_digit());
    if !decimal {
        return Err(format!("{text:?} is not a sample value"));
    }
    text.parse::<f64>()
        .map_err(|error| format!("{text:?} is not a sample value: {error}"))
}

/// The same value, counting every NaN as equal to every other.
fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn name() -> BoxedStrategy<String> {
    regex("[a-zA-Z_][a-zA-Z0-9_]{0,15}")
}

fn label_name() -> BoxedStrategy<String> {
    regex("[a-zA-Z][a-zA-Z0-9_]{0,10}")
}

/// Text with the characters that need escaping made common.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(),
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    '"', '\\', '\n', '\r', '\t', '\0', 'n', ' ', '{', '}', ',', '=', '#', 'é',
                    '😀', '\u{2028}'
                ]),
                any::<char>(),
            ],
            0..16,
        )
        .prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn families() -> impl Strategy<Value = Vec<Family>> {
    let sample = (
        prop::collection::btree_map(label_name(), tricky_text(), 0..4),
        any::<f64>(),
    )
        .prop_map(|(labels, value)| Sample {
            labels: labels.into_iter().collect(),
            value,
        });
    let family = (
        prop_oneof![
            name(),
            prop::sample::select(vec!["a".to_owned(), "b".to_owned()])
        ],
        tricky_text(),
        prop::collection::vec(sample, 0..5),
    )
        .prop_map(|(name, help, samples)| Family {
            name,
            help,
            samples,
        });
    prop::collection::vec(family, 0..5)
}

/// What `encode` promises: one family per name with the first HELP, and per label set the
/// last value.
fn merged(families: &[Family]) -> BTreeMap<String, (String, SamplesByLabels)> {
    let mut merged: BTreeMap<String, (String, SamplesByLabels)> = BTreeMap::new();
    for family in families {
        let entry = merged
            .entry(family.name.clone())
            .or_insert_with(|| (family.help.clone(), BTreeMap::new()));
        for sample in &family.samples {
            entry.1.insert(sample.labels.clone(), sample.value);
        }
    }
    merged
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn encoded_families_read_back_to_the_same_names_help_labels_and_values(families in families()) {
        let expected = merged(&families);
        let text: String = encode(families)
            .into_iter()
            .map(|family| family.header + &family.lines)
            .collect();
        let parsed = parse_strict(&text)
            .map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;

        prop_assert_eq!(parsed.len(), expected.len());
        for (family, (name, (help, samples))) in parsed.iter().zip(&expected) {
            prop_assert_eq!(&family.name, name);
            prop_assert_eq!(&family.help, help);
            prop_assert_eq!(family.samples.len(), samples.len());
            for ((labels, value), (expected_labels, expected)) in
                family.samples.iter().zip(samples)
            {
                prop_assert_eq!(labels, expected_labels);
                prop_assert!(same_value(*value, *expected), "{} read back as {}", expected, value);
            }
        }
    }

    /// A general parser of the format agrees on every family that has samples (it rejects a
    /// family with none, which the store never serves anyway).
    #[test]
    fn a_general_parser_reads_the_same_samples(families in families()) {
        let text: String = encode(families)
            .into_iter()
            .filter(|family| !family.lines.is_empty())
            .map(|family| family.header + &family.lines)
            .collect();
        if text.is_empty() {
            // Nothing to compare, and the general parser rejects an empty text.
            return Ok(());
        }
        let ours = parse_strict(&text).map_err(TestCaseError::fail)?;
        let theirs = prom_text_format_parser::Scrape::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{error:?}\n{text}")))?;
        prop_assert_eq!(theirs.metrics.len(), ours.len());
        for (metric, family) in theirs.metrics.iter().zip(&ours) {
            prop_assert_eq!(&metric.name, &family.name);
            prop_assert_eq!(metric.samples.len(), family.samples.len());
            for (sample, (labels, value)) in metric.samples.iter().zip(&family.samples) {
                let their_labels: Vec<(String, String)> = sample
                    .labels
                    .iter()
                    .map(|label| {
                        unescape(&label.value, true).map(|value| (label.key.clone(), value))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(TestCaseError::fail)?;
                prop_assert_eq!(&their_labels, labels);
                let their_value = sample.value.value.parse::<f64>().unwrap_or(f64::NAN);
                prop_assert!(same_value(their_value, *value));
            }
        }
    }

    #[test]
    fn a_sample_is_always_exactly_one_line(
        labels in prop::collection::btree_map(label_name(), tricky_text(), 0..4),
        value in any::<f64>(),
    ) {
        let labels: Vec<(String, String)> = labels.into_iter().collect();
        let mut line = String::new();
        write_sample(&mut line, "m", &labels, value);
        prop_assert!(line.ends_with('\n'));
        prop_assert_eq!(line.matches('\n').count(), 1, "{:?}", line);
        let (_, read_labels, read_value) =
            parse_sample(line.trim_end_matches('\n')).map_err(TestCaseError::fail)?;
        prop_assert_eq!(read_labels, labels);
        prop_assert!(same_value(read_value, value));
    }
}
