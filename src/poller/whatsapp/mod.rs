//! A WhatsApp Business Account's poll: what it costs, how its templates and phone numbers do.
//!
//! Each poll makes one node read (`analytics`, `pricing_analytics`, `conversation_analytics`,
//! `name`, `currency`: [`node`]), template analytics in calls of at most ten templates, and,
//! at most once an hour ([`listing`]), the template and phone-number lists. What Meta does
//! not offer the account (template analytics not confirmed or not in its region, costs of a
//! partner-billed account) is a state ([`unavailable`]), not a failure: the rest exports and
//! the exporter stops asking for it. Each of the four is a read of its own ([`Read`]): a list
//! that fails keeps its previous series while the account's analytics and pricing publish, and
//! template analytics go on with the last template list read. A list refused for a permission
//! (`#200`) is switched off for a day as a state ([`ReadStates`]).
//!
//! `health_status` rides on reads the poll makes anyway: the node read answers for the WABA,
//! the business portfolio and the app, the phone-number list for each number. Where the list
//! refuses it, the numbers are read on their own nodes, hourly ([`number_health`]). What Meta
//! says in words goes to the log and the status page ([`health_notes`]).

pub(crate) mod health_notes;
pub(crate) mod listing;
pub(crate) mod node;
pub(crate) mod number_health;
pub mod shared;
pub(crate) mod unavailable;

use std::collections::HashSet;
use std::sync::Arc;

use self::health_notes::HealthNotes;
use self::number_health::NumberHealth;
use self::shared::SharedOwners;
use crate::convert::whatsapp::health;

use serde_json::Value;

use self::listing::{Listing, PHONE_NUMBERS, TEMPLATES};
use self::unavailable::{Feature, Reason, Unavailability};
use super::read::{Polled, Read, ReadStates};
use super::{single_item_error, PollContext, PollError, Unavailable};
use crate::config::{TemplateSettings, WabaTarget};
use crate::convert::whatsapp::billing::{self, BillingSelection, Cost};
use crate::convert::whatsapp::phone_numbers::{self, PhoneNumber};
use crate::convert::whatsapp::templates::{self, TemplateInfo, TemplateSelection};
use crate::convert::whatsapp::{self, Selection};
use crate::convert::{Converted, ShapeError};
use crate::exposition::{Family, Sample};
use crate::graph::{Api, Endpoint, GraphError, GraphRequest};

/// Template ids Meta takes in one `template_analytics` call.
const TEMPLATES_PER_CALL: usize = 10;
/// UTC days, which template analytics are cut in.
const DAY: i64 = 86_400;

/// Poll plan and carried-over state of one WhatsApp Business Account.
pub struct WabaPoller {
    target: Arc<WabaTarget>,
    templates: Listing<TemplateInfo>,
    phone_numbers: Listing<PhoneNumber>,
    unavailable: Unavailability,
    reads: ReadStates,
    /// The currency of the last account read, for template costs when the account read of a
    /// poll fails.
    currency: Option<String>,
    /// The account's name, from its last node read.
    name: Option<String>,
    /// The numbers' own health where the list does not carry it.
    number_health: NumberHealth,
    /// Meta's words about the health of what the account exports.
    health_notes: HealthNotes,
}

impl WabaPoller {
    pub(super) fn new(target: Arc<WabaTarget>) -> Self {
        Self {
            target,
            templates: Listing::default(),
            phone_numbers: Listing::default(),
            unavailable: Unavailability::default(),
            reads: ReadStates::default(),
            currency: None,
            name: None,
            number_health: NumberHealth::default(),
            health_notes: HealthNotes::default(),
        }
    }

    /// The same account with a rotated token.
    pub(super) fn update(&mut self, target: Arc<WabaTarget>) {
        if target.credentials != self.target.credentials {
            self.reads.clear();
        }
        self.target = target;
    }

    /// What the account does not offer, and the reads switched off for a permission error,
    /// for status and metrics.
    pub(super) fn unavailable(&self) -> Vec<Unavailable> {
        let mut states = self.unavailable.list();
        states.extend(self.reads.list());
        states
    }

    /// The account's name, from its last node read.
    pub(super) fn name(&self) -> Option<String> {
        self.name.clone()
    }

    /// The entities the account exports that cannot send freely or carry Meta's words, for
    /// the status page.
    pub(super) fn health(&self) -> Vec<health::Entity> {
        self.health_notes.attention()
    }

