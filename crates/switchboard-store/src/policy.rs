//! Policies: who may dial what (class of service), per scope: the center's default, a role, a
//! team. `PolicyStore` says what is kept; `policy_sql!` is its SQL for both backends.

use crate::StoreResult;
use async_trait::async_trait;
use switchboard_core::dialing::DialPolicy;

/// Where a dialling policy applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PolicyScope {
    /// Everyone without a role or team policy.
    Center,
    Role(switchboard_core::RoleKey),
    Team(switchboard_core::TeamId),
}

impl PolicyScope {
    pub fn key(&self) -> String {
        match self {
            PolicyScope::Center => "center".into(),
            PolicyScope::Role(role) => format!("role:{role}"),
            PolicyScope::Team(team) => format!("team:{team}"),
        }
    }

    pub fn parse(text: &str) -> Option<PolicyScope> {
        if text == "center" {
            return Some(PolicyScope::Center);
        }
        if let Some(role) = text.strip_prefix("role:") {
            return switchboard_core::RoleKey::parse(role)
                .ok()
                .map(PolicyScope::Role);
        }
        let team = text.strip_prefix("team:")?;
        switchboard_core::TeamId::parse(team)
            .ok()
            .map(PolicyScope::Team)
    }
}

/// Dialling policies. Each method is one transaction.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    async fn list_dial_policies(&self) -> StoreResult<Vec<(PolicyScope, DialPolicy)>>;
    /// Creates or replaces the policy of a scope.
    async fn put_dial_policy(&self, scope: &PolicyScope, policy: &DialPolicy) -> StoreResult<()>;
    async fn delete_dial_policy(&self, scope: &PolicyScope) -> StoreResult<()>;
}

pub(crate) fn kinds_text(policy: &DialPolicy) -> String {
    policy
        .allowed
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn policy_from(allowed: &str, allow: &str, deny: &str) -> StoreResult<DialPolicy> {
    let allowed = crate::codec::split(allowed)
        .map(|k| switchboard_core::dialing::NumberKind::parse(k).map_err(crate::codec::corrupt))
        .collect::<StoreResult<Vec<_>>>()?;
    let patterns = |text: &str| crate::codec::split(text).map(str::to_owned).collect();
    Ok(DialPolicy {
        allowed,
        allow: patterns(allow),
        deny: patterns(deny),
    })
}

/// Implements `PolicyStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! policy_sql {
    ($store:ty, $row:ty) => {
        use crate::policy::{kinds_text, policy_from, PolicyScope, PolicyStore};
        use crate::sql::not_found_unless_one;
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::dialing::DialPolicy;

        #[async_trait]
        impl PolicyStore for $store {
            async fn list_dial_policies(&self) -> StoreResult<Vec<(PolicyScope, DialPolicy)>> {
                let rows = sqlx::query("SELECT scope, allowed, allow_patterns, deny_patterns FROM dial_policies")
                    .fetch_all(self.reader()).await?;
                let mut policies = rows
                    .iter()
                    .map(|row| {
                        let scope: String = row.try_get("scope")?;
                        let scope = PolicyScope::parse(&scope)
                            .ok_or_else(|| StoreError::Corrupt(format!("policy scope {scope}")))?;
                        let policy = policy_from(
                            &row.try_get::<String, _>("allowed")?,
                            &row.try_get::<String, _>("allow_patterns")?,
                            &row.try_get::<String, _>("deny_patterns")?,
                        )?;
                        Ok((scope, policy))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                policies.sort_by_key(|(scope, _)| scope.key());
                Ok(policies)
            }

            async fn put_dial_policy(&self, scope: &PolicyScope, policy: &DialPolicy) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO dial_policies (scope, allowed, allow_patterns, deny_patterns) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (scope) DO UPDATE SET allowed = excluded.allowed, \
                     allow_patterns = excluded.allow_patterns, deny_patterns = excluded.deny_patterns",
                )
                .bind(scope.key())
                .bind(kinds_text(policy))
                .bind(policy.allow.join(","))
                .bind(policy.deny.join(","))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn delete_dial_policy(&self, scope: &PolicyScope) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM dial_policies WHERE scope = $1")
                    .bind(scope.key())
                    .execute(self.writer())
                    .await?;
                not_found_unless_one(done.rows_affected(), "dial policy")
            }
        }
    };
}

pub(crate) use policy_sql;
