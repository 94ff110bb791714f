//! The samples one target's backfill has gathered, and their OpenMetrics encoding.
//!
//! A [`History`] holds one target at a time: once the target is read it goes to the
//! [`Spill`](super::spill::Spill) on disk and is dropped, so memory follows the largest
//! target, not the whole run. Values change when Meta's day or bucket turns, not at every step, so each series holds runs
//! of equal values at a fixed step instead of one entry per instant: 90 days of an hourly
//! step are about 90 runs, not 2,160 samples. Writing expands the runs again, since
//! Prometheus needs a sample at each step to draw a line.
//!
//! The file follows OpenMetrics 1.0 as `promtool tsdb create-blocks-from openmetrics` reads
//! it: per family `# TYPE` and `# HELP`, then its series one after another, each series' samples
//! in time order with their timestamp in seconds, families contiguous and sorted by name, and
//! `# EOF` at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::exposition::{self, Family};
use crate::redact::Redactor;

/// A series' label names and values, in exposition order.
pub(super) type Labels = Vec<(String, String)>;

/// Equal values at `first`, `first + step`, ... (`count` of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Run {
    first: i64,
    step: i64,
    count: u32,
    value: f64,
}

impl Run {
    fn next(&self) -> i64 {
        self.first + self.step * i64::from(self.count)
    }
}

/// One family's HELP text and series.
#[derive(Debug, Default)]
pub(super) struct FamilyHistory {
    help: String,
    series: BTreeMap<Labels, Vec<Run>>,
}

/// Every sample gathered so far, by family and label set.
#[derive(Debug, Default)]
pub struct History {
    families: BTreeMap<String, FamilyHistory>,
    samples: u64,
    /// Every secret in use, replaced in label values before they are kept: a Page name that
    /// quotes a token must not reach the file, as it must not reach `/metrics`.
    redactor: Redactor,
}

impl History {
    /// An empty history whose label values lose every secret of `redactor`.
    pub fn redacting(redactor: Redactor) -> Self {
        Self {
            redactor,
            ..Self::default()
        }
    }

    /// Records what a poll at `at` would have exported; `step` is the target's step. Within
    /// one call later samples with the same name and labels win, as in a live snapshot.
    pub fn record(&mut self, at: i64, step: i64, mut families: Vec<Family>) {
        self.redactor.redact_families(&mut families);
        for (name, (help, samples)) in exposition::merge(families) {
            let family = self.families.entry(name).or_default();
            if family.help.is_empty() {
                family.help = help;
            }
            for (labels, value) in samples {
                let runs = family.series.entry(labels).or_default();
                if push(runs, at, step, value) {
                    self.samples += 1;
                }
            }
        }
    }

    /// Samples held.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Series held.
    pub fn series(&self) -> usize {
        self.families.values().map(|f| f.series.len()).sum()
    }

    /// Writes the whole history as OpenMetrics text, `# EOF` included.
    pub fn write_openmetrics(&self, out: &mut impl Write) -> io::Result<()> {
        let mut buffer = String::with_capacity(64 * 1024);
        for (name, family) in &self.families {
            write_header(&mut buffer, name, &family.help);
            for (labels, runs) in &family.series {
                write_series(&mut buffer, name, labels, runs, out)?;
            }
        }
        buffer.push_str("# EOF\n");
        out.write_all(buffer.as_bytes())
    }

    /// Takes the families out, each with its HELP text and series, for the spill.
    pub(super) fn into_families(self) -> impl Iterator<Item = (String, FamilyHistory)> {
        self.families.into_iter()
    }
}

impl FamilyHistory {
    /// The HELP text, as the first converter to make the family gave it.
    pub(super) fn help(&self) -> &str {
        &self.help
    }

    /// Label sets and their runs, sorted by label set.
    pub(super) fn series(&self) -> impl Iterator<Item = (&Labels, &[Run])> {
        self.series
            .iter()
            .map(|(labels, runs)| (labels, runs.as_slice()))
    }
}

/// Appends a family's `# TYPE` and `# HELP` lines.
pub(super) fn write_header(buffer: &mut String, name: &str, help: &str) {
    let _ = writeln!(buffer, "# TYPE {name} gauge");
    let _ = writeln!(buffer, "# HELP {name} {}", escape_help(help));
}

