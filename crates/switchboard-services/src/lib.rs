//! Switchboard's services: the stateful work between the domain core and the edges (HTTP,
//! WebSocket, SIP). They depend on the core and the store only, never on the server, so the
//! compiler keeps HTTP, chat and voice out of them.
//!
//! - `contacts`: the contact service, the one writer of routing decisions.
//! - `bus`: the change bus, what routing did to a contact, for the carriers (voice, chat).
//! - `events`: the domain event bus, for live watchers; JSON is made at the edge, once.
//! - `config`: configuration events, which rebuild routing and tell every copy it is stale.
//! - `jobs`: the generic job worker and its handler trait.
//! - `metrics`: the Prometheus metrics.
//! - `audit`: the audit log (who did what to whom).
//! - `dialing`: class of service, the policy each user's dialling goes through.
//! - `emergency`: beside an agent's emergency call, the restricted log, the notification
//!   mail's job and supervisors' live alert.
//!
//! Every service is a cheap handle; `Services` bundles them. Cross-service calls are handle
//! methods with owned arguments and owned results, so a call can later cross a network
//! between nodes.

pub mod audit;
pub mod bus;
pub mod config;
pub mod contacts;
pub mod dialing;
pub mod emergency;
pub mod events;
pub mod jobs;
pub mod metrics;

use std::sync::Arc;
use switchboard_store::{Store, StoreResult};

/// Every service's handle, started on one store.
#[derive(Clone)]
pub struct Services {
    /// Everything kept.
    pub store: Arc<dyn Store>,
    /// Routing: the one writer of routing decisions.
    pub contacts: contacts::ContactService,
    /// Routing's changes, for the carriers; subscribe before the first contact arrives.
    pub bus: bus::ChangeBus,
    /// Domain events, for live watchers.
    pub events: events::EventBus,
    /// Configuration changes: the generation, and the areas for subscribers.
    pub config: config::ConfigEvents,
    /// Stores background jobs and wakes the worker (the worker and its handlers are the
    /// server's: they may need the edges, as the CRM webhook does).
    pub jobs: jobs::Jobs,
    pub metrics: Arc<metrics::Metrics>,
    pub audit: audit::Audit,
    /// Which numbers each user may dial or transfer to.
    pub dialing: dialing::Dialing,
    /// Beside an agent's emergency call: the emergency log, the notification mail, the live
    /// alert.
    pub emergency: emergency::EmergencyNotices,
}

impl Services {
    /// Starts the services on a store; routing is built from what it holds.
    pub async fn start(store: Arc<dyn Store>) -> StoreResult<Self> {
        let events = events::EventBus::default();
        let bus = bus::ChangeBus::default();
        let metrics = Arc::new(metrics::Metrics::default());
        let contacts = contacts::ContactService::start(
            store.clone(),
            events.clone(),
            bus.clone(),
            metrics.clone(),
        )
        .await?;
        let audit = audit::Audit::new(store.clone());
        let jobs = jobs::Jobs::new(store.clone());
        let config = config::ConfigEvents::new(contacts.clone());
        Ok(Self {
            emergency: emergency::EmergencyNotices::new(
                store.clone(),
                jobs.clone(),
                events.clone(),
            ),
            dialing: dialing::Dialing::new(store.clone(), audit.clone(), config.clone()),
            audit,
            config,
            jobs,
            store,
            contacts,
            bus,
            events,
            metrics,
        })
    }

    /// Every user's teams: who may see and act on a contact or call held by an agent depends
    /// on the agent's teams.
    pub async fn teams_by_user(
        &self,
    ) -> StoreResult<
        std::collections::HashMap<switchboard_core::UserId, Vec<switchboard_core::TeamId>>,
    > {
        Ok(self
            .store
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.teams))
            .collect())
    }
}
