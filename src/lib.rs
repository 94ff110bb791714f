//! meta-messaging-exporter: Meta messaging analytics from the Graph API as Prometheus metrics.
//!
//! # Layout
//! The modules follow the data, from the config file to a scrape:
//!
//! - [`config`]: the YAML file, raw and validated; [`catalog`]: the names Meta documents
//!   and its API version schedule.
//! - [`target`]: one enum over Pages, campaigns and WhatsApp accounts.
//! - [`scheduler`]: when to poll: one background task per target, start-up spread, reloads.
//! - [`poller`]: what each target asks for, including dropping metrics Meta rejects.
//! - [`graph`]: the Graph API client (auth, retries), its classified errors, and the rate
//!   limiter that turns Meta's usage headers and throttles into pauses and slower polling.
//! - [`convert`]: response bodies to gauge families; [`exposition`]: their text encoding.
//! - [`outcome`]: one poll's result, applied once to the store and the status board.
//! - [`store`]: the last complete results, pre-encoded, that `/metrics` serves.
//! - [`status`]: per-target state for the landing page and the per-target series.
//! - [`http`]: the axum routes, the status page and gzip for `/metrics`; [`app`]: wiring,
//!   reloading and shutdown; [`cli`], [`logging`], [`check`].
//! - [`web`]: the HTTP server (accept loop, connection cap, header and idle timeouts) and
//!   `--web.config.file`: TLS, basic auth and extra headers around the routes.
//! - `simulator`: a fake Graph API for `--demo` and the tests; `demo`: demo mode. Both only
//!   with the `demo` cargo feature (on by default), so a production build can leave them out.
//! - [`backfill`]: the `backfill` subcommand: history replayed through the pollers' requests
//!   and the converters into an OpenMetrics file; [`calendar`]: Meta's Pacific days and
//!   `date_preset` ranges, shared with the simulator.
//! - [`token_health`]: `debug_token` checks of every token in use, their series and the
//!   status page's token section.
//! - [`self_metrics`]: the exporter's own counters; [`secret`]: unprintable tokens;
//!   [`redact`]: every secret in use, replaced in what Meta echoes back; [`printable`]:
//!   control characters made visible before text from outside is shown;
//!   [`clock`]: injectable wall-clock time.

pub mod app;
pub mod backfill;
pub(crate) mod calendar;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod convert;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discovery;
pub mod exposition;
pub mod graph;
pub mod http;
pub mod logging;
pub mod outcome;
pub mod poller;
pub mod printable;
#[cfg(test)]
mod proptest_support;
pub mod redact;
pub mod scheduler;
pub mod secret;
pub mod self_metrics;
pub mod shard;
#[cfg(feature = "demo")]
pub mod simulator;
pub mod status;
pub mod store;
pub mod target;
pub mod token_health;
pub mod web;
