//! Message templates of a WhatsApp Business Account and their analytics: the edges
//! `GET /{version}/{waba-id}/message_templates` and `GET /{version}/{waba-id}/template_analytics`.
//!
//! Owns the account's template list and everything Meta says about a template. Every
//! simulated account has the same four templates, with ids derived from the account id:
//! `order_update` (UTILITY, en_US), `spring_sale` (MARKETING, en_US, with a quick-reply button
//! "Contact Support" and a URL button "Tell me more"), `login_code` (AUTHENTICATION, pt_BR),
//! all APPROVED, and `winter_promo` (MARKETING, en_US) still PENDING; a test can ask for more
//! APPROVED ones (`FakeGraphApi::set_template_count`). The list pages like every list edge.
//!
//! Template analytics follow Meta's rules: UTC days (start moved back to 00:00 UTC; the day
//! containing `end` is included unless `end` is exactly a midnight, so `end=now` includes
//! today's partial day), 90 days of lookback, at most 10 template ids a call, only the
//! requested metric types, click counts only for templates with buttons, and read ≤ delivered
//! ≤ sent. Read and click counts of a day keep creeping up for a while after it (late read
//! receipts) and are final after a week. Accounts where Meta does not serve them answer the
//! errors of [`TemplateAnalytics`].

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::generate::{self, Activity, Seed, DAY};
use super::http::ReadContext;
use super::paging;
use super::waba;
use super::whatsapp_billing;
use super::WhatsAppSettings;

/// Whether Meta serves template analytics for a WhatsApp Business Account
/// (`FakeGraphApi::set_template_analytics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TemplateAnalytics {
    /// Served (the default).
    #[default]
    Enabled,
    /// Not confirmed for the account yet: `template_analytics` answers HTTP 400, code 100,
    /// `(#100) Template analytics is not enabled for this WhatsApp Business Account. Confirm it
    /// in WhatsApp Manager or with is_enabled_for_insights=true`. Confirming is irreversible,
    /// so an exporter must report this rather than confirm.
    NotEnabled,
    /// The business is in the EU, the UK or Japan, where Meta does not offer template
    /// analytics: HTTP 400, code 100, `(#100) Template analytics is not available for WhatsApp
    /// Business Accounts of businesses in the EU, UK or Japan`.
    RegionUnavailable,
}

/// The most template ids one `template_analytics` call may name.
const MAX_TEMPLATE_IDS: usize = 10;
/// How many days back template analytics reach.
const LOOKBACK_DAYS: i64 = 90;
/// The metric types of `template_analytics`, in the order Meta lists them.
const METRIC_TYPES: [&str; 5] = ["SENT", "DELIVERED", "READ", "CLICKED", "COST"];
/// The fields of a template this simulation serves.
const TEMPLATE_FIELDS: [&str; 6] = ["id", "name", "language", "category", "status", "components"];
/// Graph's default fields for `message_templates`.
const DEFAULT_TEMPLATE_FIELDS: [&str; 6] =
    ["name", "components", "language", "status", "category", "id"];
/// The cursors of a `template_analytics` answer, as in Meta's example.
const CURSORS: (&str, &str) = ("MAZDZD", "MjQZD");
/// The share of a day's reads and clicks still to come when the day ends.
const LATE_SHARE: f64 = 0.1;

