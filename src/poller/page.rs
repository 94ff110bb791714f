//! Page insights: one request per group of metrics that share period, window and breakdowns,
//! all of a poll's requests sent at once. Each group is a read of its own
//! ([`Read::PageInsights`]), and so is the name: a group that fails keeps its previous values
//! while the others publish.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::names::{self, NameLookup};
use super::read::{Polled, Read, ReadStates};
use super::{fetch_dropping_invalid, Dropped, Plan, PollContext, PollError, Verdicts};
use crate::config::{PageMetric, PageTarget, Period};
use crate::convert::{page, Converted};
use crate::graph::GraphRequest;

/// The parameters of a Page insights request besides `metric`: a code-100 message naming one
/// is about the request, not a metric. (`metric` itself is left out: Meta's message for a
/// retired metric, "The value must be a valid insights metric", contains the word.)
pub(crate) const PARAMETERS: &[&str] = &["since", "until", "period", "breakdown", "breakdowns"];

/// Metrics that can share one request: the API takes one period, range and breakdown list
/// per call but a comma-separated list of metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) period: Period,
    pub(crate) window: Option<Duration>,
    pub(crate) breakdowns: Vec<String>,
    pub(crate) metrics: Vec<String>,
}

impl Group {
    /// How `metric` of this group is named among the dropped entries.
    pub(crate) fn entry_name(&self, metric: &str) -> String {
        dropped_name(&PageMetric {
            name: metric.to_owned(),
            period: self.period,
            window: self.window,
            breakdowns: self.breakdowns.clone(),
        })
    }
}

/// Poll plan of one Page.
pub struct PagePoller {
    target: Arc<PageTarget>,
    dropped: Dropped,
    /// Metrics that failed alone while the rest of their request was answered at the last
    /// poll: dropped if they do so again at the next.
    suspected: BTreeSet<String>,
    names: NameLookup,
    reads: ReadStates,
}

impl PagePoller {
    /// The same Page with a rotated token, or the name discovery found this time.
    pub(super) fn update(&mut self, target: Arc<PageTarget>) {
        if target.credentials != self.target.credentials {
            self.reads.clear();
        }
        self.target = target;
    }

    pub(super) fn new(target: Arc<PageTarget>) -> Self {
        Self {
            target,
            dropped: Dropped::default(),
            suspected: BTreeSet::new(),
            names: NameLookup::new("name", crate::graph::request::Api::Graph),
            reads: ReadStates::default(),
        }
    }

    /// Reads switched off for a permission error, for status and metrics.
    pub(super) fn unavailable(&self) -> Vec<super::Unavailable> {
        self.reads.list()
    }

    /// The Page's name: discovery's, or the last one read.
    pub(super) fn name(&self) -> Option<String> {
        self.target
            .name
            .as_deref()
            .or_else(|| self.names.known_name())
            .map(str::to_owned)
    }

    pub(super) fn dropped(&self) -> Vec<String> {
        self.dropped.names()
    }

    /// The requests to send at `now`, each with its read: every configured group with the
    /// metrics not dropped less than `retry_after` ago (a group left empty is not asked).
    fn groups(&self, now: i64, retry_after: Duration) -> Vec<(Read, Group)> {
        groups(self.target.metrics.iter())
            .into_iter()
            .enumerate()
            .filter_map(|(index, mut group)| {
                let probe = group.clone();
                group.metrics.retain(|metric| {
                    !self
                        .dropped
                        .excludes(&probe.entry_name(metric), now, retry_after)
                });
                let index = u16::try_from(index).unwrap_or(u16::MAX);
                (!group.metrics.is_empty()).then_some((Read::PageInsights(index), group))
            })
            .collect()
    }

    pub(super) async fn poll(&mut self, context: &PollContext<'_>) -> Result<Polled, PollError> {
        let now = context.clock.now_unix();
        let retry_after = context.retry_dropped_after;
        let groups = self.groups(now, retry_after);
        if groups.is_empty() {
            return Err(self.dropped.nothing_valid(retry_after));
        }
        let client = context.client;
        let token = &self.target.credentials.token;
        let page_id = self.target.id.as_str();
        let dropped = &self.dropped;
        let suspected = &self.suspected;
        // The groups' requests and the name read are independent: sent together, they meet
        // in one batch call (with batching on) or run side by side, instead of each waiting
        // for the one before.
        let fetches = groups.iter().map(|(read, group)| async move {
            let mut verdicts = Verdicts::default();
            let plan = Plan {
                items: group.metrics.clone(),
                retried: |metric: &str| dropped.contains(&group.entry_name(metric)),
                suspected: |metric: &str| suspected.contains(&group.entry_name(metric)),
                parameters: PARAMETERS,
                send: |metrics: Vec<String>| {
                    let request = request(page_id, group, &metrics, now);
                    async move { client.get(&request, token).await }
                },
            };
            let fetched = fetch_dropping_invalid(plan, &mut verdicts).await;
            (*read, group, verdicts, fetched)
        });
        // A discovered Page came with its name; a listed one reads it now and then.
        let known = self.target.name.as_deref();
        let ask_name = !self.reads.excludes(Read::Name, now);
        let (fetched, names) = tokio::join!(futures::future::join_all(fetches), async {
            if ask_name {
                Some(self.names.current(context, page_id, token, known).await)
            } else {
                None
            }
        });
        let names = names.map(|(known, read)| (known.cloned(), read));
        let mut polled = Polled::default();
        let mut suspects = BTreeSet::new();
        for (read, group, verdicts, fetched) in fetched {
            for metric in verdicts.dropped {
                self.dropped.insert(group.entry_name(&metric), now);
            }
            suspects.extend(verdicts.suspected.iter().map(|m| group.entry_name(m)));
            let result = fetched.and_then(|answers| {
                let mut converted = Converted::default();
                for (metrics, body) in answers {
                    for metric in &metrics {
                        self.dropped.remove(&group.entry_name(metric));
                    }
                    let part = page::convert_at(page_id, group.period.as_str(), &body, Some(now))?;
                    converted.families.extend(part.families);
                    converted.problems.extend(part.problems);
                }
                Ok(converted)
            });
            polled.push(read, result);
        }
        self.suspected = suspects;
        if self.groups(now, retry_after).is_empty() {
            return Err(self.dropped.nothing_valid(retry_after));
        }
        if let Some(names) = names {
            names::push_outcome(
                &mut polled,
                names,
                names::PAGE_INFO,
                page_id,
                self.target.origin,
            );
        }
        self.reads.observe_poll(page_id, &polled, now);
        Ok(polled)
    }
}

