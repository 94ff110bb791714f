//! What to ask the Graph API for one target, and how to read the answers.
//!
//! A [`Poller`] holds one target's request plan and the state that outlives a single poll
//! (metrics or fields the API rejected as invalid, and when). [`Poller::poll`] sends the
//! target's requests through the shared [`GraphClient`] and converts the answers; it knows
//! nothing of schedules or the store. A poll is a list of reads ([`read::Polled`]); a read
//! that fails keeps its own previous values (until they go stale) while the others publish,
//! and a read's series always come from one answer, so no read mixes two points in time.
//!
//! Code 100 ("invalid parameter") is Meta's answer both to a retired metric and to a bad
//! request, and it fails the whole request either way; Meta's errors also come and go. So
//! [`fetch_dropping_invalid`] drops a metric or field only on proof that holds: the message
//! names it, or it fails alone while the rest of its request is answered in two polls in a
//! row. Anything else is a request error ([`PollError::InvalidParameter`]): the read fails,
//! keeps its previous values, and is asked again at the next interval. Dropped items are asked
//! for again after [`PollContext::retry_dropped_after`].
//!
//! Every read of a poll stands on its own ([`read`]): a poll returns what each read returned,
//! and a failing read costs only its own series.

pub(crate) mod campaign;
pub mod guard;
pub(crate) mod names;
pub(crate) mod page;
pub mod read;
pub(crate) mod whatsapp;

pub use self::campaign::InsightsObject;
pub use self::read::{Polled, Read, ReadOutcome};

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::clock::Clock;
use crate::convert::ShapeError;
use crate::graph::{ErrorClass, GraphClient, GraphError};
use crate::target::Target;

/// Everything a poll needs from outside the target.
pub struct PollContext<'a> {
    /// Shared Graph API client.
    pub client: &'a GraphClient,
    /// Wall clock, for time windows, bucket selection and when dropped items are retried.
    pub clock: &'a dyn Clock,
    /// How long a metric or field the API rejected stays out of the requests
    /// (`polling.retry_dropped_after`). Meta rejects a retired metric for good, but it also
    /// rejects metrics during its own incidents, and a config change should not be the only way
    /// back.
    pub retry_dropped_after: Duration,
    /// How often names for the info series are read again (the discovery interval).
    pub names_interval: Duration,
    /// Every secret in use, replaced in label values.
    pub redactor: &'a crate::redact::Redactor,
    /// The series a target and each of its metrics may export.
    pub limits: guard::SeriesLimits,
    /// Which account exports the series of a phone number several accounts list.
    pub phone_numbers: &'a whatsapp::shared::SharedOwners,
    /// Which account exports a `health_status` entity several accounts report.
    pub health_entities: &'a whatsapp::shared::SharedOwners,
}

/// Why a poll produced nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    /// A request failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A response was JSON but not of the endpoint's shape.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// Code 100 about the request rather than one of its metrics or fields: the message names a
    /// parameter, or the error persisted with a single item in the request and nothing proved
    /// that item at fault. Nothing is dropped; the next interval asks again.
    #[error("{0} (the request as a whole was rejected, so no metric or field was dropped)")]
    InvalidParameter(GraphError),
    /// Code 100 that some items got alone while the rest of their request was answered, for
    /// the first poll in a row: it may be a retired metric or an error of Meta's that ends
    /// mid-poll. Nothing is dropped yet; the read is asked again at the next poll, and the
    /// items are dropped only if they fail alone again.
    #[error(
        "{error} ({} failed alone while the rest of the request was answered; nothing is dropped unless it fails alone again at the next poll)",
        .items.join(", ")
    )]
    Suspected {
        /// The error the items got alone (boxed: it is the rare variant, and the others stay
        /// small).
        error: Box<GraphError>,
        /// The items under suspicion.
        items: Vec<String>,
    },
    /// The Marketing API no longer serves the read on the version it was sent with (code
    /// 2635). Only the configuration can fix it, so the message names the key; the read is
    /// asked again at each interval (Meta's app setting for auto-upgrades can change the answer
    /// without the exporter's config changing) but never retried within a poll.
    #[error(
        "{error} (Meta's Marketing API no longer serves this read on {version}: set `graph_api.marketing_version` to a supported version such as {}; every poll fails until then)",
        crate::catalog::versions::DEFAULT_VERSION
    )]
    DeprecatedVersion {
        /// Meta's error (boxed: rare, and the other variants stay small).
        error: Box<GraphError>,
        /// The version the read was sent with.
        version: String,
    },
    /// Every configured metric or field is dropped; nothing is asked for until the first of them
    /// is due to be asked for again.
    #[error(
        "the Graph API rejected every configured metric or field as invalid ({}); the first is asked for again at {}",
        .items.join(", "),
        utc_time(*.retry_at)
    )]
    NothingValid {
        /// The dropped items.
        items: Vec<String>,
        /// When the earliest drop expires (unix seconds).
        retry_at: i64,
    },
}

