//! The Graph API client: requests as data, one HTTP client, classified errors.
//!
//! - [`request`]: [`GraphRequest`], a read relative to the versioned root (batch-ready).
//! - [`client`]: [`GraphClient`], auth header, `appsecret_proof`, limits, retries, metrics.
//! - [`batch`]: [`BatchEntry`] and [`BatchAnswer`], the parts of a `POST /{version}/` batch.
//! - `batcher`: which due requests share a batch call, and when it goes.
//! - [`error`]: [`GraphError`] and [`ErrorClass`], Meta's error codes mapped to reactions.
//! - [`usage`]: the rate-limit headers of every response.
//! - [`ratelimit`]: those headers and throttles turned into pauses and slower polling.

pub mod batch;
mod batcher;
pub mod client;
pub mod error;
pub mod ratelimit;
pub mod request;
pub mod usage;

pub use batch::{BatchAnswer, BatchEntry, MAX_BATCH_ENTRIES};
pub use client::{GraphClient, Pages, RetryPolicy};
pub use error::{ApiError, ErrorClass, GraphError};
pub use request::{Endpoint, GraphRequest};