/// `metrics` grouped into requests: one per period, window and breakdown list.
pub(crate) fn groups<'a>(metrics: impl Iterator<Item = &'a PageMetric>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for metric in metrics {
        match groups.iter_mut().find(|g| {
            g.period == metric.period
                && g.window == metric.window
                && g.breakdowns == metric.breakdowns
        }) {
            Some(group) => group.metrics.push(metric.name.clone()),
            None => groups.push(Group {
                period: metric.period,
                window: metric.window,
                breakdowns: metric.breakdowns.clone(),
                metrics: vec![metric.name.clone()],
            }),
        }
    }
    groups
}

/// How a dropped Page metric entry is named in status and metrics: the metric name, plus the
/// period and breakdowns when they are not the plain default, so two entries of one metric
/// stay apart.
fn dropped_name(metric: &PageMetric) -> String {
    let mut name = metric.name.clone();
    if metric.period != Period::Day || !metric.breakdowns.is_empty() {
        name.push_str(&format!(" (period {}", metric.period.as_str()));
        if !metric.breakdowns.is_empty() {
            name.push_str(&format!(", breakdown {}", metric.breakdowns.join(",")));
        }
        name.push(')');
    }
    name
}

fn request(page_id: &str, group: &Group, metrics: &[String], now: i64) -> GraphRequest {
    // `since` is inclusive and `until` exclusive, so this covers exactly the window.
    let range = group
        .window
        .map(|window| (now - window.as_secs() as i64, now));
    ranged_request(page_id, group, metrics, range)
}

/// The insights request for `metrics` of `group`, over `[since, until)` when a range is
/// given and over Meta's default (the last two days) when not.
pub(crate) fn ranged_request(
    page_id: &str,
    group: &Group,
    metrics: &[String],
    range: Option<(i64, i64)>,
) -> GraphRequest {
    let mut query = vec![
        ("metric", metrics.join(",")),
        ("period", group.period.as_str().to_owned()),
    ];
    if let Some((since, until)) = range {
        query.push(("since", since.to_string()));
        query.push(("until", until.to_string()));
    }
    if !group.breakdowns.is_empty() {
        query.push(("breakdown", group.breakdowns.join(",")));
    }
    GraphRequest::page_insights(page_id, query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Credentials, Schedule};
    use crate::secret::AccessToken;

    fn metric(name: &str, period: Period, breakdowns: &[&str]) -> PageMetric {
        PageMetric {
            name: name.into(),
            period,
            window: None,
            breakdowns: breakdowns.iter().map(|b| (*b).into()).collect(),
        }
    }

    #[test]
    fn metrics_sharing_period_window_and_breakdowns_share_a_request() {
        let poller = PagePoller::new(Arc::new(PageTarget {
            id: "1".into(),
            credentials: Credentials {
                token: AccessToken::new("t"),
                file: None,
            },
            schedule: Schedule {
                interval: Duration::from_secs(60),
                stale_after: Duration::from_secs(180),
            },
            metrics: vec![
                metric("a", Period::Day, &[]),
                metric("b", Period::Week, &[]),
                metric("c", Period::Day, &[]),
                metric("d", Period::Day, &["messaging_channel"]),
            ],
            origin: crate::config::Origin::Static,
            name: None,
        }));
        let groups = poller.groups(1000, Duration::from_secs(3600));
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].0, Read::PageInsights(0));
        assert_eq!(groups[0].1.metrics, vec!["a", "c"]);
        let (read, group) = &groups[2];
        assert_eq!(*read, Read::PageInsights(2));
        let request = request("1", group, &group.metrics, 1000);
        assert_eq!(
            request.relative_url(),
            "1/insights?metric=d&period=day&breakdown=messaging_channel"
        );
    }
}
