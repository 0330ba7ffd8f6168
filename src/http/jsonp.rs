//! JSONP for IE6/7 and other pages that can reach the API only through `<script>` tags.
//!
//! Two uses share the framing here: the long-poll answer (`GET /v1/events?callback=`) and
//! the tunnel `GET /v1/jsonp`, which carries any other API call (method, path and JSON body in
//! the query) so that a page on another origin can send messages without CORS or
//! XDomainRequest. The tunnel never sees cookies: the API authenticates by explicit token
//! only, so a script tag on a hostile page gains nothing it did not already hold.

use axum::{
    body::Body,
    extract::{Query, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use serde::Deserialize;
use tower::ServiceExt;
use utoipa::IntoParams;

use super::Error;

/// Longest JSON answer the tunnel wraps; bigger ones are refused rather than cut.
const MAX_TUNNEL_ANSWER: usize = 1 << 20;

/// `Some(name)` when `raw` matches `^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`.
pub(super) fn valid_callback(raw: &str) -> Option<&str> {
    let mut chars = raw.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.');
    (first_ok && rest_ok && raw.len() <= 64).then_some(raw)
}

/// The 400 for a callback that is not a plain name. It is JSON, never script: the hostile
/// name is not echoed anywhere.
pub(super) fn bad_callback() -> Error {
    Error::bad_request(
        "bad_callback",
        "callback must be a JavaScript name like cb or my.cb_1 (at most 64 characters)",
    )
}

/// `/**/callback(json);` as `application/javascript`, never cached, never sniffed.
pub(super) fn script(callback: &str, json: &str) -> Response {
    // JSON is valid JavaScript except for U+2028/U+2029 inside strings in old engines.
    let json = json
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    let mut response = (StatusCode::OK, format!("/**/{callback}({json});")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The error shape a script can read: `{"error":{code,message},"status":N}`.
pub(super) fn error_json(error: &Error) -> String {
    if let Error::Internal(e) = error {
        tracing::error!(error = format!("{e:#}"), "request failed");
    }
    let status = error.status_code().as_u16();
    let message = if status == 500 {
        "something went wrong on our side; please retry".to_owned()
    } else {
        error.to_string()
    };
    serde_json::json!({
        "error": { "code": error.code(), "message": message },
        "status": status,
    })
    .to_string()
}

#[derive(Deserialize, IntoParams)]
pub(super) struct TunnelQuery {
    /// The name of the function to call with the answer (`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`).
    callback: Option<String>,
    /// `GET`, `POST`, `PATCH`, `PUT` or `DELETE`; default `GET`.
    method: Option<String>,
    /// The API path with its own query, e.g. `/v1/conversations/7/messages?limit=20`.
    path: Option<String>,
    /// The JSON request body, as text.
    body: Option<String>,
    /// The caller's token (a script tag cannot send headers).
    access_token: Option<String>,
}

/// `GET /v1/jsonp?callback=cb&method=POST&path=/v1/…&body={…}&access_token=…` answers
/// `/**/cb({"status":201,"body":{…}});` with the inner call's status and JSON body.
/// Streams (`/v1/events…`, `/v1/ws`) and the tunnel itself cannot be tunnelled.
#[utoipa::path(get, path = "/v1/jsonp", tag = "events", params(TunnelQuery),
    responses((status = 200, description = "`/**/callback({\"status\":N,\"body\":…});` as application/javascript"),
              (status = 400, body = super::error::ErrorBody, description = "callback is not a plain JavaScript name")))]
pub(super) async fn tunnel(
    State(api): State<Router>,
    query: Result<Query<TunnelQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return Error::bad_request("invalid_query", "the query string could not be read")
            .into_response();
    };
    let callback = match query.callback.as_deref().map(valid_callback) {
        Some(Some(name)) => name.to_owned(),
        _ => return bad_callback().into_response(),
    };
    let json = match tunnelled_call(api, query).await {
        Ok(json) => json,
        Err(error) => error_json(&error),
    };
    script(&callback, &json)
}

async fn tunnelled_call(api: Router, query: TunnelQuery) -> Result<String, Error> {
    let method = match query.method.as_deref().unwrap_or("GET") {
        m if m.eq_ignore_ascii_case("GET") => Method::GET,
        m if m.eq_ignore_ascii_case("POST") => Method::POST,
        m if m.eq_ignore_ascii_case("PATCH") => Method::PATCH,
        m if m.eq_ignore_ascii_case("PUT") => Method::PUT,
        m if m.eq_ignore_ascii_case("DELETE") => Method::DELETE,
        _ => {
            return Err(Error::bad_request(
                "invalid_query",
                "method must be GET, POST, PATCH, PUT or DELETE",
            ))
        }
    };
    let path = query.path.unwrap_or_default();
    let route = path.split('?').next().unwrap_or_default();
    let tunnellable = route.starts_with("/v1/")
        && !route.starts_with("/v1/events")
        && !route.starts_with("/v1/ws")
        && !route.starts_with("/v1/jsonp")
        && !route.contains("..");
    if !tunnellable {
        return Err(Error::bad_request(
            "invalid_query",
            "path must be an API path under /v1/ (streams cannot be tunnelled)",
        ));
    }
    let mut request = Request::builder().method(method).uri(path.as_str());
    if let Some(token) = query.access_token.filter(|t| !t.is_empty()) {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match query.body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body)
        }
        None => Body::empty(),
    };
    let request = request
        .body(body)
        .map_err(|_| Error::bad_request("invalid_query", "path is not a valid URL path"))?;

    let response = api
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_TUNNEL_ANSWER)
        .await
        .map_err(|_| Error::bad_request("too_large", "the answer is too large for JSONP"))?;
    // Every API answer is JSON; an empty one (204) becomes null.
    let inner: serde_json::Value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(anyhow::anyhow!("tunnelled answer is not JSON: {e}")))?
    };
    Ok(serde_json::json!({ "status": status, "body": inner }).to_string())
}

#[cfg(test)]
mod tests {
    use super::valid_callback;

    #[test]
    fn only_plain_names_are_callbacks() {
        for good in ["cb", "_x", "$jsonp1", "a.b.c", "sb.cb_12", &"a".repeat(64)] {
            assert!(valid_callback(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "1cb",
            "alert(1)//",
            "<script>",
            "a b",
            "a;b",
            "a-b",
            "a[0]",
            &"a".repeat(65),
            "ы",
        ] {
            assert!(valid_callback(bad).is_none(), "{bad}");
        }
    }
}