impl PollError {
    /// `error` of a Marketing API read sent with `version`, with 2635 told apart so that the
    /// message names the key that fixes it.
    pub fn marketing(error: PollError, version: &str) -> PollError {
        match error {
            PollError::Graph(error) if error.class() == ErrorClass::DeprecatedVersion => {
                PollError::DeprecatedVersion {
                    error: Box::new(error),
                    version: version.to_owned(),
                }
            }
            other => other,
        }
    }

    /// The failure class, for state, metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            PollError::Graph(error) => error.class().as_str(),
            PollError::Shape(_) => "invalid_response",
            PollError::InvalidParameter(_) | PollError::Suspected { .. } => "invalid_parameter",
            PollError::NothingValid { .. } => "no_valid_metrics",
            PollError::DeprecatedVersion { .. } => ErrorClass::DeprecatedVersion.as_str(),
        }
    }

    /// The Graph API error behind the failure, if one is.
    pub fn graph_error(&self) -> Option<&GraphError> {
        match self {
            PollError::Graph(error) | PollError::InvalidParameter(error) => Some(error),
            PollError::Suspected { error, .. } | PollError::DeprecatedVersion { error, .. } => {
                Some(error)
            }
            PollError::Shape(_) | PollError::NothingValid { .. } => None,
        }
    }

    /// Why polling this target again is pointless until its credentials or config change, or
    /// `None` when the next interval should simply try again.
    ///
    /// Only an invalid token, a missing permission and an object the token cannot see qualify:
    /// each needs someone to act, and asking again only repeats the error. Every configured
    /// item being dropped does not: drops expire after `retry_dropped_after`, so the target
    /// fails (class `no_valid_metrics`) until then and is asked again.
    pub fn disabled_reason(&self) -> Option<&'static str> {
        let PollError::Graph(error) = self else {
            return None;
        };
        match error.class() {
            ErrorClass::InvalidToken => Some("invalid_token"),
            ErrorClass::PermissionDenied => Some("permission_denied"),
            ErrorClass::ObjectUnavailable => Some("object_unavailable"),
            _ => None,
        }
    }
}

