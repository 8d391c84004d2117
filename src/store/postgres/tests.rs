use super::reader::like_pattern;
use super::*;

#[test]
fn globs_translate_to_like() {
    assert_eq!(like_pattern("user.*"), "user.%");
    assert_eq!(like_pattern("a_b%c\\*"), "a\\_b\\%c\\\\%");
}

#[test]
fn urls_are_logged_without_password() {
    assert_eq!(
        redacted_url("postgres://u:secret@db:5432/x"),
        "postgres://u:REDACTED@db:5432/x"
    );
    assert_eq!(redacted_url("postgres://u@db/x"), "postgres://u@db/x");
}

#[test]
fn migrations_are_ordered() {
    assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
}
