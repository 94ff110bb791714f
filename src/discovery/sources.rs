//! The discovery reads and their answers.
//!
//! Pages come from `GET /me/accounts?fields=id,name,access_token,tasks,category`, each with its
//! own Page access token (what Page insights need); WhatsApp Business Accounts from
//! `GET /{business}/owned_whatsapp_business_accounts` and `client_whatsapp_business_accounts`.
//! Every list is read to its end with `after=` cursors (never Graph's `paging.next` link, which
//! can carry the token). An entry Meta lists without an id, or a Page without a Page token, is
//! skipped and counted, never a failed run: the rest of the answer is still true.

use serde_json::Value;

use crate::graph::request::Endpoint;
use crate::graph::{GraphClient, GraphError, GraphRequest};
use crate::secret::AccessToken;
use crate::target::is_path_segment;

/// Entries asked for per page of a list; Graph's maximum for these edges.
const PAGE_SIZE: usize = 100;
/// Pages of one list read at most: 10,000 objects per source.
const MAX_PAGES: usize = 100;

/// A Page `/me/accounts` listed.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPage {
    /// Page id.
    pub id: String,
    /// Page name, when Meta gave one.
    pub name: Option<String>,
    /// The Page's own access token.
    pub token: AccessToken,
}

/// How a business holds a WhatsApp Business Account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `owned_whatsapp_business_accounts`.
    Owned,
    /// `client_whatsapp_business_accounts`: shared with the business as a partner.
    Client,
}

impl Relation {
    /// The edge name, and how the status page says it.
    pub fn edge(self) -> &'static str {
        match self {
            Relation::Owned => "owned_whatsapp_business_accounts",
            Relation::Client => "client_whatsapp_business_accounts",
        }
    }
}

/// A WhatsApp Business Account a business listed.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundWaba {
    /// Account id.
    pub id: String,
    /// Account name, when Meta gave one.
    pub name: Option<String>,
    /// Owned by the business or shared with it.
    pub relation: Relation,
}

/// One source's answer: what it listed, and whether the list was read to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    /// The usable entries.
    pub items: Vec<T>,
    /// `false` when the list had more than [`MAX_PAGES`] pages: what was not read cannot count
    /// as missing.
    pub complete: bool,
    /// Entries left out, each with why (no id, no Page token).
    pub skipped: Vec<String>,
}

/// Lists the Pages `token` manages, each with its Page token.
pub async fn pages(
    client: &GraphClient,
    token: &AccessToken,
) -> Result<Found<FoundPage>, GraphError> {
    let request = GraphRequest::discovery_list(
        Endpoint::DiscoveryPages,
        "me",
        "accounts",
        "id,name,access_token,tasks,category",
        PAGE_SIZE,
    );
    let pages = client.get_pages(&request, token, MAX_PAGES).await?;
    Ok(parse_pages(&pages.bodies, pages.complete))
}

/// The Pages of `/me/accounts` answers; `complete` when the list was read to its end.
fn parse_pages(bodies: &[Value], complete: bool) -> Found<FoundPage> {
    let mut found = Found {
        items: Vec::new(),
        complete,
        skipped: Vec::new(),
    };
    for entry in bodies.iter().flat_map(entries) {
        let id = match entry_id(entry) {
            Ok(id) => id,
            Err(why) => {
                found.skipped.push(why);
                continue;
            }
        };
        let Some(token) = text(entry, "access_token") else {
            // Meta leaves the token out when the user has no task on the Page that grants one.
            found.skipped.push(format!(
                "Page {id}: listed without a Page access token (the token's user needs a task such as ANALYZE on the Page)"
            ));
            continue;
        };
        if found.items.iter().any(|page: &FoundPage| page.id == id) {
            // Said rather than dropped silently: a list that repeats an id is worth knowing of.
            found.skipped.push(format!(
                "Page {id}: listed more than once; polled once, with its first entry's token"
            ));
            continue;
        }
        found.items.push(FoundPage {
            id,
            name: text(entry, "name"),
            token: AccessToken::new(token),
        });
    }
    found
}

/// Lists the WhatsApp Business Accounts `business_id` owns and those shared with it.
pub async fn whatsapp_business_accounts(
    client: &GraphClient,
    token: &AccessToken,
    business_id: &str,
) -> Result<Found<FoundWaba>, GraphError> {
    let mut found = Found {
        items: Vec::new(),
        complete: true,
        skipped: Vec::new(),
    };
    for relation in [Relation::Owned, Relation::Client] {
        let request = GraphRequest::discovery_list(
            Endpoint::DiscoveryWhatsappBusinessAccounts,
            business_id,
            relation.edge(),
            "id,name,currency,timezone_id",
            PAGE_SIZE,
        );
        let pages = client.get_pages(&request, token, MAX_PAGES).await?;
        found.complete &= pages.complete;
        add_wabas(&mut found, &pages.bodies, relation);
    }
    Ok(found)
}

