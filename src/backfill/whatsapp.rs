//! A WhatsApp Business Account's history: one node read over the whole span
//! (`analytics`, `pricing_analytics` and `conversation_analytics` side by side, as the live
//! poll asks for them), replayed per step.
//!
//! A live poll at `t` asks each field from the start of its last complete bucket to `t`, and
//! exports that bucket. Replaying keeps, of every `data_points` list, the points that start in
//! `[last complete bucket's start, t)` and hands the result to the live converters with `t` as
//! their now. Template analytics are read the same way, in calls of ten templates over the
//! span (Meta keeps 90 days of them; older instants are left out with a note) for the
//! templates listed now; phone-number health is a current state with no history, left out with
//! a note.

use serde_json::{Map, Value};

use super::history::History;
use super::range::Span;
use super::Caller;
use crate::config::{TemplateSettings, WabaTarget};
use crate::convert::parse_time;
use crate::convert::whatsapp::billing::{self, BillingSelection};
use crate::convert::whatsapp::templates::{self, TemplateInfo, TemplateSelection};
use crate::convert::whatsapp::{self, last_complete_bucket, Selection};
use crate::exposition::Family;
use crate::poller::whatsapp::listing::{Listing, MAX_PAGES, TEMPLATES};
use crate::poller::whatsapp::node::ranged_request;
use crate::poller::whatsapp::unavailable::{self, Feature, Reason};
use crate::poller::whatsapp::{account_info, template_analytics_requests, template_ids};

/// UTC days, which template analytics are cut in.
const DAY: i64 = 86_400;
/// How many days back Meta answers template analytics.
const TEMPLATE_LOOKBACK_DAYS: i64 = 90;

/// Backfills `target` into `history`; the notes say what was left out.
pub async fn backfill(
    caller: &Caller<'_>,
    target: &WabaTarget,
    span: &Span,
    history: &mut History,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    if target.phone_numbers_health {
        notes.push("phone-number health left out: Meta reports the current quality rating and limit, with no history".to_owned());
    }
    let token = &target.credentials.token;
    let body = match caller
        .get(&ranged_request(target, span.since, span.until, true), token)
        .await
    {
        Ok(body) => body,
        Err(error)
            if unavailable::recognise(&error).map(|(feature, _)| feature)
                == Some(Feature::Cost) =>
        {
            notes.push(
                "costs left out: the account is billed through a solution partner".to_owned(),
            );
            caller
                .get(
                    &ranged_request(target, span.since, span.until, false),
                    token,
                )
                .await
                .map_err(|error| error.to_string())?
        }
        Err(error) => return Err(error.to_string()),
    };
    if !body.is_object() {
        return Err(
            "unexpected response shape: the WhatsApp Business Account read is not an object".into(),
        );
    }
    let currency = body.get("currency").and_then(Value::as_str);
    let info = account_info(
        &target.id,
        body.get("name").and_then(Value::as_str),
        currency,
        target.origin,
    );
    let templates = match &target.templates {
        Some(settings) => Some(
            templates_history(
                caller,
                target,
                settings,
                span,
                cost_unavailable(&notes),
                &mut notes,
            )
            .await?,
        ),
        None => None,
    };
    let step = span.step_for(target.schedule.interval);
    // The answer changes only when a field's last complete bucket does. Instants come in
    // time order, so only the latest answer is kept: keeping every one held a copy of each
    // bucket's families for the whole span (hundreds of MB over 90 days of half hours).
    let mut last: Option<(Vec<i64>, Vec<Family>)> = None;
    for t in span.instants(step) {
        let starts = bucket_starts(target, t);
        let families = match &last {
            Some((seen, families)) if *seen == starts => families.clone(),
            _ => {
                let families = replay(target, &body, currency, t)?;
                last = Some((starts, families.clone()));
                families
            }
        };
        let mut families = families;
        families.push(info.clone());
        if let Some(templates) = &templates {
            families.extend(templates.replay(&target.id, currency, t)?);
        }
        history.record(t, step, families);
    }
    Ok(notes)
}

