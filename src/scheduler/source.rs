//! What a poll task calls to poll its target: the seam between *when* (the scheduler) and
//! *what* (the [`crate::poller`] request plans over the Graph API client).
//!
//! Production uses [`GraphSource`]; scheduler tests use a scripted source on tokio's paused
//! clock, so timing is tested without HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;

use crate::clock::Clock;
use crate::config::Credentials;
use crate::convert::Converted;
use crate::graph::GraphClient;
use crate::poller::{PollContext, PollError, Poller, Unavailable};
use crate::target::Target;

/// Makes the poller of each target.
pub trait PollSource: Send + Sync + 'static {
    /// A fresh poller for `target` (nothing dropped yet).
    fn poller(&self, target: &Target) -> Box<dyn TargetPoller>;
}

/// One target's poller, owned by its task.
pub trait TargetPoller: Send {
    /// Polls once.
    fn poll(&mut self) -> BoxFuture<'_, Result<Converted, PollError>>;
    /// Metrics or fields currently left out because the API rejected them.
    fn dropped(&self) -> Vec<String>;
    /// What the target's account does not offer, left out of its requests.
    fn unavailable(&self) -> Vec<Unavailable> {
        Vec::new()
    }
    /// Uses `credentials` from the next request on (a rotated token).
    fn set_credentials(&mut self, credentials: &Credentials);
}

/// Polls through the Graph API client.
pub struct GraphSource {
    client: ArcSwap<GraphClient>,
    clock: Arc<dyn Clock>,
    retry_dropped_after: Mutex<Duration>,
}

impl GraphSource {
    /// A source over `client`.
    pub fn new(client: GraphClient, clock: Arc<dyn Clock>, retry_dropped_after: Duration) -> Self {
        Self {
            client: ArcSwap::from_pointee(client),
            clock,
            retry_dropped_after: Mutex::new(retry_dropped_after),
        }
    }

    /// The client in use.
    pub fn client(&self) -> Arc<GraphClient> {
        self.client.load_full()
    }

    /// Replaces the client (a reload changed `graph_api` or `polling`); running polls finish
    /// with the old one, the next ones use the new one.
    pub fn set_client(&self, client: GraphClient) {
        self.client.store(Arc::new(client));
    }

    /// Takes a new `polling.retry_dropped_after`.
    pub fn set_retry_dropped_after(&self, after: Duration) {
        *self
            .retry_dropped_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = after;
    }

    fn retry_dropped_after(&self) -> Duration {
        *self
            .retry_dropped_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`GraphSource`] as a [`PollSource`]; an `Arc` because every target's poller holds it.
impl PollSource for Arc<GraphSource> {
    fn poller(&self, target: &Target) -> Box<dyn TargetPoller> {
        Box::new(GraphPoller {
            source: self.clone(),
            poller: Poller::new(target),
        })
    }
}

struct GraphPoller {
    source: Arc<GraphSource>,
    poller: Poller,
}

impl TargetPoller for GraphPoller {
    fn poll(&mut self) -> BoxFuture<'_, Result<Converted, PollError>> {
        Box::pin(async move {
            let client = self.source.client();
            let context = PollContext {
                client: &client,
                clock: self.source.clock.as_ref(),
                retry_dropped_after: self.source.retry_dropped_after(),
            };
            self.poller.poll(&context).await
        })
    }

    fn dropped(&self) -> Vec<String> {
        self.poller.dropped()
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        self.poller.unavailable()
    }

    fn set_credentials(&mut self, credentials: &Credentials) {
        self.poller.set_credentials(credentials);
    }
}
