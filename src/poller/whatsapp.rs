//! WhatsApp Business Account analytics: one request per phone number and country selected.

use super::{single_item_error, PollContext, PollError};
use crate::config::{Granularity, WabaTarget};
use crate::convert::whatsapp::{self, last_complete_bucket, Selection};
use crate::convert::Converted;
use crate::graph::GraphRequest;

/// Poll plan of one WhatsApp Business Account.
pub struct WabaPoller {
    target: WabaTarget,
}

impl WabaPoller {
    pub(super) fn set_credentials(&mut self, credentials: &crate::config::Credentials) {
        self.target.credentials.clone_from(credentials);
    }

    pub(super) fn new(target: WabaTarget) -> Self {
        Self { target }
    }

    /// One selection per (phone number, country) pair; the API sums over a filter list, so
    /// per-number series need one request each.
    fn selections(&self) -> Vec<(Option<&str>, Option<&str>)> {
        let phones: Vec<Option<&str>> = if self.target.phone_numbers.is_empty() {
            vec![None]
        } else {
            self.target
                .phone_numbers
                .iter()
                .map(|p| Some(p.as_str()))
                .collect()
        };
        let countries: Vec<Option<&str>> = if self.target.country_codes.is_empty() {
            vec![None]
        } else {
            self.target
                .country_codes
                .iter()
                .map(|c| Some(c.as_str()))
                .collect()
        };
        phones
            .iter()
            .flat_map(|phone| countries.iter().map(move |country| (*phone, *country)))
            .collect()
    }

    pub(super) async fn poll(&mut self, context: &PollContext<'_>) -> Result<Converted, PollError> {
        let now = context.clock.now_unix();
        let selections = self.selections();
        let requests: Vec<GraphRequest> = selections
            .iter()
            .map(|(phone, country)| {
                request(
                    &self.target.id,
                    self.target.granularity,
                    *phone,
                    *country,
                    now,
                )
            })
            .collect();
        let answers = context
            .client
            .get_all(&requests, &self.target.credentials.token)
            .await;
        let mut converted = Converted::default();
        for ((phone, country), answer) in selections.into_iter().zip(answers) {
            // One field per request, so a code-100 answer cannot be pinned on it: it is about
            // the field expression's parameters (start, end, granularity, the filters), and the
            // poll fails with Meta's message instead of dropping the only thing asked for.
            let body = answer.map_err(single_item_error)?;
            let selection = Selection {
                waba_id: &self.target.id,
                granularity: self.target.granularity,
                phone_number: phone,
                country_code: country,
            };
            let part = whatsapp::convert(selection, now, &body)?;
            converted.families.extend(part.families);
            converted.problems.extend(part.problems);
        }
        Ok(converted)
    }
}

fn request(
    waba_id: &str,
    granularity: Granularity,
    phone: Option<&str>,
    country: Option<&str>,
    now: i64,
) -> GraphRequest {
    // From the start of the last complete bucket to now: that bucket plus the partial one.
    let start = last_complete_bucket(granularity, now).start;
    let mut fields = format!(
        "analytics.start({start}).end({now}).granularity({})",
        granularity.as_str()
    );
    if let Some(phone) = phone {
        fields.push_str(&format!(".phone_numbers([\"{phone}\"])"));
    }
    if let Some(country) = country {
        fields.push_str(&format!(".country_codes([\"{country}\"])"));
    }
    GraphRequest::whatsapp_analytics(waba_id, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_expression_carries_window_granularity_and_filters() {
        let request = request(
            "9",
            Granularity::HalfHour,
            Some("15551234"),
            Some("US"),
            4000,
        );
        assert_eq!(
            request.query[0].1,
            "analytics.start(1800).end(4000).granularity(HALF_HOUR).phone_numbers([\"15551234\"]).country_codes([\"US\"])"
        );
    }
}
