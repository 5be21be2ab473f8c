//! Storage errors: what a caller can act on (not found, conflict, a refused tree change)
//! apart from what it cannot (the database failed).

use switchboard_core::TreeError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change collides with what is stored (a duplicate name, a thing still in use).
    #[error("{0}")]
    Conflict(String),
    /// The queue tree would break.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A stored value no longer parses: the database was changed behind Switchboard's back.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database URL or options are wrong.
    #[error("{0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.is_unique_violation() {
                return StoreError::Conflict(
                    "a record with that name or key already exists".into(),
                );
            }
            if db.is_foreign_key_violation() {
                return StoreError::Conflict(
                    "the change refers to something that does not exist, or removes something still in use".into(),
                );
            }
        }
        StoreError::Database(error)
    }
}

impl StoreError {
    /// A conflict with a message that says what collided.
    pub(crate) fn conflict_as(self, message: &str) -> Self {
        match self {
            StoreError::Conflict(_) => StoreError::Conflict(message.to_owned()),
            other => other,
        }
    }
}
