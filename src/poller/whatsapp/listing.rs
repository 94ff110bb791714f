//! A WABA's lists that change slowly (message templates, phone numbers), read at most once
//! per [`REFRESH_EVERY`] rather than on every poll: each page is a WhatsApp Business
//! Management call, and Meta allows about 200 of those an hour per account.

use serde_json::Value;

use crate::config::WabaTarget;
use crate::convert::{ShapeError, ValueProblem};
use crate::graph::{Api, Endpoint, GraphRequest};
use crate::poller::{single_item_error, PollContext, PollError};

/// How long a list is used before it is read again.
pub const REFRESH_EVERY: i64 = 3600;
/// Items asked for per page; Graph's maximum for these edges.
pub const PAGE_SIZE: &str = "100";
/// The most pages read for one list (10,000 items); a longer list is used as far as read,
/// with a problem saying so.
pub const MAX_PAGES: usize = 100;

/// A list edge of the WABA node and what to ask it for.
pub struct ListEdge {
    /// The request metrics' label.
    pub endpoint: Endpoint,
    /// The edge below the WABA, e.g. `message_templates`.
    pub edge: &'static str,
    /// The `fields` parameter.
    pub fields: &'static str,
    /// Whether the messaging-limit field is asked for too, in the spelling of the version
    /// the request goes out with.
    pub messaging_limit: bool,
    /// What the list is of, for problems.
    pub what: &'static str,
}

impl ListEdge {
    /// The first page's request for `waba_id` on Graph API `version`, asking for
    /// `extra_fields` too (a field the edge may refuse, such as `health_status`).
    pub fn request(&self, waba_id: &str, version: &str, extra_fields: &[&str]) -> GraphRequest {
        let mut fields = self.fields.to_owned();
        if self.messaging_limit {
            fields.push(',');
            fields.push_str(crate::catalog::versions::messaging_limit_field(version));
        }
        for field in extra_fields {
            fields.push(',');
            fields.push_str(field);
        }
        GraphRequest::whatsapp_edge(
            self.endpoint,
            waba_id,
            self.edge,
            vec![("fields", fields), ("limit", PAGE_SIZE.to_owned())],
        )
    }
}

/// The account's message templates.
pub const TEMPLATES: ListEdge = ListEdge {
    endpoint: Endpoint::WhatsappTemplates,
    edge: "message_templates",
    fields: "id,name,language,category,status",
    messaging_limit: false,
    what: "message template",
};

/// The account's phone numbers, with what their quality and limits need (`health_status` is
/// asked for as an extra field, since an edge may refuse it).
pub const PHONE_NUMBERS: ListEdge = ListEdge {
    endpoint: Endpoint::WhatsappPhoneNumbers,
    edge: "phone_numbers",
    fields: "id,display_phone_number,verified_name,quality_rating,throughput",
    messaging_limit: true,
    what: "phone number",
};

/// A list and when it was read.
#[derive(Debug)]
pub struct Listing<T> {
    items: Vec<T>,
    /// When the list was last read (unix seconds); `None` before the first read.
    read_at: Option<i64>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            read_at: None,
        }
    }
}

impl<T> Listing<T> {
    /// Whether the list is due to be read at `now`.
    pub fn due(&self, now: i64) -> bool {
        self.read_at
            .is_none_or(|at| now >= at.saturating_add(REFRESH_EVERY) || now < at)
    }

    /// The items of the last read.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Reads the list of `edge` for `waba` again (with `extra_fields`), every page, when it is
    /// due, and returns the problems found in it; `parse` reads one page. A failed read fails
    /// the poll and keeps the old list.
    pub async fn refresh(
        &mut self,
        edge: &ListEdge,
        extra_fields: &[&str],
        context: &PollContext<'_>,
        waba: &WabaTarget,
        now: i64,
        parse: impl Fn(&Value) -> Result<(Vec<T>, Vec<ValueProblem>), ShapeError>,
    ) -> Result<Vec<ValueProblem>, PollError> {
        if !self.due(now) {
            return Ok(Vec::new());
        }
        let request = edge.request(&waba.id, context.client.version(Api::Graph), extra_fields);
        let pages = context
            .client
            .get_pages(&request, &waba.credentials.token, MAX_PAGES)
            .await
            .map_err(single_item_error)?;
        Ok(self.replace(&pages.bodies, pages.complete, edge.what, now, parse)?)
    }

    /// Replaces the list with what the pages of one read hold; `parse` reads one page. A page
    /// of the wrong shape fails the read and keeps the old list.
    pub fn replace(
        &mut self,
        pages: &[Value],
        complete: bool,
        what: &str,
        now: i64,
        parse: impl Fn(&Value) -> Result<(Vec<T>, Vec<ValueProblem>), ShapeError>,
    ) -> Result<Vec<ValueProblem>, ShapeError> {
        let mut items = Vec::new();
        let mut problems = Vec::new();
        for page in pages {
            let (page_items, page_problems) = parse(page)?;
            items.extend(page_items);
            problems.extend(page_problems);
        }
        if !complete {
            problems.push(ValueProblem {
                reason: "list_truncated",
                detail: format!(
                    "the {what} list has more than {MAX_PAGES} pages of {PAGE_SIZE}; only those were read"
                ),
            });
        }
        self.items = items;
        self.read_at = Some(now);
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn numbers(page: &Value) -> Result<(Vec<i64>, Vec<ValueProblem>), ShapeError> {
        let data = page
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ShapeError("no data".into()))?;
        Ok((data.iter().filter_map(Value::as_i64).collect(), Vec::new()))
    }

    #[test]
    fn a_list_is_read_once_an_hour_and_a_bad_page_keeps_the_old_one() {
        let mut listing: Listing<i64> = Listing::default();
        assert!(listing.due(0));
        let pages = [json!({"data": [1, 2]}), json!({"data": [3]})];
        assert!(listing
            .replace(&pages, true, "x", 100, numbers)
            .expect("pages of the right shape")
            .is_empty());
        assert_eq!(listing.items(), [1, 2, 3]);
        assert!(!listing.due(100 + REFRESH_EVERY - 1));
        assert!(listing.due(100 + REFRESH_EVERY));
        // A wall clock set back is no reason to use a list for longer.
        assert!(listing.due(50));

        assert!(listing
            .replace(&[json!({"nope": 1})], true, "x", 5000, numbers)
            .is_err());
        assert_eq!(listing.items(), [1, 2, 3]);
        let problems = listing
            .replace(&pages[..1], false, "x", 5000, numbers)
            .expect("a page of the right shape");
        assert_eq!(problems[0].reason, "list_truncated");
        assert_eq!(listing.items(), [1, 2]);
    }
}
