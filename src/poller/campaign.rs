//! Campaign insights: one request with every field and the date selection.

use std::collections::BTreeSet;

use super::{fetch_dropping_invalid, PollContext, PollError};
use crate::config::{CampaignDates, CampaignTarget};
use crate::convert::{campaign, Converted};
use crate::graph::GraphRequest;

/// Poll plan of one campaign.
pub struct CampaignPoller {
    target: CampaignTarget,
    dropped: BTreeSet<String>,
}

impl CampaignPoller {
    pub(super) fn set_credentials(&mut self, credentials: &crate::config::Credentials) {
        self.target.credentials.clone_from(credentials);
    }

    pub(super) fn new(target: CampaignTarget) -> Self {
        Self {
            target,
            dropped: BTreeSet::new(),
        }
    }

    pub(super) fn dropped(&self) -> Vec<String> {
        self.dropped.iter().cloned().collect()
    }

    pub(super) async fn poll(&mut self, context: &PollContext<'_>) -> Result<Converted, PollError> {
        let fields: Vec<String> = self
            .target
            .fields
            .iter()
            .filter(|field| !self.dropped.contains(*field))
            .cloned()
            .collect();
        if fields.is_empty() {
            return Err(PollError::NothingValid(self.dropped()));
        }
        let id = self.target.id.clone();
        let dates = self.target.dates.clone();
        let answers = fetch_dropping_invalid(
            context.client,
            &self.target.credentials.token,
            fields,
            |field: &String| field.as_str(),
            |fields: &[String]| request(&id, &dates, fields),
            &mut self.dropped,
        )
        .await?;
        if answers.is_empty() {
            return Err(PollError::NothingValid(self.dropped()));
        }
        let mut converted = Converted::default();
        for (fields, body) in answers {
            let part = campaign::convert(&id, &dates, &fields, &body)?;
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
