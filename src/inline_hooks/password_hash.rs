//! Stored password hashes (bcrypt `$2a$`/`$2b$`/`$2y$`, argon2 PHC strings): parsed once,
//! verified on a blocking thread. Shared by the password import rules (a file of hashes)
//! and the scripts' `verify_password_hash` helper.

use std::sync::Arc;

/// A stored password hash, checked for format when the file is loaded.
#[derive(Clone)]
pub(crate) enum StoredHash {
    Bcrypt(Arc<str>),
    Argon2(Arc<argon2::PasswordHash>),
}

impl StoredHash {
    /// Parses a hash; the error never repeats it.
    pub(crate) fn parse(text: &str) -> Result<StoredHash, String> {
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
            text.parse::<bcrypt::HashParts>().map_err(|_| {
                "not a valid bcrypt hash (60 characters, such as $2b$12$...)".to_owned()
            })?;
            return Ok(StoredHash::Bcrypt(text.into()));
        }
        if text.starts_with("$argon2") {
            let hash = argon2::PasswordHash::new(text)
                .map_err(|e| format!("not a valid argon2 PHC string ({e})"))?;
            argon2::Algorithm::try_from(hash.algorithm.as_str())
                .map_err(|_| "not an argon2 algorithm (argon2id, argon2i or argon2d)".to_owned())?;
            return Ok(StoredHash::Argon2(Arc::new(hash)));
        }
        Err(
            "unknown hash format: expected bcrypt ($2a$, $2b$, $2y$) or argon2 ($argon2id$...)"
                .into(),
        )
    }

    /// CPU-heavy by design: call it from a blocking thread.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            StoredHash::Argon2(hash) => {
                use argon2::PasswordVerifier;
                // The hash's own parameters are used, not the default instance's.
                argon2::Argon2::default()
                    .verify_password(password, &**hash)
                    .is_ok()
            }
        }
    }
}
