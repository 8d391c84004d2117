//! The `notAfter` of a certificate, for `hookwarden_tls_cert_not_after_timestamp_seconds`,
//! read with RustCrypto's `x509-cert` (already in the tree for the PostgreSQL TLS client):
//! rustls checks the rest of the certificate, this is the one field hookwarden reports.

use x509_cert::der::Decode as _;

/// Seconds since the epoch of the certificate's `notAfter`; `None` when the DER is not a
/// certificate.
pub(crate) fn not_after(der: &[u8]) -> Option<i64> {
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    let at = certificate
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration();
    i64::try_from(at.as_secs()).ok()
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
    }
}
