//! E-mail: the digest a recipient gets, and where it goes: an SMTP server (`SMTP_URL`), or
//! without one an `.eml` file under `<data dir>/outbox-mail`, so a person can open it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use lettre::{
    message::{header::ContentType, Mailbox, MultiPart, SinglePart},
    transport::smtp::authentication::Credentials,
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use crate::{domain::LocalTime, store::MessageRow};

/// One e-mail, ready to send.
#[derive(Clone, Debug)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// For the `List-Unsubscribe` header as well as the link in the body.
    pub unsubscribe_url: String,
}

/// What a digest is about.
pub struct Digest<'a> {
    pub to: &'a str,
    /// Who wrote: the company (for a customer) or the client (for a company).
    pub from_name: &'a str,
    pub from_place: &'a LocalTime,
    pub messages: &'a [MessageRow],
    pub conversation_url: &'a str,
    pub unsubscribe_url: &'a str,
}

/// Longest excerpt of one message in a digest.
const EXCERPT_CHARS: usize = 500;

/// "3 new messages from …": every unread message in one e-mail, as text and HTML.
pub fn digest(d: &Digest<'_>) -> Email {
    let count = d.messages.len();
    let subject = if count == 1 {
        format!("New message from {}", d.from_name)
    } else {
        format!("{count} new messages from {}", d.from_name)
    };
    let place = match (&d.from_place.city, &d.from_place.local_time) {
        (Some(city), Some(time)) => format!(" ({city}, {time} there now)"),
        (Some(city), None) => format!(" ({city})"),
        (None, Some(time)) => format!(" ({time} there now)"),
        (None, None) => String::new(),
    };
    let excerpts: Vec<String> = d
        .messages
        .iter()
        .map(|m| {
            let mut text: String = m.text.chars().take(EXCERPT_CHARS).collect();
            if m.text.chars().count() > EXCERPT_CHARS {
                text.push('…');
            }
            text
        })
        .collect();
    let mut text = format!("{}{} wrote:\n\n", d.from_name, place);
    for excerpt in &excerpts {
        text.push_str(&format!("  {}\n\n", excerpt.replace('\n', "\n  ")));
    }
    text.push_str(&format!(
        "Answer here: {}\n\n--\nStop these e-mails: {}\n",
        d.conversation_url, d.unsubscribe_url
    ));
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:Arial,sans-serif\"><p><b>{}</b>{} wrote:</p>",
        escape(d.from_name),
        escape(&place)
    );
    for excerpt in &excerpts {
        html.push_str(&format!(
            "<blockquote style=\"border-left:3px solid #ccd;margin:0 0 12px;padding:4px 12px;white-space:pre-wrap\">{}</blockquote>",
            escape(excerpt)
        ));
    }
    html.push_str(&format!(
        "<p><a href=\"{}\">Answer in the chat</a></p><hr><p style=\"font-size:12px;color:#666\"><a href=\"{}\">Stop these e-mails</a></p></body></html>",
        escape(d.conversation_url),
        escape(d.unsubscribe_url)
    ));
    Email {
        to: d.to.to_owned(),
        subject,
        text,
        html,
        unsubscribe_url: d.unsubscribe_url.to_owned(),
    }
}

/// Escape text for HTML: names and messages are user input.
fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where e-mails go.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

#[derive(Clone)]
enum Transport {
    Files(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// `.eml` files under `data_dir/outbox-mail`.
    pub fn files(data_dir: &Path) -> anyhow::Result<Mailer> {
        let dir = data_dir.join("outbox-mail");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Mailer {
            transport: Transport::Files(dir),
            from: default_from(),
        })
    }

    /// An SMTP server at `smtp://[user:password@]host[:port]` (plain SMTP, as to a local relay).
    pub fn smtp(url: &str) -> anyhow::Result<Mailer> {
        let url = url::Url::parse(url).context("SMTP_URL is not a URL")?;
        anyhow::ensure!(
            url.scheme() == "smtp",
            "only smtp:// is supported (a relay on a trusted network); got {}",
            url.scheme()
        );
        let host = url.host_str().context("SMTP_URL has no host")?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(25));
        if !url.username().is_empty() {
            builder = builder.credentials(Credentials::new(
                url.username().to_owned(),
                url.password().unwrap_or_default().to_owned(),
            ));
        }
        Ok(Mailer {
            transport: Transport::Smtp(builder.build()),
            from: default_from(),
        })
    }

    pub async fn send(&self, email: &Email) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(email
                .to
                .parse()
                .with_context(|| format!("bad recipient address {}", email.to))?)
            .subject(&email.subject)
            .header(ListUnsubscribe(format!("<{}>", email.unsubscribe_url)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.html.clone()),
                    ),
            )
            .context("building the e-mail")?;
        match &self.transport {
            Transport::Files(dir) => {
                AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .context("writing the e-mail file")?;
            }
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .context("sending the e-mail over SMTP")?;
            }
        }
        Ok(())
    }
}

fn default_from() -> Mailbox {
    "Switchboard <notifications@switchboard.local>"
        .parse()
        .expect("a valid constant address")
}

/// The `List-Unsubscribe` header (RFC 2369), which mail clients show as an unsubscribe button.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(value.to_owned()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, text: &str) -> MessageRow {
        MessageRow {
            id,
            conversation_id: 1,
            sender_kind: "company".into(),
            sender_id: 1,
            sender_name: "Anna".into(),
            text: text.into(),
            client_msg_id: None,
            created_at: 0,
        }
    }

    #[test]
    fn a_digest_names_the_count_escapes_html_and_links_back() {
        let place = LocalTime {
            city: Some("Novosibirsk".into()),
            timezone: Some("Asia/Novosibirsk".into()),
            local_time: Some("22:00".into()),
            utc_offset_minutes: Some(420),
        };
        let messages = [
            message(1, "Hello"),
            message(2, "<img src=x onerror=alert(1)>"),
            message(3, "Bye"),
        ];
        let email = digest(&Digest {
            to: "ivan@example.com",
            from_name: "Roastery <b>",
            from_place: &place,
            messages: &messages,
            conversation_url: "http://x/?conversation=1",
            unsubscribe_url: "http://x/unsub?sig=a&b",
        });
        assert_eq!(email.subject, "3 new messages from Roastery <b>");
        assert!(email.text.contains("(Novosibirsk, 22:00 there now)"));
        assert!(
            email.text.contains("<img src=x onerror=alert(1)>"),
            "plain text stays as written"
        );
        assert!(!email.html.contains("<img"), "{}", email.html);
        assert!(email.html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(email.html.contains("Roastery &lt;b&gt;"));
        assert!(email.html.contains("http://x/unsub?sig=a&amp;b"));
        assert!(email.text.contains("http://x/?conversation=1"));
        let one = digest(&Digest {
            messages: &messages[..1],
            ..Digest {
                to: "ivan@example.com",
                from_name: "Roastery",
                from_place: &place,
                messages: &messages,
                conversation_url: "u",
                unsubscribe_url: "v",
            }
        });
        assert_eq!(one.subject, "New message from Roastery");
    }
}