/// A button of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Button {
    /// A quick-reply button with this text.
    QuickReply(&'static str),
    /// A URL button with this text.
    Url(&'static str),
}

/// One message template of an account.
#[derive(Clone, Debug)]
struct Template {
    id: String,
    name: String,
    language: &'static str,
    category: &'static str,
    status: &'static str,
    buttons: Vec<Button>,
}

impl Template {
    fn new(
        waba: &str,
        name: &str,
        (language, category, status): (&'static str, &'static str, &'static str),
        buttons: Vec<Button>,
    ) -> Template {
        Template {
            id: template_id(waba, name),
            name: name.to_owned(),
            language,
            category,
            status,
            buttons,
        }
    }

    fn has_url_button(&self) -> bool {
        self.buttons
            .iter()
            .any(|button| matches!(button, Button::Url(_)))
    }

    /// Field `field` (one of [`TEMPLATE_FIELDS`]).
    fn property(&self, field: &str) -> Value {
        match field {
            "id" => json!(self.id),
            "name" => json!(self.name),
            "language" => json!(self.language),
            "category" => json!(self.category),
            "status" => json!(self.status),
            "components" => self.components(),
            _ => Value::Null,
        }
    }

    /// The template's body and buttons, in the shape of Graph's `components`.
    fn components(&self) -> Value {
        let mut components = vec![json!({
            "type": "BODY",
            "text": format!("Simulated {} message ({}).", self.category.to_lowercase(), self.name),
        })];
        if !self.buttons.is_empty() {
            let buttons: Vec<Value> = self
                .buttons
                .iter()
                .map(|button| match button {
                    Button::QuickReply(text) => json!({ "type": "QUICK_REPLY", "text": text }),
                    Button::Url(text) => {
                        json!({ "type": "URL", "text": text, "url": "https://example.com/{{1}}" })
                    }
                })
                .collect();
            components.push(json!({ "type": "BUTTONS", "buttons": buttons }));
        }
        Value::Array(components)
    }
}

/// The id of template `name` of account `waba`: 16 digits, like Meta's.
fn template_id(waba: &str, name: &str) -> String {
    Seed::of(&[waba, "template", name]).object_id(16)
}

/// The templates of account `waba`, in the order `message_templates` lists them.
fn account_templates(waba: &str, settings: &WhatsAppSettings) -> Vec<Template> {
    const APPROVED_EN: (&str, &str, &str) = ("en_US", "UTILITY", "APPROVED");
    let defaults = [
        Template::new(waba, "order_update", APPROVED_EN, Vec::new()),
        Template::new(
            waba,
            "spring_sale",
            ("en_US", "MARKETING", "APPROVED"),
            vec![
                Button::QuickReply("Contact Support"),
                Button::Url("Tell me more"),
            ],
        ),
        Template::new(
            waba,
            "login_code",
            ("pt_BR", "AUTHENTICATION", "APPROVED"),
            Vec::new(),
        ),
    ];
    let approved = settings.approved_templates.unwrap_or(defaults.len());
    let mut templates: Vec<Template> = defaults.into_iter().take(approved).collect();
    templates.push(Template::new(
        waba,
        "winter_promo",
        ("en_US", "MARKETING", "PENDING"),
        Vec::new(),
    ));
    for number in templates.len()..=approved {
        let category = if number % 2 == 0 {
            "UTILITY"
        } else {
            "MARKETING"
        };
        templates.push(Template::new(
            waba,
            &format!("template_{number}"),
            ("en_US", category, "APPROVED"),
            Vec::new(),
        ));
    }
    templates
}

/// Answers the `message_templates` edge of the account being read.
pub(crate) fn message_templates(context: &ReadContext<'_>) -> Result<Value, GraphError> {
    let requested = paging::list_fields(
        context,
        &DEFAULT_TEMPLATE_FIELDS,
        &TEMPLATE_FIELDS,
        "WhatsAppMessageTemplate",
    )?;
    // Graph's `status` filter, e.g. `status=APPROVED`.
    let statuses: Option<BTreeSet<String>> = context.query.get("status").map(|text| {
        list_parameter(text)
            .into_iter()
            .map(|s| s.to_ascii_uppercase())
            .collect()
    });
    let items = account_templates(context.object_id, context.whatsapp)
        .iter()
        .filter(|template| {
            statuses
                .as_ref()
                .is_none_or(|s| s.contains(template.status))
        })
        .map(|template| {
            let mut item = Map::new();
            for field in &requested {
                item.insert(field.clone(), template.property(field));
            }
            item.insert("id".to_owned(), json!(template.id));
            Value::Object(item)
        })
        .collect();
    paging::page(context, "message_templates", items)
}

/// Answers the `template_analytics` edge of the account being read.
pub(crate) fn template_analytics(context: &ReadContext<'_>) -> Result<Value, GraphError> {
    match context.whatsapp.template_analytics {
        TemplateAnalytics::Enabled => {}
        TemplateAnalytics::NotEnabled => {
            return Err(GraphError::invalid_parameter(
                "Template analytics is not enabled for this WhatsApp Business Account. Confirm \
                 it in WhatsApp Manager or with is_enabled_for_insights=true",
            ))
        }
        TemplateAnalytics::RegionUnavailable => {
            return Err(GraphError::invalid_parameter(
                "Template analytics is not available for WhatsApp Business Accounts of \
                 businesses in the EU, UK or Japan",
            ))
        }
    }
    let templates = account_templates(context.object_id, context.whatsapp);
    let request = AnalyticsRequest::parse(context, &templates)?;
    // Without `metric_types` the default set implies COST, which is then left out instead.
    if request.cost_asked && context.whatsapp.partner_billed {
        return Err(whatsapp_billing::cost_not_available());
    }
    let mut data_points = Vec::new();
    for template in &request.templates {
        for day in request.days(context.now) {
            let day_metrics = DayMetrics::generate(context.object_id, template, day, context.now);
            data_points.push(day_metrics.point(template, day, &request, context.whatsapp));
        }
    }
    Ok(json!({
        "data": [{ "granularity": "DAILY", "data_points": data_points }],
        "paging": { "cursors": { "before": CURSORS.0, "after": CURSORS.1 } },
    }))
}

/// A validated `template_analytics` request.
#[derive(Debug)]
struct AnalyticsRequest<'a> {
    start: i64,
    end: i64,
    /// The metric types to report, from [`METRIC_TYPES`].
    metrics: BTreeSet<&'static str>,
    /// Whether `metric_types` named COST (rather than COST being implied by its absence).
    cost_asked: bool,
    templates: Vec<&'a Template>,
}

impl<'a> AnalyticsRequest<'a> {
    fn parse(
        context: &ReadContext<'_>,
        account: &'a [Template],
    ) -> Result<AnalyticsRequest<'a>, GraphError> {
        let query = context.query;
        let instant = |name: &str| {
            let text = query.get(name).ok_or_else(|| {
                GraphError::invalid_parameter(format_args!("The parameter {name} is required"))
            })?;
            waba::timestamp(text.trim()).ok_or_else(|| {
                GraphError::invalid_parameter(format_args!(
                    "{name} must be unix seconds, got {text}"
                ))
            })
        };
        let (start, end) = (instant("start")?, instant("end")?);
        if start >= end {
            return Err(GraphError::invalid_parameter("start must be before end"));
        }
        match query.get("granularity").map(str::trim) {
            Some(granularity) if granularity.eq_ignore_ascii_case("DAILY") => {}
            Some(_) => {
                return Err(GraphError::invalid_parameter(
                    "granularity must be one of the following values: DAILY",
                ))
            }
            None => {
                return Err(GraphError::invalid_parameter(
                    "The parameter granularity is required",
                ))
            }
        }
        let (metrics, cost_asked) = match query.get("metric_types") {
            None => (METRIC_TYPES.into_iter().collect(), false),
            Some(text) => {
                let mut metrics = BTreeSet::new();
                for item in list_parameter(text) {
                    let known = METRIC_TYPES
                        .into_iter()
                        .find(|known| known.eq_ignore_ascii_case(&item))
                        .ok_or_else(|| {
                            GraphError::invalid_parameter(format_args!(
                                "metric_types must be among {}: got {item}",
                                METRIC_TYPES.join(", ")
                            ))
                        })?;
                    metrics.insert(known);
                }
                let cost_asked = metrics.contains("COST");
                (metrics, cost_asked)
            }
        };
        let ids = query
            .get("template_ids")
            .map(list_parameter)
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(GraphError::invalid_parameter(
                "The parameter template_ids is required",
            ));
        }
        let mut templates: Vec<&Template> = Vec::new();
        for id in &ids {
            let template = account
                .iter()
                .find(|template| template.id == *id)
                .ok_or_else(|| {
                    GraphError::invalid_parameter(format_args!(
                        "template_ids: unknown template id {id}"
                    ))
                })?;
            if !templates.iter().any(|seen| seen.id == template.id) {
                templates.push(template);
            }
        }
        if templates.len() > MAX_TEMPLATE_IDS {
            return Err(GraphError::invalid_parameter(format_args!(
                "template_ids: at most {MAX_TEMPLATE_IDS} ids"
            )));
        }
        Ok(AnalyticsRequest {
            start,
            end,
            metrics,
            cost_asked,
            templates,
        })
    }

    /// The UTC days reported at `now`: from the one containing `start` (within the lookback)
    /// to the one containing `end` (excluded if `end` is its midnight) or `now`, whichever
    /// comes first.
    fn days(&self, now: i64) -> impl Iterator<Item = i64> {
        let earliest = (now.div_euclid(DAY) - LOOKBACK_DAYS) * DAY;
        let first = (self.start.div_euclid(DAY) * DAY).max(earliest);
        let end = self.end;
        (0..=LOOKBACK_DAYS + 1)
            .map(move |n| first + n * DAY)
            .take_while(move |&day| day < end && day <= now)
    }

    fn wants(&self, metric: &str) -> bool {
        self.metrics.contains(metric)
    }
}

