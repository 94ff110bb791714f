//! A simulated Meta Graph API, for `--demo` mode and for the integration tests.
//!
//! [`FakeGraphApi`] serves, on a loopback port, the read paths the exporter uses, shaped like
//! `graph.facebook.com` shapes them:
//!
//! - `GET /{version}/{page-id}/insights?metric=..`: Page messaging insights,
//! - `GET /{version}/{campaign-id}/insights?fields=..`: marketing-message campaign insights,
//! - `GET /{version}/{waba-id}?fields=..`: the WhatsApp Business Account node, whose fields
//!   `analytics.start(..).end(..).granularity(..)`, `pricing_analytics.(..)`,
//!   `conversation_analytics.(..)`, `name` and `currency` may be combined in one read,
//! - `GET /{version}/{waba-id}/message_templates?fields=..`: the account's templates (paged),
//! - `GET /{version}/{waba-id}/template_analytics?start=..&end=..&template_ids=..`: daily
//!   template analytics,
//! - `GET /{version}/{waba-id}/phone_numbers?fields=..`: the account's phone numbers (paged),
//! - `GET /{version}/me/accounts`: the Pages the token's user manages, with their Page tokens,
//! - `GET /{version}/{business-id}/owned_whatsapp_business_accounts` and
//!   `client_whatsapp_business_accounts`: a business's WhatsApp accounts (paged),
//! - `GET /{version}/act_{id}/insights`: ad-account insights, shaped like a campaign's,
//! - `GET /{version}/{id}?fields=name,...`: the node of any object, for names.
//! - `POST /{version}/` with `batch=[..]`: a batch call of up to 50 GETs (`batch`), among
//!   them `debug_token?input_token=..`, which the app token `APP_ID|APP_SECRET` may ask about
//!   any token (`debug_token`, also served as a GET).
//!
//! `{version}` is any `vX.Y`. Each object is registered by id with the one token it accepts
//! (`Authorization: Bearer <token>`, or an `access_token` query parameter, which is accepted
//! but recorded so tests can assert the exporter never sends one). A simulated object answers
//! with generated numbers that are deterministic for a given simulated instant and drift
//! slowly over time ([`FakeGraphApi::set_now`] freezes the clock); a fixed object answers with a
//! scripted body. Tests can retire metrics and fields, inject faults, rotate tokens, script
//! the WhatsApp account settings that change what Meta answers (partner billing, template
//! analytics availability, template count, phone quality, verbatim fields and edges), script
//! a campaign's or ad account's insights (a read rate above 100, empty answers) and inspect
//! every request received.
//!
//! This module owns the public handle and the registry behind it: the objects and their tokens,
//! the retired and extra metric names, the WhatsApp account and campaign settings, the
//! scripted faults, the request log and the reported app usage. The submodules are private: `http` (routing,
//! authentication, dispatch), `faults` (Graph error bodies and injected failures), `fields` (the
//! `fields` expression parser), `generate`
//! (deterministic numbers), `paging` (cursor paging of list edges), and the read paths `page`,
//! `campaign`, `discovery` (`me/accounts`, a business's account lists), `waba` (`analytics`), `whatsapp_billing` (`pricing_analytics` and
//! `conversation_analytics`), `templates` (`message_templates` and `template_analytics`) and
//! `phone_numbers`; `batch` (batch calls) and `debug_token` (the app, token facts and the
//! `debug_token` read).

mod batch;
mod campaign;
mod debug_token;
mod discovery;
mod faults;
mod fields;
mod generate;
mod http;
mod page;
mod paging;
mod phone_numbers;
mod templates;
mod versions;
mod waba;
mod whatsapp_billing;

#[cfg(test)]
mod tests;

pub use debug_token::{TokenInfo, ALL_SCOPES};
pub use faults::Fault;
pub use templates::TemplateAnalytics;
pub use waba::{health_blocked, health_limited, phone_health_limited};

use campaign::CampaignSettings;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running simulated Graph API. Dropping the handle (or calling [`FakeGraphApi::shutdown`])
/// stops the server: it stops accepting, closes idle connections and finishes requests in
/// flight.
#[derive(Debug)]
pub struct FakeGraphApi {
    shared: Arc<Shared>,
    /// The server task stops when this sender is dropped along with the handle.
    _stop: oneshot::Sender<()>,
}

/// One request the simulator received, as it arrived.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The path as received (still percent-encoded), e.g. `/v21.0/1234/insights`.
    pub path: String,
    /// The raw query string as received: still percent-encoded, without the leading `?`, empty
    /// if there was none. Parameter names are plain ASCII, so a test can look for
    /// `access_token=` directly.
    pub query: String,
    /// The `Authorization` header, verbatim (e.g. `Bearer abc`), if one was sent.
    pub authorization: Option<String>,
    /// The object id from a `/{version}/{id}[/{edge}]` path; `None` for other paths.
    pub object_id: Option<String>,
    /// Whether this was a request inside a batch call, recorded with its entry's method,
    /// path and query (an `input_token` value replaced by `[redacted]`) and the batch call's
    /// `Authorization` and `appsecret_proof`. The batch call itself is recorded too, as a
    /// `POST` without an object id.
    pub in_batch: bool,
    /// The `appsecret_proof` sent: in the query string of a GET, in the form body of a batch
    /// call (and so for each of its entries).
    pub appsecret_proof: Option<String>,
}

