//! The `exec` target: any program that speaks JSON lines on stdin and stdout is a ledger verity can
//! audit — an adapter in any language, with no Rust to write (the protocol is in
//! `docs/protocols/exec.md`). Maelstrom drives its nodes the same way; here the program is a
//! client of the store under test, one process per worker.
//!
//! Every process starts with a handshake (`hello`: the protocol version, the worker, the workload;
//! the program answers with its name and the workloads it serves), then answers one request per
//! line, in order, each reply naming the request it answers. A program is never trusted: a reply
//! that does not come within `--op-timeout`, a program that exits, a line that is not JSON, a reply
//! to another request or of the wrong shape — each ends the operation as `fail` when nothing can
//! have happened (a read, or a request the program never received) and as `info` otherwise, with
//! the reason in the history; the process is then killed (its whole process group) and a fresh one
//! takes the next operation. Its standard error goes to `exec/worker-<n>.log` in the run directory;
//! `$VERITY_DATA_DIR` names a directory it may keep data in (shared by all its processes).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use verity_history::{Completion, EventType, Invocation, MicroOp, MopF, Value, F};

use crate::registry::{OptionSpec, TargetOptions};
use crate::{Client, Target, TargetError};

pub const CMD: OptionSpec = OptionSpec {
    name: "cmd",
    about: "the adapter: a shell command that speaks JSON lines (docs/protocols/exec.md)",
    values: &[],
    required: true,
    default: None,
};

/// The protocol version verity speaks.
const PROTOCOL: i64 = 1;
/// How long a program may take to start and answer `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest reply line read; a longer one is a protocol violation, not a memory blow-up.
const LINE_BYTES_MAX: usize = 16 << 20;

pub fn create(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    let cmd = options.param(&CMD).ok_or_else(|| {
        TargetError::BadOptions(
            "--target exec needs --cmd \"…\": the program to run (see docs/protocols/exec.md)"
                .into(),
        )
    })?;
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("verity-exec-{}", std::process::id()))
    });
    std::fs::create_dir_all(dir.join("data"))
        .map_err(|e| TargetError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    Ok(Arc::new(ExecTarget {
        cmd: cmd.to_string(),
        workload: options.workload.clone(),
        dir,
        op_timeout: options.op_timeout.unwrap_or(Duration::from_secs(2)),
        seed: options.seed,
    }))
}

pub struct ExecTarget {
    cmd: String,
    workload: String,
    /// Logs, and `data/` for the program.
    dir: PathBuf,
    op_timeout: Duration,
    seed: u64,
}

impl ExecTarget {
    fn client_for(&self, label: String) -> ExecClient {
        ExecClient {
            cmd: self.cmd.clone(),
            workload: self.workload.clone(),
            label,
            dir: self.dir.clone(),
            op_timeout: self.op_timeout,
            seed: self.seed,
            process: None,
            next_id: 0,
        }
    }
}

#[async_trait]
impl Target for ExecTarget {
    fn name(&self) -> &'static str {
        "exec"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        let mut c = self.client_for("setup".into());
        // Starting the program is where a wrong --cmd shows: say so plainly.
        c.ensure_process().await.map_err(|why| match why {
            Spawn::Unserved(msg) => TargetError::BadOptions(msg),
            Spawn::Failed(msg) => TargetError::Setup(msg),
        })?;
        let done = c
            .request(init, false, HELLO_TIMEOUT.max(self.op_timeout))
            .await;
        match done.kind {
            EventType::Ok => Ok(done),
            _ => Err(TargetError::Setup(format!(
                "the adapter did not set up the ledger: {}",
                done.error.unwrap_or_default()
            ))),
        }
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        Ok(Box::new(self.client_for(format!("worker-{worker}"))))
    }
}

/// A running adapter process.
struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Process {
    /// Kills the whole process group (the program may have started others) and reaps it.
    async fn kill(mut self) {
        if let Some(pid) = self.child.id() {
            let _ =
                verity_nemesis::signal::signal_group(pid, verity_nemesis::signal::Signal::SIGKILL);
        }
        let _ = self.child.kill().await;
    }
}

/// Why no process could be had.
enum Spawn {
    /// The program does not serve this workload (bad input).
    Unserved(String),
    Failed(String),
}

/// One worker's adapter process, started on first use and after every protocol violation.
pub struct ExecClient {
    cmd: String,
    workload: String,
    label: String,
    dir: PathBuf,
    op_timeout: Duration,
    seed: u64,
    process: Option<Process>,
    next_id: u64,
}

/// What came back for a request.
enum Reply {
    Line(String),
    /// The request could not even be written: the program never saw it.
    NotDelivered(String),
    NoAnswer(String),
}

