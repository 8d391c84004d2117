//! The event-type glob: `*` is the only wildcard. Shared by the event hooks' sink
//! filters, the store's `events list --type` and the inline rules' matchers.

/// Matches `text` against a glob whose only wildcard is `*` (any run of characters, dots included).
///
/// Event types are dotted names (`user.lifecycle.deactivate`), so `*` alone covers what
/// operators write (`user.lifecycle.*`, `*.deactivate`, `*`).
pub fn glob_match(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("user.lifecycle.*", "user.lifecycle.deactivate"));
        assert!(!glob_match("user.lifecycle.*", "user.session.start"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("*.start", "user.session.start"));
        assert!(glob_match("user.*.start", "user.session.start"));
        assert!(!glob_match("user.*.start", "user.session.end"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
    }
}