/// How long the simulator takes to answer, as Meta's API does: a fixed time per HTTP
/// request, plus a share per entry for a batch call (Meta runs a batch's requests and
/// gathers their answers before it replies, so a batch takes longer than any one call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Added to every answer.
    pub per_request: Duration,
    /// Added to a batch call's answer once per entry.
    pub per_batch_entry: Duration,
}

/// The fault key of batch calls themselves (`fail_next_batch`); no object id looks like it.
const BATCH_CALL: &str = "(batch call)";

/// App-level rate-limit usage as Graph reports it in the `X-App-Usage` header, each in percent
/// of the app's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppUsage {
    /// Share of the call budget used.
    pub call_count: u32,
    /// Share of the CPU-time budget used.
    pub total_cputime: u32,
    /// Share of the total-time budget used.
    pub total_time: u32,
}

impl AppUsage {
    /// The header value, e.g. `{"call_count":28,"total_cputime":25,"total_time":25}`.
    fn header_value(self) -> String {
        format!(
            r#"{{"call_count":{},"total_cputime":{},"total_time":{}}}"#,
            self.call_count, self.total_cputime, self.total_time
        )
    }
}

impl FakeGraphApi {
    /// Binds `127.0.0.1:0` and serves in a spawned tokio task.
    pub async fn start() -> std::io::Result<FakeGraphApi> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{address}"),
            registry: Mutex::new(Registry::default()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = http::router(Arc::clone(&shared));
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Resolves when the handle, and with it the sender, is dropped.
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "simulated Graph API server failed");
            }
        });
        tracing::debug!(%address, "simulated Graph API listening");
        Ok(FakeGraphApi {
            shared,
            _stop: stop,
        })
    }

    /// The server's base URL, e.g. `http://127.0.0.1:41234` (no trailing slash, no version).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Freezes the simulator's notion of now (unix seconds); `None` follows the system clock.
    pub fn set_now(&self, unix_seconds: Option<i64>) {
        self.shared.registry().now = unix_seconds;
    }

    /// Registers (or replaces) a Page answering Page insights with generated data, accepting
    /// `token`.
    pub fn simulate_page(&self, id: &str, token: &str) {
        self.register(id, token, ObjectKind::Simulated(Simulated::Page));
    }

    /// Registers (or replaces) a marketing-message campaign answering campaign insights with
    /// generated data, accepting `token`.
    pub fn simulate_campaign(&self, id: &str, token: &str) {
        self.register(id, token, ObjectKind::Simulated(Simulated::Campaign));
    }

    /// Registers (or replaces) a WhatsApp Business Account answering with generated data,
    /// accepting `token`: the node's `analytics`, `pricing_analytics`, `conversation_analytics`,
    /// `name` and `currency` fields and its `message_templates`, `template_analytics` and
    /// `phone_numbers` edges. Settings made with the WhatsApp methods below (`set_partner_billed`
    /// and the rest) are kept by id, so they survive the account's replacement.
    pub fn simulate_waba(&self, id: &str, token: &str) {
        self.register(id, token, ObjectKind::Simulated(Simulated::Waba));
    }

    /// Registers (or replaces) an ad account (`act_<digits>`) whose insights answer like a
    /// campaign's and whose node has `name`, `currency` and `account_id`, accepting `token`.
    pub fn simulate_ad_account(&self, id: &str, token: &str) {
        self.register(id, token, ObjectKind::Simulated(Simulated::AdAccount));
    }

    /// Makes the campaign or ad account `id` play an endpoint that a breaking change touches:
    /// a call to it on an expired Marketing API version fails with error 2635 instead of
    /// being auto-upgraded (graph-api.md 7.1).
    pub fn reject_expired_marketing_version(&self, id: &str) {
        self.shared
            .registry()
            .rejecting_expired_versions
            .insert(id.to_owned());
    }

    /// Registers (or replaces) a business, accepting `token`, whose
    /// `owned_whatsapp_business_accounts` and `client_whatsapp_business_accounts` list these
    /// account ids (register the accounts themselves with [`FakeGraphApi::simulate_waba`]).
    /// Calling it again replaces both lists.
    pub fn simulate_business(&self, id: &str, token: &str, owned: &[&str], client: &[&str]) {
        let ids = |list: &[&str]| list.iter().map(|id| (*id).to_owned()).collect();
        self.shared
            .registry()
            .businesses
            .insert(id.to_owned(), (ids(owned), ids(client)));
        self.register(id, token, ObjectKind::Simulated(Simulated::Business));
    }

    /// Makes `user_token` a user who manages these Pages: `GET /me/accounts` with it lists them,
    /// in this order, each with the token the Page was registered with. Calling it again
    /// replaces the list.
    pub fn grant_pages(&self, user_token: &str, page_ids: &[&str]) {
        self.shared.registry().users.insert(
            user_token.to_owned(),
            page_ids.iter().map(|id| (*id).to_owned()).collect(),
        );
    }

    /// Serves list edges in pages of at most `size` entries whatever `limit` asks for, as Graph
    /// does when it answers fewer than asked: makes a short list take several pages.
    pub fn set_max_page_size(&self, size: usize) {
        self.shared.registry().max_page_size = Some(size.max(1));
    }

    /// Names object `id` (its `name` field and its entry in discovery lists), instead of the
    /// generated "Simulated Page {id}".
    pub fn set_name(&self, id: &str, name: &str) {
        self.shared
            .registry()
            .names
            .insert(id.to_owned(), name.to_owned());
    }

    /// Registers (or replaces) an object that answers every GET, on any edge, with exactly
    /// `body` (HTTP 200), accepting `token`.
    pub fn fixed_response(&self, id: &str, token: &str, body: Value) {
        self.register(id, token, ObjectKind::Fixed(body));
    }

    /// Makes Page insights requests whose `metric` list contains `metric` fail, for the whole
    /// request, with code 100 ("(#100) The value must be a valid insights metric"), as the real
    /// API does for a retired metric.
    pub fn retire_metric(&self, page_id: &str, metric: &str) {
        self.retire(page_id, metric);
    }

    /// Like [`FakeGraphApi::retire_metric`], but the error names the metric
    /// (`(#100) <metric> is not a valid insights metric`), so the exporter can drop it without
    /// splitting the request. The wording is modelled on Graph's field errors; Meta's own Page
    /// insights message does not always name the metric.
    pub fn retire_metric_named(&self, page_id: &str, metric: &str) {
        self.retire(page_id, metric);
        self.shared
            .registry()
            .named
            .entry(page_id.to_owned())
            .or_default()
            .insert(metric.to_owned());
    }

    /// Serves a metric or field retired with `retire_metric`, `retire_metric_named` or
    /// `retire_field` again (Meta's incident over, or a test of asking again).
    pub fn restore(&self, id: &str, name: &str) {
        let mut guard = self.shared.registry();
        let registry = &mut *guard;
        for names in [registry.retired.get_mut(id), registry.named.get_mut(id)]
            .into_iter()
            .flatten()
        {
            names.remove(name);
        }
    }

    /// Makes the insights of campaign or ad account `id` report `marketing_messages_read_rate`
    /// as `percent` (written with six decimals, as Meta writes rates) whenever the field is
    /// asked for and the range has a row; `None` returns to the rate computed from reads and
    /// deliveries. Meta's own example shows 481.818182: reads counted in a range can
    /// outnumber the deliveries in it.
    pub fn set_read_rate(&self, id: &str, percent: Option<f64>) {
        self.campaign(id, |settings| settings.read_rate = percent);
    }

    /// Makes the insights of campaign or ad account `id` answer `"data": []` for any dates
    /// while `empty`, as Meta answers a synchronous insights read with a breakdown the account
    /// has not opted in to (all versions, from 2026-08-03): no rows and no error. Requests are
    /// still checked (fields, dates) as before. `false` returns to the generated rows.
    pub fn set_insights_empty(&self, id: &str, empty: bool) {
        self.campaign(id, |settings| settings.empty = empty);
    }

    /// Makes WhatsApp analytics of account `waba_id` (`analytics`, `pricing_analytics` and
    /// `conversation_analytics`) cut day and month buckets at UTC midnight instead of Pacific
    /// midnight, and HALF_HOUR buckets a quarter hour off the half hour: a response whose
    /// buckets do not follow the calendar the exporter expects.
    pub fn misalign_buckets(&self, waba_id: &str) {
        self.shared.registry().misaligned.insert(waba_id.to_owned());
    }

    /// Makes campaign insights requests whose `fields` list contains `field` fail with code 100
    /// and Graph's message naming the field (`(#100) <field> is not valid for fields param. ...`).
    pub fn retire_field(&self, campaign_id: &str, field: &str) {
        self.retire(campaign_id, field);
    }

    /// Makes a Page serve `metric`, a name the catalog does not list, as a generated count (a
    /// metric Meta added after the exporter's release). Unlisted names are otherwise rejected
    /// with code 100 like retired ones.
    pub fn simulate_metric(&self, page_id: &str, metric: &str) {
        self.shared
            .registry()
            .extra_metrics
            .entry(page_id.to_owned())
            .or_default()
            .insert(metric.to_owned());
    }

    /// Makes the next `times` requests for object `id` fail with `fault`; after them behaviour
    /// returns to normal. Calls queue up: a second call's faults follow the first call's. A
    /// request inside a batch call takes its fault as its entry's answer: a Graph error or
    /// an HTTP error as the entry's code and body, a body that is not JSON as the entry's
    /// body string, a [`Fault::Delay`] as `null` (Graph gave up waiting for it), and a
    /// [`Fault::Stall`] holds up the whole batch call (a hung connection or slow proxy).
    pub fn fail_next(&self, id: &str, times: usize, fault: Fault) {
        if times == 0 {
            return;
        }
        let mut registry = self.shared.registry();
        let plan = registry.faults.entry(id.to_owned()).or_default();
        plan.scripted.push_back((fault, times));
    }

    /// Makes the next `times` batch calls (`POST /{version}/`) fail as a whole with `fault`,
    /// before any of their entries is looked at. A [`Fault::Delay`] only slows them.
    pub fn fail_next_batch(&self, times: usize, fault: Fault) {
        self.fail_next(BATCH_CALL, times, fault);
    }

    /// Makes every answer take longer by `latency` (none by default).
    pub fn set_latency(&self, latency: Latency) {
        self.shared.registry().latency = latency;
    }

    /// Makes every request for object `id` fail with `fault` until [`FakeGraphApi::clear_faults`]
    /// (faults queued by [`FakeGraphApi::fail_next`] still come first).
    pub fn fail_always(&self, id: &str, fault: Fault) {
        self.shared
            .registry()
            .faults
            .entry(id.to_owned())
            .or_default()
            .always = Some(fault);
    }

    /// Makes every request for the edge `edge` of object `id` (e.g. a WABA's `phone_numbers`)
    /// fail with `fault` until [`FakeGraphApi::clear_edge_faults`], while the object's node and
    /// other edges answer as before: one failing read beside healthy ones.
    pub fn fail_edge_always(&self, id: &str, edge: &str, fault: Fault) {
        self.shared
            .registry()
            .faults
            .entry(format!("{id}/{edge}"))
            .or_default()
            .always = Some(fault);
    }

    /// Makes the next `times` requests for object `id` whose query contains `needle` (for
    /// example `period=week`, one metric group of a Page) fail with `fault`, while the object's
    /// other requests answer as before.
    pub fn fail_query_next(&self, id: &str, needle: &str, times: usize, fault: Fault) {
        if times == 0 {
            return;
        }
        let mut registry = self.shared.registry();
        let plan = registry.faults.entry(format!("{id}?{needle}")).or_default();
        plan.scripted.push_back((fault, times));
    }

    /// Makes every request for object `id` whose query contains `needle` fail with `fault`
    /// until [`FakeGraphApi::clear_query_faults`].
    pub fn fail_query_always(&self, id: &str, needle: &str, fault: Fault) {
        self.shared
            .registry()
            .faults
            .entry(format!("{id}?{needle}"))
            .or_default()
            .always = Some(fault);
    }

    /// Removes the faults set for the requests of object `id` whose query contains `needle`.
    pub fn clear_query_faults(&self, id: &str, needle: &str) {
        self.shared
            .registry()
            .faults
            .remove(&format!("{id}?{needle}"));
    }

    /// Removes the faults set for the edge `edge` of object `id`.
    pub fn clear_edge_faults(&self, id: &str, edge: &str) {
        self.shared
            .registry()
            .faults
            .remove(&format!("{id}/{edge}"));
    }

    /// Removes every fault queued or set for object `id`.
    pub fn clear_faults(&self, id: &str) {
        self.shared.registry().faults.remove(id);
    }

    /// Changes the token object `id` accepts (a rotated or revoked token). No effect for an id
    /// that was never registered.
    pub fn set_token(&self, id: &str, token: &str) {
        if let Some(object) = self.shared.registry().objects.get_mut(id) {
            token.clone_into(&mut object.token);
        }
    }

    /// Adds these headers to every answer about object `id` (errors included), replacing any
    /// set before: rate-limit headers such as `X-Business-Use-Case-Usage` with
    /// `estimated_time_to_regain_access`, `X-Ad-Account-Usage` or `Retry-After`. An empty list
    /// removes them.
    pub fn set_headers(&self, id: &str, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.shared
            .registry()
            .headers
            .insert(id.to_owned(), headers);
    }

    /// Fixes the usage reported in `X-App-Usage`; `None` returns to the default, which
    /// pretends the app may make 200 calls an hour and counts the calls of the last hour.
    pub fn set_app_usage(&self, usage: Option<AppUsage>) {
        self.shared.registry().app_usage = usage;
    }

    /// The requests received, in order of arrival: all of them, or the most recent 10,000
    /// in a long run (the demo), so the log cannot grow without bound.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.registry().requests.iter().cloned().collect()
    }

    /// The Graph API calls received since the start: each GET, alone or inside a batch call
    /// (the batch calls themselves not counted), as Meta counts them against its limits.
    pub fn api_calls(&self) -> usize {
        self.shared.registry().api_calls
    }

    /// The HTTP requests received since the start: each GET sent alone, and each batch call.
    pub fn http_requests(&self) -> usize {
        self.shared.registry().http_requests
    }

    /// The number of requests received for object `id` since the start.
    pub fn request_count(&self, id: &str) -> usize {
        self.shared
            .registry()
            .request_counts
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// Makes account `waba_id` one billed through a solution partner, or not (the default):
    /// Meta then knows no cost for it. `pricing_analytics` points carry no `cost` (volume only,
    /// not an error), while `conversation_analytics` and `template_analytics` requests that ask
    /// for COST in `metric_types` fail whole with HTTP 400, code 100, `(#100) Cost not available
    /// for this WhatsApp Business Account: it is billed through a solution partner`.
    pub fn set_partner_billed(&self, waba_id: &str, partner_billed: bool) {
        self.whatsapp(waba_id, |settings| settings.partner_billed = partner_billed);
    }

    /// Makes account `waba_id` bill its SERVICE messages per message from the Pacific day
    /// 2026-10-01 on, as Meta announced, or not (the default, where every SERVICE point is
    /// FREE_CUSTOMER_SERVICE at cost 0). From that day its `pricing_analytics` SERVICE points
    /// are pricing type REGULAR, with the utility tier and the utility rate as their cost, and
    /// the same volume as before; earlier buckets are unchanged. The shape is graph-api.md
    /// 7.7's inference: Meta has not documented how the points will look.
    pub fn set_service_billed(&self, waba_id: &str, billed: bool) {
        self.whatsapp(waba_id, |settings| settings.service_billed = billed);
    }

    /// Sets whether `template_analytics` of account `waba_id` answers (see
    /// [`TemplateAnalytics`] for the errors it answers otherwise).
    pub fn set_template_analytics(&self, waba_id: &str, state: TemplateAnalytics) {
        self.whatsapp(waba_id, |settings| settings.template_analytics = state);
    }

    /// Gives account `waba_id` exactly `approved` APPROVED message templates: the default
    /// three first, then generated ones named `template_4`, `template_5`, ... (fewer than three
    /// keeps only the first defaults). The PENDING `winter_promo` stays whatever the count, so
    /// `message_templates` lists `approved + 1` templates. For tests that need several pages of
    /// templates or more than one `template_analytics` call (at most 10 ids each).
    pub fn set_template_count(&self, waba_id: &str, approved: usize) {
        self.whatsapp(waba_id, |settings| {
            settings.approved_templates = Some(approved)
        });
    }

    /// Overrides the `quality_rating` of the second phone number of account `waba_id` (e.g.
    /// `Some("RED")`, served verbatim); `None` returns to the generated rating, which is GREEN
    /// most Pacific days, YELLOW some and RED rarely.
    pub fn set_phone_quality(&self, waba_id: &str, rating: Option<&str>) {
        self.whatsapp(waba_id, |settings| {
            settings.phone_quality = rating.map(str::to_owned);
        });
    }

    /// Scripts the `health_status` entity of the second phone number of account `waba_id`,
    /// e.g. [`phone_health_limited`]: its `can_send_message` and whatever else it carries
    /// (`additional_info`, `errors`); the simulator adds `entity_type` and `id`. `None`
    /// returns to AVAILABLE. The number answers it on the list and on its own node.
    pub fn set_phone_health(&self, waba_id: &str, entity: Option<Value>) {
        self.whatsapp(waba_id, |settings| settings.phone_health = entity);
    }

    /// Makes the `phone_numbers` edge of account `waba_id` refuse `health_status` with
    /// Graph's "nonexisting field" error (code 100), as an edge that does not carry the
    /// field would; each number's own node still answers it. Every other field of the list
    /// is served as before.
    pub fn refuse_list_health(&self, waba_id: &str) {
        self.whatsapp(waba_id, |settings| settings.list_refuses_health = true);
    }

    /// Makes account `also_listed_by` list the first phone number of account `owner` as well,
    /// with the same phone number id: one number under two Messaging accounts, as after the
    /// WABA split (graph-api.md 7.8).
    pub fn share_phone_number(&self, owner: &str, also_listed_by: &str) {
        let owner = owner.to_owned();
        self.whatsapp(also_listed_by, |settings| {
            settings.shares_number_of = Some(owner);
        });
    }

    /// Makes the node field `field` of account `waba_id` (e.g. `pricing_analytics`) answer
    /// exactly `value`, whatever its modifiers, while the other fields stay simulated: for
    /// feeding Meta's documented example responses to the exporter. Replaces an earlier value.
    pub fn fixed_field(&self, waba_id: &str, field: &str, value: Value) {
        self.whatsapp(waba_id, |settings| {
            settings.fixed_fields.insert(field.to_owned(), value);
        });
    }

    /// Makes the edge `edge` of account `waba_id` (e.g. `template_analytics` or
    /// `phone_numbers`) answer exactly `body` (HTTP 200), whatever its parameters, while the
    /// rest of the account stays simulated. Replaces an earlier body.
    pub fn fixed_edge(&self, waba_id: &str, edge: &str, body: Value) {
        self.whatsapp(waba_id, |settings| {
            settings.fixed_edges.insert(edge.to_owned(), body);
        });
    }

    /// Stops the server (the same as dropping the handle).
    pub fn shutdown(self) {
        drop(self);
    }

    fn register(&self, id: &str, token: &str, kind: ObjectKind) {
        let object = SimObject {
            token: token.to_owned(),
            kind,
        };
        self.shared.registry().objects.insert(id.to_owned(), object);
    }

    /// Changes the settings of campaign or ad account `id`, creating the defaults first.
    fn campaign(&self, id: &str, change: impl FnOnce(&mut CampaignSettings)) {
        change(
            self.shared
                .registry()
                .campaigns
                .entry(id.to_owned())
                .or_default(),
        );
    }

    /// Changes the WhatsApp settings of account `waba_id`, creating the defaults first.
    fn whatsapp(&self, waba_id: &str, change: impl FnOnce(&mut WhatsAppSettings)) {
        change(
            self.shared
                .registry()
                .whatsapp
                .entry(waba_id.to_owned())
                .or_default(),
        );
    }

    fn retire(&self, id: &str, name: &str) {
        self.shared
            .registry()
            .retired
            .entry(id.to_owned())
            .or_default()
            .insert(name.to_owned());
    }
}