/// A unix time as RFC 3339 UTC, for messages.
fn utc_time(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0).map_or_else(
        || format!("unix time {unix_seconds}"),
        |time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The request plan and carried-over state of one target.
pub enum Poller {
    /// A Page.
    Page(page::PagePoller),
    /// A campaign.
    Campaign(campaign::CampaignPoller),
    /// A WhatsApp Business Account; boxed, since its listings and states make it several
    /// times the size of the others.
    Waba(Box<whatsapp::WabaPoller>),
}

impl Poller {
    /// A poller for `target`.
    pub fn new(target: &Target) -> Self {
        match target {
            Target::Page(page) => Poller::Page(page::PagePoller::new(page.clone())),
            Target::Campaign(campaign) => Poller::Campaign(campaign::CampaignPoller::new(
                campaign.clone(),
                InsightsObject::Campaign,
            )),
            Target::AdAccount(account) => Poller::Campaign(campaign::CampaignPoller::new(
                account.clone(),
                InsightsObject::AdAccount,
            )),
            Target::Waba(waba) => Poller::Waba(Box::new(whatsapp::WabaPoller::new(waba.clone()))),
        }
    }

    /// Polls once: what each read returned, or why the poll made no read at all.
    pub async fn poll(&mut self, context: &PollContext<'_>) -> Result<Polled, PollError> {
        let mut polled = match self {
            Poller::Page(poller) => poller.poll(context).await,
            Poller::Campaign(poller) => poller.poll(context).await,
            Poller::Waba(poller) => poller.poll(context).await,
        }?;
        guard::guard(&mut polled, context.redactor, context.limits);
        Ok(polled)
    }

    /// Takes the credentials and name of `target` from the next request on: a rotated token
    /// or a renamed Page keeps the poller (and what it learned about rejected metrics). Only
    /// called with a target of the same settings ([`Target::same_settings`]), and so of the
    /// same kind; one of another kind gets a new poller.
    pub fn update(&mut self, target: &Target) {
        match (self, target) {
            (Poller::Page(poller), Target::Page(page)) => poller.update(page.clone()),
            (
                Poller::Campaign(poller),
                Target::Campaign(campaign) | Target::AdAccount(campaign),
            ) => {
                poller.update(campaign.clone());
            }
            (Poller::Waba(poller), Target::Waba(waba)) => poller.update(waba.clone()),
            // Targets of the same settings are of the same kind.
            (poller, other) => *poller = Poller::new(other),
        }
    }

    /// What the target's account does not offer (WhatsApp template analytics, costs) and the
    /// reads switched off for a permission error, for status and metrics.
    pub fn unavailable(&self) -> Vec<Unavailable> {
        match self {
            Poller::Waba(poller) => poller.unavailable(),
            Poller::Page(poller) => poller.unavailable(),
            Poller::Campaign(poller) => poller.unavailable(),
        }
    }

    /// The object's name as far as Meta or discovery said, for the status page.
    pub fn name(&self) -> Option<String> {
        match self {
            Poller::Waba(poller) => poller.name(),
            Poller::Page(poller) => poller.name(),
            Poller::Campaign(poller) => poller.name(),
        }
    }

    /// The WhatsApp health entities the target exports that cannot send freely or carry
    /// Meta's words, for the status page.
    pub fn health(&self) -> Vec<crate::convert::whatsapp::health::Entity> {
        match self {
            Poller::Waba(poller) => poller.health(),
            Poller::Page(_) | Poller::Campaign(_) => Vec::new(),
        }
    }

    /// Items the API rejected as invalid and not yet answered for since, for status and
    /// metrics.
    pub fn dropped(&self) -> Vec<String> {
        match self {
            Poller::Page(poller) => poller.dropped(),
            Poller::Campaign(poller) => poller.dropped(),
            Poller::Waba(_) => Vec::new(),
        }
    }
}

/// A part of a target's data its account does not offer, or a read Meta refuses it: a state,
/// not a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// Whether a part of the account's data or a whole read is missing.
    pub scope: UnavailableScope,
    /// What is missing: `template_analytics` or `cost`, or a read's label
    /// ([`Read::as_str`]) for a read refused with a permission error.
    pub feature: &'static str,
    /// Why: `not_enabled`, `region_unavailable` or `partner_billed`; for a refused read
    /// `permission_denied`, `invalid_token` or `object_unavailable`.
    pub reason: &'static str,
    /// When it was found (unix seconds).
    pub since: i64,
}

/// What an [`Unavailable`] state is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnavailableScope {
    /// A part of a WhatsApp account's data Meta does not offer it (`whatsapp_feature_unavailable`).
    Feature,
    /// A read Meta refuses the target's token (`target_read_disabled`).
    Read,
}

/// Metrics or fields the API rejected, each with when it was dropped (unix seconds).
#[derive(Debug, Default)]
struct Dropped(BTreeMap<String, i64>);

impl Dropped {
    /// Whether `name` stays out of requests at `now`: dropped less than `retry_after` ago.
    fn excludes(&self, name: &str, now: i64, retry_after: Duration) -> bool {
        self.0
            .get(name)
            .is_some_and(|&at| now < at.saturating_add(seconds(retry_after)))
    }

    /// Whether `name` was dropped at some point and has not been answered for since; an item
    /// asked for again because its drop expired is still in here.
    fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Records that `name` was rejected at `now` (again, for a retried item).
    fn insert(&mut self, name: String, now: i64) {
        self.0.insert(name, now);
    }