    pub(super) async fn poll(&mut self, context: &PollContext<'_>) -> Result<Polled, PollError> {
        let now = context.clock.now_unix();
        let mut polled = Polled::default();
        let account = match self.read_node(context, now).await {
            Ok(body) => {
                let currency = body.get("currency").and_then(Value::as_str);
                self.currency = currency.map(str::to_owned);
                if let Some(name) = body.get("name").and_then(Value::as_str) {
                    self.name = Some(name.to_owned());
                }
                let mut converted = Converted::default();
                self.convert_node(
                    &body,
                    currency,
                    now,
                    context.health_entities,
                    &mut converted,
                )
                .map(|()| converted)
                .map_err(PollError::from)
            }
            Err(error) => Err(error),
        };
        polled.push(Read::Account, account);
        let currency = self.currency.clone();
        if let Some(settings) = self.target.templates.clone() {
            if !self.reads.excludes(Read::TemplateList, now) {
                let fresh = self.templates.due(now);
                let list = self.read_template_list(context, now).await;
                polled.push_as(Read::TemplateList, list, fresh);
            }
            if let Some(analytics) = self
                .poll_template_analytics(context, &settings, currency.as_deref(), now)
                .await
            {
                polled.push(Read::TemplateAnalytics, analytics);
            }
        }
        if self.target.phone_numbers_health && !self.reads.excludes(Read::PhoneNumbers, now) {
            let fresh = self.phone_numbers.due(now);
            let numbers = self.read_phone_numbers(context, now).await;
            let owned = numbers.as_ref().ok().map(|(_, owned)| owned.clone());
            polled.push_as(
                Read::PhoneNumbers,
                numbers.map(|(converted, _)| converted),
                fresh,
            );
            if let Some(owned) = owned.filter(|_| self.number_health.reads_numbers()) {
                let (health, fresh) = self
                    .number_health
                    .read(context, &self.target, &owned, now)
                    .await;
                if health.is_ok() {
                    self.health_notes.observe(
                        &self.target.id,
                        Read::PhoneNumberHealth,
                        self.number_health.entities(),
                    );
                }
                polled.push_as(Read::PhoneNumberHealth, health, fresh);
            }
        }
        self.reads.observe_poll(&self.target.id, &polled, now);
        Ok(polled)
    }

    /// How long a claim on a shared number or entity lasts: two of the account's intervals,
    /// so one late poll does not hand it over.
    fn claim_for(&self) -> i64 {
        2 * i64::try_from(self.target.schedule.interval.as_secs()).unwrap_or(i64::MAX / 4)
    }

    /// The phone-number list (read again when due) and its health series, with the numbers
    /// this account exports. The list is asked for `health_status` unless it refused it; a
    /// refusal is answered by reading the list again without it, in the same poll.
    async fn read_phone_numbers(
        &mut self,
        context: &PollContext<'_>,
        now: i64,
    ) -> Result<(Converted, HashSet<String>), PollError> {
        let due = self.phone_numbers.due(now);
        let with_health = self.number_health.on_list(now);
        let extra: &[&str] = if with_health { &["health_status"] } else { &[] };
        let parse = phone_numbers::parse_phone_numbers;
        let refreshed = self
            .phone_numbers
            .refresh(&PHONE_NUMBERS, extra, context, &self.target, now, parse)
            .await;
        let problems = match refreshed {
            Err(error)
                if with_health
                    && self
                        .number_health
                        .refused_by_list(&self.target.id, &error, now) =>
            {
                self.phone_numbers
                    .refresh(&PHONE_NUMBERS, &[], context, &self.target, now, parse)
                    .await?
            }
            Ok(problems) => {
                if due && with_health {
                    self.number_health.carried_by_list();
                }
                problems
            }
            Err(error) => return Err(error),
        };
        let numbers = self.phone_numbers.items();
        let owned = context.phone_numbers.claim(
            &self.target.id,
            numbers.iter().map(|number| number.id.as_str()),
            now,
            self.claim_for(),
        );
        let healths: Vec<&health::Entity> = numbers
            .iter()
            .filter(|number| owned.contains(&number.id))
            .filter_map(|number| number.health.as_ref())
            .collect();
        self.health_notes
            .observe(&self.target.id, Read::PhoneNumbers, healths.iter().copied());
        let mut families = phone_numbers::families(&self.target.id, numbers, &owned);
        families.extend(health::families(healths));
        Ok((
            Converted {
                families,
                problems,
                ..Converted::default()
            },
            owned,
        ))
    }

