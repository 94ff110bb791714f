//! Marketing-message campaign insights (`GET /{campaign-id}/insights`) to gauges.
//!
//! The body is `{"data":[{<field>: "<decimal string>", ..., "date_start", "date_stop"}]}`.
//! Each requested field present in the row becomes `meta_<field>` with label `campaign_id`
//! and the date selection (`date_preset`, or `since` and `until`), so two targets for one
//! campaign over different dates do not collide.
//!
//! Values are exported as Meta reports them. Rates are percentages, not ratios, and are never
//! clamped or rejected above 100: reads and clicks counted in a range can outnumber its
//! deliveries (Meta's own example shows a read rate of 481.818182). A documented field (a
//! count, percentage or cost) with a negative value is an unusable value.
//!
//! An empty `data` array is no data, not zero and not an error: Meta answers it for a range
//! without deliveries, and since 2026-08 also for a breakdown the ad account has not opted in
//! to. It converts to [`Converted::no_data()`], so a campaign that had rows keeps them until
//! they go stale and one that never had any exports nothing.

use serde_json::Value;

use super::{parse_non_negative, parse_number, Converted, ShapeError, ValueProblem};
use crate::catalog;
use crate::config::CampaignDates;
use crate::exposition::{Family, Sample};

/// Converts one campaign (or ad-account) insights response for the `fields` that were
/// requested; the object's id goes in label `id_label` (`campaign_id` or `ad_account_id`).
pub fn convert(
    id_label: &str,
    campaign_id: &str,
    dates: &CampaignDates,
    fields: &[String],
    body: &Value,
) -> Result<Converted, ShapeError> {
    let rows = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ShapeError("campaign insights body has no `data` array".into()))?;
    // Several rows appear only with a time increment; the most recent one is the current value.
    let row = rows.iter().filter_map(Value::as_object).max_by(|a, b| {
        let stop = |row: &serde_json::Map<String, Value>| {
            row.get("date_stop")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        stop(a).cmp(&stop(b))
    });
    let Some(row) = row else {
        return Ok(Converted::no_data());
    };
    let mut converted = Converted::default();

    let mut labels = vec![(id_label.to_owned(), campaign_id.to_owned())];
    match dates {
        CampaignDates::Preset(preset) => labels.push(("date_preset".to_owned(), preset.clone())),
        CampaignDates::Range { since, until } => {
            labels.push(("since".to_owned(), since.to_string()));
            labels.push(("until".to_owned(), until.to_string()));
        }
    }
    for field in fields {
        let Some(value) = row.get(field) else {
            continue;
        };
        let read = if catalog::campaign_field_is_non_negative(field) {
            parse_non_negative
        } else {
            parse_number
        };
        match read(value) {
            Ok(number) => converted.families.push(Family {
                name: catalog::gauge_name(field),
                help: catalog::campaign_field_help(field),
                samples: vec![Sample {
                    labels: labels.clone(),
                    value: number,
                }],
            }),
            Err(reason) => converted.problems.push(ValueProblem {
                reason,
                detail: format!("field {field}"),
            }),
        }
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_requested_fields_are_exported_with_the_date_labels() {
        let body = json!({"data": [{"marketing_messages_spend": "38.87", "marketing_messages_delivered": "2755", "date_start": "2024-05-01", "date_stop": "2025-07-29"}]});
        let dates = CampaignDates::Range {
            since: chrono::NaiveDate::from_ymd_opt(2024, 5, 1).expect("date"),
            until: chrono::NaiveDate::from_ymd_opt(2025, 7, 29).expect("date"),
        };
        let converted = convert(
            "campaign_id",
            "7",
            &dates,
            &["marketing_messages_spend".into()],
            &body,
        )
        .expect("shape");
        assert_eq!(converted.families.len(), 1);
        let sample = &converted.families[0].samples[0];
        assert_eq!(sample.value, 38.87);
        assert_eq!(
            sample.labels,
            vec![
                ("campaign_id".to_owned(), "7".to_owned()),
                ("since".to_owned(), "2024-05-01".to_owned()),
                ("until".to_owned(), "2025-07-29".to_owned()),
            ]
        );
    }

    #[test]
    fn no_rows_is_no_data_rather_than_zero_or_an_error() {
        let converted = convert(
            "campaign_id",
            "7",
            &CampaignDates::Preset("last_30d".into()),
            &["marketing_messages_spend".into()],
            &json!({"data": [], "paging": {"cursors": {"before": "MAZDZD", "after": "MAZDZD"}}}),
        )
        .expect("shape");
        assert_eq!(converted, Converted::no_data());
    }

    /// Meta's "Viewing metrics" example: reads and clicks counted in the range outnumber its
    /// deliveries, so both rates are above 100 and must come out as they are.
    #[test]
    fn rates_above_100_are_exported_as_meta_reports_them() {
        let fields: Vec<String> = [
            "marketing_messages_read_rate",
            "marketing_messages_link_btn_click_rate",
        ]
        .map(String::from)
        .into();
        let body = json!({"data": [{
            "marketing_messages_read_rate": "481.818182",
            "marketing_messages_link_btn_click_rate": "107.272727",
            "date_start": "2025-06-01",
            "date_stop": "2025-06-30"
        }]});
        let converted = convert(
            "ad_account_id",
            "act_7",
            &CampaignDates::Preset("last_30d".into()),
            &fields,
            &body,
        )
        .expect("shape");
        assert!(converted.problems.is_empty(), "{:?}", converted.problems);
        assert!(!converted.no_data);
        let values: Vec<(&str, f64)> = converted
            .families
            .iter()
            .map(|f| (f.name.as_str(), f.samples[0].value))
            .collect();
        assert_eq!(
            values,
            [
                ("meta_marketing_messages_read_rate", 481.818182),
                ("meta_marketing_messages_link_btn_click_rate", 107.272727)
            ]
        );
    }

    /// Found by `campaign_conversion_never_panics_and_emits_one_sample_per_usable_field`: a
    /// negative spend was exported as it came.
    #[test]
    fn every_kind_of_unusable_field_is_a_problem_and_the_other_fields_are_kept() {
        let fields: Vec<String> = [
            "marketing_messages_spend",
            "marketing_messages_delivered",
            "marketing_messages_read_rate",
            "marketing_messages_link_btn_click",
            "marketing_messages_cost_per_delivered",
            "marketing_messages_link_btn_click_rate",
            "marketing_messages_future_delta",
        ]
        .map(String::from)
        .into();
        let body = json!({"data": [{
            "marketing_messages_spend": "-1.5",
            "marketing_messages_delivered": "NaN",
            "marketing_messages_read_rate": "1e999",
            "marketing_messages_link_btn_click": "",
            "marketing_messages_cost_per_delivered": null,
            "marketing_messages_link_btn_click_rate": "12.5",
            "marketing_messages_future_delta": "-2"
        }]});
        let converted = convert(
            "campaign_id",
            "7",
            &CampaignDates::Preset("last_30d".into()),
            &fields,
            &body,
        )
        .expect("shape");
        let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
        assert_eq!(
            reasons,
            [
                "negative",
                "not_finite",
                "not_finite",
                "empty_string",
                "null"
            ]
        );
        let values: Vec<(&str, f64)> = converted
            .families
            .iter()
            .map(|f| (f.name.as_str(), f.samples[0].value))
            .collect();
        // A field the catalog does not know is taken as the API gives it.
        assert_eq!(
            values,
            [
                ("meta_marketing_messages_link_btn_click_rate", 12.5),
                ("meta_marketing_messages_future_delta", -2.0)
            ]
        );
    }

    #[test]
    fn an_empty_string_value_is_a_problem_not_a_zero() {
        let converted = convert(
            "campaign_id",
            "7",
            &CampaignDates::Preset("last_30d".into()),
            &["marketing_messages_spend".into()],
            &json!({"data": [{"marketing_messages_spend": ""}]}),
        )
        .expect("shape");
        assert!(converted.families.is_empty());
        assert_eq!(converted.problems[0].reason, "empty_string");
    }
}