/// What one template did on one UTC day.
#[derive(Debug)]
struct DayMetrics {
    sent: i64,
    delivered: i64,
    read: i64,
    /// `(type, button text, count)` of each click counter.
    clicks: Vec<(&'static str, &'static str, i64)>,
    /// All URL-button clicks, for the cost per click.
    url_clicks: i64,
}

impl DayMetrics {
    /// The day starting at `day` (UTC midnight) of `template` of account `waba`, at `now`.
    fn generate(waba: &str, template: &Template, day: i64, now: i64) -> DayMetrics {
        let seed = Seed::of(&[waba, "template_analytics", &template.id]);
        let per_day = match (template.status, template.category) {
            ("APPROVED", "MARKETING") => (150.0, 900.0),
            ("APPROVED", "AUTHENTICATION") => (80.0, 500.0),
            ("APPROVED", _) => (200.0, 1500.0),
            // Templates that are not approved cannot be sent.
            _ => (0.0, 0.0),
        };
        let daily = seed.with_time(day);
        let expected = Activity::new(seed, per_day).expected(day, (day + DAY).min(now));
        let sent = generate::count(expected * daily.with("noise").between(0.7, 1.3));
        let delivered = share(sent, daily.with("delivered").between(0.88, 0.99));
        // Read receipts and clicks arrive for a while after the day ends.
        let settled = generate::settled(day + DAY, now, LATE_SHARE);
        let read = share(delivered, daily.with("read").between(0.45, 0.85) * settled);
        let mut clicks = Vec::new();
        let mut url_clicks = 0;
        for button in &template.buttons {
            match *button {
                Button::QuickReply(text) => {
                    let rate = daily.with(text).between(0.08, 0.35);
                    clicks.push(("quick_reply_button", text, share(read, rate)));
                }
                Button::Url(text) => {
                    let all = share(read, daily.with(text).between(0.04, 0.15));
                    let unique = share(all, daily.with("unique").between(0.6, 0.95));
                    clicks.push(("url_button", text, all));
                    clicks.push(("unique_url_button", text, unique));
                    url_clicks += all;
                }
            }
        }
        DayMetrics {
            sent,
            delivered,
            read,
            clicks,
            url_clicks,
        }
    }

