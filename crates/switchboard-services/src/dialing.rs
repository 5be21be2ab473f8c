//! Dialling policy as a service: the policy that applies to a user (the union of their role's
//! and their teams' policies, else the center's, else the built-in default: national numbers
//! only), checked for every number anyone dials or transfers to, with every refusal audited.

use crate::audit::Audit;
use crate::config::ConfigEvents;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use switchboard_core::dialing::{DialPolicy, DialRefusal, HomePlan, NumberKind};
use switchboard_core::emergency::location::CivicAddress;
use switchboard_core::emergency::{
    self, EmergencyNumber, EmergencyRefusal, LeaseChoice, Recognised,
};
use switchboard_core::voice::{apply_dial_rules, Trunk, TrunkDirection};
use switchboard_core::{Actor, CapacityProfileId, UserId};
use switchboard_store::{PolicyScope, Store, StoreError};

#[derive(Clone)]
pub struct Dialing {
    store: Arc<dyn Store>,
    audit: Audit,
    /// The callback leases as stored, loaded on first use; one lease is decided at a time
    /// under this lock, so two agents never get the same number, and the store is written
    /// beside the call (the lease is known here, and to the engine, at once).
    leases: Arc<tokio::sync::Mutex<Option<Vec<emergency::Lease>>>>,
    config: ConfigEvents,
    /// What planning an emergency call reads, kept between dials so that a dial under load
    /// waits for no database read (once its agent has been seen).
    planning: Arc<Mutex<Planning>>,
}

/// The configuration an emergency call is planned from: the registry, the trunks and the
/// callback pool, read together, and agents' locations and capacity profiles' voice outbound as
/// dials ask for them. It is good for one configuration generation: every stored change of the
/// configuration (registry, sites, agents' addresses, users, profiles, trunks, settings) starts
/// a new one, and the next dial reads again.
#[derive(Default)]
struct Planning {
    generation: Option<u64>,
    registry: Arc<emergency::Registry>,
    trunks: Arc<Vec<Trunk>>,
    pool: Arc<Vec<String>>,
    locations: HashMap<UserId, Option<CivicAddress>>,
    outbound: HashMap<CapacityProfileId, bool>,
}

/// The shared parts of `Planning` for one dial.
struct Shared {
    registry: Arc<emergency::Registry>,
    trunks: Arc<Vec<Trunk>>,
    pool: Arc<Vec<String>>,
}

/// How an emergency call is to be placed (EMG-1, EMG-3, EMG-9), decided before it is dialled.
#[derive(Clone, Debug)]
pub struct EmergencyPlan {
    /// What the agent dialled, and the emergency number it is.
    pub recognised: Recognised,
    /// The registry entry called, in the agent's country.
    pub entry: EmergencyNumber,
    /// The trunk it leaves through: the entry's direct route, else the emergency-capable
    /// outbound trunk.
    pub trunk: switchboard_core::TrunkId,
    /// The callback number leased to the agent (kept from an earlier call in the window, or
    /// new), or none when the pool is exhausted.
    pub lease: LeaseChoice,
    /// Where the agent is (their own address, else their site's).
    pub location: CivicAddress,
}

