//! `verity serve`: the index, the JSON API, comparisons, run files and downloads, over real HTTP
//! against the binary — and that nothing outside the store is ever served, however the path is
//! spelled.
//!
//! Requests go through a small HTTP/1.1 client over `std::net` on purpose: an HTTP library would
//! normalize `..` and percent-escapes away before they reach the server, which is exactly what the
//! traversal tests must not let happen.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::verity;

/// How long the server may take to start, or a request to be answered.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The store: real runs of the memory target, and two fake ones for the states a run can be in.

struct Store {
    dir: tempfile::TempDir,
    /// Run ids by role: `valid`, `invalid`, `running`, `incomplete`.
    ids: BTreeMap<&'static str, String>,
}

impl Store {
    /// One valid run only.
    fn one_run() -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let valid = real_run(dir.path(), &["--seed", "1"], 0);
        Store {
            dir,
            ids: BTreeMap::from([("valid", valid)]),
        }
    }

    /// A valid run, an invalid one (`--bug lose-acked`), a running one and an incomplete one.
    fn every_status() -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let valid = real_run(dir.path(), &["--seed", "1"], 0);
        let invalid = real_run(dir.path(), &["--seed", "2", "--bug", "lose-acked"], 1);
        let running = fake_run(
            dir.path(),
            &valid,
            "21000101T000000",
            "2100-01-01T00:00:00+00:00",
            3,
            std::process::id(),
        );
        let incomplete = fake_run(
            dir.path(),
            &valid,
            "20990101T000000",
            "2099-01-01T00:00:00+00:00",
            4,
            dead_pid(),
        );
        Store {
            dir,
            ids: BTreeMap::from([
                ("valid", valid),
                ("invalid", invalid),
                ("running", running),
                ("incomplete", incomplete),
            ]),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run_dir(&self, role: &str) -> PathBuf {
        self.path().join(&self.ids[role])
    }

    /// The role of a run id, for normalizing answers.
    fn role_of(&self, id: &str) -> String {
        let role = self.ids.iter().find(|(_, v)| v.as_str() == id);
        format!("[{}]", role.map_or("unknown id", |(k, _)| *k))
    }
}

