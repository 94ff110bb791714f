//! Gauge families as data, and their Prometheus text encoding.
//!
//! Pollers turn each API response into [`Family`] values and encode them here once per poll,
//! so a scrape only concatenates bytes. The encoding follows the text exposition format 0.0.4:
//! label values escape backslash, double quote and newline; HELP escapes backslash and newline;
//! any UTF-8 is allowed in both. Sample order is deterministic (sorted by label set) so the
//! output is stable across polls.

use std::collections::BTreeMap;
use std::fmt::Write as _;

#[cfg(test)]
pub(crate) mod proptests;

/// One sample: its labels in order, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values, in exposition order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A gauge family: name, HELP text and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name.
    pub name: String,
    /// HELP text (unescaped).
    pub help: String,
    /// Samples; label sets are unique within a family once merged.
    pub samples: Vec<Sample>,
}

/// A family encoded for the snapshot store: its header and its sample lines, separately, so
/// families with the same name from many targets can share one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFamily {
    /// Metric name.
    pub name: String,
    /// `# HELP` and `# TYPE` lines.
    pub header: String,
    /// Sample lines, each ending in a newline.
    pub lines: String,
}

/// Sample values by label set.
pub type SamplesByLabels = BTreeMap<Vec<(String, String)>, f64>;

/// Merges families that share a name (later samples with the same label set win) and encodes
/// each one, sorted by name.
pub fn encode(families: Vec<Family>) -> Vec<EncodedFamily> {
    merge(families)
        .into_iter()
        .map(|(name, (help, samples))| {
            let mut lines = String::with_capacity(samples.len() * 96);
            for (labels, value) in &samples {
                write_sample(&mut lines, &name, labels, *value);
            }
            EncodedFamily {
                header: header(&name, &help, "gauge"),
                name,
                lines,
            }
        })
        .collect()
}

/// Families merged by name, sorted, each with its HELP (the first seen) and its samples by
/// label set; a later sample with the same labels wins, as in one snapshot.
pub fn merge(families: Vec<Family>) -> BTreeMap<String, (String, SamplesByLabels)> {
    let mut merged: BTreeMap<String, (String, SamplesByLabels)> = BTreeMap::new();
    for family in families {
        let entry = merged
            .entry(family.name)
            .or_insert_with(|| (family.help, BTreeMap::new()));
        for sample in family.samples {
            entry.1.insert(sample.labels, sample.value);
        }
    }
    merged
}

/// The `# HELP` and `# TYPE` lines of a family.
pub fn header(name: &str, help: &str, kind: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2 + help.len() + 24);
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    out
}

/// Appends one sample line.
pub fn write_sample(out: &mut String, name: &str, labels: &[(String, String)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, label_value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value_into(out, label_value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Rust's shortest round-trip form: `42`, `0.4213`, `1e21`; all valid in the format.
        let _ = write!(out, "{value}");
    }
}

fn escape_label_value_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whether `name` is a valid Prometheus metric or label name (the strict legacy charset,
/// which every Prometheus version and client accepts).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn label_values_escape_quotes_backslashes_and_newlines_and_keep_unicode() {
        let mut out = String::new();
        write_sample(
            &mut out,
            "m",
            &labels(&[("topic", "say \"hi\"\\\nnow ünï 😀")]),
            1.0,
        );
        assert_eq!(out, "m{topic=\"say \\\"hi\\\"\\\\\\nnow ünï 😀\"} 1\n");
    }

    #[test]
    fn values_use_the_exposition_spelling() {
        let mut out = String::new();
        for value in [
            42.0,
            0.4213,
            -3.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            write_value(&mut out, value);
            out.push(' ');
        }
        assert_eq!(out, "42 0.4213 -3.5 NaN +Inf -Inf ");
    }

    #[test]
    fn families_with_one_name_merge_and_sort_their_samples() {
        let encoded = encode(vec![
            Family {
                name: "b".into(),
                help: "line\\one\ntwo".into(),
                samples: vec![Sample {
                    labels: labels(&[("x", "2")]),
                    value: 2.0,
                }],
            },
            Family {
                name: "a".into(),
                help: "a".into(),
                samples: vec![],
            },
            Family {
                name: "b".into(),
                help: "ignored".into(),
                samples: vec![Sample {
                    labels: labels(&[("x", "1")]),
                    value: 1.0,
                }],
            },
        ]);
        assert_eq!(encoded.len(), 2);
        assert_eq!(
            encoded[1].header,
            "# HELP b line\\\\one\\ntwo\n# TYPE b gauge\n"
        );
        assert_eq!(encoded[1].lines, "b{x=\"1\"} 1\nb{x=\"2\"} 2\n");
    }

    #[test]
    fn names_follow_the_prometheus_charset() {
        assert!(is_valid_name("page_messages_sent"));
        assert!(is_valid_name("_x9"));
        assert!(!is_valid_name("9x"));
        assert!(!is_valid_name("a-b"));
        assert!(!is_valid_name(""));
    }
}
