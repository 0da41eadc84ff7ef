//! `verity serve-ledger`: a reference server of the HTTP ledger protocol (`docs/protocols/http.md`),
//! with the memory target behind it — bug knobs included — so that a user can see what a correct
//! server answers, what each anomaly looks like through the protocol, and test an HTTP client or
//! proxy of their own against it.
//!
//! Every request borrows one of the memory target's clients (a pool, so concurrent requests run
//! concurrently, as a real service's do) and maps its completion to a status: `ok` → 200, `fail` →
//! 409 with the reason, `info` → 503 (the outcome is unknown: the memory client lost a reply).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use verity_history::{Completion, EventType, Invocation, Value, F};

use crate::registry::{TargetOptions, TARGETS};
use crate::{Client, Target, TargetError};

/// Clients kept for reuse between requests.
const POOL_MAX: usize = 256;

/// What the reference server is.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub workload: String,
    pub bugs: Vec<String>,
    pub seed: u64,
    /// Break every `n`-th answer this way, after doing what was asked (to show what a client —
    /// verity — must survive).
    pub misbehave: Option<(Misbehave, u64)>,
}

/// Ways a server answers badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    /// The body is cut in the middle of its JSON.
    Truncated,
    /// Fields of the wrong type (`"id": "7"`, `"balances": "lots"`).
    WrongType,
    /// The answer to another request (another transfer id, other micro-ops).
    WrongId,
    /// `500 Internal Server Error`.
    Error500,
    /// No answer for a minute.
    Hang,
}

impl Misbehave {
    pub const NAMES: &'static [&'static str] =
        &["truncated", "wrong-type", "wrong-id", "error-500", "hang"];

    pub fn parse(s: &str) -> Option<Misbehave> {
        Some(match s {
            "truncated" => Misbehave::Truncated,
            "wrong-type" => Misbehave::WrongType,
            "wrong-id" => Misbehave::WrongId,
            "error-500" => Misbehave::Error500,
            "hang" => Misbehave::Hang,
            _ => return None,
        })
    }
}

struct AppState {
    target: Arc<dyn Target>,
    pool: Mutex<Vec<Box<dyn Client>>>,
    next_worker: AtomicUsize,
    /// Answers given, for `misbehave`.
    answered: std::sync::atomic::AtomicU64,
    options: ServerOptions,
}

/// The memory target the server puts behind the protocol, checked like `verity run` checks it.
pub fn reference_target(options: &ServerOptions) -> Result<Arc<dyn Target>, TargetError> {
    let entry = TARGETS
        .get("memory")
        .map_err(|e| TargetError::Setup(e.to_string()))?;
    let target_options = TargetOptions {
        bugs: options.bugs.clone(),
        seed: options.seed,
        workload: options.workload.clone(),
        ..TargetOptions::default()
    };
    if !entry.serves(&options.workload) {
        return Err(TargetError::BadOptions(format!(
            "unknown workload {:?}: valid choices are {}",
            options.workload,
            entry.workloads.join(", ")
        )));
    }
    (entry.create)(&target_options)
}

/// Serves the protocol on `listener` until the future is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: ServerOptions,
) -> Result<(), TargetError> {
    let target = reference_target(&options)?;
    let state = Arc::new(AppState {
        target,
        pool: Mutex::new(Vec::new()),
        next_worker: AtomicUsize::new(0),
        answered: Default::default(),
        options,
    });
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/setup", post(setup))
        .route("/transfer", post(transfer))
        .route("/balances", get(balances))
        .route("/txn", post(txn))
        .with_state(state);
    axum::serve(listener, app)
        .await
        .map_err(|e| TargetError::Setup(format!("the server stopped: {e}")))
}

/// Binds `addr` and returns the listener with the address it got (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), TargetError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| TargetError::Setup(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| TargetError::Setup(format!("cannot read the bound address: {e}")))?;
    Ok((listener, local))
}

async fn hello(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "name": "verity-reference-ledger",
        "workloads": [s.options.workload],
        "bugs": s.options.bugs,
    }))
}

