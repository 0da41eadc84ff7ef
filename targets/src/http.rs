//! The `http` target: any ledger that speaks verity's JSON-over-HTTP protocol
//! (`docs/protocols/http.md`) at `--url`, so that a team can audit its own service without an
//! adapter — and `verity serve-ledger` ([`crate::http_server`]) is a reference server of the same
//! protocol, with the memory target's bug knobs behind it.
//!
//! The client trusts status codes and nothing else: `200` with a well-formed body is `ok`; `409` is
//! a definite refusal (`fail`: insufficient funds, an aborted transaction) and so is any other `4xx`
//! (the request was refused before it did anything); a `5xx`, a timeout, a reset connection or a
//! body that is not what the request asked for (truncated, wrong types, the answer to another
//! transfer) is `info` for an operation that may change the ledger, and `fail` for a read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use verity_history::{Completion, EventType, Invocation, MicroOp, MopF, Value, F};

use crate::registry::{OptionSpec, TargetOptions};
use crate::{Client, Target, TargetError};

pub const URL: OptionSpec = OptionSpec {
    name: "url",
    about: "the ledger's base URL, e.g. http://127.0.0.1:8080 (docs/protocols/http.md)",
    values: &[],
    required: true,
    default: None,
};

/// How long the hello and the setup may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn create(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    let url = options.param(&URL).ok_or_else(|| {
        TargetError::BadOptions(
            "--target http needs --url, the ledger's base URL (e.g. http://127.0.0.1:8080; \
             `verity serve-ledger` runs a reference server)"
                .into(),
        )
    })?;
    let base = reqwest::Url::parse(url)
        .map_err(|e| TargetError::BadOptions(format!("--url {url:?} is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http") {
        return Err(TargetError::BadOptions(format!(
            "--url {url:?}: only http:// is spoken (no TLS)"
        )));
    }
    Ok(Arc::new(HttpTarget {
        base: url.trim_end_matches('/').to_string(),
        workload: options.workload.clone(),
        op_timeout: options.op_timeout.unwrap_or(Duration::from_secs(2)),
    }))
}

pub struct HttpTarget {
    base: String,
    workload: String,
    op_timeout: Duration,
}

fn client(timeout: Duration) -> Result<reqwest::Client, TargetError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| TargetError::Setup(format!("cannot build an HTTP client: {e}")))
}

#[async_trait]
impl Target for HttpTarget {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        let http = client(SETUP_TIMEOUT)?;
        let hello_url = format!("{}/hello", self.base);
        let hello = http
            .get(&hello_url)
            .send()
            .await
            .map_err(|e| TargetError::Connect(format!("GET {hello_url}: {e}")))?;
        if !hello.status().is_success() {
            return Err(TargetError::BadOptions(format!(
                "GET {hello_url} answered {}: not a ledger that speaks verity's HTTP protocol",
                hello.status()
            )));
        }
        let body: serde_json::Value = hello.json().await.map_err(|e| {
            TargetError::BadOptions(format!("GET {hello_url}: the hello is not JSON ({e})"))
        })?;
        let served: Vec<&str> = body["workloads"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if !served.contains(&self.workload.as_str()) {
            return Err(TargetError::BadOptions(format!(
                "the ledger at {} does not serve workload {} (its hello: {body})",
                self.base, self.workload
            )));
        }
        let mut c = HttpClient {
            base: self.base.clone(),
            http,
        };
        let done = c.call(init).await;
        match done.kind {
            EventType::Ok => Ok(done),
            _ => Err(TargetError::Setup(format!(
                "POST {}/setup did not succeed: {}",
                self.base,
                done.error.unwrap_or_default()
            ))),
        }
    }

    async fn client(&self, _worker: usize) -> Result<Box<dyn Client>, TargetError> {
        Ok(Box::new(HttpClient {
            base: self.base.clone(),
            http: client(self.op_timeout)?,
        }))
    }
}

pub struct HttpClient {
    base: String,
    http: reqwest::Client,
}

/// Whether an operation may change the ledger.
fn has_effects(op: &Invocation) -> bool {
    match op.f {
        F::Read => false,
        F::Txn => op
            .value
            .micro_ops()
            .is_none_or(|m| m.iter().any(|m| m.f != MopF::Read)),
        _ => true,
    }
}

