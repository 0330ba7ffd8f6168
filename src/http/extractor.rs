//! Request extractors that answer bad input with our JSON errors instead of axum's plain text:
//! the caller's identity, JSON bodies (also `text/plain` ones from XDomainRequest), query strings
//! and path ids.

use axum::{
    body::Bytes,
    extract::{
        rejection::{BytesRejection, FailedToBufferBody},
        FromRequest, FromRequestParts, Request,
    },
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::{error::Error, ApiContext};
use crate::{auth, domain::Principal};

/// The authenticated customer or operator. The token comes from `Authorization: Bearer …` or,
/// where a browser cannot set headers (EventSource, XDomainRequest, JSONP), `?access_token=`.
#[derive(Clone, Copy, Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<ApiContext> for Auth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &ApiContext,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(Error::Unauthorized)?;
        ctx.tokens
            .verify(&token, chrono::Utc::now().timestamp())
            .map(Auth)
            .ok_or(Error::Unauthorized)
    }
}

/// Only the holder of the admin token passes.
pub struct AdminAuth;

impl FromRequestParts<ApiContext> for AdminAuth {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &ApiContext,
    ) -> Result<Self, Self::Rejection> {
        match bearer_token(parts) {
            Some(token) if auth::secrets_match(&token, ctx.admin_token.expose()) => Ok(AdminAuth),
            _ => Err(Error::Unauthorized),
        }
    }
}

fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    url::form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// A JSON body. `text/plain` is accepted too, because XDomainRequest (IE8/9) can send nothing
/// else. Syntax errors are `invalid_json`; well-formed JSON of the wrong shape is
/// `invalid_input` with serde's description of the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiContext> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, ctx: &ApiContext) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match content_type.as_deref() {
            Some("application/json" | "text/plain") => {}
            _ => return Err(Error::UnsupportedMediaType),
        }
        let limit = ctx.config.max_body_bytes;
        let bytes = Bytes::from_request(req, ctx)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                    Error::PayloadTooLarge { limit }
                }
                other => Error::bad_request("invalid_body", other.body_text()),
            })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            if e.is_data() {
                Error::bad_request("invalid_input", e.to_string())
            } else {
                Error::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
            }
        })
    }
}

/// A query string, with our error on failure.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct ApiQuery<T>(pub T);

/// Path parameters; an unparsable id is a 404, like an unknown one.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct ApiPath<T>(pub T);