async fn setup(State(s): State<Arc<AppState>>, Json(body): Json<Value>) -> Response {
    let init = Invocation {
        f: F::Setup,
        value: body,
    };
    match s.target.setup(&init).await {
        Ok(_) => (StatusCode::OK, Json(json!({}))).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn transfer(State(s): State<Arc<AppState>>, Json(body): Json<Value>) -> Response {
    let Value::Transfer(t) = body else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a transfer is {\"id\", \"from\", \"to\", \"amount\"}",
        );
    };
    let done = run(
        &s,
        Invocation {
            f: F::Transfer,
            value: Value::Transfer(t),
        },
    )
    .await;
    let wrong = json!({ "id": t.id.wrapping_add(1_000_000) });
    finish(&s, done, json!({ "id": t.id }), wrong).await
}

#[derive(Debug, Deserialize)]
struct ReadQuery {
    #[serde(default)]
    r#final: bool,
}

async fn balances(State(s): State<Arc<AppState>>, Query(q): Query<ReadQuery>) -> Response {
    let value = if q.r#final {
        Value::map([("final", Value::Bool(true))])
    } else {
        Value::Null
    };
    let done = run(&s, Invocation { f: F::Read, value }).await;
    let body = serde_json::to_value(&done.value).unwrap_or_default();
    finish(&s, done, body.clone(), body).await
}

#[derive(Debug, Deserialize)]
struct TxnBody {
    ops: Value,
}

async fn txn(State(s): State<Arc<AppState>>, Json(body): Json<TxnBody>) -> Response {
    let done = run(
        &s,
        Invocation {
            f: F::Txn,
            value: body.ops,
        },
    )
    .await;
    let ops = serde_json::to_value(&done.value).unwrap_or_default();
    let mut other = ops.clone();
    if let Some(first) = other.as_array_mut().and_then(|a| a.first_mut()) {
        if let Some(k) = first.get_mut(1) {
            *k = json!(k.as_i64().unwrap_or(0).wrapping_add(1_000_000));
        }
    }
    finish(&s, done, json!({ "ops": ops }), json!({ "ops": other })).await
}

/// The answer to a request, broken on purpose every n-th time when the server misbehaves.
/// `other` is what the answer to another request would have been.
async fn finish(
    s: &AppState,
    done: Completion,
    ok_body: serde_json::Value,
    other: serde_json::Value,
) -> Response {
    let n = s.answered.fetch_add(1, Ordering::Relaxed) + 1;
    let Some((mode, every)) = s.options.misbehave else {
        return answer(done, ok_body);
    };
    if every == 0 || !n.is_multiple_of(every) {
        return answer(done, ok_body);
    }
    match mode {
        Misbehave::Truncated => {
            let text = ok_body.to_string();
            let cut = &text[..text.len() / 2];
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                cut.to_string(),
            )
                .into_response()
        }
        Misbehave::WrongType => {
            let body = json!({ "id": "seven", "balances": "lots", "applied": {}, "ops": 7 });
            (StatusCode::OK, Json(body)).into_response()
        }
        Misbehave::WrongId => (StatusCode::OK, Json(other)).into_response(),
        Misbehave::Error500 => error(StatusCode::INTERNAL_SERVER_ERROR, "something broke"),
        Misbehave::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            answer(done, ok_body)
        }
    }
}

/// Runs one operation on a pooled client of the memory target.
async fn run(s: &AppState, op: Invocation) -> Completion {
    let pooled = s.pool.lock().pop();
    let mut client = match pooled {
        Some(c) => c,
        None => {
            let worker = s.next_worker.fetch_add(1, Ordering::Relaxed);
            match s.target.client(worker).await {
                Ok(c) => c,
                Err(e) => return Completion::fail(op.value.clone(), e.to_string()),
            }
        }
    };
    let done = client.invoke(&op).await;
    let mut pool = s.pool.lock();
    if pool.len() < POOL_MAX {
        pool.push(client);
    }
    done
}

fn answer(done: Completion, ok_body: serde_json::Value) -> Response {
    let why = done.error.unwrap_or_default();
    match done.kind {
        EventType::Ok => (StatusCode::OK, Json(ok_body)).into_response(),
        EventType::Fail => error(StatusCode::CONFLICT, &why),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

fn error(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({ "error": why }))).into_response()
}
