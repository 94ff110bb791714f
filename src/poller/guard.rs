//! What a poll may publish, whatever Meta answered: no secret in a label, and a bounded
//! number of series.
//!
//! Every read's families pass through [`guard`] before they leave the poller. Label values
//! lose every secret in use ([`crate::redact`]). Then each metric keeps at most
//! `polling.max_series_per_metric` series and the target at most
//! `polling.max_series_per_target` over all its reads, in the order the converters made them
//! (sorted by labels, so the same series are kept from one poll to the next). What is cut is a
//! `series_limit` value problem: counted, logged once, shown on the status page, while the
//! target exports what fits. An answer of 200,000 breakdown keys then costs one target's
//! limit, not a 14 MB `/metrics` for everyone.

use super::read::Polled;
use crate::convert::ValueProblem;
use crate::redact::Redactor;

/// The series limits of `polling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimits {
    /// `polling.max_series_per_target`.
    pub per_target: usize,
    /// `polling.max_series_per_metric`.
    pub per_metric: usize,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        Self {
            per_target: 10_000,
            per_metric: 5_000,
        }
    }
}

/// Redacts and bounds the families of every successful read of `polled`, in place.
pub fn guard(polled: &mut Polled, redactor: &Redactor, limits: SeriesLimits) {
    let mut total = 0usize;
    for read in &mut polled.reads {
        let Ok(converted) = &mut read.result else {
            continue;
        };
        redactor.redact_families(&mut converted.families);
        for family in &mut converted.families {
            let had = family.samples.len();
            let room = limits.per_target.saturating_sub(total);
            let keep = had.min(limits.per_metric).min(room);
            if keep < had {
                family.samples.truncate(keep);
                let bound = if keep == room && room < limits.per_metric {
                    format!("polling.max_series_per_target ({})", limits.per_target)
                } else {
                    format!("polling.max_series_per_metric ({})", limits.per_metric)
                };
                converted.problems.push(ValueProblem {
                    reason: "series_limit",
                    detail: format!(
                        "{} has {had} series; {keep} exported, the rest cut at {bound}",
                        family.name
                    ),
                });
            }
            total += keep;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Converted;
    use crate::exposition::{Family, Sample};
    use crate::poller::read::Read;

    fn family(name: &str, series: usize) -> Family {
        Family {
            name: name.into(),
            help: "h".into(),
            samples: (0..series)
                .map(|n| Sample {
                    labels: vec![("key".into(), format!("k{n:06}"))],
                    value: 1.0,
                })
                .collect(),
        }
    }

    fn polled(families: Vec<Vec<Family>>) -> Polled {
        let mut polled = Polled::default();
        for (n, families) in families.into_iter().enumerate() {
            polled.push(
                Read::PageInsights(n as u16),
                Ok(Converted {
                    families,
                    ..Converted::default()
                }),
            );
        }
        polled
    }

    fn kept(polled: &Polled) -> Vec<usize> {
        polled
            .reads
            .iter()
            .filter_map(|read| read.result.as_ref().ok())
            .flat_map(|converted| converted.families.iter().map(|f| f.samples.len()))
            .collect()
    }

    fn problems(polled: &Polled) -> Vec<String> {
        polled
            .reads
            .iter()
            .filter_map(|read| read.result.as_ref().ok())
            .flat_map(|converted| converted.problems.iter().map(|p| p.detail.clone()))
            .collect()
    }

    #[test]
    fn a_metric_of_200000_keys_exports_its_limit_and_says_so() {
        let mut polled = polled(vec![vec![family("meta_a", 200_000), family("meta_b", 3)]]);
        guard(&mut polled, &Redactor::default(), SeriesLimits::default());
        assert_eq!(kept(&polled), [5_000, 3]);
        assert_eq!(
            problems(&polled),
            ["meta_a has 200000 series; 5000 exported, the rest cut at polling.max_series_per_metric (5000)"]
        );
    }

    #[test]
    fn the_target_limit_counts_across_reads_and_cuts_what_comes_last() {
        let limits = SeriesLimits {
            per_target: 10,
            per_metric: 8,
        };
        let mut polled = polled(vec![
            vec![family("meta_a", 6)],
            vec![family("meta_b", 6), family("meta_c", 2)],
        ]);
        guard(&mut polled, &Redactor::default(), limits);
        assert_eq!(kept(&polled), [6, 4, 0]);
        let problems = problems(&polled);
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].contains("polling.max_series_per_target (10)"),
            "{problems:?}"
        );
        // The first series in label order are kept, so a poll keeps the same ones.
        let first = polled.reads[1].result.as_ref().expect("ok");
        assert_eq!(first.families[0].samples[3].labels[0].1, "k000003");
    }

    #[test]
    fn label_values_lose_every_secret_before_anything_is_published() {
        let mut families = family("meta_page_info", 1);
        families.samples[0]
            .labels
            .push(("name".into(), "EAAtoken shop".into()));
        let mut polled = polled(vec![vec![families]]);
        guard(
            &mut polled,
            &Redactor::new(["EAAtoken"]),
            SeriesLimits::default(),
        );
        let converted = polled.reads[0].result.as_ref().expect("ok");
        assert_eq!(
            converted.families[0].samples[0].labels[1].1,
            "[redacted] shop"
        );
    }
}