const COSTS_LEFT_OUT: &str = "costs left out: the account is billed through a solution partner";

fn cost_unavailable(notes: &[String]) -> bool {
    notes.iter().any(|note| note == COSTS_LEFT_OUT)
}

/// Template analytics over the span, and the template list they belong to.
struct TemplateHistory {
    list: Listing<TemplateInfo>,
    ids: Vec<String>,
    metrics: Vec<String>,
    pages: Vec<Value>,
    /// The first instant Meta still had data for.
    from: i64,
}

impl TemplateHistory {
    /// What a live poll at `t` made of template analytics: the last complete UTC day and the
    /// current one, as it asks for them.
    fn replay(&self, waba_id: &str, currency: Option<&str>, t: i64) -> Result<Vec<Family>, String> {
        let mut families = vec![templates::info_family(waba_id, self.list.items())];
        if t < self.from {
            return Ok(families);
        }
        let start = t.div_euclid(DAY) * DAY - DAY;
        let pages: Vec<Value> = self
            .pages
            .iter()
            .map(|page| points_within(page, start, t))
            .collect();
        let selection = TemplateSelection {
            waba_id,
            template_ids: &self.ids,
            metrics: &self.metrics,
            currency,
        };
        let converted = templates::convert(selection, t, &pages).map_err(|e| e.to_string())?;
        families.extend(converted.families);
        Ok(families)
    }
}

/// Lists the templates and reads their analytics over the span, as far back as Meta keeps
/// them; none (with a note) where the account has none to give.
async fn templates_history(
    caller: &Caller<'_>,
    target: &WabaTarget,
    settings: &TemplateSettings,
    span: &Span,
    without_cost: bool,
    notes: &mut Vec<String>,
) -> Result<TemplateHistory, String> {
    let token = &target.credentials.token;
    let request = TEMPLATES.request(&target.id, caller.graph_version(), &[]);
    let pages = caller
        .get_pages(&request, token, MAX_PAGES)
        .await
        .map_err(|error| error.to_string())?;
    let mut list = Listing::default();
    list.replace(
        &pages.bodies,
        pages.complete,
        TEMPLATES.what,
        span.now,
        templates::parse_templates,
    )
    .map_err(|e| e.to_string())?;
    let ids = template_ids(settings, list.items());
    // Meta answers the last 90 UTC days; a live poll at `t` asks from the day before `t`'s.
    let earliest = span.now.div_euclid(DAY) * DAY - TEMPLATE_LOOKBACK_DAYS * DAY;
    let start = (span.since.div_euclid(DAY) * DAY - DAY).max(earliest);
    if start > span.since - DAY {
        notes.push(format!(
            "template analytics before {} left out: Meta keeps them for {TEMPLATE_LOOKBACK_DAYS} days",
            super::range::format_time(start + DAY)
        ));
    }
    let mut metrics = settings.metrics.clone();
    if without_cost {
        metrics.retain(|metric| metric != "COST");
    }
    let pages = if ids.is_empty() || start >= span.until {
        Vec::new()
    } else {
        let read = read_template_analytics(caller, target, &ids, &metrics, start, span.until).await;
        match read {
            Ok(pages) => pages,
            Err(error) => match unavailable::recognise(&error) {
                Some((Feature::TemplateAnalytics, reason)) => {
                    let why = match reason {
                        Reason::NotEnabled => "they are not confirmed on the account",
                        Reason::RegionUnavailable => {
                            "Meta does not offer them in the business's region"
                        }
                        Reason::PartnerBilled => "the account is billed through a solution partner",
                    };
                    notes.push(format!("template analytics left out: {why}"));
                    Vec::new()
                }
                Some((Feature::Cost, _)) => {
                    metrics.retain(|metric| metric != "COST");
                    read_template_analytics(caller, target, &ids, &metrics, start, span.until)
                        .await
                        .map_err(|error| error.to_string())?
                }
                None => return Err(error.to_string()),
            },
        }
    };
    Ok(TemplateHistory {
        list,
        ids,
        metrics,
        pages,
        from: start + DAY,
    })
}