/// State shared by the handle and the server task.
#[derive(Debug)]
struct Shared {
    base_url: String,
    registry: Mutex<Registry>,
}

/// `{id}/{edge}` of a `/{version}/{id}/{edge}` path, the key of the edge's faults.
fn edge_fault_key(path: &str) -> Option<String> {
    let mut segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .skip(1);
    let id = segments.next()?;
    let edge = segments.next()?;
    Some(format!("{id}/{edge}"))
}

impl Shared {
    /// Locks the registry. Critical sections are short and never span an `.await`; a panic in
    /// one (a test assertion, say) cannot leave the registry half-updated in a way that
    /// matters, so a poisoned lock is simply taken over.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an arriving request and decides its fate: the fault to apply, if any, the
    /// `X-App-Usage` value to report, and the object's extra headers.
    pub(crate) fn admit(&self, request: RecordedRequest) -> Admission {
        let mut registry = self.registry();
        let fault_key = match &request.object_id {
            Some(id) => Some(id.as_str()),
            None if request.method == "POST" => Some(BATCH_CALL),
            None => None,
        };
        // Faults of requests with a query, then an edge's own, come before its object's.
        let query_key = request.object_id.as_deref().and_then(|id| {
            registry
                .faults
                .keys()
                .find(|key| {
                    key.strip_prefix(id)
                        .and_then(|rest| rest.strip_prefix('?'))
                        .is_some_and(|needle| request.query.contains(needle))
                })
                .cloned()
        });
        let fault = query_key
            .and_then(|key| registry.faults.get_mut(&key).and_then(FaultPlan::take))
            .or_else(|| {
                edge_fault_key(&request.path)
                    .and_then(|key| registry.faults.get_mut(&key).and_then(FaultPlan::take))
            })
            .or_else(|| {
                fault_key
                    .and_then(|key| registry.faults.get_mut(key))
                    .and_then(FaultPlan::take)
            });
        let own_headers = request
            .object_id
            .as_deref()
            .and_then(|id| registry.headers.get(id))
            .cloned()
            .unwrap_or_default();
        let (fault, mut headers) = match fault {
            Some(fault) => (Some(fault), Vec::new()),
            None => match registry.marketing_version_treatment(&request) {
                versions::Treatment::AsAsked => (None, Vec::new()),
                versions::Treatment::Upgraded(headers) => (None, headers),
                versions::Treatment::Rejected(fault) => (Some(fault), Vec::new()),
            },
        };
        // A test's own headers win over the version's, as over every default.
        headers.retain(|(name, _)| {
            !own_headers
                .iter()
                .any(|(own, _)| own.eq_ignore_ascii_case(name))
        });
        headers.extend(own_headers);
        if let Some(id) = &request.object_id {
            *registry.request_counts.entry(id.clone()).or_default() += 1;
        }
        let batch_call = request.object_id.is_none() && request.method == "POST";
        if !batch_call {
            registry.api_calls += 1;
        }
        if !request.in_batch {
            registry.http_requests += 1;
        }
        if registry.requests.len() == REQUEST_LOG_CAPACITY {
            registry.requests.pop_front();
        }
        registry.requests.push_back(request);
        let usage = registry.app_usage(Instant::now());
        Admission {
            fault,
            app_usage: usage.header_value(),
            headers,
        }
    }

