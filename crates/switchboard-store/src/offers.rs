//! What consumers are offered instead of chatting or waiting (AHD-4): the help-center address
//! messages go to, and after how long a waiting chat is offered a way out. `OfferStore` says
//! what is kept; `offers_sql!` is its SQL for both backends. The messages themselves are jobs.

use crate::codec::corrupt;
use crate::StoreResult;
use async_trait::async_trait;
use switchboard_core::offer::OfferSettings;

/// The center's offer settings. Each method is one transaction.
#[async_trait]
pub trait OfferStore: Send + Sync {
    /// The settings (no address and no wait offer until set).
    async fn offer_settings(&self) -> StoreResult<OfferSettings>;
    async fn set_offer_settings(&self, settings: &OfferSettings) -> StoreResult<()>;
}

/// The settings from their columns, checked again as they are read.
pub(crate) fn settings_from(
    help_email: Option<String>,
    wait: Option<i64>,
) -> StoreResult<OfferSettings> {
    let wait = wait
        .map(|w| u32::try_from(w).map_err(corrupt))
        .transpose()?;
    OfferSettings::new(help_email.as_deref(), wait).map_err(corrupt)
}

/// Implements `OfferStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! offers_sql {
    ($store:ty, $row:ty) => {
        use crate::offers::{settings_from, OfferStore};
        use crate::StoreResult;
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::offer::OfferSettings;

        #[async_trait]
        impl OfferStore for $store {
            async fn offer_settings(&self) -> StoreResult<OfferSettings> {
                let row: Option<$row> = sqlx::query(
                    "SELECT help_email, wait_offer_seconds FROM center_settings WHERE id = 1",
                )
                .fetch_optional(self.reader())
                .await?;
                match row {
                    Some(row) => settings_from(row.try_get(0)?, row.try_get(1)?),
                    None => Ok(OfferSettings::default()),
                }
            }

            async fn set_offer_settings(&self, settings: &OfferSettings) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE center_settings SET help_email = $1, wait_offer_seconds = $2 WHERE id = 1",
                )
                .bind(settings.help_email.as_ref().map(|e| e.as_str().to_owned()))
                .bind(settings.wait_offer_after.map(i64::from))
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use offers_sql;