    /// The data point of this day, with the metric types `request` asks for.
    fn point(
        &self,
        template: &Template,
        day: i64,
        request: &AnalyticsRequest<'_>,
        settings: &WhatsAppSettings,
    ) -> Value {
        let mut point = Map::new();
        point.insert("template_id".to_owned(), json!(template.id));
        point.insert("start".to_owned(), json!(day));
        point.insert("end".to_owned(), json!(day + DAY));
        for (metric, key, value) in [
            ("SENT", "sent", self.sent),
            ("DELIVERED", "delivered", self.delivered),
            ("READ", "read", self.read),
        ] {
            if request.wants(metric) {
                point.insert(key.to_owned(), json!(value));
            }
        }
        if request.wants("CLICKED") && !self.clicks.is_empty() {
            let clicked: Vec<Value> = self
                .clicks
                .iter()
                .map(|(kind, text, count)| {
                    json!({ "type": kind, "button_content": text, "count": count })
                })
                .collect();
            point.insert("clicked".to_owned(), Value::Array(clicked));
        }
        // A partner-billed account has no cost to report (asked for, it is an error earlier).
        if request.wants("COST") && !settings.partner_billed {
            let rate = whatsapp_billing::rate(template.category, "US");
            let spent = self.delivered as f64 * rate;
            let per = |count: i64| {
                if count > 0 {
                    generate::round_to(spent / count as f64, 4)
                } else {
                    0.0
                }
            };
            let mut cost = vec![
                json!({ "type": "amount_spent", "value": generate::round_to(spent, 4) }),
                json!({ "type": "cost_per_delivered", "value": per(self.delivered) }),
            ];
            if template.has_url_button() {
                cost.push(
                    json!({ "type": "cost_per_url_button_click", "value": per(self.url_clicks) }),
                );
            }
            point.insert("cost".to_owned(), Value::Array(cost));
        }
        Value::Object(point)
    }
}