    /// Forgets `name`, which the API answered for.
    fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The error for a target whose every item is dropped.
    fn nothing_valid(&self, retry_after: Duration) -> PollError {
        let earliest = self.0.values().min().copied().unwrap_or_default();
        PollError::NothingValid {
            items: self.names(),
            retry_at: earliest.saturating_add(seconds(retry_after)),
        }
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// What a code-100 message says about the request it answered.
#[derive(Debug, PartialEq, Eq)]
enum Blame {
    /// It names a request parameter: the request is wrong, not its items.
    Parameter(&'static str),
    /// It names these items (indices into the request's items).
    Items(Vec<usize>),
    /// It names neither.
    Unknown,
}

/// Reads a code-100 `message` about a request for `items` whose parameters are `parameters`.
///
/// A named parameter wins over a named item: a message such as "page_messages_sent does not
/// support period week" blames the combination, and a failed poll that shows Meta's message
/// is easier to notice and fix than an item that silently stops being asked for.
fn blame(message: &str, items: &[&str], parameters: &[&'static str]) -> Blame {
    if let Some(parameter) = parameters.iter().find(|p| mentions(message, p)) {
        return Blame::Parameter(parameter);
    }
    let named: Vec<usize> = (0..items.len())
        .filter(|&index| mentions(message, items[index]))
        .collect();
    if named.is_empty() {
        Blame::Unknown
    } else {
        Blame::Items(named)
    }
}

/// How one request of several metrics or fields is sent and judged.
pub(crate) struct Plan<'a, R, P, S> {
    /// The items of the request, named as Meta spells them in messages.
    pub(crate) items: Vec<String>,
    /// Whether an item is being asked for again after an earlier drop.
    pub(crate) retried: R,
    /// Whether an item failed alone while the rest of its request was answered at the
    /// previous poll.
    pub(crate) suspected: P,
    /// The request's parameters, which a message may name instead of an item.
    pub(crate) parameters: &'a [&'static str],
    /// Sends a request for some of the items.
    pub(crate) send: S,
}

/// What [`fetch_dropping_invalid`] found out about the items of its request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdicts {
    /// Items proven invalid: to be left out until `retry_dropped_after` has passed.
    pub(crate) dropped: Vec<String>,
    /// Items that failed alone while the rest was answered, for the first poll in a row.
    pub(crate) suspected: Vec<String>,
}

/// Requests `items` in one call and, on an invalid-parameter error (code 100), works out which
/// items the API rejects: those proven invalid go into `verdicts.dropped`, and the answers for
/// the rest are returned with the items each covers.
///
/// Meta answers a retired metric with one error for the whole request, and its message does not
/// always name the metric; its errors also come and go, so a request-wide error that ends while
/// the request is being split makes early halves fail and later ones succeed. The decision, for
/// a request that fails with code 100:
///
/// | the message ... | and the request has | then |
/// | --- | --- | --- |
/// | names a parameter | anything | the read fails (`InvalidParameter`), nothing is split or dropped |
/// | names some of its items | anything | those are dropped, the rest asked for again |
/// | names nothing | several items | it is split in halves, each asked for on its own |
/// | names nothing | one item | the item is a suspect |
///
/// Once everything is asked, a suspect is dropped only on proof: it was dropped before and is
/// being retried (proven then, failing the same way now), or it fails alone while the rest of
/// its request is answered at this poll *and* did so at the previous one (`suspected`). A
/// suspect for the first time fails the read (`Suspected`) so its previous values stay, and is
/// reported in `verdicts.suspected` for the next poll to judge. A suspect whose whole request
/// failed the same way proves nothing: a request-level error fails every split alike, and the
/// read fails with Meta's message. At most `2n - 1` requests, and only on polls where something
/// fails.
pub(crate) async fn fetch_dropping_invalid<R, P, S, F>(
    plan: Plan<'_, R, P, S>,
    verdicts: &mut Verdicts,
) -> Result<Vec<(Vec<String>, Value)>, PollError>
where
    R: Fn(&str) -> bool,
    P: Fn(&str) -> bool,
    S: Fn(Vec<String>) -> F,
    F: Future<Output = Result<Value, GraphError>>,
{
    let Plan {
        items,
        retried,
        suspected,
        parameters,
        send,
    } = plan;
    let mut answers = Vec::new();
    let mut suspects: Vec<(String, GraphError)> = Vec::new();
    let mut pending = vec![items];
    while let Some(batch) = pending.pop() {
        if batch.is_empty() {
            continue;
        }
        let error = match send(batch.clone()).await {
            Ok(body) => {
                answers.push((batch, body));
                continue;
            }
            Err(error) if error.class() == ErrorClass::InvalidParameter => error,
            Err(error) => return Err(PollError::Graph(error)),
        };
        let message = error.api_error().map_or("", |e| e.message.as_str());
        let names: Vec<&str> = batch.iter().map(String::as_str).collect();
        match blame(message, &names, parameters) {
            Blame::Parameter(_) => return Err(PollError::InvalidParameter(error)),
            Blame::Items(named) => {
                let mut rest = Vec::with_capacity(batch.len() - named.len());
                for (index, item) in batch.into_iter().enumerate() {
                    if named.contains(&index) {
                        warn_dropped(&item, &error, "the error names it");
                        verdicts.dropped.push(item);
                    } else {
                        rest.push(item);
                    }
                }
                pending.push(rest);
            }
            Blame::Unknown if batch.len() == 1 => {
                suspects.extend(batch.into_iter().map(|item| (item, error.clone())));
            }
            Blame::Unknown => {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                pending.push(second);
                pending.push(first);
            }
        }
    }
    let rest_answered = !answers.is_empty();
    let mut unproven = None;
    let mut first_time = Vec::new();
    for (item, error) in suspects {
        if retried(&item) {
            warn_dropped(&item, &error, "it was dropped before and still fails alone");
            verdicts.dropped.push(item);
        } else if rest_answered && suspected(&item) {
            warn_dropped(
                &item,
                &error,
                "it failed alone while the rest of its request was answered, in two polls in a row",
            );
            verdicts.dropped.push(item);
        } else if rest_answered {
            first_time.push(item);
            unproven.get_or_insert(error);
        } else {
            unproven.get_or_insert(error);
        }
    }
    match unproven {
        Some(error) if !first_time.is_empty() => {
            verdicts.suspected.clone_from(&first_time);
            Err(PollError::Suspected {
                error: Box::new(error),
                items: first_time,
            })
        }
        Some(error) => Err(PollError::InvalidParameter(error)),
        None => Ok(answers),
    }
}

fn warn_dropped(item: &str, error: &GraphError, why: &str) {
    tracing::warn!(
        item,
        why,
        error = %error,
        "Graph API rejected a metric or field as invalid; it is not requested for this target until polling.retry_dropped_after has passed"
    );
}

/// The error to return for a failed request that carries a single field, which no code-100
/// answer can prove at fault (WhatsApp analytics): code 100 is then about the request.
fn single_item_error(error: GraphError) -> PollError {
    if error.class() == ErrorClass::InvalidParameter {
        PollError::InvalidParameter(error)
    } else {
        PollError::Graph(error)
    }
}

/// Whether `message` names `item` as a whole word (so `page_messages_sent` is not found
/// inside `page_messages_sent_total`).
fn mentions(message: &str, item: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == item)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;
    use crate::graph::ApiError;

