//! Integration tests: the exporter against the fake Graph API, checked through `/metrics`.

mod binary;
mod exposition;
mod failures;
mod formats;
mod helpers;
mod prometheus;
mod seeds;
mod whatsapp;