    fn latency(&self) -> Latency {
        self.registry().latency
    }

    /// The Pages the user with `token` manages, or `None` when the token is no user's.
    fn managed_pages(&self, token: &str) -> Option<Vec<discovery::ManagedPage>> {
        let registry = self.registry();
        let ids = registry.users.get(token)?;
        Some(
            ids.iter()
                .filter_map(|id| {
                    let object = registry.objects.get(id)?;
                    Some(discovery::ManagedPage {
                        id: id.clone(),
                        name: registry.name_of(id, &object.kind),
                        token: Some(object.token.clone()),
                    })
                })
                .collect(),
        )
    }

    /// `(id, name)` of each account on a business's `edge` list.
    fn business_accounts(&self, business_id: &str, edge: &str) -> Vec<(String, String)> {
        let registry = self.registry();
        let Some((owned, client)) = registry.businesses.get(business_id) else {
            return Vec::new();
        };
        let ids = if edge == "owned_whatsapp_business_accounts" {
            owned
        } else {
            client
        };
        ids.iter()
            .map(|id| {
                let kind = registry
                    .objects
                    .get(id)
                    .map_or(ObjectKind::Simulated(Simulated::Waba), |o| o.kind.clone());
                (id.clone(), registry.name_of(id, &kind))
            })
            .collect()
    }

