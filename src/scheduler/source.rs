//! What a poll task calls to poll its target: the seam between *when* (the scheduler) and
//! *what* (the [`crate::poller`] request plans over the Graph API client).
//!
//! Production uses [`GraphSource`]; scheduler tests use a scripted source on tokio's paused
//! clock, so timing is tested without HTTP.

use crate::poller::whatsapp::shared::SharedOwners;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;

use crate::clock::Clock;
use crate::convert::whatsapp::health::Entity as HealthEntity;
use crate::graph::GraphClient;
use crate::poller::guard::SeriesLimits;
use crate::poller::{PollContext, PollError, Polled, Poller, Unavailable};
use crate::redact::Redactor;
use crate::target::Target;

/// Makes the poller of each target.
pub trait PollSource: Send + Sync + 'static {
    /// A fresh poller for `target` (nothing dropped yet).
    fn poller(&self, target: &Target) -> Box<dyn TargetPoller>;
}

/// One target's poller, owned by its task.
pub trait TargetPoller: Send {
    /// Polls once: what each read returned, or why no read was made.
    fn poll(&mut self) -> BoxFuture<'_, Result<Polled, PollError>>;
    /// Metrics or fields currently left out because the API rejected them.
    fn dropped(&self) -> Vec<String>;
    /// What the target's account does not offer, left out of its requests.
    fn unavailable(&self) -> Vec<Unavailable> {
        Vec::new()
    }
    /// The WhatsApp health entities the target exports that need attention, with Meta's words.
    fn health(&self) -> Vec<HealthEntity> {
        Vec::new()
    }
    /// The object's name, as far as Meta or discovery said.
    fn name(&self) -> Option<String> {
        None
    }
    /// Uses the credentials and name of `target` from the next request on (a rotated token, a
    /// renamed discovered Page); the settings are the same.
    fn update(&mut self, target: &Target);
}

/// Polls through the Graph API client.
pub struct GraphSource {
    client: ArcSwap<GraphClient>,
    clock: Arc<dyn Clock>,
    settings: Mutex<SourceSettings>,
    redactor: ArcSwap<Redactor>,
    /// Kept over reloads: claims lapse by themselves.
    phone_numbers: SharedOwners,
    health_entities: SharedOwners,
}

/// The config values polls read at each poll, so a reload reaches running targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSettings {
    /// `polling.retry_dropped_after`.
    pub retry_dropped_after: Duration,
    /// How often names are read again ([`crate::config::Config::names_interval`]).
    pub names_interval: Duration,
    /// `polling.max_series_per_target` and `polling.max_series_per_metric`.
    pub limits: SeriesLimits,
}

impl GraphSource {
    /// A source over `client`.
    pub fn new(client: GraphClient, clock: Arc<dyn Clock>, settings: SourceSettings) -> Self {
        Self {
            client: ArcSwap::from_pointee(client),
            clock,
            settings: Mutex::new(settings),
            redactor: ArcSwap::from_pointee(Redactor::default()),
            phone_numbers: SharedOwners::default(),
            health_entities: SharedOwners::default(),
        }
    }

    /// Takes the secrets in use (the targets or the config changed), for the next polls.
    pub fn set_redactor(&self, redactor: Redactor) {
        self.redactor.store(Arc::new(redactor));
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

    /// Takes the settings of a reloaded config.
    pub fn set_settings(&self, settings: SourceSettings) {
        *self
            .settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = settings;
    }

    fn settings(&self) -> SourceSettings {
        *self
            .settings
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
    fn poll(&mut self) -> BoxFuture<'_, Result<Polled, PollError>> {
        Box::pin(async move {
            let client = self.source.client();
            let settings = self.source.settings();
            let redactor = self.source.redactor.load_full();
            let context = PollContext {
                client: &client,
                clock: self.source.clock.as_ref(),
                retry_dropped_after: settings.retry_dropped_after,
                names_interval: settings.names_interval,
                redactor: &redactor,
                limits: settings.limits,
                phone_numbers: &self.source.phone_numbers,
                health_entities: &self.source.health_entities,
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

    /// Meta's words can echo a token (a name or a note written by whoever holds it): they
    /// reach the status page redacted, as labels do.
    fn health(&self) -> Vec<HealthEntity> {
        let redactor = self.source.redactor.load();
        let mut entities = self.poller.health();
        for entity in &mut entities {
            for text in std::iter::once(&mut entity.id).chain(&mut entity.notes) {
                *text = redactor.redact(text).into_owned();
            }
        }
        entities
    }

    fn name(&self) -> Option<String> {
        let redactor = self.source.redactor.load();
        self.poller
            .name()
            .map(|name| redactor.redact(&name).into_owned())
    }

    fn update(&mut self, target: &Target) {
        self.poller.update(target);
    }
}
