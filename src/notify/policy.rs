//! The cascade policy: for one new message and one recipient, what to do now and when to look
//! again. A pure function of what the worker observed, so every rule is tested in a table.
//!
//! The cascade (DESIGN "Cascade notifications"):
//! 1. online → a `notification` event in the browser; done;
//! 2. offline with a push subscription → Web Push; no e-mail;
//! 3. no subscription, or push failed for good → e-mail;
//! 4. a company: after browser and push, wait for a reply for the escalation window; still
//!    unread and unanswered → e-mail the company anyway.
//!
//! Never spam: nothing once the message is read or answered; at most one notification per
//! conversation and channel per window (later messages coalesce into the next digest); push and
//! e-mail wait for the end of quiet hours in the recipient's own time zone (browser events do
//! not); per-recipient settings switch channels off.

use chrono::{DateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;

/// Who the message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientKind {
    Customer,
    Company,
}

/// Which stage of the cascade a job is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Just after the message was written.
    First,
    /// A company's escalation check, `escalation_after` later.
    Escalation,
}

/// Delivery channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Browser,
    Push,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Browser => "browser",
            Channel::Push => "push",
            Channel::Email => "email",
        }
    }
}

/// A recipient's own switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub push: bool,
    pub email: bool,
    /// Local hours `[start, end)` in which push and e-mail wait (may wrap midnight).
    pub quiet_hours: Option<(u32, u32)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            push: true,
            email: true,
            quiet_hours: Some((22, 8)),
        }
    }
}

/// Everything the worker observed about one job.
#[derive(Clone, Debug)]
pub struct Situation {
    pub recipient: RecipientKind,
    pub stage: Stage,
    pub now: DateTime<Utc>,
    /// The recipient's time zone (a customer may not have one; then there are no quiet hours).
    pub timezone: Option<Tz>,
    pub settings: Settings,
    /// The recipient (any operator, for a company) has a live connection.
    pub online: bool,
    /// The recipient's side has read the message.
    pub read: bool,
    /// The company answered after the message (companies only).
    pub answered: bool,
    /// Live push subscriptions of the recipient.
    pub push_subscriptions: usize,
    /// Push was tried for this message and failed for good.
    pub push_failed: bool,
    /// An address to e-mail.
    pub has_email: bool,
    /// When this conversation last notified the recipient on each channel.
    pub last_push_at: Option<DateTime<Utc>>,
    pub last_email_at: Option<DateTime<Utc>>,
    /// At most one notification per conversation and channel per this window.
    pub window: chrono::Duration,
    /// How long a company has before the escalation e-mail.
    pub escalation_after: chrono::Duration,
}

/// Why nothing is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppressed {
    Read,
    Answered,
    /// Notified on this channel within the window: the next digest covers it.
    Coalesced(Channel),
    /// Every usable channel is switched off or unknown (no e-mail address).
    NoChannel,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub send: Option<Channel>,
    pub suppressed: Option<Suppressed>,
    /// Run the job again then (quiet hours, or a company's escalation check).
    pub recheck_at: Option<(DateTime<Utc>, Stage)>,
}

impl Decision {
    fn send(channel: Channel) -> Self {
        Decision {
            send: Some(channel),
            suppressed: None,
            recheck_at: None,
        }
    }

    fn suppress(reason: Suppressed) -> Self {
        Decision {
            send: None,
            suppressed: Some(reason),
            recheck_at: None,
        }
    }

    fn later(at: DateTime<Utc>, stage: Stage) -> Self {
        Decision {
            send: None,
            suppressed: None,
            recheck_at: Some((at, stage)),
        }
    }

    fn then(mut self, at: DateTime<Utc>, stage: Stage) -> Self {
        self.recheck_at = Some((at, stage));
        self
    }
}

/// Decide the next step for one message and one recipient.
pub fn decide(s: &Situation) -> Decision {
    if s.read {
        return Decision::suppress(Suppressed::Read);
    }
    if s.answered {
        return Decision::suppress(Suppressed::Answered);
    }
    let escalation = s.now + s.escalation_after;
    match (s.recipient, s.stage) {
        (_, Stage::First) if s.online => {
            let decision = Decision::send(Channel::Browser);
            match s.recipient {
                RecipientKind::Company => decision.then(escalation, Stage::Escalation),
                RecipientKind::Customer => decision,
            }
        }
        (RecipientKind::Customer, Stage::First) => offline_step(s),
        (RecipientKind::Company, Stage::First) => {
            if can_push(s) {
                quiet_or(s, Channel::Push).then(escalation, Stage::Escalation)
            } else {
                offline_step(s)
            }
        }
        // The window passed with the message still unread and unanswered.
        (RecipientKind::Company, Stage::Escalation) => email_step(s),
        (RecipientKind::Customer, Stage::Escalation) => offline_step(s),
    }
}

