//! Rhai scripts (`kind = "script"`): inline hook logic in a small sandboxed language, for
//! what declarative rules cannot say and a service of one's own would be too much for.
//!
//! Calling convention (the guide is `docs/inline-handlers.md`): the script defines
//! `fn handle(request)`; `request` is the whole request JSON as a Rhai object map, and the
//! function returns a map shaped like the answer (`#{ commands: [...], error: #{...},
//! debugContext: #{...} }`) or `()` for `{}` (Okta's default action). Helpers registered in
//! the engine shorten the common answers (`deny`, `patch_claim`, `verified`, ...); they
//! are in `helpers`.
//!
//! Sandbox: `Engine::new_raw()` with Rhai's pure standard packages only (no file, process
//! or network functions exist), `import` and `eval` disabled and no module resolver,
//! limits on operations, call depth, expression depth and value sizes, and a wall-clock
//! deadline checked by the progress callback: a script that never ends is stopped by its
//! own deadline, shortly before the runtime's budget runs out, and its blocking thread is
//! freed (the runtime dropping the future would not stop a thread that is running).

mod helpers;

use super::handler::{Handler, HandlerError, InlineCall, Reply};
use crate::config::ScriptConfig;
use crate::okta::inline::InlineResponse;
use async_trait::async_trait;
use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Position, Scope, AST};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    /// The deadline of the script running on this thread. One `Engine` serves every call
    /// and its progress callback has no per-call context, but a call runs on one blocking
    /// thread from start to end, so the thread carries it.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Clears this thread's deadline when a run ends, however it ends: blocking-pool threads
/// are reused by unrelated work.
struct DeadlineReset;