    /// What a read of object `id` needs from the registry, copied out so that the lock is
    /// released before any numbers are generated.
    /// Phone number `id` of a simulated account, with the account's snapshot: in Graph a
    /// phone number is a node of its own.
    fn phone_number(&self, id: &str) -> Option<(ObjectSnapshot, PhoneNumberNode)> {
        let number = {
            let registry = self.registry();
            registry
                .objects
                .iter()
                .filter(|(_, object)| matches!(object.kind, ObjectKind::Simulated(Simulated::Waba)))
                .find_map(|(waba_id, _)| {
                    waba::account_phone_numbers(waba_id)
                        .into_iter()
                        .enumerate()
                        .find(|(_, digits)| phone_numbers::phone_number_id(waba_id, digits) == id)
                        .map(|(position, digits)| PhoneNumberNode {
                            waba_id: waba_id.clone(),
                            position,
                            digits,
                        })
                })
        }?;
        Some((self.snapshot(&number.waba_id)?, number))
    }

    fn snapshot(&self, id: &str) -> Option<ObjectSnapshot> {
        let registry = self.registry();
        let object = registry.objects.get(id)?;
        Some(ObjectSnapshot {
            name: registry.name_of(id, &object.kind),
            max_page_size: registry.max_page_size(),
            kind: object.kind.clone(),
            token: object.token.clone(),
            retired: registry.retired.get(id).cloned().unwrap_or_default(),
            named: registry.named.get(id).cloned().unwrap_or_default(),
            misaligned: registry.misaligned.contains(id),
            extra_metrics: registry.extra_metrics.get(id).cloned().unwrap_or_default(),
            whatsapp: registry.whatsapp.get(id).cloned().unwrap_or_default(),
            campaign: registry.campaigns.get(id).cloned().unwrap_or_default(),
            now: registry.now(),
        })
    }
}

