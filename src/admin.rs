//! Setting up companies without crafting HTTP requests: the `switchboard admin …` commands and
//! the demo company seeded on first start.

use std::path::Path;

use anyhow::Context as _;

use crate::{
    auth,
    config::AdminCommand,
    domain::validate,
    store::{NewBranch, NewCompany, NewOperator, Store, StoreError},
};

/// E-mail of the demo operator.
pub const DEMO_OPERATOR_EMAIL: &str = "operator@demo.switchboard.local";

/// The demo operator's login, for printing.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
}

/// Run one admin command against `store`, printing what was created.
pub async fn run(store: &Store, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateCompany {
            name,
            email,
            city,
            timezone,
            no_messages,
        } => {
            let new = NewCompany {
                name: validate::required_text("name", &name, validate::MAX_NAME_CHARS)?,
                email: validate::email("email", &email)?,
                city: validate::optional_text("city", city.as_deref(), validate::MAX_CITY_CHARS)?,
                timezone: validate::timezone("timezone", &timezone)?,
                accepts_messages: !no_messages,
            };
            let company = store.create_company(&new).await?;
            println!("created company {} ({})", company.id, company.name);
        }
        AdminCommand::CreateBranch {
            company_id,
            name,
            city,
            timezone,
        } => {
            let new = NewBranch {
                name: validate::required_text("name", &name, validate::MAX_NAME_CHARS)?,
                city: validate::required_text("city", &city, validate::MAX_CITY_CHARS)?,
                timezone: validate::timezone("timezone", &timezone)?,
            };
            let branch = store
                .create_branch(company_id, &new)
                .await
                .map_err(not_found_as(company_id))?;
            println!(
                "created branch {} ({}, {})",
                branch.id, branch.name, branch.city
            );
        }
        AdminCommand::CreateOperator {
            company_id,
            name,
            email,
            password,
            branch_ids,
        } => {
            validate::password(&password)?;
            let new = NewOperator {
                name: validate::required_text("name", &name, validate::MAX_NAME_CHARS)?,
                email: validate::email("email", &email)?,
                password_hash: auth::hash_password(&password)?,
                branch_ids,
            };
            let operator = store
                .create_operator(company_id, &new)
                .await
                .map_err(not_found_as(company_id))?;
            println!(
                "created operator {} ({}); they log in at /console",
                operator.id, operator.email
            );
        }
        AdminCommand::ListCompanies => {
            for company in store.search_companies("", 1000).await? {
                let state = if company.accepts_messages != 0 {
                    "accepts messages"
                } else {
                    "messaging off"
                };
                println!(
                    "{:>6}  {}  <{}>  {}  ({state})",
                    company.id, company.name, company.email, company.timezone
                );
            }
        }
    }
    Ok(())
}

fn not_found_as(company_id: i64) -> impl Fn(StoreError) -> anyhow::Error {
    move |e| match e {
        StoreError::NotFound => anyhow::anyhow!("there is no company {company_id}"),
        other => other.into(),
    }
}

/// Create the demo company, a branch and an operator unless the demo operator exists. The
/// password is generated once and kept in the data directory, so every start can print it.
pub async fn ensure_demo(store: &Store, data_dir: &Path) -> anyhow::Result<DemoLogin> {
    let password_file = data_dir.join("demo-operator-password");
    if let Some(existing) = store.operator_credentials(DEMO_OPERATOR_EMAIL).await? {
        let password = std::fs::read_to_string(&password_file).unwrap_or_default();
        let password = password.trim();
        if !password.is_empty() && auth::verify_password(password, &existing.password_hash) {
            return Ok(DemoLogin {
                email: DEMO_OPERATOR_EMAIL.into(),
                password: password.into(),
            });
        }
        anyhow::bail!(
            "the demo operator exists but its password is not in {}",
            password_file.display()
        );
    }
    let company = store
        .create_company(&NewCompany {
            name: "Demo Coffee Roasters".into(),
            email: "owner@demo.switchboard.local".into(),
            city: Some("Novosibirsk".into()),
            timezone: "Asia/Novosibirsk".into(),
            accepts_messages: true,
        })
        .await?;
    store
        .create_branch(
            company.id,
            &NewBranch {
                name: "Moscow shop".into(),
                city: "Moscow".into(),
                timezone: "Europe/Moscow".into(),
            },
        )
        .await?;
    let password = auth::random_secret(9);
    store
        .create_operator(
            company.id,
            &NewOperator {
                name: "Demo Operator".into(),
                email: DEMO_OPERATOR_EMAIL.into(),
                password_hash: auth::hash_password(&password)?,
                branch_ids: Vec::new(),
            },
        )
        .await?;
    std::fs::write(&password_file, &password)
        .with_context(|| format!("cannot write {}", password_file.display()))?;
    Ok(DemoLogin {
        email: DEMO_OPERATOR_EMAIL.into(),
        password,
    })
}