impl Drop for DeadlineReset {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

/// How often (in operations) the clock is read: often enough to stop a tight loop within
/// about a millisecond, rarely enough to cost nothing measurable.
const CLOCK_EVERY_OPS: u64 = 256;

/// The error value of the helpers: a fixed message (never data), told apart from what a
/// script throws itself, whose value is never shown.
#[derive(Debug, Clone)]
struct HelperError(&'static str);

fn helper_error(message: &'static str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(HelperError(message)), Position::NONE).into()
}

/// A compiled script shared by every call (`Engine` and `AST` are `Send + Sync` with
/// Rhai's `sync` feature).
pub struct ScriptHandler {
    engine: Arc<Engine>,
    ast: Arc<AST>,
    /// The file as messages name it.
    label: Arc<str>,
    /// The script's own time, a little shorter than the budget so that the script's
    /// error (not the runtime's timeout) says what happened.
    time_limit: Duration,
    /// How much earlier than the call's deadline the script stops itself.
    margin: Duration,
}

impl ScriptHandler {
    /// Reads and compiles the script once; syntax errors come back with line and position.
    pub fn new(config: &ScriptConfig, budget: std::time::Duration) -> Result<Self, String> {
        let label: Arc<str> = config.file.display().to_string().into();
        let source = std::fs::read_to_string(&config.file)
            .map_err(|e| format!("script {label}: cannot read the file: {e}"))?;
        let engine = build_engine(config, label.clone());
        let ast = engine
            .compile(&source)
            .map_err(|e| format!("script {label}: {e}"))?;
        if !ast
            .iter_functions()
            .any(|f| f.name == "handle" && f.params.len() == 1)
        {
            return Err(format!(
                "script {label}: defines no `fn handle(request)`, which hookwarden calls for each request"
            ));
        }
        let margin = (budget / 10).min(Duration::from_millis(200));
        let time_limit = budget.saturating_sub(margin);
        let (time_limit, margin) = if time_limit.is_zero() {
            (budget, Duration::ZERO)
        } else {
            (time_limit, margin)
        };
        Ok(ScriptHandler {
            engine: Arc::new(engine),
            ast: Arc::new(ast),
            label,
            time_limit,
            margin,
        })
    }
}

#[async_trait]
impl Handler for ScriptHandler {
    async fn handle(&self, call: &InlineCall) -> Result<Reply, HandlerError> {
        // From the call's deadline (the request's arrival plus the budget), not from when
        // a blocking thread is free: time at the door and in the queue counts.
        let deadline = call
            .deadline
            .checked_sub(self.margin)
            .unwrap_or(call.deadline)
            .min(Instant::now() + self.time_limit);
        let engine = self.engine.clone();
        let ast = self.ast.clone();
        let request = call.body.clone();
        let time_limit = self.time_limit;
        let outcome =
            tokio::task::spawn_blocking(move || run(&engine, &ast, request, deadline, time_limit))
                .await
                .map_err(|_| {
                    HandlerError(format!("script {}: the script task failed", self.label))
                })?;
        outcome.map_err(|m| HandlerError(format!("script {}: {m}", self.label)))
    }
}

/// One call on the current (blocking) thread.
fn run(
    engine: &Engine,
    ast: &AST,
    request: serde_json::Value,
    deadline: Instant,
    time_limit: Duration,
) -> Result<Reply, String> {
    DEADLINE.with(|d| d.set(Some(deadline)));
    let _reset = DeadlineReset;
    if Instant::now() >= deadline {
        return Err(
            "the time budget ran out before the script could start (all blocking threads busy)"
                .into(),
        );
    }
    let request = rhai::serde::to_dynamic(&request)
        .map_err(|_| "the request could not be turned into a Rhai map".to_owned())?;
    // Top-level statements run too, so that top-level `const`s are there for `handle`.
    let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
    let out: Dynamic = engine
        .call_fn_with_options(options, &mut Scope::new(), ast, "handle", (request,))
        .map_err(|e| describe(&e, time_limit))?;
    to_answer(out)
}

/// `()` is `{}`; a map is JSON, read by the runtime the way a forwarded answer is.
fn to_answer(out: Dynamic) -> Result<Reply, String> {
    if out.is_unit() {
        return Ok(Reply::Typed(InlineResponse::empty()));
    }
    if !out.is_map() {
        return Err(format!(
            "handle() returned a {}; it must return a map shaped like the answer (#{{ commands: [...] }}) or ()",
            out.type_name()
        ));
    }
    let value: serde_json::Value = rhai::serde::from_dynamic(&out).map_err(|_| {
        "handle() returned a map holding something that is not JSON (a function pointer, a timestamp...)"
            .to_owned()
    })?;
    Ok(Reply::Json(value))
}

/// A message for the script's author: what went wrong and where, never a value (values
/// come from the request, which can hold a password or personal data).
fn describe(err: &EvalAltResult, time_limit: Duration) -> String {
    use EvalAltResult as E;
    let pos = err.position();
    let at = if pos.is_none() {
        String::new()
    } else {
        format!(" ({pos})")
    };
    match err {
        E::ErrorInFunctionCall(name, _, inner, _) => {
            format!("in function '{name}': {}", describe(inner, time_limit))
        }
        E::ErrorTerminated(..) => format!(
            "stopped: the script ran past its time limit of {} ms{at}",
            time_limit.as_millis()
        ),
        E::ErrorTooManyOperations(_) => {
            format!("stopped: the script ran past max_operations{at}")
        }
        E::ErrorStackOverflow(_) => format!("too many nested calls (max_call_depth){at}"),
        E::ErrorRuntime(value, _) => match value.clone().try_cast::<HelperError>() {
            Some(HelperError(message)) => format!("{message}{at}"),
            None => format!(
                "the script threw an exception{at}; its value is not shown, as it may hold request data (return fail(\"...\") for an intended error)"
            ),
        },
        E::ErrorArithmetic(..) => format!("arithmetic error (division by zero, overflow...){at}"),
        E::ErrorIndexNotFound(..) => format!("index not found{at}"),
        E::ErrorDataTooLarge(what, _) => format!("{what} is over its limit{at}"),
        // These carry names and types from the script's text, never request values.
        E::ErrorParsing(..)
        | E::ErrorVariableExists(..)
        | E::ErrorForbiddenVariable(..)
        | E::ErrorVariableNotFound(..)
        | E::ErrorPropertyNotFound(..)
        | E::ErrorFunctionNotFound(..)
        | E::ErrorModuleNotFound(..)
        | E::ErrorUnboundThis(..)
        | E::ErrorMismatchDataType(..)
        | E::ErrorMismatchOutputType(..)
        | E::ErrorIndexingType(..)
        | E::ErrorArrayBounds(..)
        | E::ErrorStringBounds(..)
        | E::ErrorBitFieldBounds(..)
        | E::ErrorFor(..)
        | E::ErrorNonPureMethodCallOnConstant(..)
        | E::ErrorAssignmentToConstant(..)
        | E::ErrorTooManyVariables(..)
        | E::ErrorTooManyModules(..) => err.to_string(),
        _ => format!("script error{at}"),
    }
}

/// The engine: pure standard library, no modules, no `eval`, limits, deadline, logging.
fn build_engine(config: &ScriptConfig, label: Arc<str>) -> Engine {
    use rhai::packages::{Package, StandardPackage};
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("import");
    engine.disable_symbol("eval");
    engine.set_strict_variables(true);
    engine.set_max_operations(config.max_operations);
    engine.set_max_call_levels(config.max_call_depth);
    engine.set_max_expr_depths(config.max_expr_depth, config.max_expr_depth);
    engine.set_max_string_size(config.max_string_size);
    engine.set_max_array_size(config.max_array_size);
    engine.set_max_map_size(config.max_map_size);
    engine.on_progress(|ops| {
        if ops % CLOCK_EVERY_OPS != 0 {
            return None;
        }
        DEADLINE.with(|d| match d.get() {
            Some(deadline) if Instant::now() >= deadline => Some(Dynamic::from("deadline")),
            _ => None,
        })
    });
    // Debug level: scripts see personal data, and a password import script sees passwords.
    let print_label = label.clone();
    engine.on_print(move |text| tracing::debug!(script = %print_label, "print: {text}"));
    engine.on_debug(move |text, _source, pos| {
        tracing::debug!(script = %label, line = pos.line().unwrap_or(0), "debug: {text}")
    });
    // Rhai's core `sleep` would hold the thread with no operation counted, past any
    // deadline. Functions registered here are found before the packages' (a function
    // pointer, `Fn("sleep")`, included), so these shadow it.
    engine.register_fn("sleep", |_: rhai::INT| -> Result<(), Box<EvalAltResult>> {
        Err(helper_error("sleep is not available to hook scripts"))
    });
    engine.register_fn(
        "sleep",
        |_: rhai::FLOAT| -> Result<(), Box<EvalAltResult>> {
            Err(helper_error("sleep is not available to hook scripts"))
        },
    );
    helpers::register_helpers(&mut engine);
    engine
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::inline::answer::{self, Read};
    use crate::okta::inline::settle::{settle, Settled};
    use crate::okta::inline::HookType;
    use serde_json::{json, Value};
    use std::path::{Path, PathBuf};

    pub(super) fn fixture(name: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/okta")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
    }

    fn example(hook_type: HookType) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/scripts")
            .join(format!("{}.rhai", hook_type.name()))
    }

    /// A script written to a temporary file (kept alive with the handler).
    fn script(
        source: &str,
        config: impl FnOnce(&mut ScriptConfig),
        budget_ms: u64,
    ) -> Result<(tempfile::TempDir, ScriptHandler), String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("test.rhai");
        std::fs::write(&file, source).expect("write script");
        let mut c = ScriptConfig::new(&file);
        config(&mut c);
        ScriptHandler::new(&c, Duration::from_millis(budget_ms)).map(|h| (dir, h))
    }

