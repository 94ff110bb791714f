//! Integration tests: the exporter against the fake Graph API, checked through `/metrics`.

mod binary;
mod continuity;
mod exposition;
mod failures;
mod faults;
mod formats;
mod helpers;
mod http_server;
mod invalid_parameter;
mod load;
mod prometheus;
mod ratelimit;
mod reload;
mod seeds;
mod web;
mod whatsapp;
