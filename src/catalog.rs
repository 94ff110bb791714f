//! The names Meta documents for the three read paths, and what each number means.
//!
//! This module owns the vocabulary taken from the reference documents: the 11 Page messaging
//! metrics and the breakdowns each accepts, the marketing-message campaign fields, the campaign
//! date presets, and the HELP text of every gauge built from them. Config validation uses it to
//! warn about names Meta does not list (Meta adds names faster than we release, so an unknown
//! name is a warning, not an error), conversion uses it for HELP text, and the simulator uses it
//! to answer like the real API. [`versions`] holds Meta's API version schedule: the default
//! version, and the day each version stops working in the Graph API and the Marketing API.

pub mod versions;

/// A Page messaging insights metric as documented for `GET /{page-id}/insights`.
#[derive(Debug, Clone, Copy)]
pub struct PageMetricInfo {
    /// The API's metric name; the gauge is named `meta_` + this.
    pub name: &'static str,
    /// What one unit of the value is, for HELP text.
    pub meaning: &'static str,
    /// The breakdown dimensions the reference lists for this metric.
    pub breakdowns: &'static [&'static str],
}

const MARKETING_BREAKDOWNS: &[&str] = &[
    "campaign_id",
    "message_type",
    "messaging_channel",
    "recurring_notifications_topic",
];

/// The 11 documented Page messaging metrics, the default set for a Page target.
pub const PAGE_METRICS: &[PageMetricInfo] = &[
    PageMetricInfo {
        name: "page_messages_blocked_conversations_unique",
        meaning: "Conversations with the Page that people blocked (count)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "page_messages_engagement",
        meaning: "Taps on a call-to-action button of the Page's marketing messages (count)",
        breakdowns: &[
            "campaign_id",
            "engagement_source",
            "message_type",
            "messaging_channel",
            "recurring_notifications_topic",
        ],
    },
    PageMetricInfo {
        name: "page_messages_new_conversations_unique",
        meaning: "Conversations started by people who had never messaged the Page before (count)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "page_messages_order_count",
        meaning: "Orders created in messaging conversations or the apps that manage them (count)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "page_messages_paid_order_earnings",
        meaning: "Approximate earnings from orders created through messaging (currency units of the Page, as the API gives them)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "page_messages_read_ratio",
        meaning: "Marketing messages read divided by marketing messages sent (ratio as the API gives it)",
        breakdowns: MARKETING_BREAKDOWNS,
    },
    PageMetricInfo {
        name: "page_messages_reported_conversations_unique",
        meaning: "Conversations with the Page that people reported, for example as spam (count)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "page_messages_sent",
        meaning: "Marketing messages the Page sent to customers (count)",
        breakdowns: MARKETING_BREAKDOWNS,
    },
    PageMetricInfo {
        name: "page_messages_total_messaging_connections",
        meaning: "People the business can message: everyone who ever messaged the Page, less those who blocked or reported it (count)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "page_messages_with_business_outcomes",
        meaning: "Messaging connections with at least one order created (count)",
        breakdowns: &[],
    },
    PageMetricInfo {
        name: "recurring_notifications_tokens",
        meaning: "Opt-ins to recurring marketing messages minus opt-outs, counted once per topic (count)",
        breakdowns: &[
            "messaging_channel",
            "recurring_notifications_frequency",
            "recurring_notifications_topic",
        ],
    },
];

/// Every breakdown dimension the reference lists for Page messaging insights.
pub const PAGE_BREAKDOWNS: &[&str] = &[
    "campaign_id",
    "engagement_source",
    "message_type",
    "messaging_channel",
    "recurring_notifications_entry_point",
    "recurring_notifications_frequency",
    "recurring_notifications_topic",
];

/// Looks up a documented Page metric by its API name.
pub fn page_metric(name: &str) -> Option<&'static PageMetricInfo> {
    PAGE_METRICS.iter().find(|metric| metric.name == name)
}

/// A marketing-message campaign insights field as documented for `GET /{campaign-id}/insights`.
#[derive(Debug, Clone, Copy)]
pub struct CampaignFieldInfo {
    /// The API's field name; the gauge is named `meta_` + this.
    pub name: &'static str,
    /// What the value is, with its unit, for HELP text.
    pub meaning: &'static str,
    /// Whether a campaign target asks for it when the config lists no fields.
    pub default: bool,
}

/// The documented campaign insights fields. `marketing_messages_delivery_rate` appears only in
/// the reference's example response, so it is known (no warning) but not requested by default.
pub const CAMPAIGN_FIELDS: &[CampaignFieldInfo] = &[
    CampaignFieldInfo {
        name: "marketing_messages_cost_per_delivered",
        meaning: "Average cost per delivered marketing message (account currency units)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_cost_per_link_btn_click",
        meaning: "Average cost per link or button click; excludes Europe, Argentina, Turkey, South Korea and Japan (account currency units)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_delivered",
        meaning: "Marketing messages sent and delivered; excludes Europe and Japan, may be estimated (count)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_link_btn_click",
        meaning: "Taps on a link or button leading to an advertiser destination (count)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_link_btn_click_rate",
        meaning: "Link or button clicks per delivered message (percent as Meta reports it, not clamped: above 100 when clicks outnumber deliveries)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_read_rate",
        meaning: "Read messages divided by delivered messages; reads with receipts off are missed (percent as Meta reports it, not clamped: Meta shows values above 100)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_spend",
        meaning: "Total spend of the campaign over the selected dates (account currency units)",
        default: true,
    },
    CampaignFieldInfo {
        name: "marketing_messages_delivery_rate",
        meaning: "Delivered messages divided by sent messages (percent as Meta reports it, not clamped)",
        default: false,
    },
];

