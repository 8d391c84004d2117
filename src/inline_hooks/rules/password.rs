//! Password import rules (`[inline_hooks.handler.password_import]`): a file of
//! `username:hash` lines loaded at start, against which each sign-in's password is
//! verified on the blocking pool, a bounded number at once.

use crate::config::expose;
use crate::config::rules::PasswordImportRules;
use crate::inline_hooks::handler::HandlerError;
use crate::inline_hooks::password_hash::StoredHash;
use crate::okta::inline::{password, InlineResponse};
use secrecy::SecretString;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The users of a password file and the limit on verifications at once.
pub(super) struct PasswordBook {
    users: HashMap<String, StoredHash>,
    case_sensitive: bool,
    /// Bounds the blocking threads and cores that verifications take: a burst of sign-ins
    /// waits here (and falls back at its deadline) instead of starving the whole process.
    permits: Arc<tokio::sync::Semaphore>,
}

impl PasswordBook {
    pub(super) fn load(rules: &PasswordImportRules) -> Result<Self, String> {
        let path = &rules.file;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("password_import.file: cannot read {}: {e}", path.display()))?;
        warn_if_readable_by_others(path);
        let users = parse_password_file(&text, rules.case_sensitive_usernames)
            .map_err(|e| format!("password_import.file {}: {e}", path.display()))?;
        let parallel = match rules.max_parallel {
            Some(0) => return Err("password_import.max_parallel: must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(4, |n| n.get()),
        };
        tracing::info!(file = %path.display(), users = users.len(), "password hashes loaded");
        Ok(PasswordBook {
            users,
            case_sensitive: rules.case_sensitive_usernames,
            permits: Arc::new(tokio::sync::Semaphore::new(parallel)),
        })
    }

    fn key(&self, username: &str) -> String {
        if self.case_sensitive {
            username.to_owned()
        } else {
            username.to_lowercase()
        }
    }

    /// VERIFIED or UNVERIFIED. The password is copied once into a [`SecretString`] (wiped
    /// when dropped, right after the check) and appears in no log and no error.
    pub(super) async fn answer(
        self: Arc<Self>,
        request: &Value,
    ) -> Result<InlineResponse, HandlerError> {
        let verdict = |ok: bool| {
            InlineResponse::from(if ok {
                password::verified()
            } else {
                password::unverified()
            })
        };
        let credential = request.pointer("/data/context/credential");
        let username = credential
            .and_then(|c| c.get("username"))
            .and_then(Value::as_str);
        let password = credential
            .and_then(|c| c.get("password"))
            .and_then(Value::as_str);
        let (Some(username), Some(password)) = (username, password) else {
            tracing::debug!("password import request without username or password: UNVERIFIED");
            return Ok(verdict(false));
        };
        let Some(hash) = self.users.get(&self.key(username)).cloned() else {
            tracing::debug!("password import for a user not in the file: UNVERIFIED");
            return Ok(verdict(false));
        };
        let password = SecretString::from(password.to_owned());
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HandlerError("password verification is shutting down".into()))?;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash.verify(expose(&password).as_bytes())
        })
        .await
        .map_err(|_| HandlerError("the password verification task failed".into()))?;
        tracing::debug!(verified = ok, "password import verified against the file");
        Ok(verdict(ok))
    }
}