/// Adds the accounts of one list's answers; an account already found (owned and shared with
/// the business as a client, say) keeps its first entry.
fn add_wabas(found: &mut Found<FoundWaba>, bodies: &[Value], relation: Relation) {
    for entry in bodies.iter().flat_map(entries) {
        let id = match entry_id(entry) {
            Ok(id) => id,
            Err(why) => {
                found.skipped.push(format!("{why} in {}", relation.edge()));
                continue;
            }
        };
        if let Some(first) = found.items.iter().find(|waba: &&FoundWaba| waba.id == id) {
            found.skipped.push(format!(
                "WhatsApp Business Account {id}: listed again in {} after {}; polled once",
                relation.edge(),
                first.relation.edge()
            ));
            continue;
        }
        found.items.push(FoundWaba {
            id,
            name: text(entry, "name"),
            relation,
        });
    }
}

/// The `data` entries of one page of a list; a page without `data` has none.
fn entries(body: &Value) -> impl Iterator<Item = &Value> {
    body.get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The entry's id if it is usable as a path segment; otherwise why not. Graph's ids are
/// digits; anything else (`..`, a slash) would change what the request reads, so it is skipped.
fn entry_id(entry: &Value) -> Result<String, String> {
    match text(entry, "id") {
        None => Err("an entry without an id".to_owned()),
        Some(id) if is_path_segment(&id) => Ok(id),
        Some(id) => Err(format!(
            "an entry with id {:?}, which cannot go into a request path",
            id.chars().take(64).collect::<String>()
        )),
    }
}

/// A non-empty string field; ids may come as numbers in hand-made answers, so those count too.
fn text(entry: &Value, field: &str) -> Option<String> {
    match entry.get(field)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) if field == "id" => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_without_an_id_or_a_token_are_skipped_with_why_and_the_rest_kept() {
        let bodies = vec![
            json!({"data": [
                {"id": "1", "name": "A", "access_token": "t1"},
                {"name": "no id", "access_token": "t2"},
                {"id": "3", "name": "No token"},
                "not an object",
                {"id": "1", "name": "A again", "access_token": "t1"}
            ]}),
            json!({"data": {"id": "4"}}),
            json!(null),
        ];
        let found = parse_pages(&bodies, true);
        let ids: Vec<&str> = found.items.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, vec!["1"]);
        assert_eq!(found.items[0].token.expose(), "t1");
        assert_eq!(found.skipped.len(), 4, "{:?}", found.skipped);
        assert!(
            found.skipped[1].contains("Page 3") && found.skipped[1].contains("Page access token")
        );
        assert!(
            found.skipped[3].contains("Page 1: listed more than once"),
            "a repeated id is named, not dropped silently: {:?}",
            found.skipped
        );
        // The token never reaches a message.
        assert!(found
            .skipped
            .iter()
            .all(|why| !why.contains("t1") && !why.contains("t2")));
        assert!(format!("{found:?}").contains("\"1\"") && !format!("{found:?}").contains("t1"));
    }

    #[test]
    fn an_account_on_both_lists_is_found_once_as_owned() {
        let mut found = Found {
            items: Vec::new(),
            complete: true,
            skipped: Vec::new(),
        };
        add_wabas(
            &mut found,
            &[json!({"data": [{"id": "W1"}, {"id": 2}]})],
            Relation::Owned,
        );
        add_wabas(
            &mut found,
            &[json!({"data": [{"id": "W1", "name": "x"}, {}]})],
            Relation::Client,
        );
        let ids: Vec<(&str, Relation)> = found
            .items
            .iter()
            .map(|w| (w.id.as_str(), w.relation))
            .collect();
        assert_eq!(ids, vec![("W1", Relation::Owned), ("2", Relation::Owned)]);
        assert_eq!(
            found.skipped,
            vec![
                "WhatsApp Business Account W1: listed again in client_whatsapp_business_accounts after owned_whatsapp_business_accounts; polled once",
                "an entry without an id in client_whatsapp_business_accounts"
            ]
        );
    }

    #[test]
    fn an_id_that_would_change_the_request_path_is_skipped() {
        let bodies = vec![json!({"data": [
            {"id": "../me", "access_token": "t"},
            {"id": "1/insights", "access_token": "t"},
            {"id": "..", "access_token": "t"},
            {"id": "17", "access_token": "t"}
        ]})];
        let found = parse_pages(&bodies, true);
        let ids: Vec<&str> = found.items.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, vec!["17"]);
        assert_eq!(found.skipped.len(), 3);
        assert!(
            found.skipped[0].contains("cannot go into a request path"),
            "{:?}",
            found.skipped
        );
    }

    #[test]
    fn ids_are_strings_or_numbers_and_empty_values_are_absent() {
        let entry = json!({"id": 17, "name": "", "access_token": "t"});
        assert_eq!(text(&entry, "id").as_deref(), Some("17"));
        assert_eq!(text(&entry, "name"), None);
        assert_eq!(text(&json!({"name": 5}), "name"), None);
        assert_eq!(entries(&json!({"paging": {}})).count(), 0);
    }
}