/// Why a number may not be dialled.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Refused(#[from] DialRefusal),
    /// The agent's capacity profile does not include voice outbound.
    #[error("your capacity profile does not include outbound calls; an admin can add voice outbound to it")]
    NoOutbound,
    /// An emergency number that cannot be called as things are; says what to do.
    #[error(transparent)]
    Emergency(#[from] EmergencyRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Dialing {
    pub fn new(store: Arc<dyn Store>, audit: Audit, config: ConfigEvents) -> Self {
        Dialing {
            store,
            audit,
            leases: Arc::default(),
            config,
            planning: Arc::default(),
        }
    }

    fn planning(&self) -> std::sync::MutexGuard<'_, Planning> {
        // Plain maps, changed in single statements: a panic cannot leave them half-changed.
        self.planning.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry, trunks and callback pool of the current configuration generation.
    async fn shared_planning(&self) -> Result<Shared, StoreError> {
        // Read before the store: a change stored after this read moves the generation on, so
        // what is read here is never kept past it.
        let generation = self.config.generation();
        {
            let planning = self.planning();
            if planning.generation == Some(generation) {
                return Ok(Shared {
                    registry: planning.registry.clone(),
                    trunks: planning.trunks.clone(),
                    pool: planning.pool.clone(),
                });
            }
        }
        // Read at once: a dial waits for one round of reads, not one after another.
        let (registry, trunks, settings) = tokio::join!(
            self.store.emergency_registry(),
            self.store.list_trunks(),
            self.store.center_settings()
        );
        let (registry, trunks) = (Arc::new(registry?), Arc::new(trunks?));
        let pool = match settings {
            Ok(settings) => {
                Some(emergency::parse_pool(&settings.callback_pool).unwrap_or_default())
            }
            Err(error) => {
                tracing::error!(%error, "could not read the callback pool");
                None
            }
        };
        let shared = Shared {
            registry: registry.clone(),
            trunks: trunks.clone(),
            pool: Arc::new(pool.clone().unwrap_or_default()),
        };
        // Kept only when everything was read (a pool that could not be read is read again).
        if pool.is_some() {
            let mut planning = self.planning();
            if planning.generation != Some(generation) {
                *planning = Planning {
                    generation: Some(generation),
                    registry,
                    trunks,
                    pool: shared.pool.clone(),
                    ..Planning::default()
                };
            }
        }
        Ok(shared)
    }

    /// Whether `user`'s capacity profile includes voice outbound, and where they are, as of
    /// the current configuration generation.
    async fn agent_planning(
        &self,
        user: &switchboard_core::User,
    ) -> Result<(bool, Option<CivicAddress>), StoreError> {
        let generation = self.config.generation();
        let (outbound, location) = {
            let planning = self.planning();
            let current = planning.generation == Some(generation);
            let outbound = match user.capacity_profile {
                None => Some(false),
                Some(id) => planning.outbound.get(&id).copied().filter(|_| current),
            };
            let location = planning
                .locations
                .get(&user.id)
                .cloned()
                .filter(|_| current);
            (outbound, location)
        };
        if let (Some(outbound), Some(location)) = (&outbound, &location) {
            return Ok((*outbound, location.clone()));
        }
        let profile = async {
            match (outbound, user.capacity_profile) {
                (Some(known), _) => Ok(known),
                (None, Some(id)) => self
                    .store
                    .get_capacity_profile(id)
                    .await
                    .map(|p| p.voice_outbound),
                (None, None) => Ok(false),
            }
        };
        let place = async {
            match location {
                Some(known) => Ok(known),
                None => self.store.location_of(user.id).await,
            }
        };
        let (outbound, location) = tokio::join!(profile, place);
        let (outbound, location) = (outbound?, location?);
        let mut planning = self.planning();
        if planning.generation == Some(generation) {
            if let Some(id) = user.capacity_profile {
                planning.outbound.insert(id, outbound);
            }
            planning.locations.insert(user.id, location.clone());
        }
        Ok((outbound, location))
    }

    /// Whether `typed` is an emergency number (as typed, or behind an outside-line prefix of
    /// the outbound trunks' dial rules), and if so how `user` calls it: their capacity profile
    /// must include voice outbound and their location be in a country of the registry. The
    /// callback number is leased here (stored, so it survives a restart). `None` for any
    /// other number. A refusal is audited.
    pub async fn emergency(
        &self,
        actor: &Actor,
        user: &switchboard_core::User,
        typed: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<EmergencyPlan>, DialError> {
        let Shared {
            registry,
            trunks,
            pool,
        } = self.shared_planning().await?;
        let prefixes: Vec<String> = trunks
            .iter()
            .filter(|t| t.direction == TrunkDirection::Outbound)
            .flat_map(|t| emergency::outside_prefixes(&t.dial_rules))
            .collect();
        let Some(recognised) = registry.recognise(typed, &prefixes) else {
            return Ok(None);
        };
        let plan = self
            .plan_emergency(user, &registry, &trunks, &pool, recognised, now)
            .await;
        if let Err(DialError::Emergency(refusal)) = &plan {
            self.refused(actor, typed, format!("emergency: {refusal}"))
                .await;
        }
        plan.map(Some)
    }

    async fn plan_emergency(
        &self,
        user: &switchboard_core::User,
        registry: &emergency::Registry,
        trunks: &[Trunk],
        pool: &[String],
        recognised: Recognised,
        now: DateTime<Utc>,
    ) -> Result<EmergencyPlan, DialError> {
        let (outbound, location) = self.agent_planning(user).await?;
        if !outbound {
            return Err(EmergencyRefusal::NoOutbound(recognised.number).into());
        }
        let location =
            location.ok_or_else(|| EmergencyRefusal::NoLocation(recognised.number.clone()))?;
        let entry = registry
            .for_country(&recognised, &location.country)
            .cloned()
            .ok_or_else(|| EmergencyRefusal::NotInCountry {
                number: recognised.number.clone(),
                country: location.country.clone(),
            })?;
        let outbound_trunk = |id| {
            trunks
                .iter()
                .find(|t| t.id == id && t.direction == TrunkDirection::Outbound)
        };
        let trunk = entry
            .trunk
            .and_then(outbound_trunk)
            .or_else(|| {
                trunks
                    .iter()
                    .find(|t| t.direction == TrunkDirection::Outbound && t.emergency)
            })
            .map(|t| t.id)
            .ok_or(EmergencyRefusal::NoTrunk)?;
        let lease = self.lease_callback(pool, user.id, now).await;
        Ok(EmergencyPlan {
            recognised,
            entry,
            trunk,
            lease,
            location,
        })
    }

    /// Leases a callback number to `agent`. The lease is stored beside the call (so it
    /// survives a restart); a store that fails never stops the call, and is tried again.
    async fn lease_callback(
        &self,
        pool: &[String],
        agent: switchboard_core::UserId,
        now: DateTime<Utc>,
    ) -> LeaseChoice {
        let mut known = self.leases.lock().await;
        if known.is_none() {
            match self.store.callback_leases().await {
                Ok(stored) => *known = Some(stored),
                Err(error) => tracing::error!(%error, "could not read the callback leases"),
            }
        }
        let leases = known.get_or_insert_with(Vec::new);
        let choice = emergency::lease(pool, leases, agent, now);
        match choice.lease() {
            Some(lease) => {
                leases.retain(|l| l.number != lease.number);
                leases.push(lease.clone());
                let (store, lease) = (self.store.clone(), lease.clone());
                tokio::spawn(async move {
                    for attempt in 1..=5u32 {
                        match store.put_lease(&lease).await {
                            Ok(()) => return,
                            Err(error) => {
                                tracing::error!(%error, attempt, "could not store a callback lease");
                                tokio::time::sleep(std::time::Duration::from_millis(
                                    200 * u64::from(attempt),
                                ))
                                .await;
                            }
                        }
                    }
                });
            }
            None => tracing::warn!(
                "the callback pool is exhausted: an emergency call presents the trunk's caller id"
            ),
        }
        choice
    }

    /// Every callback lease (for the voice engine, on start and after a lease): as this
    /// service knows them, else as stored.
    pub async fn callback_leases(&self) -> Result<Vec<emergency::Lease>, StoreError> {
        if let Some(known) = self.leases.lock().await.as_ref() {
            return Ok(known.clone());
        }
        self.store.callback_leases().await
    }

    /// The policy that applies to `actor`.
    pub async fn policy_of(&self, actor: &Actor) -> Result<DialPolicy, StoreError> {
        let policies = self.store.list_dial_policies().await?;
        let own: Vec<&DialPolicy> = policies
            .iter()
            .filter(|(scope, _)| match scope {
                PolicyScope::Role(role) => *role == actor.role.key,
                PolicyScope::Team(team) => actor.teams.contains(team),
                PolicyScope::Center => false,
            })
            .map(|(_, policy)| policy)
            .collect();
        if !own.is_empty() {
            return Ok(DialPolicy::union(own));
        }
        Ok(policies
            .into_iter()
            .find(|(scope, _)| *scope == PolicyScope::Center)
            .map(|(_, policy)| policy)
            .unwrap_or_default())
    }

    /// The center's numbering plan.
    pub async fn plan(&self) -> Result<HomePlan, StoreError> {
        let country = self.store.center_settings().await?.country;
        Ok(HomePlan::of_country(&country)
            .or_else(|| HomePlan::of_country("US"))
            .unwrap_or(HomePlan {
                country_code: "1".into(),
                emergency: vec!["911".into()],
            }))
    }

    /// What `number` is and whether `actor` may dial it, without recording anything. What
    /// counts is what reaches the carrier: the number after the outbound trunk's dial rules
    /// (`9` + `011…` is international however it was typed), except that an emergency number
    /// is recognised as typed.
    pub async fn evaluate(
        &self,
        actor: &Actor,
        number: &str,
    ) -> Result<(NumberKind, Result<NumberKind, DialRefusal>), StoreError> {
        let (plan, policy) = (self.plan().await?, self.policy_of(actor).await?);
        let sent = self
            .store
            .list_trunks()
            .await?
            .iter()
            .find(|t| t.direction == TrunkDirection::Outbound)
            .map(|t| apply_dial_rules(&t.dial_rules, number))
            .filter(|sent| sent != number && plan.classify(number) != NumberKind::Emergency);
        Ok(match sent {
            Some(sent) => (plan.classify(&sent), policy.permits(&plan, &sent)),
            None => (plan.classify(number), policy.permits(&plan, number)),
        })
    }

    /// Whether `user` may place a call to `number` themselves: their capacity profile
    /// includes voice outbound, and the dialling policy allows the number (a refusal of either
    /// is audited).
    pub async fn check_dial_out(
        &self,
        actor: &Actor,
        user: &switchboard_core::User,
        number: &str,
    ) -> Result<NumberKind, DialError> {
        let outbound = match user.capacity_profile {
            Some(id) => self.store.get_capacity_profile(id).await?.voice_outbound,
            None => false,
        };
        if !outbound {
            let why = "dial: no voice outbound in the capacity profile".to_owned();
            self.refused(actor, number, why).await;
            return Err(DialError::NoOutbound);
        }
        self.check(actor, number, "dial").await
    }

    /// Whether `actor` may dial (or transfer a call to) `number`; a refusal is audited.
    /// `purpose` says what for (`transfer`, `dial`).
    pub async fn check(
        &self,
        actor: &Actor,
        number: &str,
        purpose: &str,
    ) -> Result<NumberKind, DialError> {
        let (_, verdict) = self.evaluate(actor, number).await?;
        match verdict {
            Ok(kind) => Ok(kind),
            Err(refusal) => {
                self.refused(actor, number, format!("{purpose}: {refusal}"))
                    .await;
                Err(refusal.into())
            }
        }
    }

    /// Audits a refused number.
    async fn refused(&self, actor: &Actor, number: &str, why: String) {
        self.audit
            .record(
                Utc::now(),
                Some(actor.user_id),
                "dial_refused",
                Some(number.to_owned()),
                why,
            )
            .await;
    }
}