    pub(super) fn handler(source: &str) -> (tempfile::TempDir, ScriptHandler) {
        script(source, |_| {}, 2000).expect("script compiles")
    }

    pub(super) async fn call(
        h: &ScriptHandler,
        hook_type: HookType,
        body: Value,
    ) -> Result<Value, String> {
        let call = InlineCall {
            hook_type,
            event_id: body["eventId"].as_str().map(str::to_owned),
            body,
            deadline: Instant::now() + Duration::from_secs(2),
        };
        let read = match h.handle(&call).await.map_err(|e| e.0)? {
            Reply::Typed(answer) => Read::from(answer),
            Reply::Json(value) => answer::read(value)?,
        };
        // The runtime settles every answer before it leaves; the examples must pass as
        // they are, and every other outcome is an error here.
        match settle(hook_type, read, &call.body).settled {
            Settled::Pass(answer) => Ok(serde_json::to_value(answer).expect("answer serialises")),
            other => Err(format!("{other:?}")),
        }
    }

    pub(super) async fn answer_of(h: &ScriptHandler, hook_type: HookType, body: Value) -> Value {
        call(h, hook_type, body).await.expect("script answers")
    }

    fn example_handler(hook_type: HookType) -> ScriptHandler {
        ScriptHandler::new(
            &ScriptConfig::new(example(hook_type)),
            Duration::from_secs(2),
        )
        .expect("example script compiles")
    }