    const PARAMETERS: &[&str] = &["since", "until", "period", "breakdown"];

    fn api_error(code: i64, subcode: Option<i64>, message: &str) -> GraphError {
        GraphError::Api {
            status: 400,
            error: ApiError {
                message: message.to_owned(),
                kind: Some("OAuthException".to_owned()),
                code,
                error_subcode: subcode,
                is_transient: Some(false),
                fbtrace_id: None,
            },
        }
    }

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    /// Runs the decision over `items` against an API that answers each request with `answer`,
    /// with `retried` items dropped before and `suspected` ones suspects of the previous poll,
    /// and returns the outcome, the verdicts and every request sent.
    async fn decide_with(
        items: &[&str],
        retried: &[&str],
        suspected: &[&str],
        answer: impl Fn(&[String]) -> Result<Value, GraphError>,
    ) -> (
        Result<Vec<(Vec<String>, Value)>, PollError>,
        Verdicts,
        Vec<Vec<String>>,
    ) {
        let sent = RefCell::new(Vec::new());
        let mut verdicts = Verdicts::default();
        let plan = Plan {
            items: names(items),
            retried: |item: &str| retried.contains(&item),
            suspected: |item: &str| suspected.contains(&item),
            parameters: PARAMETERS,
            send: |batch: Vec<String>| {
                let result = answer(&batch);
                sent.borrow_mut().push(batch);
                async move { result }
            },
        };
        let result = fetch_dropping_invalid(plan, &mut verdicts).await;
        (result, verdicts, sent.into_inner())
    }