/// `fraction` of `count`, rounded down, so that a part never exceeds its whole.
fn share(count: i64, fraction: f64) -> i64 {
    ((count as f64 * fraction.clamp(0.0, 1.0)).floor() as i64).clamp(0, count)
}

/// The items of a list-valued query parameter, written as `A,B`, `[A,B]` or `["A","B"]`.
fn list_parameter(text: &str) -> Vec<String> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(text);
    text.split(',')
        .map(|item| item.trim().trim_matches(['"', '\'']).trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::http::{with_settings, TEST_TOKEN};

    /// 2024-06-15 19:17 UTC.
    const NOW: i64 = 1_718_479_020;
    /// 2024-06-15 00:00 UTC.
    const TODAY: i64 = 1_718_409_600;
    const WABA: &str = "waba-77";

    fn ids(settings: &WhatsAppSettings) -> Vec<(String, String)> {
        account_templates(WABA, settings)
            .into_iter()
            .map(|template| (template.name, template.id))
            .collect()
    }

    fn id_of(name: &str) -> String {
        template_id(WABA, name)
    }

    fn analytics(query: &str, settings: &WhatsAppSettings) -> Result<Value, GraphError> {
        with_settings(WABA, query, NOW, settings, template_analytics)
    }

    fn points(query: &str) -> Vec<Value> {
        let body = analytics(query, &WhatsAppSettings::default())
            .unwrap_or_else(|error| panic!("{query}: {error:?}"));
        assert_eq!(body["data"][0]["granularity"], "DAILY");
        body["data"][0]["data_points"]
            .as_array()
            .expect("points")
            .clone()
    }

    #[test]
    fn default_templates_are_four_with_stable_numeric_ids() {
        let templates = ids(&WhatsAppSettings::default());
        let names: Vec<&str> = templates.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            ["order_update", "spring_sale", "login_code", "winter_promo"]
        );
        for (_, id) in &templates {
            assert!(
                id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
        }
        assert_eq!(templates, ids(&WhatsAppSettings::default()));
        assert_ne!(templates[0].1, template_id("another-waba", "order_update"));
        let body = with_settings(
            WABA,
            "fields=id,name,language,category,status",
            NOW,
            &WhatsAppSettings::default(),
            message_templates,
        )
        .expect("templates");
        assert_eq!(
            body["data"][1],
            json!({ "id": id_of("spring_sale"), "name": "spring_sale", "language": "en_US",
                    "category": "MARKETING", "status": "APPROVED" })
        );
        assert_eq!(body["data"][2]["language"], "pt_BR");
        assert_eq!(body["data"][3]["status"], "PENDING");
        assert!(body["paging"].get("next").is_none());
    }

    #[test]
    fn many_templates_page_with_the_token_in_next() {
        let settings = WhatsAppSettings {
            approved_templates: Some(40),
            ..WhatsAppSettings::default()
        };
        let query = "fields=id,name,status";
        let first = with_settings(WABA, query, NOW, &settings, message_templates).expect("a page");
        assert_eq!(first["data"].as_array().map(Vec::len), Some(25));
        let next = first["paging"]["next"].as_str().expect("a next link");
        assert!(
            next.starts_with(&format!(
                "http://127.0.0.1:9/v27.0/{WABA}/message_templates?"
            )) && next.contains(&format!("access_token={TEST_TOKEN}")),
            "{next}"
        );
        let after = first["paging"]["cursors"]["after"]
            .as_str()
            .expect("a cursor");
        let second = with_settings(
            WABA,
            &format!("{query}&after={after}"),
            NOW,
            &settings,
            message_templates,
        )
        .expect("a page");
        let rest = second["data"].as_array().expect("data");
        assert_eq!(rest.len(), 16, "40 approved and one pending");
        assert!(second["paging"].get("next").is_none());
        let approved = first["data"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(rest)
            .filter(|t| t["status"] == "APPROVED")
            .count();
        assert_eq!(approved, 40);
        assert_eq!(
            rest.last().map(|t| t["name"].clone()),
            Some(json!("template_40"))
        );
    }

    #[test]
    fn template_analytics_cover_utc_days_up_to_now() {
        let ids = format!("[{},{}]", id_of("order_update"), id_of("spring_sale"));
        // From 2024-06-12 05:00 UTC to tomorrow: 12th, 13th, 14th and the partial 15th.
        let query = format!(
            "start={}&end={}&granularity=DAILY&metric_types=SENT,DELIVERED,READ&template_ids={ids}",
            TODAY - 3 * DAY + 5 * 3600,
            TODAY + 2 * DAY
        );
        let points = points(&query);
        assert_eq!(points.len(), 8);
        for point in &points {
            let (start, end) = (
                point["start"].as_i64().expect("start"),
                point["end"].as_i64().expect("end"),
            );
            assert_eq!((start % DAY, end - start), (0, DAY));
            assert!((TODAY - 3 * DAY..=TODAY).contains(&start), "{start}");
            let (sent, delivered, read) = (&point["sent"], &point["delivered"], &point["read"]);
            let number = |v: &Value| v.as_i64().expect("a count");
            assert!(
                number(read) <= number(delivered) && number(delivered) <= number(sent),
                "{point}"
            );
            assert!(
                point.get("clicked").is_none() && point.get("cost").is_none(),
                "{point}"
            );
        }
        let today: Vec<&Value> = points.iter().filter(|p| p["start"] == TODAY).collect();
        let yesterday: Vec<&Value> = points
            .iter()
            .filter(|p| p["start"] == TODAY - DAY)
            .collect();
        assert_eq!((today.len(), yesterday.len()), (2, 2));
        // An end at a midnight excludes that day.
        let query = format!(
            "start={}&end={TODAY}&granularity=DAILY&template_ids={ids}",
            TODAY - DAY
        );
        assert_eq!(self::points(&query).len(), 2);
    }

    #[test]
    fn clicks_only_on_templates_with_buttons_and_cost_by_type() {
        let query = format!(
            r#"start={}&end={NOW}&granularity=DAILY&metric_types=["SENT","CLICKED","COST"]&template_ids=["{}","{}"]"#,
            TODAY - 10 * DAY,
            id_of("spring_sale"),
            id_of("login_code"),
        );
        let points = points(&query);
        assert_eq!(points.len(), 22);
        let mut clicked = 0;
        for point in &points {
            assert!(point.get("delivered").is_none(), "{point}");
            let cost_types: Vec<&str> = point["cost"]
                .as_array()
                .expect("cost")
                .iter()
                .map(|cost| cost["type"].as_str().expect("a type"))
                .collect();
            if point["template_id"] == id_of("spring_sale") {
                let clicks = point["clicked"].as_array().expect("clicks");
                let kinds: Vec<&Value> = clicks.iter().map(|c| &c["type"]).collect();
                assert_eq!(
                    kinds,
                    ["quick_reply_button", "url_button", "unique_url_button"]
                );
                assert_eq!(clicks[0]["button_content"], "Contact Support");
                assert_eq!(clicks[2]["button_content"], "Tell me more");
                assert!(clicks[2]["count"].as_i64() <= clicks[1]["count"].as_i64());
                clicked += clicks[0]["count"].as_i64().unwrap_or(0);
                assert_eq!(
                    cost_types,
                    [
                        "amount_spent",
                        "cost_per_delivered",
                        "cost_per_url_button_click"
                    ]
                );
            } else {
                assert!(point.get("clicked").is_none(), "{point}");
                assert_eq!(cost_types, ["amount_spent", "cost_per_delivered"]);
            }
        }
        assert!(clicked > 0, "nobody clicked in 11 days");
    }

    #[test]
    fn template_ids_are_checked_at_most_ten_and_known() {
        let settings = WhatsAppSettings {
            approved_templates: Some(12),
            ..WhatsAppSettings::default()
        };
        let all: Vec<String> = ids(&settings).into_iter().map(|(_, id)| id).collect();
        let query = |ids: &[String]| {
            format!(
                "start={}&end={NOW}&granularity=DAILY&template_ids=[{}]",
                TODAY - DAY,
                ids.join(",")
            )
        };
        let error = analytics(&query(&all[..11]), &settings).expect_err("eleven ids");
        assert_eq!(
            (error.code, error.message.as_str()),
            (100, "(#100) template_ids: at most 10 ids")
        );
        assert!(analytics(&query(&all[..10]), &settings).is_ok());
        let error = analytics(&query(&["123".to_owned()]), &settings).expect_err("unknown id");
        assert_eq!(error.code, 100);
        for bad in [
            format!(
                "start={TODAY}&end={NOW}&granularity=DAY&template_ids={}",
                all[0]
            ),
            format!("start={TODAY}&end={NOW}&granularity=DAILY"),
            format!(
                "start={NOW}&end={TODAY}&granularity=DAILY&template_ids={}",
                all[0]
            ),
            format!(
                "start={TODAY}&end={NOW}&granularity=DAILY&metric_types=OPENED&template_ids={}",
                all[0]
            ),
        ] {
            assert_eq!(
                analytics(&bad, &settings).map_err(|e| e.code).err(),
                Some(100),
                "{bad}"
            );
        }
    }

    #[test]
    fn disabled_unavailable_and_partner_billed_accounts_answer_code_100() {
        let query = format!(
            "start={}&end={NOW}&granularity=DAILY&metric_types=SENT,COST&template_ids={}",
            TODAY - DAY,
            id_of("order_update")
        );
        let with = |settings: WhatsAppSettings| analytics(&query, &settings);
        let not_enabled = with(WhatsAppSettings {
            template_analytics: TemplateAnalytics::NotEnabled,
            ..WhatsAppSettings::default()
        })
        .expect_err("not enabled");
        assert_eq!(
            (not_enabled.status, not_enabled.code, not_enabled.message.as_str()),
            (400, 100, "(#100) Template analytics is not enabled for this WhatsApp Business Account. Confirm it in WhatsApp Manager or with is_enabled_for_insights=true")
        );
        let region = with(WhatsAppSettings {
            template_analytics: TemplateAnalytics::RegionUnavailable,
            ..WhatsAppSettings::default()
        })
        .expect_err("region");
        assert_eq!(
            (region.code, region.message.as_str()),
            (100, "(#100) Template analytics is not available for WhatsApp Business Accounts of businesses in the EU, UK or Japan")
        );
        let partner = WhatsAppSettings {
            partner_billed: true,
            ..WhatsAppSettings::default()
        };
        let error = analytics(&query, &partner).expect_err("cost of a partner-billed account");
        assert_eq!(
            (error.code, error.message.as_str()),
            (100, "(#100) Cost not available for this WhatsApp Business Account: it is billed through a solution partner")
        );
        let without_cost = query.replace("SENT,COST", "SENT");
        let body = analytics(&without_cost, &partner).expect("no cost asked");
        assert!(body["data"][0]["data_points"][0]["sent"].is_i64());
    }

    #[test]
    fn list_parameters_take_every_spelling() {
        for text in ["1,2", "[1,2]", r#"["1","2"]"#, " [ '1' , 2 ] "] {
            assert_eq!(list_parameter(text), ["1", "2"], "{text}");
        }
        assert!(list_parameter("[]").is_empty());
    }
}
