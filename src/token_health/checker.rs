//! The token check: a background task asking `debug_token` about every token in use.
//!
//! [`TokenHealth`] is what [`crate::app`] holds: [`TokenHealth::configure`] starts, restarts or
//! stops the task when `graph_api.app_id`, `graph_api.app_secret` or
//! `graph_api.token_check_interval` change, and [`TokenHealth::set_targets`] tells it (and the
//! board) which tokens the running targets use after every scheduler change.
//!
//! The task checks every token in use [`SETTLE`] after it starts and then every interval; a
//! token that appears in between (rotation, reload, discovery) is checked [`SETTLE`] after it
//! appears rather than at the next interval. The settle time lets a burst of changes (a
//! discovery run adding Pages one after another) go out as one batch. Tokens go out as
//! `debug_token` entries of Graph batch calls, 50 per call, authenticated with the app token,
//! so no token is ever part of a URL. An entry Graph answers `null` (it timed out inside Graph)
//! is sent once more at once, in a batch of such entries only; still unanswered, it counts as
//! `not_answered` and waits for the next interval. A batch that fails whole (a rejected app
//! token, say) is recorded and counted, and is tried again at the next interval or when a new
//! token appears; the targets' polling never depends on it.
//!
//! The client is fetched anew for every check, since a reload may replace it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::{debug_token, token_uses, TokenBoard, TokenUse};
use crate::clock::Clock;
use crate::config::{DiscoveryConfig, GraphApiConfig};
use crate::graph::{BatchAnswer, BatchEntry, GraphClient, MAX_BATCH_ENTRIES};
use crate::secret::{AccessToken, TokenId};
use crate::target::Target;

/// How long after start, or after a token appears, the check waits for more changes.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Where the checker gets the current Graph API client.
pub type ClientSource = Arc<dyn Fn() -> Arc<GraphClient> + Send + Sync>;

/// What the check needs from the config; token health is on only when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSettings {
    /// `APP_ID|APP_SECRET`.
    app_token: AccessToken,
    /// `graph_api.token_check_interval`.
    interval: Duration,
}

impl CheckSettings {
    /// The settings of `api`, or `None` (token health off) unless both `app_id` and
    /// `app_secret` are set.
    pub fn from_config(api: &GraphApiConfig) -> Option<Self> {
        let (Some(app_id), Some(secret)) = (&api.app_id, &api.app_secret) else {
            return None;
        };
        Some(Self {
            app_token: AccessToken::new(format!("{app_id}|{}", secret.expose())),
            // A zero interval would spin; validation rejects it, and this keeps it harmless.
            interval: api.token_check_interval.max(SETTLE),
        })
    }

    /// The app token the checks authenticate with.
    pub fn app_token(&self) -> &AccessToken {
        &self.app_token
    }
}

struct Running {
    settings: CheckSettings,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// Token health: the board and the task that fills it.
pub struct TokenHealth {
    board: Arc<TokenBoard>,
    uses: watch::Sender<Vec<TokenUse>>,
    clients: ClientSource,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    running: Option<Running>,
}

impl TokenHealth {
    /// Token health, off until [`TokenHealth::configure`] finds an app id and secret; the task
    /// it starts stops with `shutdown`.
    pub fn new(clients: ClientSource, clock: Arc<dyn Clock>, shutdown: CancellationToken) -> Self {
        Self {
            board: Arc::new(TokenBoard::default()),
            uses: watch::channel(Vec::new()).0,
            clients,
            clock,
            shutdown,
            running: None,
        }
    }

    /// The board, for `/metrics` and the status page.
    pub fn board(&self) -> Arc<TokenBoard> {
        self.board.clone()
    }

    /// Makes the check match `api`: started, restarted (new app credentials or interval:
    /// every token is checked again soon) or stopped; unchanged settings leave it running.
    pub fn configure(&mut self, api: &GraphApiConfig) {
        let wanted = CheckSettings::from_config(api);
        if self.running.as_ref().map(|running| &running.settings) == wanted.as_ref() {
            return;
        }
        if let Some(running) = self.running.take() {
            running.cancel.cancel();
            running.handle.abort();
        }
        self.board
            .set_interval(wanted.as_ref().map(|settings| settings.interval));
        let Some(settings) = wanted else {
            tracing::info!("token health is off; set graph_api.app_id and graph_api.app_secret to check the tokens in use");
            return;
        };
        tracing::info!(
            interval = %humantime::format_duration(settings.interval),
            "token health on: every token in use is checked with debug_token"
        );
        let cancel = self.shutdown.child_token();
        let handle = tokio::spawn(run(
            Context {
                settings: settings.clone(),
                board: self.board.clone(),
                clients: self.clients.clone(),
                clock: self.clock.clone(),
            },
            self.uses.subscribe(),
            cancel.clone(),
        ));
        self.running = Some(Running {
            settings,
            cancel,
            handle,
        });
    }

    /// The running targets changed: these are now the tokens in use.
    pub fn set_targets(&self, targets: &[Target], discovery: Option<&DiscoveryConfig>) {
        let uses = token_uses(targets, discovery);
        self.board.set_uses(&uses);
        self.uses.send_replace(uses);
    }
}

impl Drop for TokenHealth {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.cancel.cancel();
            running.handle.abort();
        }
    }
}

