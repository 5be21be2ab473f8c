//! Prometheus metrics: every counter and gauge Switchboard exports, and their text format for
//! `/metrics`. The contact service and voice update them; the HTTP layer counts responses.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `2xx`, `4xx`, `5xx`…
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContactLabels {
    pub channel: String,
    /// `queued`, `assigned`, `ended`, `abandoned`.
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PresenceLabels {
    pub presence: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The queue's id.
    pub queue: String,
}

/// Every metric Switchboard exports.
pub struct Metrics {
    registry: Registry,
    pub http_responses: Family<StatusLabels, Counter>,
    pub contacts: Family<ContactLabels, Counter>,
    pub contacts_waiting: Gauge,
    pub contacts_in_progress: Gauge,
    pub agents: Family<PresenceLabels, Gauge>,
    pub event_subscribers: Gauge,
    pub wait_seconds: Histogram,
    pub calls: Family<OutcomeLabels, Counter>,
    pub calls_in_progress: Gauge,
    pub calls_queued: Gauge,
    pub call_monitors: Gauge,
    pub call_wait_seconds: Histogram,
    /// Today's dashboard figures per queue (PLT-10), brought up to date on each scrape.
    pub queue_offered_today: Family<QueueLabels, Gauge>,
    pub queue_answered_today: Family<QueueLabels, Gauge>,
    pub queue_abandoned_today: Family<QueueLabels, Gauge>,
    pub queue_service_level_today: Family<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let http_responses = Family::<StatusLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by status class",
            http_responses.clone(),
        );
        let contacts = Family::<ContactLabels, Counter>::default();
        registry.register(
            "contacts",
            "Contacts by channel and what happened to them",
            contacts.clone(),
        );
        let contacts_waiting = Gauge::default();
        registry.register(
            "contacts_waiting",
            "Contacts waiting in queues now",
            contacts_waiting.clone(),
        );
        let contacts_in_progress = Gauge::default();
        registry.register(
            "contacts_in_progress",
            "Contacts with an agent now",
            contacts_in_progress.clone(),
        );
        let agents = Family::<PresenceLabels, Gauge>::default();
        registry.register("agents", "Agents by presence", agents.clone());
        let event_subscribers = Gauge::default();
        registry.register(
            "event_subscribers",
            "Open live event streams",
            event_subscribers.clone(),
        );
        let wait_seconds = Histogram::new([
            1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        ]);
        registry.register(
            "contact_wait_seconds",
            "Time contacts waited for an agent",
            wait_seconds.clone(),
        );
        let calls = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "calls",
            "Ended calls by outcome: answered, abandoned, left_in_menu, transferred_out, failed",
            calls.clone(),
        );
        let calls_in_progress = Gauge::default();
        registry.register(
            "calls_in_progress",
            "Calls connected now",
            calls_in_progress.clone(),
        );
        let calls_queued = Gauge::default();
        registry.register(
            "calls_queued",
            "Calls waiting in a queue or ringing an agent now",
            calls_queued.clone(),
        );
        let call_monitors = Gauge::default();
        registry.register(
            "call_monitors",
            "Users monitoring a call now (listening, coaching or barging, once their phone answered)",
            call_monitors.clone(),
        );
        let call_wait_seconds = Histogram::new([
            1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        ]);
        registry.register(
            "call_wait_seconds",
            "Time answered calls waited in queue",
            call_wait_seconds.clone(),
        );
        let queue_offered_today = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_offered_today",
            "Contacts offered to the queue today, in the center's time zone",
            queue_offered_today.clone(),
        );
        let queue_answered_today = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_answered_today",
            "Contacts of the queue answered today",
            queue_answered_today.clone(),
        );
        let queue_abandoned_today = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_abandoned_today",
            "Contacts of the queue abandoned today",
            queue_abandoned_today.clone(),
        );
        let queue_service_level_today =
            Family::<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "queue_service_level_today",
            "Share of today's decided contacts answered within 20 seconds",
            queue_service_level_today.clone(),
        );
        Self {
            queue_offered_today,
            queue_answered_today,
            queue_abandoned_today,
            queue_service_level_today,
            calls,
            calls_in_progress,
            calls_queued,
            call_monitors,
            call_wait_seconds,
            registry,
            http_responses,
            contacts,
            contacts_waiting,
            contacts_in_progress,
            agents,
            event_subscribers,
            wait_seconds,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics encoding failed");
        }
        text
    }

    pub fn count_call(&self, outcome: &str) {
        self.calls
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn count_contact(&self, channel: &str, event: &str) {
        self.contacts
            .get_or_create(&ContactLabels {
                channel: channel.to_owned(),
                event: event.to_owned(),
            })
            .inc();
    }
}
