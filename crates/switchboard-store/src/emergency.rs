//! Emergency calls: the registry of emergency numbers (with their direct-routing rules), sites
//! and agents' own civic addresses (an agent's location is their own address, else their
//! site's), and the callback numbers leased to agents who dialled. `EmergencyStore` says what is
//! kept; `emergency_sql!` is its SQL for both backends. The callback pool itself is a center
//! setting (`CenterSettings::callback_pool`); which trunks may carry emergency calls is a flag
//! on each trunk (`VoiceStore`).

use crate::codec;
use crate::StoreResult;
use async_trait::async_trait;
use switchboard_core::emergency::location::{AddressInput, CivicAddress, SetBy, Site};
use switchboard_core::emergency::{Lease, Registry};
use switchboard_core::{SiteId, UserId};

/// Emergency numbers, locations and callback leases. Each method is one transaction.
#[async_trait]
pub trait EmergencyStore: Send + Sync {
    /// The emergency numbers the center recognises, in the order the admins keep them (seeded
    /// with `Registry::default()`).
    async fn emergency_registry(&self) -> StoreResult<Registry>;
    /// Replaces every emergency number at once. `Conflict` when a direct-routing trunk does not
    /// exist or a number is listed twice for a country; nothing is changed then.
    async fn set_emergency_registry(&self, registry: &Registry) -> StoreResult<()>;

    /// Every site, by name.
    async fn list_sites(&self) -> StoreResult<Vec<Site>>;
    async fn get_site(&self, id: SiteId) -> StoreResult<Site>;
    /// `Conflict` when another site has the name.
    async fn create_site(&self, site: &Site) -> StoreResult<()>;
    /// Replaces a site's name and address (`NotFound`, or `Conflict` for a taken name).
    async fn update_site(&self, site: &Site) -> StoreResult<()>;
    /// `NotFound`, or `Conflict` while users are on the site (their location would vanish).
    async fn delete_site(&self, id: SiteId) -> StoreResult<()>;

    /// The user's own address and who set it, if they have one.
    async fn agent_address(&self, user: UserId) -> StoreResult<Option<(CivicAddress, SetBy)>>;
    /// Sets (or replaces) the user's own address (`NotFound` for no such user).
    async fn set_agent_address(
        &self,
        user: UserId,
        address: &CivicAddress,
        set_by: SetBy,
    ) -> StoreResult<()>;
    /// Removes the user's own address, if any; their site's applies again.
    async fn clear_agent_address(&self, user: UserId) -> StoreResult<()>;
    /// Where the user is for an emergency call: their own address if set, else their site's;
    /// `None` when neither is (or there is no such user).
    async fn location_of(&self, user: UserId) -> StoreResult<Option<CivicAddress>>;

    /// Every callback lease stored, active and expired, by number.
    async fn callback_leases(&self) -> StoreResult<Vec<Lease>>;
    /// Creates or replaces the lease of its number.
    async fn put_lease(&self, lease: &Lease) -> StoreResult<()>;
}

/// An address's ten columns, in the order of `ADDRESS_COLUMNS` in `emergency_sql!`.
pub(crate) fn address_values(address: &CivicAddress) -> [String; 10] {
    let input = address.input();
    [
        input.country,
        input.state,
        input.city,
        input.street,
        input.number,
        input.postcode,
        input.building,
        input.floor,
        input.room,
        input.method,
    ]
}

/// A stored address, validated again on the way out.
pub(crate) fn address(input: &AddressInput) -> StoreResult<CivicAddress> {
    CivicAddress::parse(input).map_err(codec::corrupt)
}

