//! Campaign insights: one request with every field and the date selection.

use super::{fetch_dropping_invalid, Dropped, Plan, PollContext, PollError};
use crate::config::{CampaignDates, CampaignTarget};
use crate::convert::{campaign, Converted};
use crate::graph::GraphRequest;

/// The parameters of a campaign insights request besides `fields`: a code-100 message naming
/// one is about the dates asked for, not a field. `since` and `until` are the keys inside
/// `time_range`, which messages quote on their own.
const PARAMETERS: &[&str] = &["date_preset", "time_range", "since", "until"];

/// Poll plan of one campaign.
pub struct CampaignPoller {
    target: CampaignTarget,
    dropped: Dropped,
}

impl CampaignPoller {
    pub(super) fn set_credentials(&mut self, credentials: &crate::config::Credentials) {
        self.target.credentials.clone_from(credentials);
    }

    pub(super) fn new(target: CampaignTarget) -> Self {
        Self {
            target,
            dropped: Dropped::default(),
        }
    }

    pub(super) fn dropped(&self) -> Vec<String> {
        self.dropped.names()
    }

    pub(super) async fn poll(&mut self, context: &PollContext<'_>) -> Result<Converted, PollError> {
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
        let mut rejected = Vec::new();
        let plan = Plan {
            items: fields,
            retried: |field: &str| self.dropped.contains(field),
            parameters: PARAMETERS,
            send: |fields: Vec<String>| {
                let request = request(id, dates, &fields);
                async move { client.get(&request, token).await }
            },
        };
        let fetched = fetch_dropping_invalid(plan, &mut rejected).await;
        for field in rejected {
            self.dropped.insert(field, now);
        }
        let answers = fetched?;
        if answers.is_empty() {
            return Err(self.dropped.nothing_valid(retry_after));
        }
        let mut converted = Converted::default();
        for (fields, body) in answers {
            for field in &fields {
                self.dropped.remove(field);
            }
            let part = campaign::convert(id, dates, &fields, &body)?;
            converted.families.extend(part.families);
            converted.problems.extend(part.problems);
        }
        Ok(converted)
    }
}

fn request(id: &str, dates: &CampaignDates, fields: &[String]) -> GraphRequest {
    let mut query = vec![("fields", fields.join(","))];
    match dates {
        CampaignDates::Preset(preset) => query.push(("date_preset", preset.clone())),
        CampaignDates::Range { since, until } => query.push((
            "time_range",
            format!(r#"{{"since":"{since}","until":"{until}"}}"#),
        )),
    }
    GraphRequest::campaign_insights(id, query)
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
        let request = request("5", &dates, &["a".into(), "b".into()]);
        assert_eq!(
            request.query,
            vec![
                ("fields", "a,b".to_owned()),
                (
                    "time_range",
                    r#"{"since":"2025-01-01","until":"2025-01-31"}"#.to_owned()
                ),
            ]
        );
    }
}