/// Appends the sample lines of one series to `buffer`, handing it to `out` whenever it holds
/// 60 KiB or more (a long series must not be expanded whole in memory); whatever is left
/// stays in `buffer` for the caller. Returns the samples written.
pub(super) fn write_series(
    buffer: &mut String,
    name: &str,
    labels: &Labels,
    runs: &[Run],
    out: &mut impl Write,
) -> io::Result<u64> {
    let mut prefix = String::new();
    exposition::write_sample(&mut prefix, name, labels, 0.0);
    // "name{labels} 0\n" without its value: the line prefix every sample shares.
    prefix.truncate(prefix.len() - 2);
    for run in runs {
        for n in 0..i64::from(run.count) {
            let at = run.first + n * run.step;
            buffer.push_str(&prefix);
            write_value(buffer, run.value);
            let _ = writeln!(buffer, " {at}");
            if buffer.len() >= 60 * 1024 {
                out.write_all(buffer.as_bytes())?;
                buffer.clear();
            }
        }
    }
    Ok(runs.iter().map(|run| u64::from(run.count)).sum())
}

/// Appends a sample at `at` to `runs`, extending the last run when it can; a sample at the
/// instant the last one was at replaces it, as the later family of one snapshot would.
/// `true` when a sample was added rather than replaced.
fn push(runs: &mut Vec<Run>, at: i64, step: i64, value: f64) -> bool {
    match runs.last_mut() {
        Some(run) if run.next() - run.step == at => {
            if run.count == 1 {
                run.value = value;
            } else {
                run.count -= 1;
                runs.push(Run {
                    first: at,
                    step,
                    count: 1,
                    value,
                });
            }
            false
        }
        Some(run)
            if run.step == step && run.next() == at && run.value.to_bits() == value.to_bits() =>
        {
            run.count += 1;
            true
        }
        _ => {
            runs.push(Run {
                first: at,
                step,
                count: 1,
                value,
            });
            true
        }
    }
}

/// OpenMetrics escapes backslash, newline and double quote in HELP (the 0.0.4 text format
/// does not escape the quote).
fn escape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn write_value(out: &mut String, value: f64) {
    // Converters reject non-finite numbers, so only finite ones arrive here; Rust's shortest
    // round-trip form (`42`, `0.25`, `1e21`) is valid OpenMetrics.
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Sample;

    fn family(name: &str, labels: &[(&str, &str)], value: f64) -> Family {
        Family {
            name: name.into(),
            help: format!("Help of {name} with \"quotes\"."),
            samples: vec![Sample {
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                value,
            }],
        }
    }

    fn text(history: &History) -> String {
        let mut out = Vec::new();
        history.write_openmetrics(&mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn families_are_contiguous_and_each_series_is_in_time_order() {
        let mut history = History::default();
        for (at, value) in [(0, 1.0), (60, 1.0), (120, 2.0)] {
            history.record(
                at,
                60,
                vec![
                    family("meta_b", &[("page_id", "1")], value),
                    family("meta_a", &[("page_id", "2")], value * 10.0),
                    family("meta_b", &[("page_id", "3")], value + 0.5),
                ],
            );
        }
        assert_eq!(history.samples(), 9);
        assert_eq!(history.series(), 3);
        assert_eq!(
            text(&history),
            "# TYPE meta_a gauge\n\
             # HELP meta_a Help of meta_a with \\\"quotes\\\".\n\
             meta_a{page_id=\"2\"} 10 0\n\
             meta_a{page_id=\"2\"} 10 60\n\
             meta_a{page_id=\"2\"} 20 120\n\
             # TYPE meta_b gauge\n\
             # HELP meta_b Help of meta_b with \\\"quotes\\\".\n\
             meta_b{page_id=\"1\"} 1 0\n\
             meta_b{page_id=\"1\"} 1 60\n\
             meta_b{page_id=\"1\"} 2 120\n\
             meta_b{page_id=\"3\"} 1.5 0\n\
             meta_b{page_id=\"3\"} 1.5 60\n\
             meta_b{page_id=\"3\"} 2.5 120\n\
             # EOF\n"
        );
    }

    #[test]
    fn equal_values_share_a_run_and_a_gap_starts_a_new_one() {
        let mut history = History::default();
        for at in [0, 60, 120, 300] {
            history.record(at, 60, vec![family("meta_x", &[], 7.0)]);
        }
        let runs = &history.families["meta_x"].series[&Vec::new()];
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].first, runs[0].count), (0, 3));
        assert_eq!((runs[1].first, runs[1].count), (300, 1));
        assert!(text(&history).contains("meta_x 7 120\nmeta_x 7 300\n# EOF\n"));
    }

    #[test]
    fn a_series_written_twice_at_one_instant_keeps_the_later_value() {
        let mut history = History::default();
        history.record(0, 60, vec![family("meta_x", &[], 1.0)]);
        history.record(60, 60, vec![family("meta_x", &[], 1.0)]);
        history.record(60, 60, vec![family("meta_x", &[], 5.0)]);
        assert_eq!(history.samples(), 2);
        assert!(text(&history).ends_with("meta_x 1 0\nmeta_x 5 60\n# EOF\n"));
    }
}
