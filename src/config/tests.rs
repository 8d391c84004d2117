//! Unit tests of loading (defaults, file, unknown keys, key names in errors) and of the
//! checks in [`super::validate`].

use super::*;

const HOOK: &str = r#"
        [[event_hooks]]
        name = "okta"
        path = "/hooks/okta"
        auth = { type = "basic", users = [{ username = "okta", password = "correct horse battery" }] }
        sinks = [{ name = "out", type = "stdout" }]
    "#;

#[test]
fn defaults_and_a_hook_load() {
    let c = Config::from_toml_str(HOOK).expect("valid");
    assert_eq!(c.event_hooks.len(), 1);
    assert!(c.server.tls.enabled);
    assert!(!format!("{c:?}").contains("correct horse"));
}

#[test]
fn literal_credentials_outside_hooks_warn_too() {
    let c = Config::from_toml_str(&format!(
            "{HOOK}\n[admin]\ntoken = \"an-admin-token-of-some-length\"\n[okta]\norg_url = \"https://example.okta.com\"\napi_token = \"00abc\"\n[reconcile]\n[[reconcile.hooks]]\nhook = \"okta\"\nevent_types = [\"user.session.start\"]\n"
        ))
        .expect("valid");
    let w = c.warnings().join("\n");
    assert!(
        w.contains("okta.api_token is written in the configuration"),
        "{w}"
    );
    assert!(
        w.contains("admin.token is written in the configuration"),
        "{w}"
    );
    assert!(!w.contains("00abc") && !w.contains("an-admin-token"), "{w}");
}

#[test]
fn an_endless_secret_file_is_a_problem_with_its_key() {
    let err = Config::from_toml_str(&HOOK.replace(
        "password = \"correct horse battery\"",
        "password = { file = \"/dev/zero\" }",
    ))
    .expect_err("/dev/zero is no secret");
    let problem = err
        .0
        .iter()
        .find(|p| p.key == "event_hooks[0].auth.users[0].password")
        .unwrap_or_else(|| panic!("{err:?}"));
    assert!(
        problem.message.contains("larger than 64 KiB"),
        "{problem:?}"
    );
}

#[test]
fn refusal_texts_over_the_cut_warn_with_their_key() {
    let long = "m".repeat(1_500);
    let c = Config::from_toml_str(&format!(
            "[[inline_hooks]]\nname = \"r\"\npath = \"/r\"\ntype = \"registration\"\nauth = {{ type = \"basic\", users = [{{ username = \"u\", password = {{ env = \"PATH\" }} }}] }}\n[inline_hooks.handler]\nkind = \"rules\"\n[inline_hooks.handler.registration]\nerror_summary = \"{long}\"\n[[inline_hooks.handler.registration.check]]\nattribute = \"a\"\nrequired = true\nmessage = \"short\"\n"
        ))
        .expect("valid");
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("inline_hooks[0].handler.registration.error_summary is 1500 bytes"),
        "{w:?}"
    );
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let bad = r#"
            [store]
            page_cache_kib = 16
            [worker]
            concurrency = 0
            [[event_hooks]]
            name = "bad name!"
            path = "no-slash"
            auth = { type = "header", header = "X-Secret", secrets = ["not a header value\u0001 at all", { env = "HOOKWARDEN_TEST_UNSET_VAR" }] }
            sinks = [{ name = "a", type = "http", url = "ftp://x", pth = 1 }]
        "#;
    let err = Config::from_toml_str(bad).expect_err("invalid");
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "store.page_cache_kib",
        "worker.concurrency",
        "event_hooks[0].name",
        "event_hooks[0].path",
        "event_hooks[0].auth.secrets[0]",
        "event_hooks[0].auth.secrets[1]",
        "event_hooks[0].sinks[0].url",
        "event_hooks[0].sinks[0].pth",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
}

#[test]
fn a_request_timeout_under_okta_s_3_s_is_refused_with_the_reason() {
    for short in ["0s", "1s", "2999ms"] {
        let err = Config::from_toml_str(&format!(
            "{HOOK}\n[server]\nrequest_timeout = \"{short}\"\n"
        ))
        .expect_err(short);
        let problems: Vec<_> = err
            .0
            .iter()
            .filter(|p| p.key == "server.request_timeout")
            .collect();
        assert_eq!(problems.len(), 1, "{short}: {:?}", err.0);
        let m = &problems[0].message;
        assert!(
            m.contains("at least 3s") && m.contains("Okta waits 3 s") && m.contains("408"),
            "{short}: {m}"
        );
    }
    for ok in ["3s", "10s"] {
        let c = Config::from_toml_str(&format!("{HOOK}\n[server]\nrequest_timeout = \"{ok}\"\n"))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(c.server.request_timeout >= MIN_REQUEST_TIMEOUT);
    }
    // The default is valid.
    let c = Config::from_toml_str(HOOK).expect("defaults");
    assert!(c.server.request_timeout >= MIN_REQUEST_TIMEOUT);
}

#[test]
fn type_errors_name_the_key() {
    let err = Config::from_toml_str("[server]\nlisten = \"not an address\"").expect_err("invalid");
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].key.contains("server.listen"), "{:?}", err.0);
}

#[test]
fn a_parse_error_keeps_its_position_and_never_quotes_the_line() {
    let toml = "[[event_hooks]]\nname = \"okta\"\npassword = \"hunter2-secret\n";
    let err = Config::from_toml_str(toml).expect_err("unclosed string");
    let text = err.to_string();
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("line 3"), "{text}");
}