impl ExecClient {
    async fn spawn(&self) -> Result<Process, Spawn> {
        let log_path = self.dir.join(format!("{}.log", self.label));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Spawn::Failed(format!("cannot open {}: {e}", log_path.display())))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.cmd)
            .env("VERITY_DATA_DIR", self.dir.join("data"))
            .env("VERITY_WORKER", &self.label)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Spawn::Failed(format!("cannot start {:?}: {e}", self.cmd)))?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout was piped"));
        let mut p = Process {
            child,
            stdin,
            stdout,
        };
        let hello = serde_json::json!({"hello": {
            "protocol": PROTOCOL,
            "worker": self.label,
            "workload": self.workload,
            "seed": self.seed,
        }});
        let line = match exchange(&mut p, &hello.to_string(), HELLO_TIMEOUT).await {
            Reply::Line(l) => l,
            Reply::NotDelivered(why) | Reply::NoAnswer(why) => {
                let status = tokio::time::timeout(Duration::from_millis(500), p.child.wait()).await;
                let not_found = matches!(status, Ok(Ok(s)) if s.code() == Some(127));
                p.kill().await;
                if not_found {
                    return Err(Spawn::Unserved(format!(
                        "the adapter {:?} could not be started: the shell found no such command",
                        self.cmd
                    )));
                }
                return Err(Spawn::Failed(format!(
                    "the adapter {:?} did not answer hello: {why} (its stderr: {})",
                    self.cmd,
                    log_path.display()
                )));
            }
        };
        let reply: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                p.kill().await;
                return Err(Spawn::Failed(format!(
                    "the adapter answered hello with something that is not JSON ({e}): {}",
                    crate::shorten(&line)
                )));
            }
        };
        let served: Vec<String> = reply["hello"]["workloads"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if !served.iter().any(|w| w == &self.workload) {
            p.kill().await;
            return Err(Spawn::Unserved(format!(
                "the adapter {:?} does not serve workload {} (its hello: {})",
                self.cmd,
                self.workload,
                crate::shorten(&line)
            )));
        }
        Ok(p)
    }

    async fn ensure_process(&mut self) -> Result<(), Spawn> {
        if self.process.is_none() {
            self.process = Some(self.spawn().await?);
        }
        Ok(())
    }

    async fn discard(&mut self) {
        if let Some(p) = self.process.take() {
            p.kill().await;
        }
    }

    /// Sends one request and turns whatever comes back into an honest completion. `effects`: the
    /// operation may change the ledger (so a lost answer is `info`, not `fail`).
    async fn request(&mut self, op: &Invocation, effects: bool, timeout: Duration) -> Completion {
        let unknown = |why: String| {
            if effects {
                Completion::info(op.value.clone(), why)
            } else {
                Completion::fail(op.value.clone(), why)
            }
        };
        if let Err(Spawn::Unserved(why) | Spawn::Failed(why)) = self.ensure_process().await {
            // No process: the request was never sent.
            return Completion::fail(op.value.clone(), format!("adapter unavailable: {why}"));
        }
        self.next_id += 1;
        let id = self.next_id;
        let request = serde_json::json!({
            "id": id,
            "f": op.f.as_str(),
            "value": serde_json::to_value(&op.value).unwrap_or(serde_json::Value::Null),
        });
        let p = self.process.as_mut().expect("ensured above");
        let line = match exchange(p, &request.to_string(), timeout).await {
            Reply::Line(l) => l,
            Reply::NotDelivered(why) => {
                self.discard().await;
                return Completion::fail(op.value.clone(), format!("adapter gone: {why}"));
            }
            Reply::NoAnswer(why) => {
                self.discard().await;
                return unknown(format!("adapter: {why}"));
            }
        };
        match interpret(op, id, &line) {
            Ok(c) => c,
            Err(why) => {
                self.discard().await;
                unknown(format!("adapter: {why}"))
            }
        }
    }
}