    // ------------------------------------------------------------ example scripts

    #[tokio::test]
    async fn example_token_script() {
        let h = example_handler(HookType::Token);
        let answer = answer_of(&h, HookType::Token, fixture("token-hook-request.json")).await;
        assert_eq!(
            answer,
            json!({"commands": [
                {"type": "com.okta.access.patch", "value": [
                    {"op": "add", "path": "/claims/login", "value": "administrator1@clouditude.net"}]},
                {"type": "com.okta.identity.patch", "value": [
                    {"op": "add", "path": "/claims/https:~1~1example.com~1tier", "value": "standard"}]}
            ]})
        );
        let mut body = fixture("token-hook-request.json");
        body["data"]["access"]["claims"]["cid"] = json!("blocked-client");
        let answer = answer_of(&h, HookType::Token, body).await;
        assert_eq!(
            answer,
            json!({"error": {"errorSummary": "This application may not get tokens."}})
        );
    }

    #[tokio::test]
    async fn example_registration_script() {
        let h = example_handler(HookType::Registration);
        let ssr = fixture("registration-hook-request-ssr.json");
        assert_eq!(
            answer_of(&h, HookType::Registration, ssr.clone()).await,
            json!({"commands": [{"type": "com.okta.user.profile.update", "value": {"customerType": "self-registered"}}]})
        );
        let mut denied = ssr;
        denied["data"]["userProfile"]["email"] = json!("rosario@mailinator.com");
        let mut expected = fixture("registration-hook-response-deny.json");
        expected["error"]["errorSummary"] =
            json!("Incorrect email address. Please contact your admin.");
        assert_eq!(
            answer_of(&h, HookType::Registration, denied).await,
            expected
        );
        assert_eq!(
            answer_of(
                &h,
                HookType::Registration,
                fixture("registration-hook-request-progressive-profile.json")
            )
            .await,
            fixture("registration-hook-response-pp-update.json")
        );
        let mut pp = fixture("registration-hook-request-progressive-profile.json");
        pp["data"]["userProfileUpdate"]["employeeNumber"] = json!("12a4");
        assert_eq!(
            answer_of(&h, HookType::Registration, pp).await,
            fixture("registration-hook-response-pp-deny.json")
        );
        // Classic: no requestType, read as SSR.
        let classic = answer_of(
            &h,
            HookType::Registration,
            fixture("registration-hook-request-classic.json"),
        )
        .await;
        assert_eq!(
            classic["commands"][0]["type"],
            json!("com.okta.user.profile.update")
        );
    }

    #[tokio::test]
    async fn example_import_script() {
        let h = example_handler(HookType::Import);
        for name in ["import-hook-request.json", "import-hook-request-spec.json"] {
            let answer = answer_of(&h, HookType::Import, fixture(name)).await;
            assert_eq!(
                answer,
                json!({"commands": [
                    {"type": "com.okta.action.update", "value": {"result": "CREATE_USER"}},
                    {"type": "com.okta.appUser.profile.update", "value": {"accountType": "PRO", "nickName": "administrator2"}}
                ]}),
                "{name}"
            );
        }
        let mut body = fixture("import-hook-request.json");
        body["data"]["context"]["matches"] = json!([{"id": "00garwpuyxHaWOkdV0g4"}]);
        let answer = answer_of(&h, HookType::Import, body).await;
        let link = fixture("import-hook-response-link-user.json");
        assert_eq!(answer["commands"][0], link["commands"][0]);
        assert_eq!(answer["commands"][1], link["commands"][1]);
    }

