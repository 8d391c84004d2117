//! Time as the service keeps it: milliseconds since the Unix epoch, formatted as RFC 3339
//! in UTC, and read from what an operator writes (`--since 2h`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the one time format the store keeps.
pub type Millis = i64;

/// Now, in store time.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Formats store time as RFC 3339 with milliseconds, UTC.
pub fn format_millis(ms: Millis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Serialises store time as [`format_millis`] text, for what operators read as JSON
/// (`events show`, `events list --json`): `#[serde(serialize_with = "...")]`.
pub fn serialize_rfc3339<S: serde::Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_millis(*ms))
}

/// [`serialize_rfc3339`] for a time that may be absent (`null`).
pub fn serialize_rfc3339_opt<S: serde::Serializer>(
    ms: &Option<Millis>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serialize_rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

/// A time an operator wrote that [`parse_time`] cannot read; holds what was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor a duration ago (15m, 2h, 7d)"
)]
pub struct TimeError(pub String);

/// A point in time as an operator writes it: RFC 3339 (`2026-11-23T10:00:00Z`, or with
/// an offset `+02:00`; without any it is taken as UTC), a bare date (`2026-11-23`,
/// midnight UTC), or a duration ago (`15m`, `2h`, `7d`, `1h 30m`).
pub fn parse_time(s: &str, now: SystemTime) -> Result<Millis, TimeError> {
    let s = s.trim();
    let at = if let Some(t) = parse_rfc3339_with_offset(s) {
        t
    } else if let Ok(t) = humantime::parse_rfc3339_weak(&format!("{s}T00:00:00")) {
        t
    } else if let Ok(d) = humantime::parse_duration(s) {
        now.checked_sub(d).unwrap_or(UNIX_EPOCH)
    } else {
        return Err(TimeError(s.to_owned()));
    };
    Ok(at
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0))
}

/// humantime reads RFC 3339 in UTC only (`Z`, `+00:00` or nothing); a numeric offset
/// (`+02:00`, `-05:00`) is applied here.
fn parse_rfc3339_with_offset(s: &str) -> Option<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Some(t);
    }
    let split = s.len().checked_sub(6)?;
    let (local, offset) = (s.get(..split)?, s.get(split..)?.as_bytes());
    let sign = match offset[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |a: u8, b: u8| -> Option<u64> {
        (a.is_ascii_digit() && b.is_ascii_digit()).then(|| u64::from((a - b'0') * 10 + (b - b'0')))
    };
    if offset[3] != b':' {
        return None;
    }
    let (hours, minutes) = (digits(offset[1], offset[2])?, digits(offset[4], offset[5])?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(hours * 3600 + minutes * 60);
    // 10:00+02:00 is 08:00 UTC.
    if sign > 0 {
        t.checked_sub(shift)
    } else {
        t.checked_add(shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).expect("time")
    }

    #[test]
    fn times_parse_as_rfc3339_dates_or_durations_ago() {
        let now = at("2026-11-23T12:00:00Z");
        let ms = |s: &str| parse_time(s, now).expect(s);
        let epoch = |s: &str| {
            at(s)
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .expect("after epoch")
        };
        assert_eq!(ms("2026-11-23T10:00:00Z"), epoch("2026-11-23T10:00:00Z"));
        assert_eq!(
            ms("2026-11-23T10:00:00.250Z"),
            epoch("2026-11-23T10:00:00.250Z")
        );
        assert_eq!(ms("2026-11-23 10:00:00"), epoch("2026-11-23T10:00:00Z"));
        assert_eq!(ms("2026-11-23"), epoch("2026-11-23T00:00:00Z"));
        assert_eq!(ms("15m"), epoch("2026-11-23T11:45:00Z"));
        assert_eq!(ms("2h"), epoch("2026-11-23T10:00:00Z"));
        assert_eq!(ms("7d"), epoch("2026-11-16T12:00:00Z"));
        assert_eq!(ms(" 1h 30m "), epoch("2026-11-23T10:30:00Z"));
        assert_eq!(
            ms("2026-11-23T10:00:00+02:00"),
            epoch("2026-11-23T08:00:00Z")
        );
        assert_eq!(
            ms("2026-11-23T10:00:00.5-05:30"),
            epoch("2026-11-23T15:30:00.5Z")
        );
        assert_eq!(
            ms("2026-11-23T10:00:00+00:00"),
            epoch("2026-11-23T10:00:00Z")
        );
    }

    #[test]
    fn bad_times_are_reported_with_their_argument() {
        let now = at("2026-11-23T12:00:00Z");
        for bad in [
            "yesterday",
            "",
            "2026-13-40",
            "10:00",
            "-5m",
            "2026-11-23T10:00:00+2:00",
            "2026-11-23T10:00:00+25:00",
            "é2026-11-23T10:00",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?} accepted");
        }
    }
}
