//! The reads of one poll, each standing on its own.
//!
//! A poll of one target makes several reads: a Page's metric groups and its name, a
//! campaign's insights and its name, a WhatsApp account's node read, template list, template
//! analytics, phone-number list and (where the list refuses it) its numbers' own health. Each [`Read`] is answered and converted on its own, and a
//! poll returns one [`ReadOutcome`] per read it made ([`Polled`]). The outcome is applied read
//! by read (`crate::outcome`): a read that succeeded replaces its own series, a read that
//! failed keeps its previous series until they go stale, so one failing list never blanks the
//! numbers another read returned. A read that succeeded with no data in its answer (a
//! campaign's empty `data`, [`Converted::no_data()`]) keeps its previous series too, without
//! refreshing them: they go stale as if it had failed, but nothing counts it as a failure.
//!
//! A secondary read that fails with a permission error (or an invalid token, or an object the
//! token cannot see) is switched off as a state, [`ReadStates`], like the WhatsApp "not
//! offered" states: the rest of the target exports, and the read is asked for again after
//! [`ASK_AGAIN_AFTER`], a credentials change or a config change (which builds a new poller).
//! The same error on a primary read ([`Read::is_primary`]) disables the whole target, as it
//! always has: without its insights or its account read, a target has nothing to say.

use std::collections::BTreeMap;

use crate::convert::Converted;
use crate::poller::{PollError, Unavailable, UnavailableScope};

/// How long a read switched off for a permission error stays out of the polls.
pub const ASK_AGAIN_AFTER: i64 = 24 * 3600;

/// One read of a poll: what is asked, and the slot its series live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Read {
    /// One group of Page metrics (same period, window and breakdowns), numbered by its place
    /// among the groups of the configured metrics, so dropping a metric never renumbers
    /// another group.
    PageInsights(u16),
    /// A campaign's or ad account's insights.
    Insights,
    /// The WhatsApp Business Account node read (analytics, pricing, conversations, name).
    Account,
    /// The WhatsApp account's message template list.
    TemplateList,
    /// The WhatsApp account's `template_analytics`.
    TemplateAnalytics,
    /// The WhatsApp account's phone-number list and its health fields.
    PhoneNumbers,
    /// Each phone number's own `health_status`, read number by number where the list refuses
    /// the field.
    PhoneNumberHealth,
    /// The object's name for its info series.
    Name,
}

impl Read {
    /// The `read` label value: bounded, the same for every group of a Page.
    pub fn as_str(self) -> &'static str {
        match self {
            Read::PageInsights(_) => "page_insights",
            Read::Insights => "insights",
            Read::Account => "account",
            Read::TemplateList => "template_list",
            Read::TemplateAnalytics => "template_analytics",
            Read::PhoneNumbers => "phone_numbers",
            Read::PhoneNumberHealth => "phone_number_health",
            Read::Name => "name",
        }
    }

    /// The number of this read's data slot in the snapshot store: one per read of a target.
    pub fn slot_number(self) -> u32 {
        match self {
            Read::Insights => 1,
            Read::Account => 2,
            Read::TemplateList => 3,
            Read::TemplateAnalytics => 4,
            Read::PhoneNumbers => 5,
            Read::Name => 6,
            Read::PhoneNumberHealth => 7,
            Read::PageInsights(group) => 64 + u32::from(group),
        }
    }

    /// Whether the target has nothing to say without this read: its failure with a disabling
    /// error (invalid token, permission, object gone) disables the target rather than the read.
    pub fn is_primary(self) -> bool {
        matches!(self, Read::PageInsights(_) | Read::Insights | Read::Account)
    }
}

impl std::fmt::Display for Read {
    /// The label, with a Page group's number for people (`page_insights #2`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Read::PageInsights(group) => write!(f, "page_insights #{}", u32::from(*group) + 1),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What one read returned.
#[derive(Debug)]
pub struct ReadOutcome {
    /// Which read.
    pub read: Read,
    /// Its families, or why there are none.
    pub result: Result<Converted, PollError>,
    /// Whether this poll asked Meta for it. A read served from what an earlier poll read (a
    /// name, a list between its hourly reads) counts neither as a success nor as a failure of
    /// the poll, and its series are published only when the poll's own reads answered.
    pub fresh: bool,
}

/// Every read one poll made, in the order they were planned.
#[derive(Debug, Default)]
pub struct Polled {
    /// One entry per read. A read not made this poll (switched off, not configured any more,
    /// nothing to ask for) is absent, and its series go with the poll's outcome; lists read
    /// at most hourly are still present between reads, with the series of their last read.
    pub reads: Vec<ReadOutcome>,
}

impl Polled {
    /// Adds the outcome of `read`, asked for in this poll.
    pub fn push(&mut self, read: Read, result: Result<Converted, PollError>) {
        self.reads.push(ReadOutcome {
            read,
            result,
            fresh: true,
        });
    }