/// Where a phone number read as a node sits: its account and its place in the account's list.
#[derive(Debug)]
struct PhoneNumberNode {
    waba_id: String,
    position: usize,
    digits: String,
}

/// What the server does with one arriving request.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) fault: Option<Fault>,
    pub(crate) app_usage: String,
    pub(crate) headers: Vec<(String, String)>,
}

/// How many requests the log keeps. Tests read a few hundred; the demo runs for days, and an
/// unbounded log would grow its memory by every request ever made.
const REQUEST_LOG_CAPACITY: usize = 10_000;

/// Everything tests and the demo have told the simulator, and what it has seen.
///
/// Retired names, extra metrics and faults are keyed by id separately from the objects, so
/// they can be set before or after the object is registered and survive its replacement.
#[derive(Debug, Default)]
struct Registry {
    now: Option<i64>,
    objects: HashMap<String, SimObject>,
    retired: HashMap<String, HashSet<String>>,
    /// Retired names whose error names them (`retire_metric_named`).
    named: HashMap<String, HashSet<String>>,
    /// WhatsApp accounts whose buckets are off Meta's calendar (`misalign_buckets`).
    misaligned: HashSet<String>,
    extra_metrics: HashMap<String, BTreeSet<String>>,
    /// WhatsApp account settings (`set_partner_billed`, `fixed_field`, ...).
    whatsapp: HashMap<String, WhatsAppSettings>,
    /// Campaign and ad-account settings (`set_read_rate`, `set_insights_empty`).
    campaigns: HashMap<String, CampaignSettings>,
    faults: HashMap<String, FaultPlan>,
    /// Extra response headers per object, e.g. `X-Business-Use-Case-Usage` or `Retry-After`.
    headers: HashMap<String, Vec<(String, String)>>,
    /// The most recent requests, at most [`REQUEST_LOG_CAPACITY`].
    requests: VecDeque<RecordedRequest>,
    /// Requests received per object id, since the start.
    request_counts: HashMap<String, usize>,
    /// Graph API calls and HTTP requests received (`api_calls`, `http_requests`).
    api_calls: usize,
    http_requests: usize,
    /// Added answer time (`set_latency`).
    latency: Latency,
    /// Arrival times of the requests of the last hour, for the default `X-App-Usage`.
    recent: VecDeque<Instant>,
    app_usage: Option<AppUsage>,
    /// Users' tokens and the Pages each manages (`grant_pages`).
    users: HashMap<String, Vec<String>>,
    /// Businesses' owned and client WhatsApp accounts (`simulate_business`).
    businesses: HashMap<String, (Vec<String>, Vec<String>)>,
    /// Names set with `set_name`.
    names: HashMap<String, String>,
    /// Campaigns and ad accounts answering an expired Marketing API version with 2635
    /// (`reject_expired_marketing_version`).
    rejecting_expired_versions: HashSet<String>,
    /// The largest page list edges serve, when smaller than Graph's (`set_max_page_size`).
    max_page_size: Option<usize>,
    /// The app, token facts and batch counts (`set_app`, `set_token_info`, ...).
    tokens: debug_token::Tokens,
}

