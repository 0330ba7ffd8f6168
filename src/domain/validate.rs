//! Input rules shared by the HTTP API and the admin CLI. Each check names the field it is about,
//! so a client learns exactly what to fix.

use chrono_tz::Tz;

/// A rejected field: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_CITY_CHARS: usize = 100;
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 100;

/// A required short text: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An optional short text: blank counts as absent.
pub fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, Invalid> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max).map(Some),
    }
}

/// Message text: not blank, at most `max` characters. Inner whitespace is kept as written.
pub fn message_text(value: &str, max: usize) -> Result<String, Invalid> {
    required_text("text", value, max)
}

/// A plausible e-mail address (one `@`, no spaces); lower-cased so lookups are exact.
pub fn email(field: &'static str, value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    let plausible = value.len() <= 254
        && !value.chars().any(char::is_whitespace)
        && matches!(value.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if !plausible {
        return Err(Invalid::new(
            field,
            "must be an e-mail address like name@example.com",
        ));
    }
    Ok(value.to_lowercase())
}

/// An IANA time zone name such as `Europe/Moscow`.
pub fn timezone(field: &'static str, value: &str) -> Result<String, Invalid> {
    value
        .trim()
        .parse::<Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| Invalid::new(field, "must be an IANA time zone such as Europe/Moscow"))
}

pub fn optional_timezone(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<String>, Invalid> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => timezone(field, v).map(Some),
    }
}

/// A client-chosen idempotency key: printable ASCII, at most 100 characters.
pub fn client_msg_id(value: Option<&str>) -> Result<Option<String>, Invalid> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() || v.len() > MAX_CLIENT_MSG_ID_CHARS => Err(Invalid::new(
            "client_msg_id",
            format!("must be 1 to {MAX_CLIENT_MSG_ID_CHARS} characters"),
        )),
        Some(v) if !v.bytes().all(|b| b.is_ascii_graphic()) => Err(Invalid::new(
            "client_msg_id",
            "must be printable ASCII without spaces",
        )),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// A password for a new operator account.
pub fn password(value: &str) -> Result<(), Invalid> {
    let chars = value.chars().count();
    if !(8..=256).contains(&chars) {
        return Err(Invalid::new("password", "must be 8 to 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(message_text("  hi  ", 10), Ok("hi".into()));
        assert_eq!(
            message_text("   ", 10).unwrap_err().reason,
            "must not be empty"
        );
        assert!(message_text(&"я".repeat(11), 10).is_err());
        assert!(message_text(&"я".repeat(10), 10).is_ok());
        assert!(message_text("a\u{0}b", 10).is_err());
        assert_eq!(message_text("line\nnext", 20), Ok("line\nnext".into()));
    }

    #[test]
    fn emails_and_time_zones() {
        assert_eq!(
            email("email", " Ops@Example.COM "),
            Ok("ops@example.com".into())
        );
        for bad in ["", "no-at", "a@b", "a b@c.d", "@c.d", "a@.d", "a@d."] {
            assert!(email("email", bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            timezone("timezone", "Asia/Novosibirsk"),
            Ok("Asia/Novosibirsk".into())
        );
        assert!(timezone("timezone", "Mars/Olympus").is_err());
        assert_eq!(optional_timezone("timezone", Some("")), Ok(None));
    }

    #[test]
    fn client_msg_ids() {
        assert_eq!(client_msg_id(None), Ok(None));
        assert!(client_msg_id(Some("")).is_err());
        assert!(client_msg_id(Some("has space")).is_err());
        assert!(client_msg_id(Some(&"x".repeat(101))).is_err());
        assert_eq!(client_msg_id(Some("m-1")), Ok(Some("m-1".into())));
    }
}
