//! Campaign and ad-account insights: one request with every field and the date selection
//! ([`Read::Insights`]), plus the object's name for its info series ([`Read::Name`]), each a
//! read of its own.
//!
//! An insights answer with an empty `data` array is no data ([`Converted::no_data()`]), for a
//! campaign and an ad account alike: the read succeeded, so the poll is a success, nothing
//! counts in `read_errors_total` and the status page shows the target as ok, but the values
//! the read published before are kept as they were, not refreshed, and go stale
//! `stale_after` past the last answer that had a row. Meta answers so for a range without
//! deliveries and for breakdowns the account has not opted in to; neither is an error, and
//! neither means 0. A debug log line (from `crate::outcome`) says when it happens. An object
//! that never had a row exports nothing, as before.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::names::{self, InfoKind, NameLookup};
use super::read::{Polled, Read, ReadStates};
use super::{fetch_dropping_invalid, Dropped, Plan, PollContext, PollError, Verdicts};
use crate::config::{CampaignDates, CampaignTarget, Origin};
use crate::convert::{campaign, Converted};
use crate::graph::{Api, GraphRequest};

/// Which insights object a [`CampaignPoller`] reads: seed 002's fields are the same on a
/// message campaign and on an ad account, only the path, the id label and the info differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsightsObject {
    /// `GET /{campaign-id}/insights`, label `campaign_id`.
    Campaign,
    /// `GET /act_{id}/insights`, label `ad_account_id`.
    AdAccount,
}

impl InsightsObject {
    /// The label the object's id goes in.
    pub fn id_label(self) -> &'static str {
        self.info().id_label
    }

    pub(crate) fn info(self) -> InfoKind {
        match self {
            InsightsObject::Campaign => names::CAMPAIGN_INFO,
            InsightsObject::AdAccount => names::AD_ACCOUNT_INFO,
        }
    }

    /// The fields of the node read for the info series.
    pub(crate) fn name_fields(self) -> &'static str {
        match self {
            InsightsObject::Campaign => "name",
            InsightsObject::AdAccount => "name,currency",
        }
    }

    fn request(self, id: &str, query: Vec<(&'static str, String)>) -> GraphRequest {
        match self {
            InsightsObject::Campaign => GraphRequest::campaign_insights(id, query),
            InsightsObject::AdAccount => GraphRequest::ad_account_insights(id, query),
        }
    }
}

/// The parameters of a campaign insights request besides `fields`: a code-100 message naming
/// one is about the dates asked for, not a field. `since` and `until` are the keys inside
/// `time_range`, which messages quote on their own.
pub(crate) const PARAMETERS: &[&str] = &["date_preset", "time_range", "since", "until"];

/// Poll plan of one campaign.
pub struct CampaignPoller {
    target: Arc<CampaignTarget>,
    object: InsightsObject,
    dropped: Dropped,
    /// Fields that failed alone while the rest was answered at the last poll.
    suspected: BTreeSet<String>,
    names: NameLookup,
    reads: ReadStates,
}

impl CampaignPoller {
    /// The same campaign or ad account with a rotated token.
    pub(super) fn update(&mut self, target: Arc<CampaignTarget>) {
        if target.credentials != self.target.credentials {
            self.reads.clear();
        }
        self.target = target;
    }

    pub(super) fn new(target: Arc<CampaignTarget>, object: InsightsObject) -> Self {
        Self {
            target,
            object,
            dropped: Dropped::default(),
            suspected: BTreeSet::new(),
            names: NameLookup::new(object.name_fields(), crate::graph::request::Api::Marketing),
            reads: ReadStates::default(),
        }
    }

    /// Reads switched off for a permission error, for status and metrics.
    pub(super) fn unavailable(&self) -> Vec<super::Unavailable> {
        self.reads.list()
    }

    /// The campaign's or ad account's name, as last read.
    pub(super) fn name(&self) -> Option<String> {
        self.names.known_name().map(str::to_owned)
    }

    pub(super) fn dropped(&self) -> Vec<String> {
        self.dropped.names()
    }