impl Registry {
    fn max_page_size(&self) -> usize {
        self.max_page_size.unwrap_or(paging::MAX_LIMIT)
    }

    /// The `name` of object `id`: the one set, or the generated one.
    fn name_of(&self, id: &str, kind: &ObjectKind) -> String {
        if let Some(name) = self.names.get(id) {
            return name.clone();
        }
        match kind {
            ObjectKind::Simulated(kind) => kind.display_name(id),
            ObjectKind::Fixed(_) => format!("Object {id}"),
        }
    }

    /// What the Marketing API does with `request`'s version, if it is a campaign's or an ad
    /// account's.
    fn marketing_version_treatment(&self, request: &RecordedRequest) -> versions::Treatment {
        let Some(id) = request.object_id.as_deref() else {
            return versions::Treatment::AsAsked;
        };
        let marketing = self.objects.get(id).is_some_and(|object| {
            matches!(
                object.kind,
                ObjectKind::Simulated(Simulated::Campaign | Simulated::AdAccount)
            )
        });
        let version = request.path.split('/').nth(1).unwrap_or_default();
        if !marketing {
            return versions::Treatment::AsAsked;
        }
        versions::treat(
            version,
            self.now(),
            self.rejecting_expired_versions.contains(id),
        )
    }

    /// The simulated now, in unix seconds.
    fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| chrono::Utc::now().timestamp())
    }

    /// The usage to report for a request arriving at `arrival`.
    fn app_usage(&mut self, arrival: Instant) -> AppUsage {
        /// Meta's platform limit is roughly 200 calls per user per hour, but the demo polls
        /// every few seconds: against 200 it would report 100 % within a minute and the
        /// exporter would (rightly) slow down to a crawl. The simulated app gets a larger
        /// quota so the demo shows moderate usage; tests that exercise slowing down set the
        /// usage explicitly with `set_app_usage` or `set_headers`.
        const CALLS_PER_HOUR: usize = 20_000;
        const HOUR: Duration = Duration::from_secs(3600);
        self.recent.push_back(arrival);
        while self
            .recent
            .front()
            .is_some_and(|&earlier| arrival.duration_since(earlier) > HOUR)
        {
            self.recent.pop_front();
        }
        if let Some(fixed) = self.app_usage {
            return fixed;
        }
        let percent = (self.recent.len() * 100).div_ceil(CALLS_PER_HOUR).min(100);
        let call_count = u32::try_from(percent).unwrap_or(100);
        // CPU and wall time run a little below the call count, as they do for light reads.
        AppUsage {
            call_count,
            total_cputime: call_count * 3 / 4,
            total_time: call_count * 9 / 10,
        }
    }
}