    /// [`decide_with`] without suspects from a previous poll; returns the dropped items.
    async fn decide(
        items: &[&str],
        retried: &[&str],
        answer: impl Fn(&[String]) -> Result<Value, GraphError>,
    ) -> (
        Result<Vec<(Vec<String>, Value)>, PollError>,
        Vec<String>,
        Vec<Vec<String>>,
    ) {
        let (result, verdicts, sent) = decide_with(items, retried, &[], answer).await;
        (result, verdicts.dropped, sent)
    }

    fn answered(result: &Result<Vec<(Vec<String>, Value)>, PollError>) -> Vec<String> {
        let mut items: Vec<String> = result
            .as_ref()
            .expect("answers")
            .iter()
            .flat_map(|(items, _)| items.clone())
            .collect();
        items.sort();
        items
    }

    #[test]
    fn an_error_message_names_an_item_only_as_a_whole_word() {
        assert!(mentions(
            "(#100) page_messages_sent is not valid",
            "page_messages_sent"
        ));
        assert!(!mentions(
            "(#100) page_messages_sent_total is not valid",
            "page_messages_sent"
        ));
        assert!(!mentions(
            "(#100) The value must be a valid insights metric",
            "page_messages_sent"
        ));
    }

    #[test]
    fn a_named_parameter_blames_the_request_even_when_an_item_is_named_too() {
        let items = ["page_messages_sent", "page_messages_engagement"];
        assert_eq!(
            blame("(#100) The parameter since is invalid", &items, PARAMETERS),
            Blame::Parameter("since")
        );
        assert_eq!(
            blame(
                "(#100) page_messages_sent does not support period week",
                &items,
                PARAMETERS
            ),
            Blame::Parameter("period")
        );
        assert_eq!(
            blame(
                "(#100) breakdown[0] must be one of the following values: campaign_id",
                &items,
                PARAMETERS
            ),
            Blame::Parameter("breakdown")
        );
        assert_eq!(
            blame(
                "(#100) page_messages_engagement is not valid",
                &items,
                PARAMETERS
            ),
            Blame::Items(vec![1])
        );
        // Meta's words for a retired metric name neither.
        assert_eq!(
            blame(
                "(#100) The value must be a valid insights metric",
                &items,
                PARAMETERS
            ),
            Blame::Unknown
        );
        // Only whole words count: `since_x` is not `since`.
        assert_eq!(
            blame("(#100) since_x is odd", &items, PARAMETERS),
            Blame::Unknown
        );
    }

    #[tokio::test]
    async fn a_named_item_is_dropped_without_splitting_and_the_rest_is_asked_at_once() {
        let (result, dropped, sent) = decide(&["alpha", "beta", "gamma"], &[], |batch| {
            if batch.iter().any(|item| item == "beta") {
                Err(api_error(
                    100,
                    None,
                    "(#100) beta is not valid for fields param.",
                ))
            } else {
                Ok(json!({"data": []}))
            }
        })
        .await;
        assert_eq!(answered(&result), names(&["alpha", "gamma"]));
        assert_eq!(dropped, names(&["beta"]));
        assert_eq!(
            sent,
            vec![
                names(&["alpha", "beta", "gamma"]),
                names(&["alpha", "gamma"])
            ]
        );
    }