    /// Adds `read`, served from an earlier poll's answer without a call (`fresh` says which).
    pub fn push_as(&mut self, read: Read, result: Result<Converted, PollError>, fresh: bool) {
        self.reads.push(ReadOutcome {
            read,
            result,
            fresh,
        });
    }

    /// A poll of one read.
    pub fn single(read: Read, result: Result<Converted, PollError>) -> Self {
        let mut polled = Self::default();
        polled.push(read, result);
        polled
    }

    /// The reads that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (Read, &PollError)> {
        self.reads
            .iter()
            .filter_map(|read| read.result.as_ref().err().map(|error| (read.read, error)))
    }

    /// The error that disables the whole target: a primary read's disabling error.
    pub fn disabling_error(&self) -> Option<&PollError> {
        self.failures()
            .find(|(read, error)| read.is_primary() && error.disabled_reason().is_some())
            .map(|(_, error)| error)
    }
}

/// Why a poll's target is disabled, if it is: the poll as a whole failed with a disabling
/// error, or a primary read did.
pub fn disabled_reason(result: &Result<Polled, PollError>) -> Option<&'static str> {
    match result {
        Ok(polled) => polled
            .disabling_error()
            .and_then(PollError::disabled_reason),
        Err(error) => error.disabled_reason(),
    }
}

/// Secondary reads switched off because Meta refused them for good (see the module docs).
#[derive(Debug, Default)]
pub struct ReadStates(BTreeMap<Read, (&'static str, i64)>);

impl ReadStates {
    /// Whether `read` stays out of the polls at `now`.
    pub fn excludes(&self, read: Read, now: i64) -> bool {
        self.0
            .get(&read)
            .is_some_and(|(_, since)| now < since.saturating_add(ASK_AGAIN_AFTER))
    }

    /// Looks at the fresh reads of a poll of `target_id` at `now` ([`Self::observe`]).
    pub fn observe_poll(&mut self, target_id: &str, polled: &Polled, now: i64) {
        for read in polled.reads.iter().filter(|read| read.fresh) {
            self.observe(target_id, read.read, read.result.as_ref().map(|_| ()), now);
        }
    }

    /// Looks at the outcome of `read` at `now`: a secondary read refused with a disabling
    /// error is switched off (and logged once), one that answered is switched on again.
    pub fn observe(
        &mut self,
        target_id: &str,
        read: Read,
        result: Result<(), &PollError>,
        now: i64,
    ) {
        match result {
            Ok(()) => {
                self.0.remove(&read);
            }
            Err(error) if !read.is_primary() => {
                if let Some(reason) = error.disabled_reason() {
                    if self.0.insert(read, (reason, now)).is_none() {
                        tracing::warn!(target_id, read = read.as_str(), reason, error = %error, "a read of this target is refused; the rest of the target exports and the read is asked for again in a day or after a credentials or config change");
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// Forgets every state: the credentials changed, so the answers may too.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Every state, for status and metrics (`feature` is the read's label).
    pub fn list(&self) -> Vec<Unavailable> {
        self.0
            .iter()
            .map(|(read, (reason, since))| Unavailable {
                scope: UnavailableScope::Read,
                feature: read.as_str(),
                reason,
                since: *since,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ApiError, GraphError};

    fn api_error(code: i64) -> PollError {
        PollError::Graph(GraphError::Api {
            status: 403,
            error: ApiError {
                message: format!("(#{code}) no"),
                kind: None,
                code,
                error_subcode: None,
                is_transient: None,
                fbtrace_id: None,
            },
        })
    }

    #[test]
    fn a_refused_secondary_read_is_switched_off_for_a_day_and_on_again_when_answered() {
        let mut states = ReadStates::default();
        let refused = api_error(200);
        states.observe("W", Read::PhoneNumbers, Err(&refused), 1000);
        assert!(states.excludes(Read::PhoneNumbers, 1000 + ASK_AGAIN_AFTER - 1));
        assert!(!states.excludes(Read::PhoneNumbers, 1000 + ASK_AGAIN_AFTER));
        assert_eq!(states.list()[0].feature, "phone_numbers");
        assert_eq!(states.list()[0].reason, "permission_denied");
        states.observe("W", Read::PhoneNumbers, Ok(()), 2000);
        assert!(states.list().is_empty());
    }

    #[test]
    fn a_primary_read_or_a_passing_error_switches_nothing_off() {
        let mut states = ReadStates::default();
        states.observe("W", Read::Account, Err(&api_error(200)), 1000);
        states.observe("W", Read::TemplateList, Err(&api_error(2)), 1000);
        assert!(states.list().is_empty());
    }

    #[test]
    fn the_disabling_error_is_a_primary_reads() {
        let mut polled = Polled::default();
        polled.push(Read::PhoneNumbers, Err(api_error(200)));
        polled.push(Read::Account, Ok(Converted::default()));
        assert!(polled.disabling_error().is_none());
        polled.push(Read::PageInsights(0), Err(api_error(10)));
        assert!(polled.disabling_error().is_some());
        assert_eq!(Read::PageInsights(1).to_string(), "page_insights #2");
    }
}
