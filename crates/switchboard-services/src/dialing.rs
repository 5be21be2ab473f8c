//! Dialling policy as a service: the policy that applies to a user (the union of their role's
//! and their teams' policies, else the center's, else the built-in default: national numbers
//! only), checked for every number anyone dials or transfers to, with every refusal audited.

use crate::audit::Audit;
use chrono::Utc;
use std::sync::Arc;
use switchboard_core::dialing::{DialPolicy, DialRefusal, HomePlan, NumberKind};
use switchboard_core::voice::{apply_dial_rules, TrunkDirection};
use switchboard_core::Actor;
use switchboard_store::{PolicyScope, Store, StoreError};

#[derive(Clone)]
pub struct Dialing {
    store: Arc<dyn Store>,
    audit: Audit,
}

/// Why a number may not be dialled.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Refused(#[from] DialRefusal),
    /// The agent's capacity profile does not include voice outbound.
    #[error("your capacity profile does not include outbound calls; an admin can add voice outbound to it")]
    NoOutbound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Dialing {
    pub fn new(store: Arc<dyn Store>, audit: Audit) -> Self {
        Dialing { store, audit }
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