/// `template_analytics` of `ids` over `[start, until)`, ten to a call, all at once.
async fn read_template_analytics(
    caller: &Caller<'_>,
    target: &WabaTarget,
    ids: &[String],
    metrics: &[String],
    start: i64,
    until: i64,
) -> Result<Vec<Value>, crate::graph::GraphError> {
    let requests = template_analytics_requests(&target.id, ids, metrics, start, until);
    let token = &target.credentials.token;
    futures::future::join_all(requests.iter().map(|request| caller.get(request, token)))
        .await
        .into_iter()
        .collect()
}

/// The start of each field's last complete bucket at `t`.
fn bucket_starts(target: &WabaTarget, t: i64) -> Vec<i64> {
    let mut starts = vec![last_complete_bucket(target.granularity, t).start];
    for billing in [&target.pricing, &target.conversations]
        .into_iter()
        .flatten()
    {
        starts.push(last_complete_bucket(billing.granularity.calendar(), t).start);
    }
    starts
}

/// The families a live poll at `t` would have made.
fn replay(
    target: &WabaTarget,
    body: &Value,
    currency: Option<&str>,
    t: i64,
) -> Result<Vec<Family>, String> {
    let mut families = Vec::new();
    let from = last_complete_bucket(target.granularity, t).start;
    let mut analytics = Map::new();
    if let Some(field) = body.get("analytics") {
        analytics.insert("analytics".to_owned(), points_within(field, from, t));
    }
    let selection = Selection {
        waba_id: &target.id,
        granularity: target.granularity,
    };
    let converted =
        whatsapp::convert(selection, t, &Value::Object(analytics)).map_err(|e| e.to_string())?;
    families.extend(converted.families);
    for settings in [&target.pricing, &target.conversations]
        .into_iter()
        .flatten()
    {
        let from = last_complete_bucket(settings.granularity.calendar(), t).start;
        let field = body
            .get(settings.field.field_name())
            .map(|field| points_within(field, from, t));
        let selection = BillingSelection {
            waba_id: &target.id,
            analytics: settings,
            currency,
        };
        let (converted, _) =
            billing::convert(selection, t, field.as_ref()).map_err(|e| e.to_string())?;
        families.extend(converted.families);
    }
    Ok(families)
}

/// `value` with every `data_points` list in it cut to the points starting in `[from, to)`.
fn points_within(value: &Value, from: i64, to: i64) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let inner = match (key.as_str(), inner) {
                        ("data_points", Value::Array(points)) => Value::Array(
                            points
                                .iter()
                                .filter(|point| {
                                    point
                                        .get("start")
                                        .and_then(parse_time)
                                        .is_some_and(|start| from <= start && start < to)
                                })
                                .cloned()
                                .collect(),
                        ),
                        _ => points_within(inner, from, to),
                    };
                    (key.clone(), inner)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| points_within(item, from, to))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_points_starting_within_the_window_stay_wherever_they_are_nested() {
        let body = json!({
            "analytics": {"granularity": "DAY", "data_points": [
                {"start": 0, "end": 10, "sent": 1},
                {"start": 10, "end": 20, "sent": 2},
                {"start": "20", "end": 30, "sent": 3},
            ]},
            "pricing_analytics": {"data": [{"data_points": [
                {"start": 10, "end": 20, "volume": 4},
                {"start": 30, "end": 40, "volume": 5},
            ]}]},
        });
        let cut = points_within(&body, 10, 30);
        assert_eq!(
            cut["analytics"]["data_points"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(cut["analytics"]["granularity"], "DAY");
        assert_eq!(
            cut["pricing_analytics"]["data"][0]["data_points"],
            json!([{"start": 10, "end": 20, "volume": 4}])
        );
    }
}
