//! Cursor paging of list edges (`message_templates`, `phone_numbers`), as Graph pages them,
//! and the `fields` parameter those edges share.
//!
//! Owns the `limit` and `after` parameters and the `paging` object of an answer:
//! `{"cursors":{"before","after"},"next"?}`. Cursors are opaque to clients (URL-safe base64
//! of the position, like Graph's), and `next` is a full URL on the simulator's base URL that
//! repeats the request's parameters with the next `after` cursor. Like Graph's, it also
//! carries `access_token=<the token>` in its query string: the exporter must rebuild the
//! request from the cursor (or strip the parameter) rather than follow the link as given, and
//! the request log shows whether it did.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::fields;
use super::http::ReadContext;

/// The `fields` of a list edge's request, each one of `known` (plain names, no modifiers, or
/// Graph's "nonexisting field" error on `node_type`); `defaults` without any.
pub(crate) fn list_fields(
    context: &ReadContext<'_>,
    defaults: &[&str],
    known: &[&str],
    node_type: &str,
) -> Result<Vec<String>, GraphError> {
    let Some(text) = context
        .query
        .get("fields")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ok(defaults.iter().map(|f| (*f).to_owned()).collect());
    };
    let parsed = fields::parse(text).map_err(|problem| {
        GraphError::invalid_parameter(format_args!("Syntax error in fields: {problem}"))
    })?;
    parsed
        .into_iter()
        .map(|field| {
            if !field.modifiers.is_empty() || !known.contains(&field.name.as_str()) {
                return Err(GraphError::nonexisting_field(&field.name, node_type));
            }
            Ok(field.name)
        })
        .collect()
}

/// The page size without a `limit`.
const DEFAULT_LIMIT: usize = 25;
/// The largest page served; larger `limit`s are cut to it, as Graph cuts them.
pub(crate) const MAX_LIMIT: usize = 100;
/// What a cursor encodes before the position, so a cursor from another edge is rejected.
const CURSOR_PREFIX: &str = "simulated:";

/// The page of `items` the request's `limit` and `after` select, as `{"data":[..],"paging":{..}}`
/// for the list edge `edge` of the object read. Code 100 for a bad `limit` or cursor.
pub(crate) fn page(
    context: &ReadContext<'_>,
    edge: &str,
    items: Vec<Value>,
) -> Result<Value, GraphError> {
    let limit = match context.query.get("limit").map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|&limit| limit > 0)
            .ok_or_else(|| GraphError::invalid_parameter("limit must be a positive integer"))?
            .min(MAX_LIMIT),
    }
    .min(context.max_page_size);
    let first = match context.query.get("after") {
        Some(cursor) => decode(cursor)
            .ok_or_else(|| GraphError::invalid_parameter("after: invalid cursor"))?
            .saturating_add(1),
        None => 0,
    };
    let total = items.len();
    let first = first.min(total);
    let last = first.saturating_add(limit).min(total);
    let data: Vec<Value> = items.into_iter().skip(first).take(last - first).collect();
    let mut paging = Map::new();
    if last > first {
        paging.insert(
            "cursors".to_owned(),
            json!({ "before": encode(first), "after": encode(last - 1) }),
        );
    }
    if last < total {
        paging.insert(
            "next".to_owned(),
            json!(next_link(context, edge, limit, last - 1)),
        );
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// The link to the page after the item at `position`.
fn next_link(context: &ReadContext<'_>, edge: &str, limit: usize, position: usize) -> String {
    let mut query: Vec<(String, String)> = context
        .query
        .pairs()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "after" | "before" | "limit" | "access_token"))
        .cloned()
        .collect();
    query.push(("limit".to_owned(), limit.to_string()));
    query.push(("after".to_owned(), encode(position)));
    query.push(("access_token".to_owned(), context.token.to_owned()));
    let query: Vec<String> = query
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect();
    format!(
        "{}/{}/{}/{edge}?{}",
        context.base_url,
        context.version,
        context.object_id,
        query.join("&")
    )
}

/// The cursor of the item at `position`.
fn encode(position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{position}"))
}

/// The position a cursor encodes; `None` for anything not made by [`encode`].
fn decode(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(CURSOR_PREFIX)?.parse().ok()
}

/// `text` percent-encoded for a query string: everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::http::{with_context, TEST_TOKEN};

    fn items(count: usize) -> Vec<Value> {
        (0..count).map(|n| json!({ "id": n.to_string() })).collect()
    }

    fn ids(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|item| item["id"].as_str().expect("an id").to_owned())
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_rejected() {
        assert_eq!(decode(&encode(41)), Some(41));
        assert_eq!(decode("MAZDZD"), None);
        assert_eq!(decode("not base64!"), None);
    }

    #[test]
    fn pages_follow_each_other_until_next_is_absent() {
        let first = with_context("waba-1", "fields=id,name&limit=4", 0, |context| {
            page(context, "things", items(10))
        })
        .expect("a page");
        assert_eq!(ids(&first), ["0", "1", "2", "3"]);
        let next = first["paging"]["next"].as_str().expect("a next link");
        assert!(
            next.starts_with(
                "http://127.0.0.1:9/v27.0/waba-1/things?fields=id%2Cname&limit=4&after="
            ) && next.ends_with(&format!("&access_token={TEST_TOKEN}")),
            "{next}"
        );
        let after = first["paging"]["cursors"]["after"]
            .as_str()
            .expect("a cursor");
        let second = with_context("waba-1", &format!("limit=4&after={after}"), 0, |context| {
            page(context, "things", items(10))
        })
        .expect("a page");
        assert_eq!(ids(&second), ["4", "5", "6", "7"]);
        let after = second["paging"]["cursors"]["after"]
            .as_str()
            .expect("a cursor");
        let last = with_context("waba-1", &format!("limit=4&after={after}"), 0, |context| {
            page(context, "things", items(10))
        })
        .expect("a page");
        assert_eq!(ids(&last), ["8", "9"]);
        assert!(last["paging"].get("next").is_none());
    }

    #[test]
    fn limits_default_to_25_cap_at_100_and_must_be_positive() {
        let count = |query: &str| {
            with_context("w", query, 0, |context| page(context, "e", items(250)))
                .map(|body| ids(&body).len())
        };
        assert_eq!(count(""), Ok(25));
        assert_eq!(count("limit=1000"), Ok(100));
        for query in ["limit=0", "limit=ten", "after=bogus"] {
            assert_eq!(
                count(query).map_err(|error| error.code),
                Err(100),
                "{query}"
            );
        }
    }
}