    fn retired_gamma(batch: &[String]) -> Result<Value, GraphError> {
        if batch.iter().any(|item| item == "gamma") {
            Err(api_error(
                100,
                None,
                "(#100) The value must be a valid insights metric",
            ))
        } else {
            Ok(json!({"data": []}))
        }
    }

    #[tokio::test]
    async fn an_unnamed_item_failing_alone_for_the_first_time_is_a_suspect_not_a_drop() {
        let items = ["alpha", "beta", "gamma", "delta"];
        let (result, verdicts, sent) = decide_with(&items, &[], &[], retired_gamma).await;
        let error = result.expect_err("the read fails, so its previous values stay");
        assert!(matches!(error, PollError::Suspected { .. }), "{error:?}");
        assert_eq!(error.class(), "invalid_parameter");
        assert!(error.to_string().contains("gamma failed alone"), "{error}");
        assert!(verdicts.dropped.is_empty());
        assert_eq!(verdicts.suspected, names(&["gamma"]));
        // The whole, then the halves, then gamma and delta alone.
        assert_eq!(sent.len(), 5);
    }

    #[tokio::test]
    async fn an_unnamed_item_that_fails_alone_in_two_polls_in_a_row_is_dropped() {
        let items = ["alpha", "beta", "gamma", "delta"];
        let (result, verdicts, _) = decide_with(&items, &[], &["gamma"], retired_gamma).await;
        assert_eq!(answered(&result), names(&["alpha", "beta", "delta"]));
        assert_eq!(verdicts.dropped, names(&["gamma"]));
        assert!(verdicts.suspected.is_empty());
    }

    #[tokio::test]
    async fn a_request_wide_error_that_ends_while_the_request_is_split_drops_nothing() {
        // Meta's error holds for the first three requests of the poll, then ends: the early
        // halves fail, the later ones are answered.
        let calls = std::cell::Cell::new(0);
        let items = ["alpha", "beta", "gamma", "delta"];
        let (result, verdicts, _) = decide_with(&items, &[], &[], |_| {
            calls.set(calls.get() + 1);
            if calls.get() <= 3 {
                Err(api_error(100, None, "(#100) Invalid parameter"))
            } else {
                Ok(json!({"data": []}))
            }
        })
        .await;
        assert!(matches!(result, Err(PollError::Suspected { .. })));
        assert!(verdicts.dropped.is_empty());
        // At the next poll the error is over: everything is answered and nothing is dropped.
        let suspected: Vec<&str> = verdicts.suspected.iter().map(String::as_str).collect();
        let (result, verdicts, sent) =
            decide_with(&items, &[], &suspected, |_| Ok(json!({"data": []}))).await;
        assert_eq!(
            answered(&result),
            names(&["alpha", "beta", "delta", "gamma"])
        );
        assert_eq!(verdicts, Verdicts::default());
        assert_eq!(sent.len(), 1);
    }

    #[tokio::test]
    async fn a_message_naming_a_parameter_fails_the_poll_without_splitting_or_dropping() {
        let (result, dropped, sent) = decide(&["alpha", "beta", "gamma"], &[], |_| {
            Err(api_error(
                100,
                None,
                "(#100) The parameter since is invalid",
            ))
        })
        .await;
        let error = result.expect_err("a failed poll");
        assert!(matches!(error, PollError::InvalidParameter(_)), "{error:?}");
        assert_eq!(error.class(), "invalid_parameter");
        assert_eq!(error.disabled_reason(), None);
        assert!(
            error
                .to_string()
                .contains("(#100) The parameter since is invalid"),
            "{error}"
        );
        assert!(dropped.is_empty());
        assert_eq!(sent.len(), 1);
    }

    #[tokio::test]
    async fn a_request_level_error_that_fails_every_split_drops_nothing() {
        let (result, dropped, sent) = decide(&["alpha", "beta", "gamma"], &[], |_| {
            Err(api_error(
                100,
                None,
                "(#100) The value must be a valid insights metric",
            ))
        })
        .await;
        assert!(matches!(result, Err(PollError::InvalidParameter(_))));
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(sent.len(), 2 * 3 - 1);
    }

