//! The notification worker: takes due jobs from the queue, observes the recipient (presence,
//! read and reply state, settings, what was sent already), asks the policy, acts, and schedules
//! the next look when the policy wants one.
//!
//! Each step is recorded in the notification log under a unique key before it is carried out,
//! so a job that runs again (after a crash, or a second worker) never sends a step twice.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use serde_json::json;
use tokio::sync::Notify;

use super::{
    email::{self, Mailer},
    policy::{self, Channel, Decision, RecipientKind, Settings, Situation, Stage},
    push::{PushResult, PushSender},
};
use crate::{
    auth::TokenSigner,
    domain::{local_time_now, InboxKey},
    events::hub::Hub,
    presence::Presence,
    shutdown::Shutdown,
    store::{ConversationRow, JobRow, PushSubscriptionRow, Store},
};

/// Runs of a job that may end in a temporary push failure before push counts as failed and
/// the cascade falls back to e-mail.
const PUSH_ATTEMPTS: i64 = 3;

/// Sleep when the queue is empty (a commit also wakes the worker at once).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Sleep after an error, so a broken database is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Messages in one digest at most.
const DIGEST_LIMIT: i64 = 10;

/// What one `run_once` did.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecutionOutcome {
    TaskCompleted,
    EmptyQueue,
}