/// A registered object.
#[derive(Debug)]
struct SimObject {
    token: String,
    kind: ObjectKind,
}

/// How an object answers.
#[derive(Clone, Debug)]
enum ObjectKind {
    /// With generated data for its kind.
    Simulated(Simulated),
    /// With this body, whatever was asked.
    Fixed(Value),
}

/// The kinds of object whose answers the simulator generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simulated {
    Page,
    Campaign,
    Waba,
    AdAccount,
    Business,
}

impl Simulated {
    /// The node type Graph names in "nonexisting field" errors.
    fn node_type(self) -> &'static str {
        match self {
            Simulated::Page => "Page",
            Simulated::Campaign => "AdCampaignGroup",
            Simulated::Waba => "WhatsAppBusinessAccount",
            Simulated::AdAccount => "AdAccount",
            Simulated::Business => "Business",
        }
    }

    /// The object's `name` field.
    fn display_name(self, id: &str) -> String {
        match self {
            Simulated::Page => format!("Simulated Page {id}"),
            Simulated::Campaign => format!("Simulated campaign {id}"),
            Simulated::Waba => format!("Simulated WhatsApp Business Account {id}"),
            Simulated::AdAccount => format!("Simulated ad account {id}"),
            Simulated::Business => format!("Simulated business {id}"),
        }
    }
}

/// A copy of one object's registry entry, taken for one request.
#[derive(Debug)]
struct ObjectSnapshot {
    name: String,
    max_page_size: usize,
    kind: ObjectKind,
    token: String,
    retired: HashSet<String>,
    named: HashSet<String>,
    misaligned: bool,
    extra_metrics: BTreeSet<String>,
    whatsapp: WhatsAppSettings,
    campaign: CampaignSettings,
    now: i64,
}

/// What tests have told the simulator about one WhatsApp Business Account: the account
/// properties that change what Meta answers, and verbatim answers.
#[derive(Clone, Debug, Default)]
pub(crate) struct WhatsAppSettings {
    /// Billed through a solution partner: no cost known (`set_partner_billed`).
    pub(crate) partner_billed: bool,
    /// SERVICE messages charged from 2026-10-01 on (`set_service_billed`).
    pub(crate) service_billed: bool,
    /// Whether `template_analytics` answers (`set_template_analytics`).
    pub(crate) template_analytics: TemplateAnalytics,
    /// The number of APPROVED templates, if not the default three (`set_template_count`).
    pub(crate) approved_templates: Option<usize>,
    /// The second phone number's quality rating, if overridden (`set_phone_quality`).
    pub(crate) phone_quality: Option<String>,
    /// The second phone number's own health entity, if scripted (`set_phone_health`).
    pub(crate) phone_health: Option<Value>,
    /// The phone-number list refuses `health_status` (`refuse_list_health`).
    pub(crate) list_refuses_health: bool,
    /// Another account whose first phone number this one lists too (`share_phone_number`).
    pub(crate) shares_number_of: Option<String>,
    /// Node fields answered verbatim (`fixed_field`).
    pub(crate) fixed_fields: HashMap<String, Value>,
    /// Edges answered verbatim (`fixed_edge`).
    pub(crate) fixed_edges: HashMap<String, Value>,
}

/// The faults scripted for one object.
#[derive(Debug, Default)]
struct FaultPlan {
    /// Faults for the next requests, each with how many requests it still applies to (never 0).
    scripted: VecDeque<(Fault, usize)>,
    /// The fault for every request once the scripted ones are used up.
    always: Option<Fault>,
}

impl FaultPlan {
    /// The fault for the next request, using one up if it is scripted.
    fn take(&mut self) -> Option<Fault> {
        let Some((fault, remaining)) = self.scripted.front_mut() else {
            return self.always.clone();
        };
        let fault = fault.clone();
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            self.scripted.pop_front();
        }
        Some(fault)
    }
}
