//! Creating what a scenario needs through the public API.

use anyhow::Context as _;
use serde_json::{json, Value};

/// POST JSON (with a bearer token when not empty) and return the JSON answer.
pub async fn post(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(format!("{base}{path}")).json(&body);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("POST {path}: body"))?;
    anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
    Ok(body)
}

/// A company with one operator; returns (company id, operator token).
pub async fn company_with_operator(
    client: &reqwest::Client,
    base: &str,
    admin_token: &str,
    tag: &str,
) -> anyhow::Result<(i64, String)> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let company = post(
        client,
        base,
        admin_token,
        "/v1/admin/companies",
        json!({
            "name": format!("Load {tag} {run}"), "email": format!("load-{run}@example.com"),
            "city": "Novosibirsk", "timezone": "Asia/Novosibirsk"
        }),
    )
    .await
    .context("creating a company (is --admin-token right?)")?;
    let company_id = company["id"].as_i64().context("company id")?;
    let email = format!("op-{run}@example.com");
    post(
        client,
        base,
        admin_token,
        &format!("/v1/admin/companies/{company_id}/operators"),
        json!({
            "name": "Load operator", "email": email, "password": "load-test-password"
        }),
    )
    .await?;
    let login = post(
        client,
        base,
        "",
        "/v1/operators/login",
        json!({"email": email, "password": "load-test-password"}),
    )
    .await?;
    Ok((
        company_id,
        login["token"]
            .as_str()
            .context("operator token")?
            .to_owned(),
    ))
}

/// A customer with a conversation with `company_id`; returns (token, conversation id).
pub async fn customer_in_chat(
    client: &reqwest::Client,
    base: &str,
    company_id: i64,
    name: &str,
) -> anyhow::Result<(String, i64)> {
    let customer = post(
        client,
        base,
        "",
        "/v1/customers",
        json!({"name": name, "city": "Moscow", "timezone": "Europe/Moscow"}),
    )
    .await?;
    let token = customer["token"].as_str().context("token")?.to_owned();
    let opened = post(
        client,
        base,
        &token,
        "/v1/conversations",
        json!({"company_id": company_id, "text": "hello"}),
    )
    .await?;
    Ok((
        token,
        opened["conversation"]["id"]
            .as_i64()
            .context("conversation id")?,
    ))
}
