//! Dialling policy as a service: the policy that applies to a user (the union of their role's
//! and their teams' policies, else the center's, else the built-in default: national numbers
//! only), checked for every number anyone dials or transfers to, with every refusal audited.

use crate::audit::Audit;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use switchboard_core::dialing::{DialPolicy, DialRefusal, HomePlan, NumberKind};
use switchboard_core::emergency::location::CivicAddress;
use switchboard_core::emergency::{
    self, EmergencyNumber, EmergencyRefusal, LeaseChoice, Recognised,
};
use switchboard_core::voice::{apply_dial_rules, TrunkDirection};
use switchboard_core::Actor;
use switchboard_store::{PolicyScope, Store, StoreError};

#[derive(Clone)]
pub struct Dialing {
    store: Arc<dyn Store>,
    audit: Audit,
    /// The callback leases as stored, loaded on first use; one lease is decided at a time
    /// under this lock, so two agents never get the same number, and the store is written
    /// beside the call (the lease is known here, and to the engine, at once).
    leases: Arc<tokio::sync::Mutex<Option<Vec<emergency::Lease>>>>,
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
    pub fn new(store: Arc<dyn Store>, audit: Audit) -> Self {
        Dialing {
            store,
            audit,
            leases: Arc::default(),
        }
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
        // Read at once: an emergency dial waits for one round of reads, not one after another.
        let (registry, trunks) =
            tokio::join!(self.store.emergency_registry(), self.store.list_trunks());
        let (registry, trunks) = (registry?, trunks?);
        let prefixes: Vec<String> = trunks
            .iter()
            .filter(|t| t.direction == TrunkDirection::Outbound)
            .flat_map(|t| emergency::outside_prefixes(&t.dial_rules))
            .collect();
        let Some(recognised) = registry.recognise(typed, &prefixes) else {
            return Ok(None);
        };
        let plan = self
            .plan_emergency(user, &registry, &trunks, recognised, now)
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
        trunks: &[switchboard_core::voice::Trunk],
        recognised: Recognised,
        now: DateTime<Utc>,
    ) -> Result<EmergencyPlan, DialError> {
        let profile = async {
            match user.capacity_profile {
                Some(id) => self
                    .store
                    .get_capacity_profile(id)
                    .await
                    .map(|p| p.voice_outbound),
                None => Ok(false),
            }
        };
        let (outbound, location, settings) = tokio::join!(
            profile,
            self.store.location_of(user.id),
            self.store.center_settings()
        );
        if !outbound? {
            return Err(EmergencyRefusal::NoOutbound(recognised.number).into());
        }
        let location =
            location?.ok_or_else(|| EmergencyRefusal::NoLocation(recognised.number.clone()))?;
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
        let pool = match settings {
            Ok(settings) => emergency::parse_pool(&settings.callback_pool).unwrap_or_default(),
            Err(error) => {
                tracing::error!(%error, "could not read the callback pool");
                Vec::new()
            }
        };
        let lease = self.lease_callback(&pool, user.id, now).await;
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