#[derive(Clone)]
pub struct Worker {
    pub store: Store,
    pub hub: Hub,
    pub presence: Presence,
    pub mailer: Mailer,
    pub push: PushSender,
    pub links: TokenSigner,
    pub public_url: String,
    pub window: Duration,
    pub escalation_after: Duration,
    /// Poked after a message commits, so the first step does not wait for the next poll.
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Work until shutdown.
    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            let pause = match self.run_once().await {
                Ok(ExecutionOutcome::TaskCompleted) => continue,
                Ok(ExecutionOutcome::EmptyQueue) => IDLE_POLL,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "notification job failed; it will be retried"
                    );
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.recv() => return,
            }
        }
    }

    /// Take one due job and carry it out.
    pub async fn run_once(&self) -> anyhow::Result<ExecutionOutcome> {
        let Some(job) = self.store.claim_job(crate::store::now_millis()).await? else {
            return Ok(ExecutionOutcome::EmptyQueue);
        };
        let follow_up = match self.handle(&job).await {
            Ok(follow_up) => follow_up,
            Err(error) => {
                // Back off (1 s, 2 s, 4 s, … at most a minute) and let the job run again.
                let backoff = 1000 * (1i64 << (job.attempts - 1).clamp(0, 6));
                self.store
                    .retry_job(&job, crate::store::now_millis() + backoff)
                    .await?;
                return Err(error);
            }
        };
        self.store.finish_job(&job, follow_up).await?;
        Ok(ExecutionOutcome::TaskCompleted)
    }

    /// Carry out one job; the follow-up (run at, stage) to schedule, if the policy wants one.
    pub async fn handle(&self, job: &JobRow) -> anyhow::Result<Option<(i64, &'static str)>> {
        let decision = self.process(job).await?;
        Ok(decision.recheck_at.map(|(at, stage)| {
            (
                at.timestamp_millis(),
                match stage {
                    Stage::First => "first",
                    Stage::Escalation => "escalation",
                },
            )
        }))
    }

    async fn process(&self, job: &JobRow) -> anyhow::Result<Decision> {
        let conversation = self.store.conversation(job.conversation_id).await?;
        let recipient = match job.recipient_kind.as_str() {
            "company" => RecipientKind::Company,
            _ => RecipientKind::Customer,
        };
        let stage = if job.stage == "escalation" {
            Stage::Escalation
        } else {
            Stage::First
        };
        let mut observed = self.observe(job, &conversation, recipient, stage).await?;
        let mut decision = policy::decide(&observed.situation);
        if decision.send == Some(Channel::Push) {
            if self.push_step(job, &conversation, &observed).await? {
                return Ok(decision);
            }
            // No device took it (all gone, or failing for too long): fall back to e-mail.
            observed.situation.push_failed = true;
            decision = policy::decide(&observed.situation);
        }
        match (decision.send, decision.suppressed) {
            (Some(channel), _) => self.deliver(job, &conversation, &observed, channel).await?,
            (None, Some(reason)) => {
                let reason = format!("{reason:?}");
                metrics::counter!("notifications_suppressed_total", "reason" => reason.clone())
                    .increment(1);
                self.store
                    .record_step(job, "none", "suppressed", &reason)
                    .await?;
            }
            (None, None) => {
                // Quiet hours: say so in the trail, so nobody wonders where the message went.
                if let Some((at, _)) = decision.recheck_at {
                    self.store
                        .record_step(
                            job,
                            "deferred",
                            "deferred",
                            &format!("until {}", at.to_rfc3339()),
                        )
                        .await?;
                }
            }
        }
        Ok(decision)
    }

    async fn observe(
        &self,
        job: &JobRow,
        c: &ConversationRow,
        recipient: RecipientKind,
        stage: Stage,
    ) -> anyhow::Result<Observed> {
        let now = Utc::now();
        let kind = job.recipient_kind.as_str();
        let stored = self
            .store
            .notification_settings(kind, job.recipient_id)
            .await?;
        let mut settings = Settings::default();
        if let Some(row) = stored {
            settings.email = row.email != 0;
            settings.push = row.push != 0;
            settings.quiet_hours = row
                .quiet_start
                .zip(row.quiet_end)
                .map(|(s, e)| (s as u32, e as u32));
        }
        let last =
            |channel: &'static str| self.store.last_sent(c.id, kind, job.recipient_id, channel);
        let millis = |at: Option<i64>| at.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let (last_push_at, last_email_at) =
            (millis(last("push").await?), millis(last("email").await?));
        let mut devices: Vec<PushSubscriptionRow> = Vec::new();
        let (email_to, timezone, online_inboxes, read, answered) = match recipient {
            RecipientKind::Customer => {
                let customer = self.store.customer(c.customer_id).await?;
                let inbox = InboxKey::customer(c.customer_id);
                let online = if self.presence.is_online(&inbox).await {
                    vec![inbox]
                } else {
                    vec![]
                };
                devices = self
                    .store
                    .push_subscriptions("customer", c.customer_id)
                    .await?;
                (
                    customer.email,
                    customer.timezone,
                    online,
                    c.customer_read_id >= job.message_id,
                    false,
                )
            }
            RecipientKind::Company => {
                let company = self.store.company(c.company_id).await?;
                let mut online = Vec::new();
                for inbox in self.store.participant_inboxes(c.parties()).await? {
                    let Some(operator_id) = inbox
                        .as_str()
                        .strip_prefix("operator:")
                        .and_then(|id| id.parse().ok())
                    else {
                        continue;
                    };
                    if self.presence.is_online(&inbox).await {
                        online.push(inbox);
                    }
                    devices.extend(
                        self.store
                            .push_subscriptions("operator", operator_id)
                            .await?,
                    );
                }
                let answered = !self
                    .store
                    .messages_from_after(c.id, "company", job.message_id, 1)
                    .await?
                    .is_empty();
                let timezone = c.branch_timezone.clone().unwrap_or(company.timezone);
                (
                    Some(company.email),
                    Some(timezone),
                    online,
                    c.company_read_id >= job.message_id,
                    answered,
                )
            }
        };
        let situation = Situation {
            recipient,
            stage,
            now,
            timezone: timezone.as_deref().and_then(|tz| tz.parse().ok()),
            settings,
            online: !online_inboxes.is_empty(),
            read,
            answered,
            push_subscriptions: devices.len(),
            push_failed: false,
            has_email: email_to.is_some(),
            last_push_at,
            last_email_at,
            window: chrono::Duration::from_std(self.window)
                .unwrap_or(chrono::Duration::minutes(15)),
            escalation_after: chrono::Duration::from_std(self.escalation_after)
                .unwrap_or(chrono::Duration::minutes(15)),
        };
        Ok(Observed {
            situation,
            email_to,
            online_inboxes,
            devices,
        })
    }

    async fn deliver(
        &self,
        job: &JobRow,
        c: &ConversationRow,
        observed: &Observed,
        channel: Channel,
    ) -> anyhow::Result<()> {
        let detail = match channel {
            Channel::Browser => format!("{} inbox(es)", observed.online_inboxes.len()),
            _ => observed.email_to.clone().unwrap_or_default(),
        };
        if !self
            .store
            .record_step(job, channel.as_str(), "sent", &detail)
            .await?
        {
            // This step was taken before (the job ran again after a crash): never twice.
            return Ok(());
        }
        let result = match channel {
            Channel::Browser => self.browser(job, c, &observed.online_inboxes).await,
            Channel::Email => self.email(job, c, observed).await,
            // Push goes through `push_step`, which decides the fallback itself.
            Channel::Push => Err(anyhow::anyhow!("push is delivered by push_step")),
        };
        match result {
            Ok(()) => {
                metrics::counter!("notifications_sent_total", "channel" => channel.as_str())
                    .increment(1);
                Ok(())
            }
            Err(error) => {
                metrics::counter!("notifications_failed_total", "channel" => channel.as_str())
                    .increment(1);
                self.store
                    .mark_step_failed(job, channel.as_str(), &format!("{error:#}"))
                    .await?;
                Err(error)
            }
        }
    }

    /// Push to every device of the recipient. `true` when at least one device took it (or this
    /// step was taken before); `false` when push is impossible for this message, so the caller
    /// falls back to e-mail; an error when a push service failed and the job should run again.
    async fn push_step(
        &self,
        job: &JobRow,
        c: &ConversationRow,
        observed: &Observed,
    ) -> anyhow::Result<bool> {
        let detail = format!("{} device(s)", observed.devices.len());
        if !self.store.record_step(job, "push", "sent", &detail).await? {
            return Ok(true);
        }
        let message = self.store.message(job.message_id).await?;
        let path = match observed.situation.recipient {
            RecipientKind::Customer => format!("/?conversation={}", c.id),
            RecipientKind::Company => format!("/console?conversation={}", c.id),
        };
        let payload = json!({
            "type": "notification",
            "conversation_id": c.id,
            "message_id": message.id,
            "title": format!("New message from {}", message.sender_name),
            "body": message.text.chars().take(140).collect::<String>(),
            "url": format!("{}{path}", self.public_url),
        })
        .to_string();
        let (mut delivered, mut failures) = (0, Vec::new());
        for device in &observed.devices {
            match self.push.send(device, payload.as_bytes()).await {
                PushResult::Delivered => delivered += 1,
                PushResult::Gone => {
                    self.store
                        .remove_push_subscription(&device.endpoint, None)
                        .await?;
                    metrics::counter!("push_subscriptions_removed_total").increment(1);
                }
                PushResult::Failed(reason) => failures.push(reason),
            }
        }
        if delivered > 0 {
            metrics::counter!("notifications_sent_total", "channel" => "push").increment(1);
            return Ok(true);
        }
        metrics::counter!("notifications_failed_total", "channel" => "push").increment(1);
        if failures.is_empty() {
            self.store
                .mark_step_failed(job, "push", "every device is gone")
                .await?;
            return Ok(false);
        }
        let reason = failures.join("; ");
        self.store.mark_step_failed(job, "push", &reason).await?;
        if job.attempts < PUSH_ATTEMPTS {
            anyhow::bail!("push failed, will retry: {reason}");
        }
        Ok(false)
    }

    /// A `notification` event to each online inbox: the page shows a popup.
    async fn browser(
        &self,
        job: &JobRow,
        c: &ConversationRow,
        inboxes: &[InboxKey],
    ) -> anyhow::Result<()> {
        let message = self.store.message(job.message_id).await?;
        let excerpt: String = message.text.chars().take(140).collect();
        let data = json!({
            "conversation_id": c.id,
            "message_id": message.id,
            "title": format!("New message from {}", message.sender_name),
            "body": excerpt,
        });
        let events = self.store.append_notification(inboxes, &data).await?;
        self.hub.publish_events(events).await;
        Ok(())
    }

    /// One digest e-mail of everything the recipient has not read yet.
    async fn email(
        &self,
        job: &JobRow,
        c: &ConversationRow,
        observed: &Observed,
    ) -> anyhow::Result<()> {
        let to = observed
            .email_to
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no address"))?;
        let now = Utc::now();
        let (from_side, read_up_to, from_name, place, url) = match observed.situation.recipient {
            RecipientKind::Customer => (
                "company",
                c.customer_read_id,
                c.company_name.clone(),
                local_time_now(
                    c.branch_city.as_deref().or(c.company_city.as_deref()),
                    Some(c.branch_timezone.as_deref().unwrap_or(&c.company_timezone)),
                    now,
                ),
                format!("{}/?conversation={}", self.public_url, c.id),
            ),
            RecipientKind::Company => (
                "customer",
                c.company_read_id,
                c.customer_name.clone(),
                local_time_now(
                    c.customer_city.as_deref(),
                    c.customer_timezone.as_deref(),
                    now,
                ),
                format!("{}/console?conversation={}", self.public_url, c.id),
            ),
        };
        let messages = self
            .store
            .messages_from_after(c.id, from_side, read_up_to, DIGEST_LIMIT)
            .await?;
        let payload = format!("{}.{}", job.recipient_kind, job.recipient_id);
        let unsubscribe = format!(
            "{}/v1/notifications/unsubscribe?recipient={payload}&sig={}",
            self.public_url,
            self.links.sign(&format!("unsubscribe:{payload}"))
        );
        let email = email::digest(&email::Digest {
            to,
            from_name: &from_name,
            from_place: &place,
            messages: &messages,
            conversation_url: &url,
            unsubscribe_url: &unsubscribe,
        });
        self.mailer.send(&email).await
    }
}

struct Observed {
    situation: Situation,
    email_to: Option<String>,
    online_inboxes: Vec<InboxKey>,
    devices: Vec<PushSubscriptionRow>,
}