    /// The template list (read again when due) and its info series.
    async fn read_template_list(
        &mut self,
        context: &PollContext<'_>,
        now: i64,
    ) -> Result<Converted, PollError> {
        let problems = self
            .templates
            .refresh(
                &TEMPLATES,
                &[],
                context,
                &self.target,
                now,
                templates::parse_templates,
            )
            .await?;
        Ok(Converted {
            families: vec![templates::info_family(
                &self.target.id,
                self.templates.items(),
            )],
            problems,
            ..Converted::default()
        })
    }

    /// The node read; an account that turns out to have no costs is asked again without them,
    /// once, and remembered.
    async fn read_node(&mut self, context: &PollContext<'_>, now: i64) -> Result<Value, PollError> {
        let token = self.target.credentials.token.clone();
        let with_cost = !self.unavailable.excludes(Feature::Cost, now);
        let answer = context
            .client
            .get(
                &node::request(
                    &self.target,
                    now,
                    with_cost,
                    context.client.version(Api::Graph),
                ),
                &token,
            )
            .await;
        match answer {
            Ok(body) => Ok(body),
            Err(error)
                if with_cost && self.mark_if_unavailable(&error, now) == Some(Feature::Cost) =>
            {
                context
                    .client
                    .get(
                        &node::request(
                            &self.target,
                            now,
                            false,
                            context.client.version(Api::Graph),
                        ),
                        &token,
                    )
                    .await
                    .map_err(single_item_error)
            }
            Err(error) => Err(single_item_error(error)),
        }
    }

    /// Records the state an error reports, if it reports one, and says which feature.
    fn mark_if_unavailable(&mut self, error: &GraphError, now: i64) -> Option<Feature> {
        let (feature, reason) = unavailable::recognise(error)?;
        tracing::info!(waba_id = %self.target.id, feature = feature.as_str(), reason = reason.as_str(), "the WhatsApp Business Account does not offer this; exporting the rest and asking again in a day");
        self.unavailable.mark(feature, reason, now);
        Some(feature)
    }

    fn convert_node(
        &mut self,
        body: &Value,
        currency: Option<&str>,
        now: i64,
        owners: &SharedOwners,
        converted: &mut Converted,
    ) -> Result<(), ShapeError> {
        if !body.is_object() {
            return Err(ShapeError(
                "the WhatsApp Business Account read is not an object".into(),
            ));
        }
        let selection = Selection {
            waba_id: &self.target.id,
            granularity: self.target.granularity,
        };
        append(converted, whatsapp::convert(selection, now, body)?);
        for billing in [&self.target.pricing, &self.target.conversations]
            .into_iter()
            .flatten()
        {
            let selection = BillingSelection {
                waba_id: &self.target.id,
                analytics: billing,
                currency,
            };
            let (part, cost) =
                billing::convert(selection, now, body.get(billing.field.field_name()))?;
            append(converted, part);
            // Pricing carries cost unasked wherever Meta has it, so its answer tells whether the
            // account is partner-billed; conversations only carry it when asked.
            if billing.field == crate::config::BillingField::Pricing {
                match cost {
                    Cost::Reported => self.unavailable.clear(Feature::Cost),
                    Cost::Missing => {
                        self.unavailable
                            .mark(Feature::Cost, Reason::PartnerBilled, now)
                    }
                    Cost::NoTraffic => {}
                }
            }
        }
        let (limit, problems) = crate::convert::whatsapp::limits::convert(&self.target.id, body);
        converted.families.extend(limit);
        converted.problems.extend(problems);
        if let Some(health) = body.get("health_status").filter(|value| !value.is_null()) {
            let (entities, problems) = health::parse(health);
            converted.problems.extend(problems);
            // The business portfolio and the app are in every account's answer: each entity
            // is exported by one account, as a phone number is.
            let keys: Vec<String> = entities.iter().map(health::Entity::key).collect();
            let owned = owners.claim(
                &self.target.id,
                keys.iter().map(String::as_str),
                now,
                self.claim_for(),
            );
            let exported: Vec<&health::Entity> = entities
                .iter()
                .filter(|entity| owned.contains(&entity.key()))
                .collect();
            self.health_notes
                .observe(&self.target.id, Read::Account, exported.iter().copied());
            converted.families.extend(health::families(exported));
        }
        converted.families.push(account_info(
            &self.target.id,
            body.get("name").and_then(Value::as_str),
            currency,
            self.target.origin,
        ));
        Ok(())
    }

