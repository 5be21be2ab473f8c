//! The one HTTP error type: a status, a stable machine-readable code and a message, sent as
//! `{ "code": "...", "message": "..." }`. Handlers return it with `?`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchboard_core::routing::RoutingError;
use switchboard_core::TextError;
use switchboard_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which the request may be tried again, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code to act on, such as `invalid_field`, `not_found`, `forbidden`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Says when to try again: the answer carries `Retry-After` (whole seconds, at least 1).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// A failure that is not the caller's: logged in full, answered without detail.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request",
        )
    }
}

impl ApiError {
    /// A blob store failure about `what`: 404 when the blob is gone; a sealed file that does
    /// not open (a master key the server lacks, an altered file) is a 500 of its own code,
    /// `file_unreadable`, logged with why, and never answered as garbage.
    pub fn from_blob(error: crate::blobs::BlobError, what: &str) -> Self {
        match error {
            crate::blobs::BlobError::NotFound => Self::not_found(what),
            crate::blobs::BlobError::Sealed(error) => {
                tracing::error!(%error, what, "a stored file does not open");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "file_unreadable",
                    format!("the stored {what} cannot be opened with this server's keys: it was sealed under another master key, or altered (the log says which)"),
                )
            }
            other => Self::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::Tree(tree) => {
                ApiError::new(StatusCode::CONFLICT, "queue_tree", tree.to_string())
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<TextError> for ApiError {
    fn from(error: TextError) -> Self {
        ApiError::bad_request("invalid_field", error.to_string())
    }
}

impl From<switchboard_core::hours::HoursError> for ApiError {
    fn from(error: switchboard_core::hours::HoursError) -> Self {
        ApiError::bad_request("invalid_hours", error.to_string())
    }
}

impl From<switchboard_core::IdError> for ApiError {
    fn from(error: switchboard_core::IdError) -> Self {
        ApiError::bad_request("invalid_id", error.to_string())
    }
}

impl From<RoutingError> for ApiError {
    fn from(error: RoutingError) -> Self {
        ApiError::conflict(error.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