struct Context {
    settings: CheckSettings,
    board: Arc<TokenBoard>,
    clients: ClientSource,
    clock: Arc<dyn Clock>,
}

async fn run(
    context: Context,
    mut uses: watch::Receiver<Vec<TokenUse>>,
    cancel: CancellationToken,
) {
    let interval = context.settings.interval;
    let mut next_full = Instant::now() + interval;
    // Every token in use counts as new at start, so the first check covers them all.
    let mut settle = Some(Instant::now() + SETTLE);
    // Tokens checked (or tried) since they appeared; the others are new.
    let mut attempted: HashSet<TokenId> = HashSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sleep_until(next_full) => {
                let tokens: Vec<AccessToken> =
                    uses.borrow().iter().map(|token| token.token.clone()).collect();
                attempted = uses.borrow().iter().map(|token| token.token_id).collect();
                check(&context, tokens).await;
                next_full = Instant::now() + interval;
            }
            changed = uses.changed() => {
                if changed.is_err() {
                    return;
                }
                let in_use: HashSet<TokenId> =
                    uses.borrow_and_update().iter().map(|token| token.token_id).collect();
                // A token that went away and comes back is new again.
                attempted.retain(|token_id| in_use.contains(token_id));
                if in_use.iter().any(|token_id| !attempted.contains(token_id)) {
                    settle.get_or_insert_with(|| Instant::now() + SETTLE);
                }
            }
            () = sleep_until(settle.unwrap_or(next_full)), if settle.is_some() => {
                settle = None;
                let new: Vec<TokenUse> = uses
                    .borrow()
                    .iter()
                    .filter(|token| !attempted.contains(&token.token_id))
                    .cloned()
                    .collect();
                attempted.extend(new.iter().map(|token| token.token_id));
                check(&context, new.into_iter().map(|token| token.token).collect()).await;
            }
        }
    }
}

/// Checks `tokens`, one batch call per [`MAX_BATCH_ENTRIES`].
async fn check(context: &Context, tokens: Vec<AccessToken>) {
    if tokens.is_empty() {
        return;
    }
    let client = (context.clients)();
    for chunk in tokens.chunks(MAX_BATCH_ENTRIES) {
        let entries: Vec<BatchEntry> = chunk.iter().map(BatchEntry::debug_token).collect();
        let unanswered = check_batch(context, &client, &entries).await;
        if unanswered.is_empty() {
            continue;
        }
        // Graph timed these out inside the batch: once more, at once, on their own.
        let retry: Vec<BatchEntry> = unanswered.into_iter().map(|i| entries[i].clone()).collect();
        for index in check_batch(context, &client, &retry).await {
            let Some(token_id) = retry[index].token_id() else {
                continue;
            };
            tracing::warn!(
                token_id = %token_id,
                "Meta did not answer debug_token for this token, twice; next try at the check interval"
            );
            context.board.token_failed(
                token_id,
                "not_answered",
                "Meta did not answer debug_token for this token (timed out inside Graph, twice)"
                    .to_owned(),
                context.clock.now_unix(),
            );
        }
    }
}

/// Sends one batch and records its answers; returns the indices of entries Graph left
/// unanswered (`null`).
async fn check_batch(
    context: &Context,
    client: &GraphClient,
    entries: &[BatchEntry],
) -> Vec<usize> {
    let board = &context.board;
    let result = client
        .post_batch(entries, &context.settings.app_token)
        .await;
    let at = context.clock.now_unix();
    let answers = match result {
        Ok(answers) => answers,
        Err(error) => {
            tracing::warn!(
                error = %error,
                tokens = entries.len(),
                "token health check failed; next try at the check interval or when a token appears"
            );
            let token_ids: Vec<TokenId> = entries
                .iter()
                .filter_map(|entry| entry.token_id().copied())
                .collect();
            board.batch_failed(&token_ids, error.outcome(), error.to_string(), at);
            return Vec::new();
        }
    };
    board.batch_succeeded(at);
    let mut unanswered = Vec::new();
    for (index, (entry, answer)) in entries.iter().zip(answers).enumerate() {
        match answer {
            None => unanswered.push(index),
            Some(answer) => {
                if let Some(token_id) = entry.token_id() {
                    record(board, token_id, answer, at);
                }
            }
        }
    }
    unanswered
}

fn record(board: &TokenBoard, token_id: &TokenId, answer: BatchAnswer, at: i64) {
    let body = match answer.body {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(token_id = %token_id, error = %error, "debug_token failed for this token");
            board.token_failed(token_id, "entry_error", error.to_string(), at);
            return;
        }
    };
    match debug_token::parse(&body) {
        Ok(info) => {
            let message = info.error.as_ref().map(|error| error.message.clone());
            if board.token_checked(token_id, info, at) {
                tracing::warn!(
                    token_id = %token_id,
                    error = message.as_deref().unwrap_or("none given"),
                    "Meta says this access token is not valid"
                );
            }
        }
        Err(problem) => {
            tracing::warn!(token_id = %token_id, problem = %problem, "unusable debug_token answer");
            board.token_failed(
                token_id,
                "invalid_answer",
                format!("unusable debug_token answer: {problem}"),
                at,
            );
        }
    }
}
