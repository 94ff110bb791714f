//! The Graph API client: requests as data, one HTTP client, classified errors.
//!
//! The layers import one way, downwards: `client` uses `batch` and `calls`, `batch` uses
//! `calls` and `transport`, and all of them use the data modules below.
//!
//! - [`client`]: [`GraphClient`], the public calls, retries, paging, and routing each
//!   attempt alone or into a batch call.
//! - [`batch`]: [`BatchEntry`] and [`BatchAnswer`], the parts of a `POST /{version}/` batch;
//!   which due requests share one and when it goes; sending it and answering each request.
//! - `calls`: what every call passes through: the in-flight bound, limiter admission, the
//!   request metrics.
//! - [`transport`]: one HTTP exchange: auth header, `appsecret_proof`, size cap, decoding,
//!   redaction of secrets from errors.
//! - [`request`]: [`GraphRequest`], a read relative to the versioned root (batch-ready).
//! - [`error`]: [`GraphError`] and [`ErrorClass`], Meta's error codes mapped to reactions.
//! - [`usage`]: the rate-limit headers of every response.
//! - [`ratelimit`]: those headers and throttles turned into pauses and slower polling.
//! - [`solo`]: the targets that poll outside batch calls after hanging one, and why.

pub mod batch;
mod calls;
pub mod client;
pub mod error;
pub mod ratelimit;
pub mod request;
pub mod solo;
pub mod transport;
pub mod usage;

pub use batch::{BatchAnswer, BatchEntry, MAX_BATCH_ENTRIES};
pub use client::{GraphClient, Pages, RetryPolicy};
pub use error::{ApiError, ErrorClass, GraphError};
pub use request::{Api, Endpoint, GraphRequest};
pub use solo::{SoloReason, SoloTarget};
