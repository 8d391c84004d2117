//! The `notAfter` of a certificate, for `hookwarden_tls_cert_not_after_timestamp_seconds`.
//!
//! Read by walking the few DER elements in front of it (RFC 5280, 4.1) rather than with
//! an X.509 parser: this one field is all hookwarden reads of a certificate (rustls
//! checks the rest), and the walk is a few lines where a parser is several crates.

/// One DER element at the start of `input`: its tag, its content, and what follows it.
/// Single-byte tags only, which is all the fields before `notAfter` use.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |len, b| (len << 8) | usize::from(*b));
        (len, rest)
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version`, absent in version 1 certificates.
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Seconds since the epoch of the certificate's `notAfter`; `None` when the DER does not
/// have the shape of a certificate.
pub(crate) fn not_after(der: &[u8]) -> Option<i64> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    if element(rest)?.0 == VERSION {
        rest = element(rest)?.2;
    }
    // serialNumber, signature (an AlgorithmIdentifier), issuer (a Name).
    for expected in [INTEGER, SEQUENCE, SEQUENCE] {
        let (tag, _, after) = element(rest)?;
        if tag != expected {
            return None;
        }
        rest = after;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    time_seconds(tag, time)
}

/// A `UTCTime` (`YYMMDDHHMMSSZ`, years 1950 to 2049) or `GeneralizedTime`
/// (`YYYYMMDDHHMMSSZ`), as RFC 5280 requires them (UTC, no fractions), in seconds since
/// the epoch.
fn time_seconds(tag: u8, time: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(time).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: u32 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let rfc3339 = format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        &rest[0..2],
        &rest[2..4],
        &rest[4..6],
        &rest[6..8],
        &rest[8..10]
    );
    let at = humantime::parse_rfc3339(&rfc3339).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_after: (i32, u8, u8)) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        // 2031-05-17T00:00:00Z: a UTCTime (before 2050).
        assert_eq!(not_after(&certificate((2031, 5, 17))), Some(1_936_742_400));
        // 2051-01-01T00:00:00Z: a GeneralizedTime (2050 and later).
        assert_eq!(not_after(&certificate((2051, 1, 1))), Some(2_556_144_000));
    }

    #[test]
    fn anything_else_is_none() {
        let der = certificate((2031, 5, 17));
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(b"-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(not_after(&der[..der.len() / 3]), None, "cut short");
        assert_eq!(time_seconds(UTC_TIME, b"310517000000+0200"), None);
        assert_eq!(time_seconds(GENERALIZED_TIME, b"20310517000000.5Z"), None);
        assert_eq!(time_seconds(UTC_TIME, b"311317000000Z"), None, "month 13");
    }
}