/// `verity run` of the memory target into `store`; returns the run's id.
fn real_run(store: &Path, args: &[&str], code: i32) -> String {
    let out = verity()
        .args(["run", "--quiet", "--target", "memory", "--time-limit", "1s"])
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("verity runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "verity run {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latest = std::fs::read_link(store.join("latest")).expect("latest is a link");
    latest.to_str().expect("ids are UTF-8").to_string()
}

/// A run directory as `verity run` leaves it while it writes (`pid` alive) or after it was killed
/// (`pid` dead): run.json and half a history ending in a torn line, no results.
fn fake_run(
    store: &Path,
    from: &str,
    stamp: &str,
    started_at: &str,
    seed: u64,
    pid: u32,
) -> String {
    let id = format!("memory-bank/{stamp}");
    let dir = store.join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut meta: Value =
        serde_json::from_slice(&std::fs::read(store.join(from).join("run.json")).unwrap()).unwrap();
    meta["started_at"] = json!(started_at);
    meta["seed"] = json!(seed);
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .unwrap();
    let history = std::fs::read_to_string(store.join(from).join("history.jsonl")).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    let mut half = lines[..lines.len() / 2].join("\n");
    half.push_str("\n{\"index\":99999,\"time_ns\":12");
    std::fs::write(dir.join("history.jsonl"), half).unwrap();
    std::fs::write(dir.join("running.pid"), format!("{pid}\n")).unwrap();
    id
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = verity()
        .arg("--version")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

// ---------------------------------------------------------------------------------------------
// The server, as a child process killed on drop.

struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(store: &Path) -> Server {
        Server::start_on(store, "127.0.0.1:0")
    }

    /// Starts `verity serve` and reads the address from its first line of output.
    fn start_on(store: &Path, bind: &str) -> Server {
        let mut child = verity()
            .args(["serve", "--bind", bind, "--store"])
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("verity serve starts");
        let stderr = drain(child.stderr.take().expect("piped"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            lines.for_each(drop);
        });
        let first = match rx.recv_timeout(DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!(
                    "no first line from verity serve ({other:?}): {}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr = first
            .split_once(" at http://")
            .and_then(|(_, rest)| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        assert!(first.starts_with("serving "), "{first:?}");
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn get(&self, target: &str) -> Reply {
        request(&self.addr, target.as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a pipe into a string in the background (so the child never blocks on a full pipe).
fn drain(pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    text
}

/// Polls `done` until it holds or the deadline passes.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client that sends the request target byte for byte.

#[derive(Debug)]
struct Reply {
    /// 0 when the server closed the connection without answering.
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    fn html(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        self.text()
    }
}

fn request(addr: &str, target: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("the server accepts connections");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    stream.write_all(&req).unwrap();
    let mut raw = Vec::new();
    // A reset after a refused request is an answer too: nothing was served.
    let _ = stream.read_to_end(&mut raw);
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Reply {
            status: 0,
            headers: Vec::new(),
            body: raw.to_vec(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Normalizing answers for snapshots: ids by role, and volatile figures by their shape.

fn normalize_summary(store: &Store, run: &mut Value) {
    let id = run["id"].as_str().expect("an id").to_string();
    run["id"] = json!(store.role_of(&id));
    run["started_at"] = json!("[started_at]");
    for field in ["ops", "ops_per_s"] {
        if run[field].is_number() {
            run[field] = json!("[number]");
        }
    }
    // report.html is written by `verity run` once reports land; its presence is not this test's.
    run["has_report"] = json!("[bool]");
}

/// Numbers become their sign: counts and latencies vary from run to run, their presence does not.
fn shape(v: &Value) -> Value {
    match v.as_f64() {
        Some(x) if x > 0.0 => json!("[+]"),
        Some(x) if x < 0.0 => json!("[-]"),
        Some(_) => json!(0),
        None => v.clone(),
    }
}

fn row_of<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<tr data-run=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = html[start..].find("</tr>").expect("the row ends") + start;
    &html[start..end]
}

fn rows_in(html: &str) -> usize {
    html.matches("<tr data-run=").count()
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn the_index_lists_every_run_with_its_verdict_newest_first() {
    let store = Store::every_status();
    let server = Server::start(store.path());
    let html = server.get("/").html();
    assert_eq!(rows_in(&html), 4, "{html}");
    for (role, id) in &store.ids {
        let row = row_of(&html, id);
        assert!(
            row.contains(&format!("<span class=\"verdict {role}\">{role}</span>")),
            "{role}: {row}"
        );
        assert!(row.contains(&format!("href=\"/runs/{id}/\"")), "{row}");
        assert!(
            row.contains(&format!("href=\"/download/{id}.tar.zst\"")),
            "{row}"
        );
        assert!(row.contains(&format!("name=\"a\" value=\"{id}\"")), "{row}");
        assert!(row.contains(&format!("name=\"b\" value=\"{id}\"")), "{row}");
    }
    assert!(row_of(&html, &store.ids["invalid"]).contains("lost-transfer"));
    assert!(row_of(&html, &store.ids["invalid"]).contains("lose-acked"));
    let order: Vec<usize> = ["running", "incomplete", "invalid", "valid"]
        .iter()
        .map(|r| {
            html.find(&format!("data-run=\"{}\"", store.ids[r]))
                .unwrap()
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert!(html.contains("<form id=\"compare\" method=\"get\" action=\"/compare\">"));
    assert!(!html.contains("<script"), "pages need no JavaScript");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing is fetched"
    );
}

#[test]
fn the_index_filters_by_verdict_and_target() {
    let store = Store::every_status();
    let server = Server::start(store.path());
    for role in ["valid", "invalid", "running", "incomplete"] {
        let html = server.get(&format!("/?verdict={role}&target=")).html();
        assert_eq!(rows_in(&html), 1, "{role}");
        row_of(&html, &store.ids[role]);
        assert!(
            html.contains(&format!("<option value=\"{role}\" selected>")),
            "{role}"
        );
    }
    let html = server.get("/?verdict=&target=memory").html();
    assert_eq!(rows_in(&html), 4);
    let html = server.get("/?target=cluster").html();
    assert_eq!(rows_in(&html), 0);
    assert!(html.contains("No run matches"), "{html}");
    let api = server.get("/api/runs?verdict=invalid").json();
    assert_eq!(api.as_array().unwrap().len(), 1);
    assert_eq!(api[0]["id"], json!(store.ids["invalid"]));
    let bad = server.get("/?verdict=bogus");
    assert_eq!(bad.status, 400);
    assert!(bad
        .text()
        .contains("valid, invalid, unknown, running, incomplete"));
    let bad = server.get("/api/runs?verdict=bogus");
    assert_eq!(bad.status, 400);
    assert!(serde_json::from_slice::<Value>(&bad.body).unwrap()["error"].is_string());
}

#[test]
fn the_api_lists_runs_and_details_one() {
    let store = Store::every_status();
    let server = Server::start(store.path());
    let mut runs = server.get("/api/runs").json();
    for run in runs.as_array_mut().unwrap() {
        normalize_summary(&store, run);
    }
    insta::assert_json_snapshot!("api_runs", runs);

    let detail = server
        .get(&format!("/api/runs/{}", store.ids["invalid"]))
        .json();
    assert_eq!(detail["verdict"], json!("invalid"));
    let lost = &detail["checkers"]["conservation"]["anomaly_counts"]["lost-transfer"];
    assert!(lost.as_u64().unwrap() > 0, "{detail}");
    assert_eq!(detail["checkers"]["conservation"]["valid"], json!(false));
    assert!(detail["stats"]["ops"].as_u64().unwrap() > 0);
    let running = server
        .get(&format!("/api/runs/{}", store.ids["running"]))
        .json();
    assert_eq!(running["verdict"], json!("running"));
    assert_eq!(running["stats"], Value::Null);
    let missing = server.get("/api/runs/memory-bank/19700101T000000");
    assert_eq!(missing.status, 404);
    assert!(missing
        .text()
        .contains("no run memory-bank/19700101T000000"));
}

#[test]
fn compare_puts_two_runs_side_by_side() {
    let store = Store::every_status();
    let server = Server::start(store.path());
    let (a, b) = (&store.ids["valid"], &store.ids["invalid"]);
    let query = format!("a={}&b={}", a.replace('/', "%2F"), b);
    let html = server.get(&format!("/compare?{query}")).html();
    for needle in [
        a.as_str(),
        b.as_str(),
        "<span class=\"verdict valid\">valid</span>",
        "<span class=\"verdict invalid\">invalid</span>",
        "conservation: lost-transfer",
        "transfer p50",
        "transfer p99",
        "read p95",
        "ops/s",
    ] {
        assert!(html.contains(needle), "{needle:?} missing from {html}");
    }

    let mut api = server.get(&format!("/api/compare?{query}")).json();
    let lost = api["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["anomaly"] == json!("lost-transfer"))
        .expect("a lost-transfer row")
        .clone();
    assert_eq!(lost["a"], json!(0));
    assert_eq!(lost["diff"], lost["b"]);
    normalize_summary(&store, &mut api["a"]);
    normalize_summary(&store, &mut api["b"]);
    for row in api["anomalies"].as_array_mut().unwrap() {
        for k in ["a", "b", "diff"] {
            row[k] = shape(&row[k]);
        }
    }
    for row in api["stats"].as_array_mut().unwrap() {
        for k in ["a", "b", "diff"] {
            row[k] = if row[k].is_number() {
                json!("[number]")
            } else {
                row[k].clone()
            };
        }
    }
    for row in api["latency"].as_array_mut().unwrap() {
        for k in ["a_ms", "b_ms", "diff_ms"] {
            row[k] = if row[k].is_number() {
                json!("[ms]")
            } else {
                row[k].clone()
            };
        }
    }
    insta::assert_json_snapshot!("api_compare", api);
}

#[test]
fn compare_reads_a_running_history_and_refuses_bad_ids() {
    let store = Store::every_status();
    let server = Server::start(store.path());
    let api = server
        .get(&format!(
            "/api/compare?a={}&b={}",
            store.ids["valid"], store.ids["running"]
        ))
        .json();
    assert_eq!(api["b"]["verdict"], json!("running"));
    assert_eq!(api["notes"], json!([]), "the torn last line is skipped");
    let transfer_b = api["latency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["f"] == json!("transfer") && r["quantile"] == json!("p50"))
        .expect("a transfer p50 row");
    assert!(transfer_b["b_ms"].is_number(), "{transfer_b}");
    assert!(api["stats"][0]["b"].is_null(), "no results, no counts");

    for bad in [
        "/compare",
        "/compare?a=memory-bank/x",
        "/compare?a=..%2F..&b=..%2F..%2Fetc",
        "/api/compare?a=latest&b=latest",
    ] {
        let r = server.get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = server.get(&format!(
        "/compare?a={}&b=memory-bank/19700101T000000",
        store.ids["valid"]
    ));
    assert_eq!(r.status, 404);
}

#[test]
fn download_is_a_tar_zst_of_the_run() {
    let store = Store::one_run();
    let server = Server::start(store.path());
    let id = &store.ids["valid"];
    let reply = server.get(&format!("/download/{id}.tar.zst"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/zstd"));
    let file_name = id.replace('/', "-") + ".tar.zst";
    assert_eq!(
        reply.header("content-disposition"),
        Some(format!("attachment; filename=\"{file_name}\"").as_str())
    );
    let entries = untar(&reply.body);
    for name in ["run.json", "history.jsonl", "results.json"] {
        let on_disk = std::fs::read(store.run_dir("valid").join(name)).unwrap();
        let archived = entries
            .get(&format!("{id}/{name}"))
            .unwrap_or_else(|| panic!("{name} missing from {:?}", entries.keys()));
        assert_eq!(*archived, on_disk, "{name}");
    }
    assert_eq!(
        server
            .get("/download/memory-bank/19700101T000000.tar.zst")
            .status,
        404
    );
    assert_eq!(server.get(&format!("/download/{id}")).status, 404);
}

/// The regular files of a `.tar.zst`, by path.
fn untar(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let tar = zstd::decode_all(archive).expect("the body is zstd");
    let mut archive = tar::Archive::new(&tar[..]);
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("the body is a tar") {
        let mut entry = entry.expect("a tar entry");
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().display().to_string();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            files.insert(path, body);
        }
    }
    files
}

#[test]
fn run_files_are_listed_and_served() {
    let store = Store::one_run();
    let notes = store.run_dir("valid").join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("a b.txt"), "spaced out\n").unwrap();
    let server = Server::start(store.path());
    let id = &store.ids["valid"];

    let redirect = server.get(&format!("/runs/{id}"));
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.header("location"),
        Some(format!("/runs/{id}/").as_str())
    );

    let listing = server.get(&format!("/runs/{id}/")).html();
    for name in ["history.jsonl", "run.json", "results.json", "verity.log"] {
        assert!(
            listing.contains(&format!("<a href=\"/runs/{id}/{name}\">{name}</a>")),
            "{name}: {listing}"
        );
    }
    assert!(listing.contains(&format!("<a href=\"/runs/{id}/notes/\">notes/</a>")));

    let results = server.get(&format!("/runs/{id}/results.json")).json();
    assert_eq!(results["valid"], json!(true));
    let history = server.get(&format!("/runs/{id}/history.jsonl"));
    assert_eq!(history.status, 200);
    assert_eq!(
        history.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        history.text().starts_with("{\"index\":0,"),
        "{}",
        history.text()
    );
    let log = server.get(&format!("/runs/{id}/verity.log"));
    assert_eq!(
        log.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        log.body,
        std::fs::read(store.run_dir("valid").join("verity.log")).unwrap()
    );

    let sub = server.get(&format!("/runs/{id}/notes/")).html();
    assert!(
        sub.contains(&format!("href=\"/runs/{id}/notes/a%20b.txt\"")),
        "{sub}"
    );
    assert_eq!(
        server.get(&format!("/runs/{id}/notes/a%20b.txt")).text(),
        "spaced out\n"
    );

    for missing in [
        format!("/runs/{id}/nope.json"),
        format!("/runs/{id}/run.json/"),
        "/runs/memory-bank/19700101T000000/".to_string(),
        "/runs/memory-bank".to_string(),
        "/nope".to_string(),
    ] {
        assert_eq!(server.get(&missing).status, 404, "{missing}");
    }
}

#[test]
fn nothing_outside_the_store_is_served() {
    let store = Store::one_run();
    let id = store.ids["valid"].clone();
    let run = store.run_dir("valid");
    let outside = tempfile::tempdir().unwrap();
    let secret = "SIBLING-SECRET-4f2a9c";
    std::fs::write(outside.path().join("secret.txt"), secret).unwrap();
    let store_secret = "STORE-ROOT-SECRET-77b1";
    std::fs::write(store.path().join("secret.txt"), store_secret).unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let passwd_line = passwd.lines().next().unwrap_or("root:x:0:0").to_string();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, run.join(name)).unwrap();
    link(Path::new("/etc/passwd"), "passwd");
    link(&outside.path().join("secret.txt"), "sibling");
    link(outside.path(), "outdir");
    link(&store.path().join("secret.txt"), "storefile");
    link(Path::new("run.json"), "inside");
    let server = Server::start(store.path());

    // Controls: the run and a symlink inside it are served, so a refusal below means something.
    assert_eq!(server.get(&format!("/runs/{id}/run.json")).status, 200);
    let inside = server.get(&format!("/runs/{id}/inside"));
    assert_eq!(inside.body, std::fs::read(run.join("run.json")).unwrap());

    let up = "../".repeat(12);
    let attempts = [
        format!("/runs/{id}/passwd"),
        format!("/runs/{id}/sibling"),
        format!("/runs/{id}/outdir/secret.txt"),
        format!("/runs/{id}/outdir/"),
        format!("/runs/{id}/storefile"),
        format!("/runs/{id}/../../secret.txt"),
        format!("/runs/{id}/{up}etc/passwd"),
        format!("/runs/{id}/%2e%2e/%2e%2e/secret.txt"),
        format!("/runs/{id}/%2E%2e/%2E%2e/secret.txt"),
        format!("/runs/{id}/.%2e/.%2e/secret.txt"),
        format!("/runs/{id}/%2e./%2e./secret.txt"),
        format!("/runs/{id}/..%2f..%2fsecret.txt"),
        format!("/runs/{id}/%2f..%2f..%2fsecret.txt"),
        format!("/runs/{id}/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("/runs/{id}/..\\..\\secret.txt"),
        format!("/runs/{id}/..%5c..%5csecret.txt"),
        format!("/runs/{id}/%252e%252e/%252e%252e/secret.txt"),
        format!("/runs/{id}/%252e%252e%252f%252e%252e%252fsecret.txt"),
        format!("/runs/{id}/run.json%00"),
        format!("/runs/{id}/%00/../../secret.txt"),
        format!("/runs/{id}//etc/passwd"),
        format!("/runs/{id}/%c0%ae%c0%ae/secret.txt"),
        "/runs/../secret.txt".to_string(),
        "/runs/%2e%2e/secret.txt".to_string(),
        "/runs/memory-bank/%2e%2e/secret.txt".to_string(),
        "/runs/memory-bank/..%2fsecret.txt".to_string(),
        "/runs/..%2f..%2f..%2f..%2fetc/passwd".to_string(),
        "/runs/latest/../secret.txt".to_string(),
        "/runs/latest/run.json".to_string(),
        "/runs//etc/passwd".to_string(),
        "/../secret.txt".to_string(),
        "/%2e%2e/%2e%2e/etc/passwd".to_string(),
        format!("/{up}etc/passwd"),
        "//etc/passwd".to_string(),
        "/download/..%2f..%2fsecret.txt.tar.zst".to_string(),
        "/download/memory-bank/..%2f...tar.zst".to_string(),
        format!("/download/{id}/../../secret.tar.zst"),
        "/api/runs/..%2f..%2fetc/passwd".to_string(),
        "/api/runs/%2e%2e/%2e%2e".to_string(),
        "/compare?a=..%2f..%2fsecret.txt&b=..".to_string(),
        "/api/compare?a=%252e%252e%252fx&b=%2e%2e/%2e%2e".to_string(),
    ];
    for target in &attempts {
        check_refused(
            &server.get(target),
            target,
            &[secret, store_secret, &passwd_line],
        );
    }
    // Raw bytes that no client library would send.
    for raw in [
        format!("/runs/{id}/run.json\0.html").into_bytes(),
        format!("/runs/{id}/\0/../../secret.txt").into_bytes(),
    ] {
        let reply = request(&server.addr, &raw);
        assert!(
            matches!(reply.status, 0 | 400 | 404),
            "{raw:?}: {} {}",
            reply.status,
            reply.text()
        );
    }

    let listing = server.get(&format!("/runs/{id}/")).html();
    for hidden in ["passwd", "sibling", "outdir", "storefile"] {
        assert!(
            !listing.contains(&format!(">{hidden}<")),
            "{hidden} is listed: {listing}"
        );
    }
    assert!(listing.contains(">inside<"), "{listing}");

    let archive = server.get(&format!("/download/{id}.tar.zst"));
    assert_eq!(archive.status, 200);
    let files = untar(&archive.body);
    assert!(files.contains_key(&format!("{id}/run.json")));
    for (name, body) in &files {
        let body = String::from_utf8_lossy(body);
        for leaked in [secret, store_secret, passwd_line.as_str()] {
            assert!(!body.contains(leaked), "{name} holds {leaked:?}");
        }
    }
}

fn check_refused(reply: &Reply, target: &str, secrets: &[&str]) {
    assert!(
        matches!(reply.status, 400 | 404),
        "{target}: {} {}",
        reply.status,
        reply.text()
    );
    let body = reply.text();
    for s in secrets {
        assert!(!body.contains(s), "{target} leaked {s:?}");
    }
}

#[test]
fn startup_problems_are_clear() {
    let out = verity()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--store",
            "/nonexistent/verity-store",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the store /nonexistent/verity-store does not exist"),
        "{stderr}"
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    let out = verity()
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let store = tempfile::tempdir().unwrap();
    let mut child = verity()
        .args(["serve", "--bind", &addr, "--store"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until("verity serve to give up on a taken port", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.unwrap().code(), Some(254), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    drop(taken);
}

#[test]
fn an_empty_store_is_served_and_a_public_address_warns() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_on(store.path(), "0.0.0.0:0");
    wait_until("the warning", || {
        server
            .stderr
            .lock()
            .unwrap()
            .contains("warning: listening on 0.0.0.0")
    });
    let port = server.addr.rsplit(':').next().unwrap();
    let html = request(&format!("127.0.0.1:{port}"), b"/").html();
    assert!(html.contains("No runs in this store yet"), "{html}");
    assert_eq!(
        request(&format!("127.0.0.1:{port}"), b"/api/runs").json(),
        json!([])
    );

    let quiet = Server::start(store.path());
    wait_until("the greeting", || {
        quiet.stderr.lock().unwrap().contains("Ctrl-C stops it")
    });
    assert!(!quiet.stderr.lock().unwrap().contains("warning"));
}

#[test]
fn help_explains_the_routes() {
    let out = verity().args(["serve", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--store",
        "--bind",
        "/compare?a=",
        "/download/",
        "/api/runs",
        "port 0",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from {help}");
    }
}

// ---------------------------------------------------------------------------------------------
// In a real browser.

/// The index, a filter, a report opened from it and the compare page, in headless Chromium: no
/// console errors, the runs and their states shown, the report's charts ready when served.
#[test]
fn the_index_a_report_and_compare_work_in_a_browser() {
    use crate::browser::Browser;
    let store = Store::every_status();
    let server = Server::start(store.path());
    let browser = Browser::launch();
    let base = format!("http://{}", server.addr);

    let page = browser.open(&format!("{base}/"));
    page.assert_no_console_errors();
    let rows: u64 = page.eval("document.querySelectorAll('tbody tr').length");
    assert!(rows >= 4, "the index lists {rows} runs");
    let text: String = page.eval("document.body.innerText");
    for status in ["valid", "invalid", "running", "incomplete"] {
        assert!(
            text.contains(status),
            "the index shows no {status} run:\n{text}"
        );
    }
    page.screenshot("serve-index");
    drop(page);

    let page = browser.open(&format!("{base}/?verdict=invalid"));
    page.assert_no_console_errors();
    let rows: u64 = page.eval("document.querySelectorAll('tbody tr').length");
    assert_eq!(rows, 1, "the invalid filter keeps one run");
    page.screenshot("serve-index-invalid");
    drop(page);

    let invalid = &store.ids["invalid"];
    let page = browser.open(&format!("{base}/runs/{invalid}/report.html"));
    assert!(
        page.wait_for(
            "window.verity && window.verity.ready === true",
            Duration::from_secs(60)
        ),
        "the served report's charts never became ready"
    );
    page.assert_no_console_errors();
    let anomalies: u64 = page.eval("document.querySelectorAll('.anomaly').length");
    assert!(anomalies > 0, "the served report shows no anomaly");
    drop(page);

    let valid = &store.ids["valid"];
    let page = browser.open(&format!("{base}/compare?a={valid}&b={invalid}"));
    page.assert_no_console_errors();
    let text: String = page.eval("document.body.innerText");
    assert!(
        text.contains("lost-transfer") && text.contains("p99"),
        "the compare page lacks the anomaly counts or the latency quantiles:\n{text}"
    );
    page.screenshot("serve-compare");
}