    #[tokio::test]
    async fn example_password_import_script() {
        let h = example_handler(HookType::PasswordImport);
        for sample in [
            "password-import-request.json",
            "password-import-request-idx.json",
        ] {
            assert_eq!(
                answer_of(&h, HookType::PasswordImport, fixture(sample)).await,
                fixture("password-import-response-verified.json"),
                "{sample}"
            );
        }
        let mut wrong = fixture("password-import-request.json");
        wrong["data"]["context"]["credential"]["password"] = json!("not-Okta");
        assert_eq!(
            answer_of(&h, HookType::PasswordImport, wrong).await,
            fixture("password-import-response-unverified.json")
        );
        let mut stranger = fixture("password-import-request.json");
        stranger["data"]["context"]["credential"]["username"] = json!("nobody@example.com");
        assert_eq!(
            answer_of(&h, HookType::PasswordImport, stranger).await,
            fixture("password-import-response-unverified.json")
        );
    }

    #[tokio::test]
    async fn example_saml_script() {
        let h = example_handler(HookType::Saml);
        let answer = answer_of(&h, HookType::Saml, fixture("saml-hook-request.json")).await;
        let sample = fixture("saml-hook-response-uri-claims.json");
        assert_eq!(
            answer["commands"][0]["value"][0],
            sample["commands"][0]["value"][2]
        );
        assert_eq!(
            answer["commands"][1]["value"][0],
            json!({"op": "replace", "path": "/claims/middle/attributeValues/0/value", "value": "Admin Last"})
        );
    }

    #[tokio::test]
    async fn example_telephony_script() {
        let h = example_handler(HookType::Telephony);
        for sample in [
            "telephony-hook-request.json",
            "telephony-hook-request-spec.json",
        ] {
            assert_eq!(
                answer_of(&h, HookType::Telephony, fixture(sample)).await,
                json!({}),
                "{sample}"
            );
        }
        let mut body = fixture("telephony-hook-request.json");
        body["data"]["messageProfile"]["phoneNumber"] = json!("+882 1234 5678");
        let answer = answer_of(&h, HookType::Telephony, body).await;
        assert_eq!(
            answer,
            json!({
                "commands": [{"type": "com.okta.telephony.action", "value": [
                    {"status": "FAILED", "provider": "hookwarden", "transactionId": "uS5871kJThSsU8qlA1LTcg"}]}],
                "error": {"errorSummary": "SMS to this destination is blocked."}
            })
        );
        let mut body = fixture("telephony-hook-request.json");
        body["data"]["messageProfile"]["phoneNumber"] = json!("+2348012345678");
        assert!(answer_of(&h, HookType::Telephony, body)
            .await
            .get("error")
            .is_some());
    }

    // ------------------------------------------------------------ sandbox and limits

    #[tokio::test]
    async fn a_script_that_never_ends_is_stopped_by_the_time_budget() {
        let (_dir, h) = script(
            "fn handle(request) { let n = 0; loop { n += 1; } }",
            |c| c.max_operations = 0, // unlimited: only the clock can stop it
            300,
        )
        .expect("compiles");
        let started = Instant::now();
        let e = call(&h, HookType::Token, fixture("token-hook-request.json"))
            .await
            .expect_err("stopped");
        let elapsed = started.elapsed();
        assert!(e.contains("ran past its time limit"), "{e}");
        assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    }