/// Writes a request line and reads one reply line within `timeout`.
async fn exchange(p: &mut Process, request: &str, timeout: Duration) -> Reply {
    let mut line = request.to_string();
    line.push('\n');
    if let Err(e) = p.stdin.write_all(line.as_bytes()).await {
        return Reply::NotDelivered(format!("cannot write the request: {e}"));
    }
    if let Err(e) = p.stdin.flush().await {
        return Reply::NotDelivered(format!("cannot write the request: {e}"));
    }
    let read = async {
        let mut buf = Vec::new();
        loop {
            let chunk = p.stdout.fill_buf().await?;
            if chunk.is_empty() {
                return Ok::<_, std::io::Error>(None);
            }
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    buf.extend_from_slice(&chunk[..i]);
                    p.stdout.consume(i + 1);
                    return Ok(Some(buf));
                }
                None => {
                    let n = chunk.len();
                    buf.extend_from_slice(chunk);
                    p.stdout.consume(n);
                    if buf.len() > LINE_BYTES_MAX {
                        return Err(std::io::Error::other(format!(
                            "a reply line longer than {LINE_BYTES_MAX} bytes"
                        )));
                    }
                }
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Reply::NoAnswer(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => Reply::NoAnswer(format!("reading its answer failed: {e}")),
        Ok(Ok(None)) => {
            let status =
                match tokio::time::timeout(Duration::from_millis(200), p.child.wait()).await {
                    Ok(Ok(s)) => s.to_string(),
                    _ => "its output closed".to_string(),
                };
            Reply::NoAnswer(format!("exited without answering ({status})"))
        }
        Ok(Ok(Some(bytes))) => Reply::Line(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// A reply line as a completion of `op`, or why it is not one.
pub fn interpret(op: &Invocation, id: u64, line: &str) -> Result<Completion, String> {
    let reply: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| format!("a reply that is not JSON ({e}): {}", crate::shorten(line)))?;
    match reply.get("id") {
        Some(v) => match v.as_u64() {
            Some(got) if got == id => {}
            Some(got) => return Err(format!("answered request {got} when {id} was asked")),
            None => return Err(format!("a reply whose id is not a number: {v}")),
        },
        None => return Err(format!("a reply without an id: {}", crate::shorten(line))),
    }
    let error = reply
        .get("error")
        .map(|e| e.as_str().map_or_else(|| e.to_string(), String::from))
        .filter(|e| !e.trim().is_empty());
    let kind = match reply.get("type") {
        None => None,
        Some(serde_json::Value::String(t)) => Some(t.as_str()),
        Some(other) => return Err(format!("a reply whose type is not a string: {other}")),
    };
    let value = match reply.get("value") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Value>(v.clone())
                .map_err(|e| format!("a reply value verity cannot read ({e})"))?,
        ),
    };
    match kind {
        Some("ok") => {
            let value = checked_ok_value(op, value)?;
            Ok(Completion::ok(value))
        }
        Some("fail") => Ok(Completion::fail(
            op.value.clone(),
            error.unwrap_or_else(|| "failed".into()),
        )),
        Some("info") => Ok(Completion::info(
            op.value.clone(),
            error.unwrap_or_else(|| "unknown".into()),
        )),
        Some(other) => Err(format!(
            "a reply of type {other:?} (expected ok, fail or info)"
        )),
        None => Err(format!("a reply without a type: {}", crate::shorten(line))),
    }
}

/// The value an `ok` completion records, checked against what the operation must return.
fn checked_ok_value(op: &Invocation, value: Option<Value>) -> Result<Value, String> {
    match op.f {
        F::Transfer | F::Setup => Ok(op.value.clone()),
        F::Read => {
            let v = value.ok_or("a read answered without a value")?;
            if v.get("balances").and_then(Value::as_i64_list).is_none() {
                return Err("a read whose value has no list of integer balances".into());
            }
            let wants_journal = matches!(op.value.get("final"), Some(Value::Bool(true)));
            if wants_journal && v.get("applied").and_then(Value::as_i64_list).is_none() {
                return Err("a final read without the list of applied transfer ids".into());
            }
            Ok(v)
        }
        F::Txn => {
            let v = value.ok_or("a transaction answered without its micro-ops")?;
            let (Some(asked), Some(got)) = (op.value.micro_ops(), v.micro_ops()) else {
                return Err("a transaction answered with something that is not micro-ops".into());
            };
            if !MicroOp::answers(&asked, &got) {
                return Err("a transaction answered with other micro-ops than were asked".into());
            }
            Ok(v)
        }
        _ => Ok(value.unwrap_or(Value::Null)),
    }
}

#[async_trait]
impl Client for ExecClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let effects = match op.f {
            F::Read => false,
            F::Txn => op
                .value
                .micro_ops()
                .is_none_or(|m| m.iter().any(|m| m.f != MopF::Read)),
            _ => true,
        };
        self.request(op, effects, self.op_timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_history::Transfer;

    fn transfer() -> Invocation {
        Invocation {
            f: F::Transfer,
            value: Value::Transfer(Transfer {
                id: 7,
                from: 0,
                to: 1,
                amount: 2,
            }),
        }
    }

    #[test]
    fn replies_are_checked_for_their_request_type_and_shape() {
        let t = transfer();
        assert_eq!(
            interpret(&t, 3, r#"{"id":3,"type":"ok"}"#).unwrap().kind,
            EventType::Ok
        );
        let fail = interpret(
            &t,
            3,
            r#"{"id":3,"type":"fail","error":"insufficient-funds"}"#,
        )
        .unwrap();
        assert_eq!(
            (fail.kind, fail.error.as_deref()),
            (EventType::Fail, Some("insufficient-funds"))
        );
        assert!(interpret(&t, 3, r#"{"id":4,"type":"ok"}"#)
            .unwrap_err()
            .contains("request 4"));
        assert!(interpret(&t, 3, r#"{"id":3,"type":"yes"}"#)
            .unwrap_err()
            .contains("\"yes\""));
        assert!(interpret(&t, 3, r#"{"id":3,"ty"#)
            .unwrap_err()
            .contains("not JSON"));
        let read = Invocation {
            f: F::Read,
            value: Value::Null,
        };
        assert!(interpret(
            &read,
            1,
            r#"{"id":1,"type":"ok","value":{"balances":"many"}}"#
        )
        .is_err());
        let ok = interpret(
            &read,
            1,
            r#"{"id":1,"type":"ok","value":{"balances":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(
            ok.value.get("balances").and_then(Value::as_i64_list),
            Some(vec![1, 2])
        );
    }
}