impl HttpClient {
    async fn call(&mut self, op: &Invocation) -> Completion {
        let unknown = |why: String| indeterminate(op, why);
        let body = serde_json::to_value(&op.value).unwrap_or(serde_json::Value::Null);
        let request = match op.f {
            F::Setup => self.http.post(format!("{}/setup", self.base)).json(&body),
            F::Transfer => self
                .http
                .post(format!("{}/transfer", self.base))
                .json(&body),
            F::Txn => self
                .http
                .post(format!("{}/txn", self.base))
                .json(&serde_json::json!({ "ops": body })),
            F::Read if matches!(op.value.get("final"), Some(Value::Bool(true))) => {
                self.http.get(format!("{}/balances?final=true", self.base))
            }
            F::Read => self.http.get(format!("{}/balances", self.base)),
            _ => return Completion::fail(op.value.clone(), "unsupported-operation"),
        };
        let response = match request.send().await {
            Ok(r) => r,
            // Nothing was sent if the connection could not even be made.
            Err(e) if e.is_connect() => {
                let why = format!("cannot connect: {}", crate::error_chain(&e));
                return Completion::fail(op.value.clone(), why);
            }
            Err(e) if e.is_timeout() => return unknown("timeout".into()),
            // The innermost cause first (a reset, a refused stream), so that the summary, which
            // groups reasons by their first hundred characters, shows it before the URL.
            Err(e) => {
                let why = format!(
                    "request failed: {}: {}",
                    root_cause(&e),
                    crate::error_chain(&e)
                );
                return unknown(why);
            }
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => return unknown("timeout reading the answer".into()),
            Err(e) => return unknown(format!("answer cut short: {e}")),
        };
        answer(op, status.as_u16(), &text)
    }
}

/// The innermost source of an error: what actually went wrong under the layers that add context.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(s) = cause.source() {
        cause = s;
    }
    cause.to_string()
}

/// An operation whose outcome is not known: `info` if it may have taken effect, else `fail`.
fn indeterminate(op: &Invocation, why: String) -> Completion {
    if has_effects(op) {
        Completion::info(op.value.clone(), why)
    } else {
        Completion::fail(op.value.clone(), why)
    }
}

/// The completion an answer with this status and body gives `op`: a refusal (4xx) is `fail`; a
/// server error, or a body that does not answer the request, is `info` for an operation with
/// effects (it may have happened) and `fail` for a read.
pub fn answer(op: &Invocation, status: u16, text: &str) -> Completion {
    let unknown = |why: String| indeterminate(op, why);
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .map(|e| e.as_str().map_or_else(|| e.to_string(), String::from))
        // An empty reason says nothing: the status says more.
        .filter(|e| !e.trim().is_empty());
    if (400..500).contains(&status) {
        let why = error.unwrap_or_else(|| format!("HTTP {status}"));
        return Completion::fail(op.value.clone(), why);
    }
    if !(200..300).contains(&status) {
        let why = error.map_or_else(
            || format!("HTTP {status}"),
            |e| format!("HTTP {status}: {e}"),
        );
        return unknown(why);
    }
    let Some(json) = json else {
        return unknown(format!(
            "an answer that is not JSON: {}",
            crate::shorten(text)
        ));
    };
    match ok_value(op, &json) {
        Ok(v) => Completion::ok(v),
        Err(why) => unknown(why),
    }
}

/// The completion value of a `200` answer, checked against the request it must answer.
fn ok_value(op: &Invocation, json: &serde_json::Value) -> Result<Value, String> {
    match &op.value {
        Value::Transfer(t) => match json.get("id").and_then(serde_json::Value::as_u64) {
            Some(id) if id == t.id => Ok(op.value.clone()),
            Some(id) => Err(format!("the answer to transfer {id}, not {}", t.id)),
            None => Err(format!(
                "a transfer answer without its id: {}",
                crate::shorten(&json.to_string())
            )),
        },
        _ if op.f == F::Setup => Ok(op.value.clone()),
        _ if op.f == F::Read => {
            let v: Value = serde_json::from_value(json.clone())
                .map_err(|e| format!("a read answer verity cannot read ({e})"))?;
            if v.get("balances").and_then(Value::as_i64_list).is_none() {
                return Err("a read answer without a list of integer balances".into());
            }
            if matches!(op.value.get("final"), Some(Value::Bool(true)))
                && v.get("applied").and_then(Value::as_i64_list).is_none()
            {
                return Err("a final read answer without the applied transfer ids".into());
            }
            Ok(v)
        }
        _ if op.f == F::Txn => {
            let ops = json.get("ops").ok_or("a transaction answer without ops")?;
            let v: Value = serde_json::from_value(ops.clone())
                .map_err(|e| format!("transaction ops verity cannot read ({e})"))?;
            let (Some(asked), Some(got)) = (op.value.micro_ops(), v.micro_ops()) else {
                return Err("a transaction answer whose ops are not micro-ops".into());
            };
            if !MicroOp::answers(&asked, &got) {
                return Err("the answer to another transaction (its ops differ)".into());
            }
            Ok(v)
        }
        _ => Ok(Value::Null),
    }
}

#[async_trait]
impl Client for HttpClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        self.call(op).await
    }
}
