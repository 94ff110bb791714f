//! Integration tests: the exporter against the fake Graph API, checked through `/metrics`.
//!
//! Tests of timing run on tokio's paused clock (`start_paused`): the exporter, the fake and the
//! test share one runtime, loopback I/O completes between timer advances, and intervals,
//! pauses and deadlines pass in virtual time. Real time is left only where a real process or
//! CPU-bound work sits between two I/O events: `binary.rs` and `backfill.rs` (the built binary), `load.rs`
//! (many concurrent clients), `prometheus.rs` (a real Prometheus) and `web.rs` (TLS handshakes,
//! during which the paused clock would jump to the next timeout). Those wait for events with
//! generous deadlines and never assert on elapsed time.

mod backfill;
mod batching;
mod binary;
mod campaigns;
mod continuity;
mod discovery;
mod exposition;
mod failures;
mod faults;
mod formats;
mod helpers;
mod hostile;
mod http_server;
mod invalid_parameter;
mod isolation;
mod load;
mod prometheus;
mod ratelimit;
mod reload;
mod seeds;
mod sharding;
mod token_health;
mod versions;
mod web;
mod whatsapp;
mod whatsapp_depth;
mod whatsapp_health;
