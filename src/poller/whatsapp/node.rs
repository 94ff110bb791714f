//! The one read of the WABA node per poll: `analytics`, `pricing_analytics`,
//! `conversation_analytics`, `name` and `currency` as comma-separated field expressions of one
//! `GET /{waba}?fields=...`, which is one call against the account's limit instead of five.

use crate::config::{BillingAnalytics, BillingField, WabaTarget};
use crate::convert::whatsapp::last_complete_bucket;
use crate::graph::GraphRequest;

/// The node read of `target` at `now` on Graph API `version`; `with_cost` is false once the
/// account is known to have no costs (billed through a solution partner). It also asks for the
/// business portfolio's messaging limit, in the field `version` has for it, and
/// `health_status`: current states, so only polls ask, never a backfill.
pub fn request(target: &WabaTarget, now: i64, with_cost: bool, version: &str) -> GraphRequest {
    let mut request = ranged_request(target, now, now, with_cost);
    if let Some((_, fields)) = request.query.iter_mut().find(|(name, _)| *name == "fields") {
        fields.push(',');
        fields.push_str(crate::catalog::versions::messaging_limit_field(version));
        // Answers for the WABA, its business portfolio and the app (graph-api.md 7.2).
        fields.push_str(",health_status");
    }
    request
}

/// The node read from the start of the bucket that was the last complete one at `from` (each
/// field by its own granularity) to `to`: [`request`] at `to` when `from == to`, a history
/// over `[from, to)` for backfill otherwise.
pub(crate) fn ranged_request(
    target: &WabaTarget,
    from: i64,
    to: i64,
    with_cost: bool,
) -> GraphRequest {
    let mut fields = vec![analytics_field(target, from, to)];
    if let Some(pricing) = &target.pricing {
        fields.push(billing_field(pricing, from, to, with_cost));
    }
    if let Some(conversations) = &target.conversations {
        fields.push(billing_field(conversations, from, to, with_cost));
    }
    fields.push("name".to_owned());
    fields.push("currency".to_owned());
    GraphRequest::whatsapp_analytics(&target.id, fields.join(","))
}

/// `analytics`, from the start of the last complete bucket to now: that bucket plus the
/// partial one. The phone number and country filters narrow what is counted; the API sums
/// over them.
fn analytics_field(target: &WabaTarget, from: i64, now: i64) -> String {
    let start = last_complete_bucket(target.granularity, from).start;
    let mut field = format!(
        "analytics.start({start}).end({now}).granularity({})",
        target.granularity.as_str()
    );
    push_list(&mut field, "phone_numbers", &target.phone_numbers);
    push_list(&mut field, "country_codes", &target.country_codes);
    field
}

/// `pricing_analytics` or `conversation_analytics` over the same window, broken down by the
/// configured dimensions.
fn billing_field(billing: &BillingAnalytics, from: i64, now: i64, with_cost: bool) -> String {
    let start = last_complete_bucket(billing.granularity.calendar(), from).start;
    let mut field = format!(
        "{}.start({start}).end({now}).granularity({})",
        billing.field.field_name(),
        billing.granularity.as_str()
    );
    // Pricing answers volume and (where Meta has it) cost unasked; conversations answer only
    // the count unless cost is asked for, and asking a partner-billed account for it fails
    // the whole read.
    if billing.field == BillingField::Conversations && with_cost {
        push_list(
            &mut field,
            "metric_types",
            &["CONVERSATION".to_owned(), "COST".to_owned()],
        );
    }
    push_list(&mut field, "dimensions", &billing.dimensions);
    for (filter, values) in &billing.filters {
        push_list(&mut field, filter, values);
    }
    field
}

/// Appends `.name(["a","b"])` when `values` is not empty. Values are validated to digits or
/// upper-case API names, so they need no escaping inside the quotes.
fn push_list(field: &mut String, name: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let quoted: Vec<String> = values.iter().map(|value| format!("\"{value}\"")).collect();
    field.push_str(&format!(".{name}([{}])", quoted.join(",")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BillingGranularity, Credentials, Granularity, Schedule};
    use crate::secret::AccessToken;
    use std::time::Duration;

    fn target() -> WabaTarget {
        WabaTarget {
            id: "9".into(),
            credentials: Credentials {
                token: AccessToken::new("t"),
                file: None,
            },
            schedule: Schedule {
                interval: Duration::from_secs(900),
                stale_after: Duration::from_secs(2700),
            },
            granularity: Granularity::HalfHour,
            phone_numbers: vec!["15551234".into()],
            country_codes: vec!["US".into(), "BR".into()],
            pricing: Some(BillingAnalytics {
                field: BillingField::Pricing,
                granularity: BillingGranularity::HalfHour,
                dimensions: vec!["PRICING_CATEGORY".into(), "COUNTRY".into()],
                filters: vec![("pricing_types", vec!["REGULAR".into()])],
            }),
            conversations: Some(BillingAnalytics {
                field: BillingField::Conversations,
                granularity: BillingGranularity::HalfHour,
                dimensions: vec!["CONVERSATION_TYPE".into()],
                filters: Vec::new(),
            }),
            templates: None,
            phone_numbers_health: true,
            origin: crate::config::Origin::Static,
        }
    }

    #[test]
    fn one_read_carries_every_field_with_its_window_dimensions_and_filters() {
        let request = request(&target(), 4000, true, "v27.0");
        assert_eq!(request.path, "9");
        assert_eq!(
            request.query[0].1,
            "analytics.start(1800).end(4000).granularity(HALF_HOUR).phone_numbers([\"15551234\"]).country_codes([\"US\",\"BR\"]),\
             pricing_analytics.start(1800).end(4000).granularity(HALF_HOUR).dimensions([\"PRICING_CATEGORY\",\"COUNTRY\"]).pricing_types([\"REGULAR\"]),\
             conversation_analytics.start(1800).end(4000).granularity(HALF_HOUR).metric_types([\"CONVERSATION\",\"COST\"]).dimensions([\"CONVERSATION_TYPE\"]),\
             name,currency,whatsapp_business_manager_messaging_limit,health_status"
        );
    }

    #[test]
    fn an_account_without_costs_is_not_asked_for_conversation_cost() {
        let request = request(&target(), 4000, false, "v27.0");
        assert!(!request.query[0].1.contains("metric_types"));
        let mut bare = target();
        bare.pricing = None;
        bare.conversations = None;
        assert_eq!(
            super::request(&bare, 4000, true, "v23.0").query[0].1,
            "analytics.start(1800).end(4000).granularity(HALF_HOUR).phone_numbers([\"15551234\"]).country_codes([\"US\",\"BR\"]),name,currency,messaging_limit_tier,health_status",
            "before v24.0 the limit is asked as messaging_limit_tier"
        );
    }
}