    /// Template analytics of the configured templates, or of the approved ones of the last
    /// template list read; `None` when there is nothing to ask (no template known yet, or
    /// template analytics not offered to the account).
    async fn poll_template_analytics(
        &mut self,
        context: &PollContext<'_>,
        settings: &TemplateSettings,
        currency: Option<&str>,
        now: i64,
    ) -> Option<Result<Converted, PollError>> {
        if self.unavailable.excludes(Feature::TemplateAnalytics, now)
            || self.reads.excludes(Read::TemplateAnalytics, now)
        {
            return None;
        }
        let ids = template_ids(settings, self.templates.items());
        if ids.is_empty() {
            return None;
        }
        let mut metrics = settings.metrics.clone();
        if self.unavailable.excludes(Feature::Cost, now) {
            metrics.retain(|metric| metric != "COST");
        }
        let pages = match self.template_analytics(context, &ids, &metrics, now).await {
            Ok(pages) => Ok(pages),
            Err(error) => match self.mark_if_unavailable(&error, now) {
                Some(Feature::TemplateAnalytics) => return None,
                Some(Feature::Cost) => {
                    metrics.retain(|metric| metric != "COST");
                    self.template_analytics(context, &ids, &metrics, now)
                        .await
                        .map_err(single_item_error)
                }
                None => Err(single_item_error(error)),
            },
        };
        let result = pages.and_then(|pages| {
            self.unavailable.clear(Feature::TemplateAnalytics);
            let selection = TemplateSelection {
                waba_id: &self.target.id,
                template_ids: &ids,
                metrics: &metrics,
                currency,
            };
            Ok(templates::convert(selection, now, &pages)?)
        });
        Some(result)
    }

    /// `template_analytics` for `ids`, ten to a call, over the last complete UTC day and the
    /// current one; the first failure is the answer.
    async fn template_analytics(
        &self,
        context: &PollContext<'_>,
        ids: &[String],
        metrics: &[String],
        now: i64,
    ) -> Result<Vec<Value>, GraphError> {
        let start = now.div_euclid(DAY) * DAY - DAY;
        let requests = template_analytics_requests(&self.target.id, ids, metrics, start, now);
        context
            .client
            .get_all(&requests, &self.target.credentials.token)
            .await
            .into_iter()
            .collect()
    }
}

/// The templates whose analytics are read: the configured ids, or else every APPROVED template
/// of the account's list.
pub(crate) fn template_ids(settings: &TemplateSettings, templates: &[TemplateInfo]) -> Vec<String> {
    if !settings.ids.is_empty() {
        return settings.ids.clone();
    }
    templates
        .iter()
        .filter(|template| template.status == "APPROVED")
        .map(|template| template.id.clone())
        .collect()
}

/// `template_analytics` of `ids` over `[start, end)`, ten ids to a call.
pub(crate) fn template_analytics_requests(
    waba_id: &str,
    ids: &[String],
    metrics: &[String],
    start: i64,
    end: i64,
) -> Vec<GraphRequest> {
    ids.chunks(TEMPLATES_PER_CALL)
        .map(|chunk| {
            GraphRequest::whatsapp_edge(
                Endpoint::WhatsappTemplateAnalytics,
                waba_id,
                "template_analytics",
                vec![
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("granularity", "DAILY".to_owned()),
                    ("metric_types", metrics.join(",")),
                    ("template_ids", format!("[{}]", chunk.join(","))),
                ],
            )
        })
        .collect()
}

fn append(converted: &mut Converted, part: Converted) {
    converted.families.extend(part.families);
    converted.problems.extend(part.problems);
}

/// `meta_whatsapp_business_account_info`: the account's name and currency, for joins.
pub(crate) fn account_info(
    waba_id: &str,
    name: Option<&str>,
    currency: Option<&str>,
    origin: crate::config::Origin,
) -> Family {
    let mut labels = vec![("waba_id".to_owned(), waba_id.to_owned())];
    if let Some(name) = name {
        labels.push(("name".to_owned(), name.to_owned()));
    }
    if let Some(currency) = currency {
        labels.push(("currency".to_owned(), currency.to_owned()));
    }
    labels.push(("origin".to_owned(), origin.as_str().to_owned()));
    Family {
        name: "meta_whatsapp_business_account_info".to_owned(),
        help: "Always 1: the WhatsApp Business Account's name and the currency its costs are in, for joining names onto waba_id (`* on(waba_id) group_left(name)`); origin is static (listed in the config) or discovered. From the account read of a background poll.".to_owned(),
        samples: vec![Sample { labels, value: 1.0 }],
    }
}