    #[tokio::test]
    async fn the_operation_limit_stops_long_scripts() {
        let (_dir, h) = script(
            "fn handle(request) { let n = 0; for i in 0..1000000 { n += i; } () }",
            |c| c.max_operations = 10_000,
            5000,
        )
        .expect("compiles");
        let started = Instant::now();
        let e = call(&h, HookType::Token, fixture("token-hook-request.json"))
            .await
            .expect_err("stopped");
        assert!(e.contains("max_operations"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn imports_and_eval_are_refused_at_start() {
        for source in [
            "import \"x\" as x;\nfn handle(request) { () }",
            "fn handle(request) { eval(\"1\") }",
        ] {
            let e = script(source, |_| {}, 2000).err().expect("refused");
            assert!(e.contains("test.rhai") && e.contains("line"), "{e}");
        }
    }

    #[tokio::test]
    async fn sleep_fails_at_once() {
        for source in [
            "fn handle(request) { sleep(100); () }",
            "fn handle(request) { let f = Fn(\"sleep\"); f.call(100) }",
            "fn handle(request) { let f = Fn(\"sleep\"); f.call(100.0) }",
        ] {
            let (_dir, h) = handler(source);
            let started = Instant::now();
            let e = call(&h, HookType::Token, fixture("token-hook-request.json"))
                .await
                .expect_err(source);
            assert!(e.contains("sleep is not available"), "{e}");
            assert!(started.elapsed() < Duration::from_millis(500));
        }
    }

    #[test]
    fn syntax_errors_and_a_missing_handle_are_reported_by_new() {
        let e = script("fn handle(request) {\n  let x = ;\n}", |_| {}, 2000)
            .err()
            .expect("syntax error");
        assert!(e.contains("line 2, position"), "{e}");
        let e = script("fn handler(request) { () }", |_| {}, 2000)
            .err()
            .expect("no handle");
        assert!(e.contains("fn handle(request)"), "{e}");
        let e = script("fn handle(request) { undefined_variable }", |_| {}, 2000)
            .err()
            .expect("strict variables");
        assert!(e.contains("undefined_variable"), "{e}");
        let e = ScriptHandler::new(
            &ScriptConfig::new("/nonexistent/x.rhai"),
            Duration::from_secs(1),
        )
        .err()
        .expect("no file");
        assert!(e.contains("/nonexistent/x.rhai"), "{e}");
    }

    #[tokio::test]
    async fn wrong_return_shapes_are_errors() {
        let body = fixture("saml-hook-request.json");
        for (source, expected) in [
            ("fn handle(request) { \"ok\" }", "returned a string"),
            ("fn handle(request) { 42 }", "returned a i64"),
            (
                "fn handle(request) { #{ command: [] } }",
                "`command` is not a key of an answer (did you mean `commands`?)",
            ),
            (
                "fn handle(request) { #{ commands: \"x\" } }",
                "commands is a string, not an array",
            ),
            (
                "fn handle(request) { #{ commands: [#{ value: 1 }] } }",
                "commands[0] has no type",
            ),
        ] {
            let (_dir, h) = handler(source);
            let e = call(&h, HookType::Saml, body.clone())
                .await
                .expect_err(source);
            assert!(e.contains(expected), "{source}: {e}");
        }
        let (_dir, h) = handler("fn handle(request) { () }");
        assert_eq!(answer_of(&h, HookType::Saml, body.clone()).await, json!({}));
        let (_dir, h) = handler("fn handle(request) { allow() }");
        assert_eq!(answer_of(&h, HookType::Saml, body).await, json!({}));
    }

    #[tokio::test]
    async fn errors_never_show_request_values() {
        let body = fixture("password-import-request.json");
        for source in [
            "fn handle(request) { throw request.data.context.credential.password; }",
            "fn handle(request) { throw `bad password ${request.data.context.credential.password}`; }",
            // Rhai's own message would quote the text it could not parse.
            "fn handle(request) { parse_int(request.data.context.credential.password) }",
            "fn handle(request) { #{ commands: request.data.context.credential.password } }",
        ] {
            let (_dir, h) = handler(source);
            let e = call(&h, HookType::PasswordImport, body.clone()).await.expect_err(source);
            assert!(!e.contains("Okta"), "{source}: {e}");
        }
        let (_dir, h) = handler("fn handle(request) { throw \"x\" }");
        let e = call(&h, HookType::PasswordImport, body)
            .await
            .expect_err("throw");
        assert!(e.contains("threw an exception (line 1, position"), "{e}");
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_compiled_script() {
        let (_dir, h) = handler(
            "fn handle(request) { answer([patch_claim(\"access\", \"n\", request.eventId)]) }",
        );
        let h = Arc::new(h);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let mut body = fixture("token-hook-request.json");
                body["eventId"] = json!(format!("e{i}"));
                let answer = answer_of(&h, HookType::Token, body).await;
                assert_eq!(
                    answer["commands"][0]["value"][0]["value"],
                    json!(format!("e{i}"))
                );
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    }
}