    #[tokio::test]
    async fn a_single_item_that_fails_is_not_proven_at_fault() {
        let (result, dropped, sent) = decide(&["alpha"], &[], |_| {
            Err(api_error(100, None, "(#100) Invalid parameter"))
        })
        .await;
        assert!(matches!(result, Err(PollError::InvalidParameter(_))));
        assert!(dropped.is_empty());
        assert_eq!(sent.len(), 1);
    }

    #[tokio::test]
    async fn a_retried_item_that_still_fails_alone_is_dropped_again() {
        let (result, dropped, _) = decide(&["alpha"], &["alpha"], |_| {
            Err(api_error(
                100,
                None,
                "(#100) The value must be a valid insights metric",
            ))
        })
        .await;
        assert!(answered(&result).is_empty());
        assert_eq!(dropped, names(&["alpha"]));
    }

    #[tokio::test]
    async fn items_named_before_a_request_level_failure_stay_dropped() {
        // `alpha` is named; what is left then fails alone with nothing answered.
        let (result, dropped, _) = decide(&["alpha", "beta"], &[], |batch| {
            if batch.iter().any(|item| item == "alpha") {
                Err(api_error(100, None, "(#100) alpha is not valid"))
            } else {
                Err(api_error(100, None, "(#100) Invalid parameter"))
            }
        })
        .await;
        assert!(matches!(result, Err(PollError::InvalidParameter(_))));
        assert_eq!(dropped, names(&["alpha"]));
    }

    #[tokio::test]
    async fn another_failure_while_splitting_ends_the_poll_with_that_failure() {
        let (result, dropped, sent) = decide(&["alpha", "beta"], &[], |batch| {
            if batch.len() == 2 {
                Err(api_error(100, None, "(#100) Invalid parameter"))
            } else {
                Err(api_error(2, None, "An unexpected error has occurred."))
            }
        })
        .await;
        let error = result.expect_err("a failed poll");
        assert!(matches!(error, PollError::Graph(_)), "{error:?}");
        assert!(dropped.is_empty());
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn only_token_permission_and_missing_object_errors_disable_a_target() {
        let cases = [
            (api_error(190, Some(463), "expired"), Some("invalid_token")),
            (
                api_error(10, None, "(#10) permission"),
                Some("permission_denied"),
            ),
            (
                api_error(100, Some(33), "Unsupported get request."),
                Some("object_unavailable"),
            ),
            (api_error(100, None, "(#100) Invalid parameter"), None),
            (api_error(2, None, "retry"), None),
            (api_error(4, None, "(#4) limit"), None),
        ];
        for (error, reason) in cases {
            let shown = error.to_string();
            assert_eq!(PollError::Graph(error).disabled_reason(), reason, "{shown}");
        }
        let invalid = PollError::InvalidParameter(api_error(190, None, "any"));
        assert_eq!(invalid.disabled_reason(), None);
        let nothing = PollError::NothingValid {
            items: names(&["alpha"]),
            retry_at: 86_400,
        };
        assert_eq!(nothing.disabled_reason(), None);
        assert_eq!(nothing.class(), "no_valid_metrics");
        assert!(
            nothing.to_string().contains("1970-01-02T00:00:00Z"),
            "{nothing}"
        );
    }

    #[test]
    fn a_drop_expires_after_the_retry_period_and_counts_from_the_latest_rejection() {
        let after = Duration::from_secs(3600);
        let mut dropped = Dropped::default();
        dropped.insert("alpha".into(), 1000);
        dropped.insert("beta".into(), 2000);
        assert!(dropped.excludes("alpha", 4599, after));
        assert!(!dropped.excludes("alpha", 4600, after));
        assert!(!dropped.excludes("gamma", 0, after));
        // Still listed while it is being asked for again.
        assert!(dropped.contains("alpha"));
        match dropped.nothing_valid(after) {
            PollError::NothingValid { items, retry_at } => {
                assert_eq!(items, names(&["alpha", "beta"]));
                assert_eq!(retry_at, 4600);
            }
            other => panic!("{other:?}"),
        }
        dropped.insert("alpha".into(), 5000);
        assert!(dropped.excludes("alpha", 8599, after));
        dropped.remove("alpha");
        assert_eq!(dropped.names(), names(&["beta"]));
    }
}
