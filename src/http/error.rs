//! One error type for every handler: a status code plus `{"error":{"code","message"}}` with a
//! stable snake_case code clients can branch on. Internal failures are logged in the request's
//! span and answered with a generic message, never with details of the system.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::validate::Invalid;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid input; `code` says what kind, `message` which field and why.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required: send a valid access token")]
    Unauthorized,
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json (or text/plain holding JSON)")]
    UnsupportedMediaType,
    #[error("{message}")]
    Gone {
        code: &'static str,
        message: &'static str,
    },
    #[error("too many open connections for this user (at most {limit}); close another tab or retry later")]
    TooManyConnections { limit: usize },
    #[error("the service is not ready")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; safe to branch on.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized | Error::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Gone { .. } => StatusCode::GONE,
            Error::TooManyConnections { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Conflict { code, .. }
            | Error::Gone { code, .. } => code,
            Error::TooManyConnections { .. } => "too_many_connections",
            Error::Unauthorized => "unauthorized",
            Error::InvalidCredentials => "invalid_credentials",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound => "not_found",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::Unavailable => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = match &self {
            Error::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                "something went wrong on our side; please retry".to_owned()
            }
            other => other.to_string(),
        };
        let status = self.status_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Error::NotFound,
            StoreError::Invalid { code, message } => Error::BadRequest { code, message },
            StoreError::Conflict { code, message } => Error::Conflict { code, message },
            StoreError::Other(e) => Error::Internal(e),
        }
    }
}

impl From<Invalid> for Error {
    fn from(invalid: Invalid) -> Self {
        Error::bad_request("invalid_input", invalid.to_string())
    }
}

impl From<axum::extract::rejection::QueryRejection> for Error {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Error::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for Error {
    // A path segment that is not an id cannot name anything that exists.
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        Error::NotFound
    }
}
