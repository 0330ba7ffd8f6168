//! "Client (Moscow, 12:36)": the other side's city and wall-clock time, computed from their IANA
//! time zone so nobody ever sees the server's time zone.

use chrono::{DateTime, Offset, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

/// Where a party is and what time it is there now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct LocalTime {
    pub city: Option<String>,
    /// IANA name, e.g. `Asia/Novosibirsk`; absent when unknown.
    pub timezone: Option<String>,
    /// `HH:MM` there, now; absent when the time zone is unknown.
    pub local_time: Option<String>,
    /// Offset from UTC in minutes, so a client can keep the clock running without asking again.
    pub utc_offset_minutes: Option<i32>,
}

/// The local time of a party in `city`/`timezone` at `now`.
pub fn local_time_now(city: Option<&str>, timezone: Option<&str>, now: DateTime<Utc>) -> LocalTime {
    let tz: Option<Tz> = timezone.and_then(|name| name.parse().ok());
    let local = tz.map(|tz| now.with_timezone(&tz));
    LocalTime {
        city: city.map(str::to_owned),
        timezone: tz.map(|tz| tz.name().to_owned()),
        local_time: local.map(|t| t.format("%H:%M").to_string()),
        utc_offset_minutes: local.map(|t| t.offset().fix().local_minus_utc() / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn novosibirsk_is_four_hours_ahead_of_moscow() {
        // The seed's example: 18:00 in Moscow is 22:00 in Novosibirsk.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap();
        let moscow = local_time_now(Some("Moscow"), Some("Europe/Moscow"), now);
        let novosibirsk = local_time_now(Some("Novosibirsk"), Some("Asia/Novosibirsk"), now);
        assert_eq!(moscow.local_time.as_deref(), Some("18:00"));
        assert_eq!(novosibirsk.local_time.as_deref(), Some("22:00"));
        assert_eq!(novosibirsk.utc_offset_minutes, Some(420));
    }

    #[test]
    fn unknown_time_zone_gives_no_time_but_keeps_the_city() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let unknown = local_time_now(Some("Atlantis"), None, now);
        assert_eq!(unknown.city.as_deref(), Some("Atlantis"));
        assert_eq!(unknown.local_time, None);
    }
}
