//! The notification worker's data: jobs (outbox and DB-backed queue in one table), the log of
//! every step taken, recipients' settings, and what the worker needs to decide.

use sqlx::FromRow;

use super::{inbox, now_millis, MessageRow, Store, StoreError, StoreResult, StoredEvent};
use crate::domain::InboxKey;

/// How long a claimed job is held before another worker may take it (a crashed worker's jobs
/// come back after this).
pub const JOB_LEASE_MS: i64 = 60_000;

#[derive(Clone, Debug, FromRow)]
pub struct JobRow {
    pub id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    /// `customer` or `company`.
    pub recipient_kind: String,
    pub recipient_id: i64,
    /// `first` or `escalation`.
    pub stage: String,
    pub run_at: i64,
    pub attempts: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct LogRow {
    pub message_id: i64,
    pub recipient_kind: String,
    pub recipient_id: i64,
    pub stage: String,
    pub channel: String,
    pub status: String,
    pub detail: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct PushSubscriptionRow {
    /// `customer` or `operator`.
    pub principal_kind: String,
    pub principal_id: i64,
    pub endpoint: String,
    /// The browser's public key (base64url, uncompressed P-256 point).
    pub p256dh: String,
    /// The browser's 16-byte auth secret (base64url).
    pub auth: String,
}

#[derive(Clone, Copy, Debug, FromRow)]
pub struct SettingsRow {
    pub email: i64,
    pub push: i64,
    pub quiet_start: Option<i64>,
    pub quiet_end: Option<i64>,
}

const JOB_COLUMNS: &str =
    "id, conversation_id, message_id, recipient_kind, recipient_id, stage, run_at, attempts";

impl Store {
    /// Take the oldest due job and hold it for `JOB_LEASE_MS`. Several workers may claim at once:
    /// PostgreSQL skips rows another worker holds; SQLite has a single writer anyway.
    pub async fn claim_job(&self, now: i64) -> StoreResult<Option<JobRow>> {
        let skip_locked = match self.backend {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let mut w = self.begin_write().await?;
        let job = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE notification_jobs SET locked_until = $2, attempts = attempts + 1
             WHERE id = (SELECT id FROM notification_jobs
                         WHERE run_at <= $1 AND locked_until < $1
                         ORDER BY run_at, id LIMIT 1 {skip_locked})
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(now + JOB_LEASE_MS)
        .fetch_optional(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(job)
    }

    /// Take any job of the outbox (due or not) for relaying to RabbitMQ, held for `lease_ms`;
    /// the relay deletes it once the broker confirmed it.
    pub async fn claim_outbox(&self, now: i64, lease_ms: i64) -> StoreResult<Option<JobRow>> {
        let skip_locked = match self.backend {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let mut w = self.begin_write().await?;
        let job = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE notification_jobs SET locked_until = $2, attempts = attempts + 1
             WHERE id = (SELECT id FROM notification_jobs WHERE locked_until < $1
                         ORDER BY id LIMIT 1 {skip_locked})
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(now + lease_ms)
        .fetch_optional(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(job)
    }

    pub async fn delete_job(&self, id: i64) -> StoreResult<()> {
        self.write_one(sqlx::query("DELETE FROM notification_jobs WHERE id = $1").bind(id))
            .await?;
        Ok(())
    }

    /// The job is done; `follow_up` schedules the same message and recipient again at a later
    /// stage (quiet hours, escalation), in the same transaction.
    pub async fn finish_job(
        &self,
        job: &JobRow,
        follow_up: Option<(i64, &str)>,
    ) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        sqlx::query("DELETE FROM notification_jobs WHERE id = $1")
            .bind(job.id)
            .execute(&mut *w.tx)
            .await?;
        if let Some((run_at, stage)) = follow_up {
            sqlx::query(
                "INSERT INTO notification_jobs (conversation_id, message_id, recipient_kind, recipient_id, stage, run_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(job.conversation_id)
            .bind(job.message_id)
            .bind(&job.recipient_kind)
            .bind(job.recipient_id)
            .bind(stage)
            .bind(run_at)
            .bind(now_millis())
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Record one step of a job. `false` when this exact step (message, recipient, stage,
    /// channel) was recorded before: a re-run job must not send it again. A step recorded as
    /// failed may be taken again (a retry).
    pub async fn record_step(
        &self,
        job: &JobRow,
        channel: &str,
        status: &str,
        detail: &str,
    ) -> StoreResult<bool> {
        let inserted = self.write_one(sqlx::query(
            "INSERT INTO notification_log
                 (conversation_id, message_id, recipient_kind, recipient_id, stage, channel, status, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (message_id, recipient_kind, recipient_id, stage, channel)
             DO UPDATE SET status = $7, detail = $8, created_at = $9
             WHERE notification_log.status = 'failed'",
        )
        .bind(job.conversation_id)
        .bind(job.message_id)
        .bind(&job.recipient_kind)
        .bind(job.recipient_id)
        .bind(&job.stage)
        .bind(channel)
        .bind(status)
        .bind(detail)
        .bind(now_millis())).await?;
        Ok(inserted == 1)
    }

    /// Put a claimed job back to run again at `run_at` (after an error).
    pub async fn retry_job(&self, job: &JobRow, run_at: i64) -> StoreResult<()> {
        self.write_one(
            sqlx::query("UPDATE notification_jobs SET run_at = $2, locked_until = 0 WHERE id = $1")
                .bind(job.id)
                .bind(run_at),
        )
        .await?;
        Ok(())
    }

    /// Bind a browser or device to a principal for Web Push (re-binding an endpoint moves it).
    pub async fn add_push_subscription(&self, sub: &PushSubscriptionRow) -> StoreResult<()> {
        self.write_one(sqlx::query(
            "INSERT INTO push_subscriptions (principal_kind, principal_id, endpoint, p256dh, auth, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (endpoint) DO UPDATE SET principal_kind = $1, principal_id = $2, p256dh = $4, auth = $5",
        )
        .bind(&sub.principal_kind)
        .bind(sub.principal_id)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(now_millis())).await?;
        Ok(())
    }

    /// Unbind an endpoint; `principal` limits it to the caller's own (`None`: any, as when the
    /// push service says the subscription is gone).
    pub async fn remove_push_subscription(
        &self,
        endpoint: &str,
        principal: Option<(&str, i64)>,
    ) -> StoreResult<bool> {
        let mut w = self.begin_write().await?;
        let removed = match principal {
            Some((kind, id)) => sqlx::query(
                "DELETE FROM push_subscriptions WHERE endpoint = $1 AND principal_kind = $2 AND principal_id = $3",
            )
            .bind(endpoint)
            .bind(kind)
            .bind(id),
            None => sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1").bind(endpoint),
        }
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(removed > 0)
    }

    /// The push subscriptions of one principal.
    pub async fn push_subscriptions(
        &self,
        principal_kind: &str,
        principal_id: i64,
    ) -> StoreResult<Vec<PushSubscriptionRow>> {
        Ok(sqlx::query_as::<_, PushSubscriptionRow>(
            "SELECT principal_kind, principal_id, endpoint, p256dh, auth FROM push_subscriptions
             WHERE principal_kind = $1 AND principal_id = $2 ORDER BY id",
        )
        .bind(principal_kind)
        .bind(principal_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Mark a recorded step as failed (delivery did not go through).
    pub async fn mark_step_failed(
        &self,
        job: &JobRow,
        channel: &str,
        detail: &str,
    ) -> StoreResult<()> {
        self.write_one(sqlx::query(
            "UPDATE notification_log SET status = 'failed', detail = $6
             WHERE message_id = $1 AND recipient_kind = $2 AND recipient_id = $3 AND stage = $4 AND channel = $5",
        )
        .bind(job.message_id)
        .bind(&job.recipient_kind)
        .bind(job.recipient_id)
        .bind(&job.stage)
        .bind(channel)
        .bind(detail)).await?;
        Ok(())
    }

    /// When this conversation last reached the recipient on `channel`.
    pub async fn last_sent(
        &self,
        conversation_id: i64,
        recipient_kind: &str,
        recipient_id: i64,
        channel: &str,
    ) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(created_at) FROM notification_log
             WHERE conversation_id = $1 AND recipient_kind = $2 AND recipient_id = $3 AND channel = $4 AND status = 'sent'",
        )
        .bind(conversation_id)
        .bind(recipient_kind)
        .bind(recipient_id)
        .bind(channel)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Everything the worker did for a conversation, oldest first.
    pub async fn notification_log(&self, conversation_id: i64) -> StoreResult<Vec<LogRow>> {
        Ok(sqlx::query_as::<_, LogRow>(
            "SELECT message_id, recipient_kind, recipient_id, stage, channel, status, detail, created_at
             FROM notification_log WHERE conversation_id = $1 ORDER BY id",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn notification_settings(
        &self,
        recipient_kind: &str,
        recipient_id: i64,
    ) -> StoreResult<Option<SettingsRow>> {
        Ok(sqlx::query_as::<_, SettingsRow>(
            "SELECT email, push, quiet_start, quiet_end FROM notification_settings
             WHERE recipient_kind = $1 AND recipient_id = $2",
        )
        .bind(recipient_kind)
        .bind(recipient_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Replace a recipient's settings.
    pub async fn save_notification_settings(
        &self,
        recipient_kind: &str,
        recipient_id: i64,
        settings: &SettingsRow,
    ) -> StoreResult<()> {
        self.write_one(sqlx::query(
            "INSERT INTO notification_settings (recipient_kind, recipient_id, email, push, quiet_start, quiet_end)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (recipient_kind, recipient_id)
             DO UPDATE SET email = $3, push = $4, quiet_start = $5, quiet_end = $6",
        )
        .bind(recipient_kind)
        .bind(recipient_id)
        .bind(settings.email)
        .bind(settings.push)
        .bind(settings.quiet_start)
        .bind(settings.quiet_end)).await?;
        Ok(())
    }

    /// Switch e-mail notifications off for a recipient (the unsubscribe link).
    pub async fn unsubscribe_email(
        &self,
        recipient_kind: &str,
        recipient_id: i64,
    ) -> StoreResult<()> {
        self.write_one(sqlx::query(
            "INSERT INTO notification_settings (recipient_kind, recipient_id, email) VALUES ($1, $2, 0)
             ON CONFLICT (recipient_kind, recipient_id) DO UPDATE SET email = 0",
        )
        .bind(recipient_kind)
        .bind(recipient_id)).await?;
        Ok(())
    }

    pub async fn message(&self, id: i64) -> StoreResult<MessageRow> {
        sqlx::query_as::<_, MessageRow>(
            "SELECT id, conversation_id, sender_kind, sender_id, sender_name, text, client_msg_id, created_at
             FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Up to `limit` messages `side` sent after message `after_id`, oldest first (a digest).
    pub async fn messages_from_after(
        &self,
        conversation_id: i64,
        side: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        Ok(sqlx::query_as::<_, MessageRow>(
            "SELECT id, conversation_id, sender_kind, sender_id, sender_name, text, client_msg_id, created_at
             FROM messages WHERE conversation_id = $1 AND sender_kind = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(conversation_id)
        .bind(side)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Append a `notification` event to these inboxes (a browser popup).
    pub async fn append_notification(
        &self,
        inboxes: &[InboxKey],
        data: &serde_json::Value,
    ) -> StoreResult<Vec<(InboxKey, StoredEvent)>> {
        let mut w = self.begin_write().await?;
        let events = inbox::append(
            &mut w,
            inbox::Targets::Inboxes(inboxes),
            "notification",
            data,
            now_millis(),
        )
        .await?;
        w.commit().await?;
        Ok(events)
    }
}