/// `username:hash` lines; blank lines and `#` comments are skipped. Errors name the line,
/// never its content.
fn parse_password_file(
    text: &str,
    case_sensitive: bool,
) -> Result<HashMap<String, StoredHash>, String> {
    let mut users = HashMap::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Hashes never hold ':', usernames might: split at the last one.
        let Some((user, hash)) = line.rsplit_once(':') else {
            return Err(format!("line {n}: expected username:hash"));
        };
        let user = user.trim();
        if user.is_empty() {
            return Err(format!("line {n}: empty username"));
        }
        let hash = StoredHash::parse(hash.trim()).map_err(|e| format!("line {n}: {e}"))?;
        let key = if case_sensitive {
            user.to_owned()
        } else {
            user.to_lowercase()
        };
        if let Some(prev) = first_line.insert(key.clone(), n) {
            return Err(format!("line {n}: the username of line {prev} again"));
        }
        users.insert(key, hash);
    }
    if users.is_empty() {
        return Err("no username:hash line (an empty file would refuse every password)".into());
    }
    Ok(users)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(file = %path.display(), "the password hash file is readable by every user of this machine (chmod o-r)");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::super::testutil::{build_error, fixture, handler, run, set};
    use super::super::RulesHandler;
    use super::*;
    use crate::okta::inline::HookType;
    use serde_json::json;

    fn argon2_hash(password: &str) -> String {
        use argon2::PasswordHasher;
        // Small parameters keep the test fast; verification uses the hash's own.
        let params = argon2::Params::new(64, 1, 1, None).expect("params");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_with_salt(password.as_bytes(), b"hookwarden-salt!")
            .expect("argon2 hash")
            .to_string()
    }

    fn password_handler(lines: &str) -> (tempfile::TempDir, RulesHandler) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("passwords");
        std::fs::write(&file, lines).expect("write password file");
        let toml_text = format!("[password_import]\nfile = {:?}", file.display().to_string());
        let h = handler(HookType::PasswordImport, &toml_text);
        (dir, h)
    }

    #[tokio::test]
    async fn password_samples_verify_against_bcrypt_and_argon2() {
        let bcrypt_line = format!(
            "# migrated from the old forum\n\nIsaac.Brock@example.com:{}\n",
            bcrypt::hash("Okta", 4).expect("bcrypt")
        );
        let argon_line = format!("isaac.brock@example.com:{}\n", argon2_hash("Okta"));
        for lines in [bcrypt_line, argon_line] {
            let (_dir, h) = password_handler(&lines);
            for sample in [
                "password-import-request.json",
                "password-import-request-idx.json",
            ] {
                let body = fixture(sample);
                assert_eq!(
                    run(&h, body.clone()).await,
                    fixture("password-import-response-verified.json"),
                    "{sample}"
                );
                let mut wrong = body;
                set(
                    &mut wrong,
                    "/data/context/credential/password",
                    json!("okta"),
                );
                assert_eq!(
                    run(&h, wrong).await,
                    fixture("password-import-response-unverified.json")
                );
            }
        }
    }

    #[tokio::test]
    async fn password_unknown_user_and_missing_password_are_unverified() {
        let (_dir, h) = password_handler(&format!(
            "someone@example.com:{}",
            bcrypt::hash("Okta", 4).expect("bcrypt")
        ));
        let unverified = fixture("password-import-response-unverified.json");
        assert_eq!(
            run(&h, fixture("password-import-request.json")).await,
            unverified
        );
        let mut body = fixture("password-import-request.json");
        set(
            &mut body,
            "/data/context/credential/username",
            json!("someone@example.com"),
        );
        body["data"]["context"]["credential"]
            .as_object_mut()
            .expect("credential")
            .remove("password");
        assert_eq!(run(&h, body).await, unverified);
    }

    #[test]
    fn password_file_errors_name_the_line_never_the_hash() {
        let hash = bcrypt::hash("Okta", 4).expect("bcrypt");
        let cases = [
            (
                format!("a@example.com:{hash}\nno separator here\n"),
                "line 2: expected username:hash",
            ),
            (
                format!("a@example.com:{hash}\nb@example.com:$1$md5$nope\n"),
                "line 2: unknown hash format",
            ),
            (
                format!("a@example.com:{hash}\nA@example.com:{hash}\n"),
                "line 2: the username of line 1 again",
            ),
            (
                format!("a@example.com:{}\n", &hash[..50]),
                "line 1: not a valid bcrypt hash",
            ),
            (
                "c@example.com:$argon2id$v=19$m=64$broken\n".to_owned(),
                "line 1: not a valid argon2",
            ),
            ("# nothing\n".to_owned(), "no username:hash line"),
        ];
        for (text, expected) in cases {
            let e = match parse_password_file(&text, false) {
                Ok(_) => panic!("{expected}: should be refused"),
                Err(e) => e,
            };
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains(&hash[7..]), "the hash must not be echoed: {e}");
        }
        let e = build_error(
            HookType::PasswordImport,
            "[password_import]\nfile = \"/nonexistent/hookwarden/passwords\"",
        );
        assert!(
            e.contains("password_import.file") && e.contains("/nonexistent"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn password_usernames_can_be_case_sensitive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("passwords");
        std::fs::write(
            &file,
            format!(
                "Isaac.Brock@example.com:{}",
                bcrypt::hash("Okta", 4).expect("bcrypt")
            ),
        )
        .expect("write");
        let h = handler(
            HookType::PasswordImport,
            &format!(
                "[password_import]\nfile = {:?}\ncase_sensitive_usernames = true\nmax_parallel = 1",
                file.display().to_string()
            ),
        );
        assert_eq!(
            run(&h, fixture("password-import-request.json")).await,
            fixture("password-import-response-unverified.json")
        );
    }
}
