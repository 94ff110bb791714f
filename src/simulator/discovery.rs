//! What discovery reads, simulated: `GET /{version}/me/accounts` (the Pages a user or system
//! user manages, each with its own Page token), a business's
//! `owned_whatsapp_business_accounts` and `client_whatsapp_business_accounts`, and the nodes
//! of ad accounts (`act_<id>`, whose insights answer like a campaign's).
//!
//! Lists page like Graph's (`limit`, `after`, and a `paging.next` link that repeats the token,
//! see `paging`). `me` is not an object with one token: it is whoever the token belongs to, so
//! its answer depends on the token the request carries ([`super::FakeGraphApi::grant_pages`]).

use serde_json::{json, Value};

use super::faults::GraphError;
use super::http::ReadContext;
use super::paging;

/// The fields `me/accounts` serves, and those it answers without a `fields` parameter.
const ACCOUNT_FIELDS: &[&str] = &["id", "name", "access_token", "tasks", "category"];
const ACCOUNT_DEFAULT_FIELDS: &[&str] = &["id", "name", "access_token", "category", "tasks"];
/// The fields a business's account lists serve.
const WABA_FIELDS: &[&str] = &["id", "name", "currency", "timezone_id"];
const WABA_DEFAULT_FIELDS: &[&str] = &["id", "name"];
/// The tasks a simulated user holds on each Page it manages.
const TASKS: [&str; 4] = ["ANALYZE", "ADVERTISE", "MESSAGING", "MANAGE"];

/// One Page a user manages, as the registry holds it.
#[derive(Debug, Clone)]
pub(crate) struct ManagedPage {
    /// Page id.
    pub(crate) id: String,
    /// Page name.
    pub(crate) name: String,
    /// The Page's own token; `None` for a Page the user has no token-granting task on.
    pub(crate) token: Option<String>,
}

/// `me/accounts` for the user the token belongs to.
pub(crate) fn accounts(
    context: &ReadContext<'_>,
    pages: &[ManagedPage],
) -> Result<Value, GraphError> {
    let fields = paging::list_fields(context, ACCOUNT_DEFAULT_FIELDS, ACCOUNT_FIELDS, "User")?;
    let items = pages
        .iter()
        .map(|page| {
            let mut entry = serde_json::Map::new();
            for field in &fields {
                let value = match field.as_str() {
                    "id" => json!(page.id),
                    "name" => json!(page.name),
                    "access_token" => match &page.token {
                        Some(token) => json!(token),
                        None => continue,
                    },
                    "tasks" => json!(TASKS),
                    _ => json!("Business service"),
                };
                entry.insert(field.clone(), value);
            }
            Value::Object(entry)
        })
        .collect();
    paging::page(context, "accounts", items)
}

/// One of a business's account lists: `(id, name)` of each account, in order.
pub(crate) fn whatsapp_business_accounts(
    context: &ReadContext<'_>,
    edge: &str,
    accounts: &[(String, String)],
) -> Result<Value, GraphError> {
    let fields = paging::list_fields(context, WABA_DEFAULT_FIELDS, WABA_FIELDS, "Business")?;
    let items = accounts
        .iter()
        .map(|(id, name)| {
            let entry: serde_json::Map<String, Value> = fields
                .iter()
                .map(|field| {
                    let value = match field.as_str() {
                        "id" => json!(id),
                        "name" => json!(name),
                        "currency" => json!(super::whatsapp_billing::CURRENCY),
                        // Meta's timezone id 1 is America/Los_Angeles.
                        _ => json!("1"),
                    };
                    (field.clone(), value)
                })
                .collect();
            Value::Object(entry)
        })
        .collect();
    paging::page(context, edge, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::http::with_context;

    fn pages(count: usize) -> Vec<ManagedPage> {
        (0..count)
            .map(|index| ManagedPage {
                id: format!("10{index}"),
                name: format!("Page {index}"),
                token: Some(format!("page-token-{index}")),
            })
            .collect()
    }

    #[test]
    fn accounts_carry_each_pages_own_token_and_page_with_a_next_link() {
        let body = with_context("me", "fields=id,name,access_token&limit=2", 0, |context| {
            accounts(context, &pages(3))
        })
        .expect("an answer");
        assert_eq!(body["data"][1]["access_token"], "page-token-1");
        assert_eq!(body["data"][0]["name"], "Page 0");
        assert!(body["data"][0].get("tasks").is_none());
        let next = body["paging"]["next"].as_str().expect("a next link");
        assert!(
            next.contains("/me/accounts?") && next.contains("access_token="),
            "{next}"
        );
        let cursor = body["paging"]["cursors"]["after"].as_str().expect("cursor");
        let rest = with_context(
            "me",
            &format!("fields=id,name,access_token&limit=2&after={cursor}"),
            0,
            |context| accounts(context, &pages(3)),
        )
        .expect("an answer");
        assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));
        assert!(rest["paging"].get("next").is_none());
    }

    #[test]
    fn a_page_without_a_token_is_listed_without_one_and_unknown_fields_fail() {
        let mut listed = pages(1);
        listed[0].token = None;
        let body =
            with_context("me", "", 0, |context| accounts(context, &listed)).expect("an answer");
        assert!(body["data"][0].get("access_token").is_none());
        assert_eq!(body["data"][0]["tasks"][0], "ANALYZE");
        let error = with_context("me", "fields=id,insights", 0, |context| {
            accounts(context, &listed)
        });
        assert!(error.is_err());
    }

    #[test]
    fn business_lists_give_id_name_and_currency() {
        let accounts = vec![("1".to_owned(), "Acme".to_owned())];
        let body = with_context("9", "fields=id,name,currency,timezone_id", 0, |context| {
            whatsapp_business_accounts(context, "owned_whatsapp_business_accounts", &accounts)
        })
        .expect("an answer");
        assert_eq!(body["data"][0]["name"], "Acme");
        assert_eq!(body["data"][0]["currency"], "USD");
    }
}