/// Looks up a documented campaign field by its API name.
pub fn campaign_field(name: &str) -> Option<&'static CampaignFieldInfo> {
    CAMPAIGN_FIELDS.iter().find(|field| field.name == name)
}

/// The `date_preset` values the campaign insights reference accepts.
pub const DATE_PRESETS: &[&str] = &[
    "today",
    "yesterday",
    "this_month",
    "last_month",
    "this_quarter",
    "maximum",
    "data_maximum",
    "last_3d",
    "last_7d",
    "last_14d",
    "last_28d",
    "last_30d",
    "last_90d",
    "last_week_mon_sun",
    "last_week_sun_sat",
    "last_quarter",
    "last_year",
    "this_week_mon_today",
    "this_week_sun_today",
    "this_year",
];

/// The campaign `date_preset` Meta applies when none is given.
pub const DEFAULT_DATE_PRESET: &str = "last_30d";

/// The gauge name for an API metric or field: `meta_` + the API's name, so users find Meta's
/// documentation under the same words. Prometheus reserves the suffixes `_count`, `_sum` and
/// `_bucket` for histogram and summary series (a gauge named so is flagged by `promtool check
/// metrics` and misread by queries that expect a histogram), so such names get `_value`
/// appended: `page_messages_order_count` becomes `meta_page_messages_order_count_value`.
pub fn gauge_name(api_name: &str) -> String {
    let name = format!("meta_{api_name}");
    if ["_count", "_sum", "_bucket"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        name + "_value"
    } else {
        name
    }
}

/// Documented Page metrics whose value can be below zero: a net count (opt-ins minus opt-outs)
/// and an amount of money, which refunds may take below zero. Every other documented Page
/// metric is a count or a ratio.
const SIGNED_PAGE_METRICS: &[&str] = &[
    "recurring_notifications_tokens",
    "page_messages_paid_order_earnings",
];

/// Whether a negative value of this Page metric is a fault in the response: true for the
/// documented counts and ratios, false for signed metrics and for names the catalog does not
/// know (their meaning, and so their range, is unknown).
pub fn page_metric_is_non_negative(name: &str) -> bool {
    page_metric(name).is_some() && !SIGNED_PAGE_METRICS.contains(&name)
}

/// Whether a negative value of this campaign field is a fault in the response: true for every
/// documented field (counts, percentages and costs), false for names the catalog does not know.
pub fn campaign_field_is_non_negative(name: &str) -> bool {
    campaign_field(name).is_some()
}

/// HELP text for a Page metric gauge, known or not.
pub fn page_metric_help(name: &str) -> String {
    let meaning = page_metric(name)
        .map(|metric| metric.meaning)
        .unwrap_or("Page insights metric not in the exporter's catalog (unit as the API gives it)");
    format!(
        "{meaning}. Graph API Page insights metric {name}, value with the latest end_time for the period in the period label; from a background poll, not fetched at scrape time."
    )
}

/// HELP text for a campaign field gauge, known or not.
pub fn campaign_field_help(name: &str) -> String {
    let meaning = campaign_field(name).map(|field| field.meaning).unwrap_or(
        "Campaign insights field not in the exporter's catalog (unit as the API gives it)",
    );
    format!(
        "{meaning}. Graph API marketing-message campaign insights field {name} over the dates in the date labels; from a background poll, not fetched at scrape time."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_page_metric_is_listed_once() {
        assert_eq!(PAGE_METRICS.len(), 11);
        for metric in PAGE_METRICS {
            assert_eq!(
                PAGE_METRICS
                    .iter()
                    .filter(|m| m.name == metric.name)
                    .count(),
                1
            );
            for breakdown in metric.breakdowns {
                assert!(PAGE_BREAKDOWNS.contains(breakdown), "{breakdown}");
            }
        }
    }

    #[test]
    fn gauge_names_avoid_the_suffixes_prometheus_reserves_for_histograms() {
        assert_eq!(gauge_name("page_messages_sent"), "meta_page_messages_sent");
        assert_eq!(
            gauge_name("page_messages_order_count"),
            "meta_page_messages_order_count_value"
        );
        assert_eq!(gauge_name("some_sum"), "meta_some_sum_value");
        assert_eq!(gauge_name("x_bucket"), "meta_x_bucket_value");
        assert_eq!(gauge_name("discount"), "meta_discount");
    }

    #[test]
    fn only_counts_ratios_and_costs_are_declared_non_negative() {
        assert!(page_metric_is_non_negative("page_messages_sent"));
        assert!(page_metric_is_non_negative("page_messages_read_ratio"));
        assert!(!page_metric_is_non_negative(
            "recurring_notifications_tokens"
        ));
        assert!(!page_metric_is_non_negative(
            "page_messages_paid_order_earnings"
        ));
        assert!(!page_metric_is_non_negative("page_fans_country"));
        for signed in SIGNED_PAGE_METRICS {
            assert!(page_metric(signed).is_some(), "{signed} is documented");
        }
        assert!(campaign_field_is_non_negative("marketing_messages_spend"));
        assert!(!campaign_field_is_non_negative("marketing_messages_future"));
    }

    #[test]
    fn seven_campaign_fields_are_requested_by_default() {
        assert_eq!(CAMPAIGN_FIELDS.iter().filter(|f| f.default).count(), 7);
        assert!(DATE_PRESETS.contains(&DEFAULT_DATE_PRESET));
    }
}