fn can_push(s: &Situation) -> bool {
    s.settings.push && s.push_subscriptions > 0 && !s.push_failed
}

/// Offline: push when a device is bound (and no e-mail then), otherwise e-mail.
fn offline_step(s: &Situation) -> Decision {
    if can_push(s) {
        return quiet_or(s, Channel::Push);
    }
    email_step(s)
}

fn email_step(s: &Situation) -> Decision {
    if !(s.settings.email && s.has_email) {
        return Decision::suppress(Suppressed::NoChannel);
    }
    quiet_or(s, Channel::Email)
}

/// Send on `channel` unless quiet hours hold it back or the window was already used.
fn quiet_or(s: &Situation, channel: Channel) -> Decision {
    let last = match channel {
        Channel::Push => s.last_push_at,
        Channel::Email => s.last_email_at,
        Channel::Browser => None,
    };
    if last.is_some_and(|at| s.now - at < s.window) {
        return Decision::suppress(Suppressed::Coalesced(channel));
    }
    if let Some(end) = quiet_until(s) {
        return Decision::later(end, s.stage);
    }
    Decision::send(channel)
}

/// The end of the recipient's quiet hours, if they are in them now.
fn quiet_until(s: &Situation) -> Option<DateTime<Utc>> {
    let (start, end) = s.settings.quiet_hours?;
    let tz = s.timezone?;
    let local = s.now.with_timezone(&tz);
    let hour = local.hour();
    let quiet = if start <= end {
        hour >= start && hour < end
    } else {
        hour >= start || hour < end
    };
    if !quiet {
        return None;
    }
    let end_time = NaiveTime::from_hms_opt(end, 0, 0)?;
    let mut day = local.date_naive();
    if hour >= end && start > end {
        day = day.succ_opt()?;
    }
    let local_end = day.and_time(end_time).and_local_timezone(tz).earliest()?;
    Some(local_end.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn base() -> Situation {
        Situation {
            recipient: RecipientKind::Customer,
            stage: Stage::First,
            // 12:00 in Moscow, 16:00 in Novosibirsk.
            now: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
            timezone: Some(chrono_tz::Europe::Moscow),
            settings: Settings::default(),
            online: false,
            read: false,
            answered: false,
            push_subscriptions: 0,
            push_failed: false,
            has_email: true,
            last_push_at: None,
            last_email_at: None,
            window: chrono::Duration::minutes(15),
            escalation_after: chrono::Duration::minutes(15),
        }
    }

    fn at(hour_utc: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, hour_utc, minute, 0)
            .unwrap()
    }

    #[test]
    fn the_cascade_table() {
        let escalate = base().now + chrono::Duration::minutes(15);
        type Case = (&'static str, fn(&mut Situation), Decision);
        let cases: Vec<Case> = vec![
            (
                "online customer: browser popup, done",
                |s| s.online = true,
                Decision::send(Channel::Browser),
            ),
            (
                "offline customer with a device: push, no e-mail",
                |s| s.push_subscriptions = 1,
                Decision::send(Channel::Push),
            ),
            (
                "offline customer without a device: e-mail",
                |_| {},
                Decision::send(Channel::Email),
            ),
            (
                "push failed for good: e-mail",
                |s| {
                    s.push_subscriptions = 1;
                    s.push_failed = true;
                },
                Decision::send(Channel::Email),
            ),
            (
                "push switched off: e-mail",
                |s| {
                    s.push_subscriptions = 1;
                    s.settings.push = false;
                },
                Decision::send(Channel::Email),
            ),
            (
                "no e-mail address, no device: nothing",
                |s| s.has_email = false,
                Decision::suppress(Suppressed::NoChannel),
            ),
            (
                "e-mail switched off: nothing",
                |s| s.settings.email = false,
                Decision::suppress(Suppressed::NoChannel),
            ),
            (
                "already read: nothing",
                |s| {
                    s.read = true;
                    s.online = true;
                },
                Decision::suppress(Suppressed::Read),
            ),
            (
                "e-mailed 5 minutes ago about this chat: coalesced",
                |s| {
                    s.last_email_at = Some(s.now - chrono::Duration::minutes(5));
                },
                Decision::suppress(Suppressed::Coalesced(Channel::Email)),
            ),
            (
                "e-mailed 20 minutes ago: a new e-mail",
                |s| {
                    s.last_email_at = Some(s.now - chrono::Duration::minutes(20));
                },
                Decision::send(Channel::Email),
            ),
            (
                "pushed 5 minutes ago: coalesced",
                |s| {
                    s.push_subscriptions = 2;
                    s.last_push_at = Some(s.now - chrono::Duration::minutes(5));
                },
                Decision::suppress(Suppressed::Coalesced(Channel::Push)),
            ),
        ];
        for (what, adjust, expected) in cases {
            let mut s = base();
            adjust(&mut s);
            assert_eq!(decide(&s), expected, "{what}");
        }

        // Companies: browser or push first, then the escalation check.
        let mut s = base();
        s.recipient = RecipientKind::Company;
        s.online = true;
        assert_eq!(
            decide(&s),
            Decision::send(Channel::Browser).then(escalate, Stage::Escalation),
            "online operators"
        );
        s.online = false;
        s.push_subscriptions = 1;
        assert_eq!(
            decide(&s),
            Decision::send(Channel::Push).then(escalate, Stage::Escalation),
            "operators' devices"
        );
        s.push_subscriptions = 0;
        assert_eq!(
            decide(&s),
            Decision::send(Channel::Email),
            "nobody reachable: e-mail now"
        );
        s.stage = Stage::Escalation;
        assert_eq!(
            decide(&s),
            Decision::send(Channel::Email),
            "unanswered after the window: e-mail anyway"
        );
        s.answered = true;
        assert_eq!(
            decide(&s),
            Decision::suppress(Suppressed::Answered),
            "answered meanwhile"
        );
        s.answered = false;
        s.read = true;
        assert_eq!(
            decide(&s),
            Decision::suppress(Suppressed::Read),
            "read meanwhile"
        );
    }

    #[test]
    fn quiet_hours_defer_push_and_email_in_the_recipients_own_time_zone() {
        // 23:30 in Moscow (20:30 UTC): quiet until 08:00 Moscow = 05:00 UTC next day.
        let mut s = base();
        s.now = at(20, 30);
        let next_morning = Utc.with_ymd_and_hms(2026, 11, 26, 5, 0, 0).unwrap();
        assert_eq!(
            decide(&s),
            Decision::later(next_morning, Stage::First),
            "e-mail waits"
        );
        s.push_subscriptions = 1;
        assert_eq!(
            decide(&s),
            Decision::later(next_morning, Stage::First),
            "push waits"
        );
        s.online = true;
        assert_eq!(
            decide(&s),
            Decision::send(Channel::Browser),
            "a browser popup does not wait"
        );

        // The same instant is 03:30 in Novosibirsk: quiet until 08:00 there (01:00 UTC).
        let mut s = base();
        s.now = at(20, 30);
        s.timezone = Some(chrono_tz::Asia::Novosibirsk);
        assert_eq!(
            decide(&s),
            Decision::later(
                Utc.with_ymd_and_hms(2026, 11, 26, 1, 0, 0).unwrap(),
                Stage::First
            )
        );

        // 07:59 in Moscow is still quiet; 08:00 is not.
        let mut s = base();
        s.now = at(4, 59);
        assert_eq!(decide(&s), Decision::later(at(5, 0), Stage::First));
        s.now = at(5, 0);
        assert_eq!(decide(&s), Decision::send(Channel::Email));

        // No known time zone: no quiet hours. Quiet hours switched off: none either.
        let mut s = base();
        s.now = at(20, 30);
        s.timezone = None;
        assert_eq!(decide(&s), Decision::send(Channel::Email));
        s.timezone = Some(chrono_tz::Europe::Moscow);
        s.settings.quiet_hours = None;
        assert_eq!(decide(&s), Decision::send(Channel::Email));

        // A company's escalation at night waits for the morning, as the escalation stage.
        let mut s = base();
        s.recipient = RecipientKind::Company;
        s.stage = Stage::Escalation;
        s.now = at(20, 30);
        assert_eq!(decide(&s), Decision::later(next_morning, Stage::Escalation));
    }
}