/// Implements `EmergencyStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! emergency_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::emergency::{address, address_values, EmergencyStore};
        use crate::sql::not_found_unless_one;
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::emergency::location::{AddressInput, CivicAddress, SetBy, Site};
        use switchboard_core::emergency::{EmergencyNumber, Lease, Registry};
        use switchboard_core::{Name, SiteId, TrunkId, UserId};

        const ADDRESS_COLUMNS: &str = "country, state, city, street, number, postcode, building, floor, room, method";

        crate::sql::opt_id!($row);

        fn address_from_row(row: &$row) -> StoreResult<CivicAddress> {
            let text = |column: &str| row.try_get::<String, _>(column);
            address(&AddressInput {
                country: text("country")?,
                state: text("state")?,
                city: text("city")?,
                street: text("street")?,
                number: text("number")?,
                postcode: text("postcode")?,
                building: text("building")?,
                floor: text("floor")?,
                room: text("room")?,
                method: text("method")?,
            })
        }

        fn site_from_row(row: &$row) -> StoreResult<Site> {
            Ok(Site {
                id: codec::id(&row.try_get::<String, _>("id")?, SiteId::parse)?,
                name: Name::parse("name", &row.try_get::<String, _>("name")?).map_err(codec::corrupt)?,
                address: address_from_row(row)?,
            })
        }

        #[async_trait]
        impl EmergencyStore for $store {
            async fn emergency_registry(&self) -> StoreResult<Registry> {
                let rows = sqlx::query("SELECT country, number, test, trunk_id, position FROM emergency_numbers")
                    .fetch_all(self.reader())
                    .await?;
                let mut numbers = rows
                    .iter()
                    .map(|row| {
                        let number = EmergencyNumber::new(
                            &row.try_get::<String, _>("country")?,
                            &row.try_get::<String, _>("number")?,
                            row.try_get("test")?,
                            opt_id(row, "trunk_id", TrunkId::parse)?,
                        )
                        .map_err(codec::corrupt)?;
                        Ok((row.try_get::<i64, _>("position")?, number))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                numbers.sort_by_key(|(position, _)| *position);
                Ok(Registry {
                    numbers: numbers.into_iter().map(|(_, n)| n).collect(),
                })
            }

            async fn set_emergency_registry(&self, registry: &Registry) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("DELETE FROM emergency_numbers").execute(&mut *tx).await?;
                for (position, n) in registry.numbers.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO emergency_numbers (country, number, test, trunk_id, position) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(n.country.as_str())
                    .bind(&n.number)
                    .bind(n.test)
                    .bind(n.trunk.map(|t| t.to_string()))
                    .bind(i64::try_from(position).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        StoreError::from(e).conflict_as(&format!(
                            "{} for {} is listed twice, or its trunk does not exist",
                            n.number, n.country
                        ))
                    })?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_sites(&self) -> StoreResult<Vec<Site>> {
                let rows = sqlx::query(&format!("SELECT id, name, {ADDRESS_COLUMNS} FROM sites"))
                    .fetch_all(self.reader())
                    .await?;
                let mut sites = rows.iter().map(site_from_row).collect::<StoreResult<Vec<_>>>()?;
                sites.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()).then(a.id.cmp(&b.id)));
                Ok(sites)
            }

            async fn get_site(&self, id: SiteId) -> StoreResult<Site> {
                let row = sqlx::query(&format!("SELECT id, name, {ADDRESS_COLUMNS} FROM sites WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(StoreError::NotFound("site"))?;
                site_from_row(&row)
            }

            async fn create_site(&self, site: &Site) -> StoreResult<()> {
                let sql = format!(
                    "INSERT INTO sites (id, name, {ADDRESS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                );
                let mut query = sqlx::query(&sql).bind(site.id.to_string()).bind(site.name.as_str());
                for value in address_values(&site.address) {
                    query = query.bind(value);
                }
                query
                    .execute(self.writer())
                    .await
                    .map_err(|e| StoreError::from(e).conflict_as("another site has that name"))?;
                Ok(())
            }

            async fn update_site(&self, site: &Site) -> StoreResult<()> {
                let mut query = sqlx::query(
                    "UPDATE sites SET name = $2, country = $3, state = $4, city = $5, street = $6, number = $7, \
                     postcode = $8, building = $9, floor = $10, room = $11, method = $12 WHERE id = $1",
                )
                .bind(site.id.to_string())
                .bind(site.name.as_str());
                for value in address_values(&site.address) {
                    query = query.bind(value);
                }
                let done = query
                    .execute(self.writer())
                    .await
                    .map_err(|e| StoreError::from(e).conflict_as("another site has that name"))?;
                not_found_unless_one(done.rows_affected(), "site")
            }

            async fn delete_site(&self, id: SiteId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM sites WHERE id = $1")
                    .bind(id.to_string())
                    .execute(self.writer())
                    .await
                    .map_err(|e| {
                        StoreError::from(e)
                            .conflict_as("users work at this site: move them to another site first")
                    })?;
                not_found_unless_one(done.rows_affected(), "site")
            }

            async fn agent_address(&self, user: UserId) -> StoreResult<Option<(CivicAddress, SetBy)>> {
                let row = sqlx::query(&format!("SELECT {ADDRESS_COLUMNS}, set_by FROM agent_addresses WHERE user_id = $1"))
                    .bind(user.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                row.map(|row| {
                    let set_by = SetBy::parse(&row.try_get::<String, _>("set_by")?).map_err(codec::corrupt)?;
                    Ok((address_from_row(&row)?, set_by))
                })
                .transpose()
            }

            async fn set_agent_address(
                &self,
                user: UserId,
                address: &CivicAddress,
                set_by: SetBy,
            ) -> StoreResult<()> {
                let sql = format!(
                    "INSERT INTO agent_addresses (user_id, {ADDRESS_COLUMNS}, set_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (user_id) DO UPDATE SET country = excluded.country, state = excluded.state, \
                     city = excluded.city, street = excluded.street, number = excluded.number, \
                     postcode = excluded.postcode, building = excluded.building, floor = excluded.floor, \
                     room = excluded.room, method = excluded.method, set_by = excluded.set_by"
                );
                let mut query = sqlx::query(&sql).bind(user.to_string());
                for value in address_values(address) {
                    query = query.bind(value);
                }
                query
                    .bind(set_by.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        // The only reference is the user.
                        StoreError::Conflict(_) => StoreError::NotFound("user"),
                        other => other,
                    })?;
                Ok(())
            }

            async fn clear_agent_address(&self, user: UserId) -> StoreResult<()> {
                sqlx::query("DELETE FROM agent_addresses WHERE user_id = $1")
                    .bind(user.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn location_of(&self, user: UserId) -> StoreResult<Option<CivicAddress>> {
                if let Some((own, _)) = self.agent_address(user).await? {
                    return Ok(Some(own));
                }
                let row = sqlx::query(&format!(
                    "SELECT {} FROM sites s JOIN users u ON u.site_id = s.id WHERE u.id = $1",
                    ADDRESS_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
                ))
                .bind(user.to_string())
                .fetch_optional(self.reader())
                .await?;
                row.as_ref().map(address_from_row).transpose()
            }

            async fn callback_leases(&self) -> StoreResult<Vec<Lease>> {
                let rows = sqlx::query("SELECT number, agent_id, leased_at, expires_at FROM callback_leases")
                    .fetch_all(self.reader())
                    .await?;
                let mut leases = rows
                    .iter()
                    .map(|row| {
                        Ok(Lease {
                            number: row.try_get("number")?,
                            agent: codec::id(&row.try_get::<String, _>("agent_id")?, UserId::parse)?,
                            leased_at: codec::time(row.try_get("leased_at")?)?,
                            expires_at: codec::time(row.try_get("expires_at")?)?,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                leases.sort_by(|a, b| a.number.cmp(&b.number));
                Ok(leases)
            }

            async fn put_lease(&self, lease: &Lease) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO callback_leases (number, agent_id, leased_at, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (number) DO UPDATE SET agent_id = excluded.agent_id, \
                     leased_at = excluded.leased_at, expires_at = excluded.expires_at",
                )
                .bind(&lease.number)
                .bind(lease.agent.to_string())
                .bind(millis(lease.leased_at))
                .bind(millis(lease.expires_at))
                .execute(self.writer())
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::NotFound("user"),
                    other => other,
                })?;
                Ok(())
            }
        }
    };
}

pub(crate) use emergency_sql;