    pub(super) async fn poll(&mut self, context: &PollContext<'_>) -> Result<Polled, PollError> {
        let now = context.clock.now_unix();
        let retry_after = context.retry_dropped_after;
        let fields: Vec<String> = self
            .target
            .fields
            .iter()
            .filter(|field| !self.dropped.excludes(field, now, retry_after))
            .cloned()
            .collect();
        if fields.is_empty() {
            return Err(self.dropped.nothing_valid(retry_after));
        }
        let client = context.client;
        let token = &self.target.credentials.token;
        let id = self.target.id.as_str();
        let dates = &self.target.dates;
        let object = self.object;
        let mut verdicts = Verdicts::default();
        let suspected = &self.suspected;
        let plan = Plan {
            items: fields,
            retried: |field: &str| self.dropped.contains(field),
            suspected: |field: &str| suspected.contains(field),
            parameters: PARAMETERS,
            send: |fields: Vec<String>| {
                let request = request(object, id, dates, &fields);
                async move { client.get(&request, token).await }
            },
        };
        let ask_name = !self.reads.excludes(Read::Name, now);
        // The name read does not depend on the insights: sent together, both meet in one
        // batch call (with batching on) instead of one waiting for the other.
        let (fetched, names) = tokio::join!(fetch_dropping_invalid(plan, &mut verdicts), async {
            if ask_name {
                Some(self.names.current(context, id, token, None).await)
            } else {
                None
            }
        });
        let names = names.map(|(known, read)| (known.cloned(), read));
        for field in verdicts.dropped {
            self.dropped.insert(field, now);
        }
        self.suspected = verdicts.suspected.into_iter().collect();
        let version = client.version(Api::Marketing);
        let fetched = fetched.map_err(|error| PollError::marketing(error, version));
        let insights = fetched.and_then(|answers| {
            if answers.is_empty() {
                return Err(self.dropped.nothing_valid(retry_after));
            }
            let mut converted = Converted::default();
            let mut rows = false;
            for (fields, body) in answers {
                for field in &fields {
                    self.dropped.remove(field);
                }
                let part = campaign::convert(object.id_label(), id, dates, &fields, &body)?;
                rows |= !part.no_data;
                converted.families.extend(part.families);
                converted.problems.extend(part.problems);
            }
            // A split request whose parts all came back empty is no data as a whole; one part
            // with a row is an answer, and the fields it lacks are absent from it.
            converted.no_data = !rows;
            Ok(converted)
        });
        let mut polled = Polled::single(Read::Insights, insights);
        if let Some(names) = names {
            names::push_outcome(&mut polled, names, object.info(), id, Origin::Static);
        }
        self.reads.observe_poll(id, &polled, now);
        Ok(polled)
    }
}

pub(crate) fn request(
    object: InsightsObject,
    id: &str,
    dates: &CampaignDates,
    fields: &[String],
) -> GraphRequest {
    let mut query = vec![("fields", fields.join(","))];
    match dates {
        CampaignDates::Preset(preset) => query.push(("date_preset", preset.clone())),
        CampaignDates::Range { since, until } => query.push((
            "time_range",
            format!(r#"{{"since":"{since}","until":"{until}"}}"#),
        )),
    }
    object.request(id, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_range_is_sent_as_a_json_object_with_dates() {
        let dates = CampaignDates::Range {
            since: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
            until: chrono::NaiveDate::from_ymd_opt(2025, 1, 31).expect("date"),
        };
        let campaign = request(
            InsightsObject::Campaign,
            "5",
            &dates,
            &["a".into(), "b".into()],
        );
        assert_eq!(
            campaign.query,
            vec![
                ("fields", "a,b".to_owned()),
                (
                    "time_range",
                    r#"{"since":"2025-01-01","until":"2025-01-31"}"#.to_owned()
                ),
            ]
        );
        let account = request(InsightsObject::AdAccount, "act_5", &dates, &["a".into()]);
        assert_eq!(account.path, "act_5/insights");
    }
}
