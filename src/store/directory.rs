//! Companies, their branches and operators, and customers: the people on both ends of a chat.

use sqlx::FromRow;

use super::{is_unique_violation, now_millis, Store, StoreError, StoreResult};
use crate::domain::{InboxKey, OperatorScope};

#[derive(Clone, Debug, FromRow)]
pub struct CompanyRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub city: Option<String>,
    pub timezone: String,
    /// 0/1: whether the company takes new conversations.
    pub accepts_messages: i64,
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct BranchRow {
    pub id: i64,
    pub company_id: i64,
    pub name: String,
    pub city: String,
    pub timezone: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct OperatorRow {
    pub id: i64,
    pub company_id: i64,
    pub name: String,
    pub email: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct OperatorCredentials {
    pub id: i64,
    pub password_hash: String,
}

#[derive(Clone, Debug, FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub name: String,
    pub city: Option<String>,
    pub timezone: Option<String>,
    pub email: Option<String>,
    pub created_at: i64,
}

/// A validated new company.
#[derive(Clone, Debug)]
pub struct NewCompany {
    pub name: String,
    pub email: String,
    pub city: Option<String>,
    pub timezone: String,
    pub accepts_messages: bool,
}

/// Fields of a company to change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct CompanyPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub city: Option<String>,
    pub timezone: Option<String>,
    pub accepts_messages: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct NewBranch {
    pub name: String,
    pub city: String,
    pub timezone: String,
}

#[derive(Clone, Debug)]
pub struct NewOperator {
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub branch_ids: Vec<i64>,
}

#[derive(Clone, Debug)]
pub struct NewCustomer {
    pub name: String,
    pub city: Option<String>,
    pub timezone: Option<String>,
    pub email: Option<String>,
}

const COMPANY_COLUMNS: &str = "id, name, email, city, timezone, accepts_messages, created_at";

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn create_company(&self, new: &NewCompany) -> StoreResult<CompanyRow> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query_as::<_, CompanyRow>(&format!(
            "INSERT INTO companies (name, email, city, timezone, accepts_messages, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COMPANY_COLUMNS}"
        ))
        .bind(&new.name)
        .bind(&new.email)
        .bind(&new.city)
        .bind(&new.timezone)
        .bind(i64::from(new.accepts_messages))
        .bind(now_millis())
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(company_id = id))]
    pub async fn update_company(&self, id: i64, patch: &CompanyPatch) -> StoreResult<CompanyRow> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query_as::<_, CompanyRow>(&format!(
            "UPDATE companies SET
                name = COALESCE($2, name),
                email = COALESCE($3, email),
                city = COALESCE($4, city),
                timezone = COALESCE($5, timezone),
                accepts_messages = COALESCE($6, accepts_messages)
             WHERE id = $1 RETURNING {COMPANY_COLUMNS}"
        ))
        .bind(id)
        .bind(&patch.name)
        .bind(&patch.email)
        .bind(&patch.city)
        .bind(&patch.timezone)
        .bind(patch.accepts_messages.map(i64::from))
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        w.commit().await?;
        Ok(row)
    }

    pub async fn company(&self, id: i64) -> StoreResult<CompanyRow> {
        sqlx::query_as::<_, CompanyRow>(&format!(
            "SELECT {COMPANY_COLUMNS} FROM companies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Companies whose name contains `query` (case-insensitive), by name.
    #[tracing::instrument(skip_all)]
    pub async fn search_companies(&self, query: &str, limit: i64) -> StoreResult<Vec<CompanyRow>> {
        let escaped = query
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let rows = sqlx::query_as::<_, CompanyRow>(&format!(
            "SELECT {COMPANY_COLUMNS} FROM companies
             WHERE lower(name) LIKE $1 ESCAPE '\\'
             ORDER BY lower(name), id LIMIT $2"
        ))
        .bind(format!("%{escaped}%"))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn count_companies(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM companies")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn branches_of(&self, company_id: i64) -> StoreResult<Vec<BranchRow>> {
        Ok(sqlx::query_as::<_, BranchRow>(
            "SELECT id, company_id, name, city, timezone, created_at FROM branches
             WHERE company_id = $1 ORDER BY id",
        )
        .bind(company_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn branch(&self, id: i64) -> StoreResult<BranchRow> {
        sqlx::query_as::<_, BranchRow>(
            "SELECT id, company_id, name, city, timezone, created_at FROM branches WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(skip_all, fields(company_id))]
    pub async fn create_branch(&self, company_id: i64, new: &NewBranch) -> StoreResult<BranchRow> {
        self.company(company_id).await?;
        let mut w = self.begin_write().await?;
        let row = sqlx::query_as::<_, BranchRow>(
            "INSERT INTO branches (company_id, name, city, timezone, created_at)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, company_id, name, city, timezone, created_at",
        )
        .bind(company_id)
        .bind(&new.name)
        .bind(&new.city)
        .bind(&new.timezone)
        .bind(now_millis())
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(row)
    }

    /// Create an operator with their inbox and branch assignments, all or nothing.
    #[tracing::instrument(skip_all, fields(company_id))]
    pub async fn create_operator(
        &self,
        company_id: i64,
        new: &NewOperator,
    ) -> StoreResult<OperatorRow> {
        self.company(company_id).await?;
        for branch_id in &new.branch_ids {
            match self.branch(*branch_id).await {
                Ok(branch) if branch.company_id == company_id => {}
                Ok(_) | Err(StoreError::NotFound) => {
                    return Err(StoreError::Invalid {
                        code: "unknown_branch",
                        message: format!(
                        "branch_ids: branch {branch_id} is not a branch of company {company_id}"
                    ),
                    })
                }
                Err(other) => return Err(other),
            }
        }
        let mut w = self.begin_write().await?;
        let inserted = sqlx::query_as::<_, OperatorRow>(
            "INSERT INTO operators (company_id, name, email, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, company_id, name, email, created_at",
        )
        .bind(company_id)
        .bind(&new.name)
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(now_millis())
        .fetch_one(&mut *w.tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) if is_unique_violation(&e, "operators_email_key", "operators.email") => {
                return Err(StoreError::Conflict {
                    code: "email_taken",
                    message: "email: an operator with this e-mail already exists".into(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        for branch_id in &new.branch_ids {
            sqlx::query(
                "INSERT INTO operator_branches (operator_id, branch_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(row.id)
            .bind(branch_id)
            .execute(&mut *w.tx)
            .await?;
        }
        create_inbox(&mut w.tx, &InboxKey::operator(row.id)).await?;
        w.commit().await?;
        Ok(row)
    }

    pub async fn operator(&self, id: i64) -> StoreResult<OperatorRow> {
        sqlx::query_as::<_, OperatorRow>(
            "SELECT id, company_id, name, email, created_at FROM operators WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    pub async fn operators_of(&self, company_id: i64) -> StoreResult<Vec<OperatorRow>> {
        Ok(sqlx::query_as::<_, OperatorRow>(
            "SELECT id, company_id, name, email, created_at FROM operators
             WHERE company_id = $1 ORDER BY id",
        )
        .bind(company_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn operator_credentials(
        &self,
        email: &str,
    ) -> StoreResult<Option<OperatorCredentials>> {
        Ok(sqlx::query_as::<_, OperatorCredentials>(
            "SELECT id, password_hash FROM operators WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The company and branches an operator works for, in one query.
    pub async fn operator_scope(&self, operator_id: i64) -> StoreResult<OperatorScope> {
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT o.company_id, ob.branch_id FROM operators o
             LEFT JOIN operator_branches ob ON ob.operator_id = o.id
             WHERE o.id = $1 ORDER BY ob.branch_id",
        )
        .bind(operator_id)
        .fetch_all(&self.pool)
        .await?;
        let company_id = rows.first().ok_or(StoreError::NotFound)?.0;
        let branch_ids = rows.into_iter().filter_map(|(_, branch)| branch).collect();
        Ok(OperatorScope {
            company_id,
            branch_ids,
        })
    }

    /// Create a customer together with their inbox.
    #[tracing::instrument(skip_all)]
    pub async fn create_customer(&self, new: &NewCustomer) -> StoreResult<CustomerRow> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query_as::<_, CustomerRow>(
            "INSERT INTO customers (name, city, timezone, email, created_at)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, name, city, timezone, email, created_at",
        )
        .bind(&new.name)
        .bind(&new.city)
        .bind(&new.timezone)
        .bind(&new.email)
        .bind(now_millis())
        .fetch_one(&mut *w.tx)
        .await?;
        create_inbox(&mut w.tx, &InboxKey::customer(row.id)).await?;
        w.commit().await?;
        Ok(row)
    }

    pub async fn customer(&self, id: i64) -> StoreResult<CustomerRow> {
        sqlx::query_as::<_, CustomerRow>(
            "SELECT id, name, city, timezone, email, created_at FROM customers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }
}

async fn create_inbox(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &InboxKey,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO inboxes (inbox_key) VALUES ($1) ON CONFLICT (inbox_key) DO NOTHING")
        .bind(key.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
