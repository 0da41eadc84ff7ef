//! Headless Chromium for the tests of verity's HTML reports and `verity serve` pages.
//!
//! ```ignore
//! let browser = Browser::launch();                       // panics if /usr/bin/chromium is missing
//! let page = browser.open(&file_url(&report));           // returns after the load event
//! assert!(page.wait_for("window.ready === true", Duration::from_secs(30)));
//! page.click("#details");
//! let rows: u32 = page.eval("document.querySelectorAll('tr').length");
//! page.screenshot("report-details");                     // target/test-artifacts/browser/…png
//! page.assert_no_console_errors();
//! assert!(page.requests().iter().all(|url| !url.starts_with("http")));
//! ```
//!
//! Everything is synchronous: a [`Browser`] owns a current-thread tokio runtime, and every call blocks
//! on it with a deadline, so use it from a plain `#[test]` (not from inside an async runtime). The
//! chromiumoxide connection handler is a task on that runtime; it runs whenever a call is waiting.
//! Nothing here sleeps for a fixed time: each wait is a condition with a generous deadline, so a
//! loaded two-core machine only makes the tests slower, and a page that never gets there fails the
//! test with a message saying what it was waiting for.
//!
//! Chromium runs as `/usr/bin/chromium` (Debian's package `chromium`, installed by `scripts/setup`)
//! in its own process group, with a fresh profile directory and its background networking off. It
//! goes away with the [`Browser`]: dropping it — also while a failing test unwinds — closes
//! Chromium's DevTools pipe, which makes Chromium quit, then kills whatever is left of its process
//! group. Because that pipe closes with the test process, not even a test binary killed by a timeout
//! leaves a Chromium behind.
//!
//! Pages served over http get what a user's browser gets: Chromium asks for `/favicon.ico`, and a
//! 404 there is an error in [`Page::console_errors`] ("Failed to load resource: … 404"), so a page
//! that must be error-free declares its icon (`<link rel="icon" href="data:,">` will do) or the
//! server answers for it. file:// pages ask for no icon.

// Not every browser test uses every helper.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EnableParams as LogEnable, EventEntryAdded};
use chromiumoxide::cdp::browser_protocol::network::{
    EnableParams as NetworkEnable, EventLoadingFailed, EventRequestWillBeSent,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, Viewport,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    EnableParams as RuntimeEnable, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::page::ScreenshotParams;
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Debian's Chromium; `scripts/setup chromium` installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long Chromium may take to start and open its DevTools endpoint.
pub const LAUNCH_DEADLINE: Duration = Duration::from_secs(60);
/// How long a page may take to reach its load event, and any single DevTools command to answer.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(60);
/// How long [`Page::click`] waits for its element to appear.
pub const ELEMENT_DEADLINE: Duration = Duration::from_secs(30);
/// How often [`Page::wait_for`] evaluates its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The window, and so the viewport, every page gets.
pub const WINDOW: (u32, u32) = (1400, 1000);
/// Full-page screenshots are cut off below this height (Chromium cannot capture arbitrarily tall
/// surfaces).
const MAX_SCREENSHOT_HEIGHT: f64 = 16_384.0;

/// The flags this machine needs (we run as root, without a GPU and without network access: without
/// the background-networking flags Chromium keeps trying to reach Google), and a few that keep pages
/// deterministic (no throttled timers in background pages, sRGB colours, no scrollbars in
/// screenshots).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
    "--mute-audio",
    "--lang=en-US",
];

/// Events chromiumoxide could not parse (its protocol types are generated for one Chromium
/// revision, and a newer Chromium may send fields or enum values they do not know) are otherwise
/// dropped; these are the ones a [`Page`] records, so the handler keeps their raw JSON instead.
const RECORDED_EVENTS: &[&str] = &[
    "Runtime.consoleAPICalled",
    "Runtime.exceptionThrown",
    "Log.entryAdded",
    "Network.requestWillBeSent",
    "Network.loadingFailed",
];

/// A headless Chromium, killed when dropped. See the module documentation.
pub struct Browser {
    /// Declared first so that it is dropped first: Chromium quits before its connection goes away.
    process: Chromium,
    cdp: chromiumoxide::Browser,
    rt: tokio::runtime::Runtime,
    /// What the connection handler saw that a page may want: raw JSON of events it could not parse,
    /// and the protocol errors, for failure messages.
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    unparsed_events: Vec<Value>,
    protocol_errors: Vec<String>,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and connects to it.
    ///
    /// Panics, naming the package to install, if `/usr/bin/chromium` is missing: a browser test never
    /// silently skips.
    pub fn launch() -> Browser {
        if !Path::new(CHROMIUM).exists() {
            panic!(
                "the browser tests need headless Chromium, and {CHROMIUM} does not exist: install the \
                 Debian package `chromium` with `scripts/setup chromium` (as root; `scripts/setup` \
                 with no arguments installs everything the tests need, and `scripts/test` runs it)"
            );
        }
        let process = Chromium::start();
        let ws_url = process.devtools_url();

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the browser");
        let config = HandlerConfig {
            // `open` sets the viewport itself (chromiumoxide's default would emulate an 800x600
            // touch screen).
            viewport: None,
            request_timeout: LOAD_DEADLINE,
            // Surface unparseable messages to the handler loop below instead of dropping them.
            ignore_invalid_messages: false,
            ..HandlerConfig::default()
        };
        let connect = chromiumoxide::Browser::connect_with_config(ws_url.clone(), config);
        let connected = rt.block_on(async { tokio::time::timeout(LOAD_DEADLINE, connect).await });
        let (cdp, mut handler) = match connected {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => panic!(
                "could not connect to Chromium's DevTools at {ws_url}: {e}\n{}",
                process.stderr_tail()
            ),
            Err(_) => panic!(
                "Chromium's DevTools at {ws_url} did not answer within {LOAD_DEADLINE:?}\n{}",
                process.stderr_tail()
            ),
        };

        let shared = Arc::new(Mutex::new(Shared::default()));
        let seen = Arc::clone(&shared);
        // The handler drives the websocket: every command and event goes through it.
        rt.spawn(async move {
            while let Some(result) = handler.next().await {
                match result {
                    Ok(()) => {}
                    Err(CdpError::InvalidMessage(text, error)) => {
                        let mut seen = lock(&seen);
                        match serde_json::from_str::<Value>(&text) {
                            Ok(event)
                                if RECORDED_EVENTS
                                    .contains(&event["method"].as_str().unwrap_or("")) =>
                            {
                                seen.unparsed_events.push(event)
                            }
                            _ => {
                                if seen.protocol_errors.len() < 20 {
                                    let text: String = text.chars().take(300).collect();
                                    seen.protocol_errors
                                        .push(format!("unparseable message ({error}): {text}"));
                                }
                            }
                        }
                    }
                    Err(error) => {
                        let fatal = matches!(error, CdpError::Ws(_));
                        lock(&seen)
                            .protocol_errors
                            .push(format!("connection: {error}"));
                        if fatal {
                            break;
                        }
                    }
                }
            }
        });

        Browser {
            process,
            cdp,
            rt,
            shared,
        }
    }

    /// Opens `url` (`file://…` or `http://127.0.0.1:…`) in a new page and returns once its load event
    /// has fired. Everything the page logs or fetches is recorded from the very start: the page is
    /// created at about:blank, its listeners attached and the Runtime, Log and Network domains
    /// enabled, and only then does it navigate.
    ///
    /// Panics if the page cannot be loaded (say, a missing file) within [`LOAD_DEADLINE`].
    pub fn open(&self, url: &str) -> Page<'_> {
        let page = self.block_on(&format!("opening a page for {url}"), LOAD_DEADLINE, async {
            let page = self.cdp.new_page("about:blank").await?;
            let events = Events {
                console: page.event_listener::<EventConsoleApiCalled>().await?,
                exceptions: page.event_listener::<EventExceptionThrown>().await?,
                log: page.event_listener::<EventEntryAdded>().await?,
                requests: page.event_listener::<EventRequestWillBeSent>().await?,
                failures: page.event_listener::<EventLoadingFailed>().await?,
                unparsed_seen: lock(&self.shared).unparsed_events.len(),
                record: Record::default(),
            };
            page.execute(RuntimeEnable::default()).await?;
            page.execute(LogEnable::default()).await?;
            page.execute(NetworkEnable::default()).await?;
            // Headless Chromium takes some of the window for browser chrome it does not draw.
            let (width, height) = WINDOW;
            page.execute(SetDeviceMetricsOverrideParams::new(
                width, height, 1.0, false,
            ))
            .await?;
            Ok::<_, CdpError>((page, events))
        });
        let (page, events) = page.unwrap_or_else(|e| self.fail(&format!("opening a page: {e}")));
        let page = Page {
            browser: self,
            page,
            events: Mutex::new(events),
        };
        let navigated = self.block_on(
            &format!("loading {url}"),
            LOAD_DEADLINE + Duration::from_secs(5),
            page.page.goto(url),
        );
        if let Err(e) = navigated {
            self.fail(&format!(
                "could not load {url}: {e}\nthe page's errors so far: {:#?}",
                page.console_errors()
            ));
        }
        page
    }

    /// The pid of Chromium's main process, which is also its process group.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Runs a future on the browser's runtime, for what the synchronous API does not cover (use
    /// [`Page::inner`] for chromiumoxide's own page). Panics if it takes longer than `deadline`.
    pub fn block_on<F: Future>(&self, what: &str, deadline: Duration, future: F) -> F::Output {
        match self.within(deadline, future) {
            Some(output) => output,
            None => self.fail(&format!("{what} did not finish within {deadline:?}")),
        }
    }

    /// Runs a future on the browser's runtime; `None` if it takes longer than `deadline`.
    fn within<F: Future>(&self, deadline: Duration, future: F) -> Option<F::Output> {
        self.rt
            .block_on(async { tokio::time::timeout(deadline, future).await })
            .ok()
    }

    /// What went wrong between chromiumoxide and Chromium: messages it could not parse (but for the
    /// events a page records, which are kept) and connection errors. Empty when all is well.
    pub fn protocol_errors(&self) -> Vec<String> {
        lock(&self.shared).protocol_errors.clone()
    }

    /// Panics with `message` and what might explain it: protocol errors and Chromium's stderr.
    fn fail(&self, message: &str) -> ! {
        let errors = lock(&self.shared).protocol_errors.join("\n");
        let errors = if errors.is_empty() {
            String::new()
        } else {
            format!("\nDevTools protocol errors:\n{errors}")
        };
        panic!("browser: {message}{errors}\n{}", self.process.stderr_tail())
    }
}

/// The Chromium process: started in its own process group, with its DevTools pipe on fds 3 and 4.
/// Chromium quits as soon as that pipe closes, which happens when this is dropped or when the test
/// process dies, whichever comes first.
struct Chromium {
    child: Child,
    /// Our end of the pipe Chromium reads DevTools commands from (we never send any).
    lifeline: Option<ChildStdin>,
    devtools_url: Option<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    profile: Option<tempfile::TempDir>,
}

impl Chromium {
    fn start() -> Chromium {
        let profile = tempfile::Builder::new()
            .prefix("verity-chromium-")
            .tempdir()
            .expect("a temporary Chromium profile directory");
        // The shell moves the pipes to the fds --remote-debugging-pipe uses and execs Chromium (the
        // Debian launcher script execs the real binary in turn, so the pid stays Chromium's).
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(CHROMIUM)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args([
                "--remote-debugging-port=0",
                "--remote-debugging-pipe",
                "about:blank",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {CHROMIUM}: {e}"));

        let lifeline = child.stdin.take();
        let mut pipe_out = child.stdout.take().expect("Chromium's DevTools pipe");
        thread::spawn(move || std::io::copy(&mut pipe_out, &mut std::io::sink()));

        // Chromium announces its endpoint on stderr; keep reading it to the end (so that Chromium
        // never blocks on a full pipe) and keep the last lines for failure messages.
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let mut pipe_err = BufReader::new(child.stderr.take().expect("Chromium's stderr"));
        let tail = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut line = Vec::new();
            while matches!(pipe_err.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
                if let Some(at) = text.find("ws://") {
                    if text.contains("DevTools listening on") {
                        let _ = url_tx.send(text[at..].to_string());
                    }
                }
                // Without a D-Bus, Chromium logs a dozen useless errors about it.
                if text.contains(":ERROR:dbus/") {
                    continue;
                }
                let mut tail = lock(&tail);
                if tail.len() == 200 {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        });

        let mut chromium = Chromium {
            child,
            lifeline,
            devtools_url: None,
            stderr,
            profile: Some(profile),
        };
        match url_rx.recv_timeout(LAUNCH_DEADLINE) {
            Ok(url) => chromium.devtools_url = Some(url),
            Err(RecvTimeoutError::Disconnected) => {
                let status = chromium.child.wait();
                panic!(
                    "{CHROMIUM} exited ({status:?}) before opening its DevTools endpoint\n{}",
                    chromium.stderr_tail()
                );
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "{CHROMIUM} did not open its DevTools endpoint within {LAUNCH_DEADLINE:?}\n{}",
                chromium.stderr_tail()
            ),
        }
        chromium
    }

    fn devtools_url(&self) -> String {
        self.devtools_url.clone().expect("Chromium's DevTools URL")
    }

    fn stderr_tail(&self) -> String {
        let tail = lock(&self.stderr);
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!(
            "Chromium's stderr (last {} lines):\n{}",
            lines.len(),
            lines.join("\n")
        )
    }

    /// Makes Chromium quit, kills what is left of its process group, and waits until all of it is
    /// gone (bounded: this runs in `Drop`, maybe while a test panics, so it never panics itself).
    fn shut_down(&mut self) {
        let group = self.child.id();
        // Closing the DevTools pipe asks Chromium to quit. Until we reap it, Chromium's pid (the
        // group id) cannot be reused, so killing the group below cannot hit a stranger.
        drop(self.lifeline.take());
        wait_until(Duration::from_secs(10), || live_processes(group).is_empty());
        if !live_processes(group).is_empty() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(group as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_until(Duration::from_secs(10), || live_processes(group).is_empty());
        }
        let _ = self.child.wait();
        // Chromium's other processes, all exited by now, were its children: init reaps them (here
        // within a second or two; until then `pgrep chromium` shows them as <defunct>). Waiting for
        // that would add that much to every browser test, and they are not running anyway.

        // The profile goes last, now that nothing writes to it.
        drop(self.profile.take());
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The pids of the processes in process group `group` that have not exited (zombies, which only
/// wait for their parent or init to reap them, do not count). For checking that a dropped
/// [`Browser`] left nothing behind: `live_processes(browser.pid())`.
pub fn live_processes(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp …", and comm may contain anything.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let pgrp = fields.get(2).and_then(|g| g.parse::<u32>().ok());
            pgrp == Some(group) && !matches!(fields.first(), Some(&"Z") | Some(&"X"))
        })
        .collect()
}

/// Polls `condition` every 20 ms until it holds or `deadline` has passed; returns whether it held.
fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A page of a [`Browser`], closed when dropped.
pub struct Page<'b> {
    browser: &'b Browser,
    page: chromiumoxide::Page,
    events: Mutex<Events>,
}

/// The page's event subscriptions, drained into `record` whenever something asks for it.
struct Events {
    console: EventStream<EventConsoleApiCalled>,
    exceptions: EventStream<EventExceptionThrown>,
    log: EventStream<EventEntryAdded>,
    requests: EventStream<EventRequestWillBeSent>,
    failures: EventStream<EventLoadingFailed>,
    /// How many of the browser's unparsed events this page has looked at.
    unparsed_seen: usize,
    record: Record,
}

#[derive(Default)]
struct Record {
    errors: Vec<String>,
    requests: Vec<String>,
    /// Request id → URL, to name the URL of a failed request.
    urls: HashMap<String, String>,
}

impl Events {
    /// Moves every event already delivered into the record. Nothing waits here: the caller first
    /// makes a round trip to the page, and the (current-thread) runtime only returns from it after
    /// the handler has delivered every event that Chromium sent before the answer.
    fn drain(&mut self, session: &str, shared: &Mutex<Shared>) {
        fn take<T>(stream: &mut EventStream<T>, method: &str, into: &mut Vec<(String, Value)>)
        where
            T: chromiumoxide::cdp::IntoEventKind + serde::Serialize + Unpin,
        {
            while let Some(Some(event)) = stream.next().now_or_never() {
                let params = serde_json::to_value(&*event).unwrap_or(Value::Null);
                into.push((method.to_string(), params));
            }
        }
        let mut events = Vec::new();
        // Requests first, so that a failure can name the URL of its request.
        take(&mut self.requests, "Network.requestWillBeSent", &mut events);
        take(&mut self.failures, "Network.loadingFailed", &mut events);
        take(&mut self.console, "Runtime.consoleAPICalled", &mut events);
        take(&mut self.exceptions, "Runtime.exceptionThrown", &mut events);
        take(&mut self.log, "Log.entryAdded", &mut events);
        {
            let shared = lock(shared);
            for event in &shared.unparsed_events[self.unparsed_seen..] {
                if event["sessionId"].as_str() == Some(session) {
                    let method = event["method"].as_str().unwrap_or_default().to_string();
                    events.push((method, event["params"].clone()));
                }
            }
            self.unparsed_seen = shared.unparsed_events.len();
        }
        for (method, params) in &events {
            self.record.add(method, params);
        }
    }
}

impl Record {
    /// Records one event, given as the JSON of its CDP params.
    fn add(&mut self, method: &str, params: &Value) {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match method {
            "Network.requestWillBeSent" => {
                let url = text(&params["request"]["url"]);
                self.urls.insert(text(&params["requestId"]), url.clone());
                self.requests.push(url);
            }
            "Network.loadingFailed" => {
                // A request the page itself cancelled did not fail.
                if params["canceled"].as_bool() == Some(true) {
                    return;
                }
                let url = self
                    .urls
                    .get(&text(&params["requestId"]))
                    .cloned()
                    .unwrap_or_else(|| "(unknown URL)".to_string());
                let mut why = text(&params["errorText"]);
                if let Some(blocked) = params["blockedReason"].as_str() {
                    why = format!("{why} (blocked: {blocked})");
                }
                self.errors.push(format!("network: {url} failed: {why}"));
            }
            "Runtime.consoleAPICalled" => {
                let kind = text(&params["type"]);
                if kind == "error" || kind == "assert" {
                    let args: Vec<String> = params["args"]
                        .as_array()
                        .map(|args| args.iter().map(remote_object_text).collect())
                        .unwrap_or_default();
                    let at = stack_top(&params["stackTrace"]);
                    self.errors
                        .push(format!("console.{kind}: {}{at}", args.join(" ")));
                }
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let thrown = match details["exception"]["description"].as_str() {
                    Some(description) => description.to_string(),
                    None => match &details["exception"]["value"] {
                        Value::Null => String::new(),
                        value => value_text(value),
                    },
                };
                let what = exception_text(&text(&details["text"]), &thrown);
                let url = details["url"].as_str().unwrap_or_default();
                let at = match (
                    details["lineNumber"].as_i64(),
                    details["columnNumber"].as_i64(),
                ) {
                    (Some(line), Some(column)) if !url.is_empty() => {
                        format!(" ({url}:{}:{})", line + 1, column + 1)
                    }
                    _ => String::new(),
                };
                self.errors.push(format!("uncaught exception: {what}{at}"));
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                if entry["level"].as_str() == Some("error") {
                    let url = match entry["url"].as_str() {
                        Some(url) if !url.is_empty() => format!(" ({url})"),
                        _ => String::new(),
                    };
                    self.errors.push(format!(
                        "log ({}): {}{url}",
                        text(&entry["source"]),
                        text(&entry["text"])
                    ));
                }
            }
            _ => {}
        }
    }
}

/// How a console argument reads: strings as themselves, other values as JSON, objects by their
/// description ("Error: boom\n    at …", "Object", …).
fn remote_object_text(object: &Value) -> String {
    if object["subtype"].as_str() == Some("null") {
        return "null".to_string();
    }
    if let Some(value) = object.get("value") {
        return value_text(value);
    }
    if let Some(unserializable) = object["unserializableValue"].as_str() {
        return unserializable.to_string();
    }
    if let Some(description) = object["description"].as_str() {
        return description.to_string();
    }
    object["type"].as_str().unwrap_or("?").to_string()
}

/// An exception as DevTools shows it: its text ("Uncaught", or "Uncaught (in promise) Error: x")
/// followed by what was thrown ("Error: x\n    at …"), without saying the message twice.
fn exception_text(text: &str, thrown: &str) -> String {
    let first_line = thrown.lines().next().unwrap_or_default();
    if thrown.is_empty() {
        text.to_string()
    } else if !first_line.is_empty() && text.ends_with(first_line) {
        format!("{text}{}", &thrown[first_line.len()..])
    } else {
        format!("{text} {thrown}")
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// " (url:line:column)" of a stack trace's top frame, if it has one.
fn stack_top(trace: &Value) -> String {
    let frame = &trace["callFrames"][0];
    match (
        frame["url"].as_str(),
        frame["lineNumber"].as_i64(),
        frame["columnNumber"].as_i64(),
    ) {
        (Some(url), Some(line), Some(column)) if !url.is_empty() => {
            format!(" ({url}:{}:{})", line + 1, column + 1)
        }
        _ => String::new(),
    }
}

impl<'b> Page<'b> {
    /// Every console.error and console.assert message, uncaught exception, failed network request
    /// (one the page cancelled itself does not count) and error logged by the browser (such as
    /// "Failed to load resource: … 404") since the page was opened, in the order they happened per
    /// kind. Each entry starts with its kind: `console.error: `, `console.assert: `,
    /// `uncaught exception: `, `network: ` or `log (source): `.
    pub fn console_errors(&self) -> Vec<String> {
        self.settle();
        lock(&self.events).record.errors.clone()
    }

    /// Panics, listing them, if the page has logged any errors (see [`Page::console_errors`]).
    pub fn assert_no_console_errors(&self) {
        let errors = self.console_errors();
        assert!(
            errors.is_empty(),
            "the page {} logged {} error(s):\n{}",
            self.url(),
            errors.len(),
            errors.join("\n")
        );
    }

    /// The URLs of every request the page made since it was opened, in order, starting with the page
    /// itself (a file:// report that fetches nothing has exactly one, its own). Redirects and
    /// repeated fetches appear once per request. Requests of workers are not included.
    pub fn requests(&self) -> Vec<String> {
        self.settle();
        lock(&self.events).record.requests.clone()
    }

    /// Evaluates a JavaScript expression in the page, awaiting it if it is a promise, and returns its
    /// value as JSON deserialized into `T` (`undefined` reads as `null`, so `()` and `Option` work).
    /// Panics if it throws or its value does not fit `T`.
    pub fn eval<T: DeserializeOwned>(&self, js: &str) -> T {
        self.try_eval(js)
            .unwrap_or_else(|e| self.browser.fail(&format!("evaluating `{js}`: {e}")))
    }

    /// [`Page::eval`] that returns what went wrong instead of panicking.
    pub fn try_eval<T: DeserializeOwned>(&self, js: &str) -> Result<T, String> {
        self.try_eval_within(js, LOAD_DEADLINE)
    }

    fn try_eval_within<T: DeserializeOwned>(
        &self,
        js: &str,
        deadline: Duration,
    ) -> Result<T, String> {
        let mut params = EvaluateParams::new(js);
        params.return_by_value = Some(true);
        params.await_promise = Some(true);
        let response = self
            .browser
            .within(deadline, self.page.execute(params))
            .ok_or_else(|| format!("no answer within {deadline:?}"))?
            .map_err(|e| e.to_string())?;
        let result = &response.result;
        if let Some(exception) = &result.exception_details {
            let thrown = exception
                .exception
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or_default();
            return Err(format!(
                "it threw: {}",
                exception_text(&exception.text, &thrown)
            ));
        }
        let value = result.result.value.clone().unwrap_or(Value::Null);
        serde_json::from_value(value.clone())
            .map_err(|e| format!("its value {value} is not the expected type: {e}"))
    }

    /// Waits until the JavaScript expression `condition` is truthy (a promise is awaited), evaluating
    /// it every 50 ms; returns false if it still is not after `deadline`. While the expression throws
    /// (say, because what it looks at does not exist yet) it counts as false.
    pub fn wait_for(&self, condition: &str, deadline: Duration) -> bool {
        let js = format!("(async () => !!(await ({condition})))()");
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if let Ok(true) = self.try_eval_within::<bool>(&js, left.max(POLL_INTERVAL)) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            self.browser
                .rt
                .block_on(async { tokio::time::sleep(POLL_INTERVAL).await });
        }
    }

    /// Clicks the element `selector` (a CSS selector) the way a user would: waits up to
    /// [`ELEMENT_DEADLINE`] for it to exist, scrolls it into view and clicks its centre. Panics if it
    /// never appears or cannot be clicked (say, it is hidden).
    pub fn click(&self, selector: &str) {
        let quoted = serde_json::to_string(selector).expect("a selector is a string");
        if !self.wait_for(
            &format!("document.querySelector({quoted}) !== null"),
            ELEMENT_DEADLINE,
        ) {
            self.browser.fail(&format!(
                "no element matches {selector} on {} after {ELEMENT_DEADLINE:?}",
                self.url()
            ));
        }
        let clicked =
            self.browser
                .block_on(&format!("clicking {selector}"), LOAD_DEADLINE, async {
                    self.page.find_element(selector).await?.click().await?;
                    Ok::<_, CdpError>(())
                });
        if let Err(e) = clicked {
            self.browser
                .fail(&format!("could not click {selector}: {e}"));
        }
    }

    /// Saves a full-page PNG screenshot as `<artifacts>/<name>.png` and returns its path; see
    /// [`artifacts_dir`] (characters other than letters, digits, `-`, `_` and `.` in `name` become
    /// `_`). Pages taller than 16384 px are cut off there. To capture beyond the viewport Chromium
    /// briefly resizes it to the whole page, so the page sees a `resize` event (and another when the
    /// viewport is restored).
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
        let file: String = name
            .trim_end_matches(".png")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{file}.png"));
        let png =
            self.browser
                .block_on(&format!("taking screenshot {name}"), LOAD_DEADLINE, async {
                    let metrics = self.page.layout_metrics().await?;
                    let content = metrics.css_content_size;
                    let viewport = metrics.css_layout_viewport;
                    // The whole document, captured beyond the viewport (chromiumoxide's own
                    // full-page mode overrides the device metrics, then restores the window's rather
                    // than ours).
                    let clip = Viewport {
                        x: 0.0,
                        y: 0.0,
                        width: content.width.max(viewport.client_width as f64).max(1.0),
                        height: content
                            .height
                            .max(viewport.client_height as f64)
                            .clamp(1.0, MAX_SCREENSHOT_HEIGHT),
                        scale: 1.0,
                    };
                    let params = CaptureScreenshotParams {
                        format: Some(CaptureScreenshotFormat::Png),
                        clip: Some(clip),
                        capture_beyond_viewport: Some(true),
                        ..CaptureScreenshotParams::default()
                    };
                    self.page.screenshot(ScreenshotParams::from(params)).await
                });
        let png = png.unwrap_or_else(|e| self.browser.fail(&format!("screenshot {name}: {e}")));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
        path
    }

    /// The page's first contentful paint, in milliseconds since navigation started (from
    /// `performance.getEntriesByType('paint')`), waiting up to 10 s for it; `None` if the page has
    /// not painted any content by then.
    pub fn first_paint_ms(&self) -> Option<f64> {
        let fcp = "performance.getEntriesByType('paint')\
                   .find(e => e.name === 'first-contentful-paint')";
        if !self.wait_for(&format!("{fcp} !== undefined"), Duration::from_secs(10)) {
            return None;
        }
        self.eval(&format!("{fcp}.startTime"))
    }

    /// The page's current URL.
    pub fn url(&self) -> String {
        self.try_eval("location.href")
            .unwrap_or_else(|e| format!("(unknown URL: {e})"))
    }

    /// chromiumoxide's page, for what this API does not cover; run its futures with
    /// [`Browser::block_on`].
    pub fn inner(&self) -> &chromiumoxide::Page {
        &self.page
    }

    /// Makes a round trip to the page, then takes in every event delivered before its answer.
    fn settle(&self) {
        let _ = self.try_eval_within::<Value>("0", LOAD_DEADLINE);
        let session = self.page.session_id().as_ref().to_string();
        lock(&self.events).drain(&session, &self.browser.shared);
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        // Close the tab, so that a test opening many pages does not keep them all alive; never wait
        // long, never panic (this may run while a test unwinds).
        if tokio::runtime::Handle::try_current().is_err() {
            let close = self.page.clone().close();
            let _ = self.browser.within(Duration::from_secs(5), close);
        }
    }
}

/// Where screenshots go: `$VERITY_TEST_ARTIFACTS` if set, else `target/test-artifacts/browser/` in
/// the repository.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os("VERITY_TEST_ARTIFACTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/browser"),
    }
}

/// The file:// URL of a local file (made absolute, and percent-encoded where a URL needs it).
pub fn file_url(path: &Path) -> String {
    let path = std::path::absolute(path)
        .unwrap_or_else(|e| panic!("could not make {} absolute: {e}", path.display()));
    let mut url = String::from("file://");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(*byte as char)
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    url
}

/// A page that exercises everything the harness must notice: it draws on a canvas, logs an error,
/// throws from a timer, and only then says it is ready.
const NOISY_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>noisy</title></head>
<body>
<h1>browser harness self-test</h1>
<canvas id="c" width="300" height="150"></canvas>
<button id="b" onclick="window.clicked = (window.clicked || 0) + 1">click me</button>
<script>
  const ctx = document.getElementById('c').getContext('2d');
  ctx.fillStyle = '#c0392b';
  ctx.fillRect(10, 10, 200, 100);
  console.error('self-test: a console error');
  setTimeout(() => { throw new Error('self-test: an uncaught exception'); }, 10);
  setTimeout(() => { window.ready = true; }, 200);
</script>
</body></html>
"#;

const QUIET_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>quiet</title></head>
<body><p>nothing to see here</p><script>console.log('fine'); window.ready = true;</script></body></html>
"#;

#[test]
fn the_browser_harness_sees_console_errors_and_takes_screenshots() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let noisy = dir.path().join("noisy page.html");
    let quiet = dir.path().join("quiet.html");
    std::fs::write(&noisy, NOISY_PAGE).expect("write the noisy page");
    std::fs::write(&quiet, QUIET_PAGE).expect("write the quiet page");

    let browser = Browser::launch();
    let group = browser.pid();
    assert!(
        !live_processes(group).is_empty(),
        "Chromium runs in its own process group"
    );
    {
        let page = browser.open(&file_url(&noisy));
        assert!(
            page.wait_for("window.ready === true", Duration::from_secs(30)),
            "the page never set window.ready; its errors: {:#?}",
            page.console_errors()
        );
        let errors = page.console_errors();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("console.error: self-test: a console error")),
            "the console.error is recorded: {errors:#?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("uncaught exception: ")
                && e.contains("Error: self-test: an uncaught exception")),
            "the uncaught exception is recorded: {errors:#?}"
        );
        assert_eq!(errors.len(), 2, "exactly those two errors: {errors:#?}");

        assert_eq!(page.eval::<i64>("1+1"), 2);
        assert_eq!(page.eval::<String>("Promise.resolve('awaited')"), "awaited");
        assert_eq!(
            page.eval::<(u32, u32)>("[window.innerWidth, window.innerHeight]"),
            WINDOW,
            "the viewport is the window"
        );
        assert!(
            page.try_eval::<i64>("no_such_variable").is_err(),
            "a throwing eval is an error"
        );
        assert!(
            !page.wait_for("window.never", Duration::from_millis(200)),
            "wait_for can time out"
        );

        page.click("#b");
        assert!(
            page.wait_for("window.clicked === 1", Duration::from_secs(30)),
            "the click lands"
        );

        let pixel: Vec<u8> =
            page.eval("Array.from(document.getElementById('c').getContext('2d').getImageData(50, 50, 1, 1).data)");
        assert_eq!(pixel, [0xc0, 0x39, 0x2b, 0xff], "the canvas was drawn on");

        let shot = page.screenshot("self-test noisy");
        let png = std::fs::read(&shot).expect("the screenshot exists");
        assert!(
            png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
            "{} is a PNG ({} bytes)",
            shot.display(),
            png.len()
        );
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
        assert_eq!(
            (size(16), size(20)),
            WINDOW,
            "the page fits the window, so that is the shot"
        );
        assert!(
            shot.starts_with(artifacts_dir()),
            "{} is an artifact",
            shot.display()
        );

        let paint = page.first_paint_ms().expect("the page painted");
        assert!(
            paint > 0.0 && paint < 60_000.0,
            "first contentful paint at {paint} ms"
        );

        let requests = page.requests();
        assert_eq!(
            requests.first(),
            Some(&file_url(&noisy)),
            "the page itself: {requests:?}"
        );
        assert!(
            requests
                .iter()
                .all(|url| !url.starts_with("http:") && !url.starts_with("https:")),
            "a file:// page made no network requests: {requests:?}"
        );
    }
    {
        let page = browser.open(&file_url(&quiet));
        assert!(page.wait_for("window.ready === true", Duration::from_secs(30)));
        assert_eq!(
            page.console_errors(),
            Vec::<String>::new(),
            "a quiet page has no errors"
        );
        page.assert_no_console_errors();
    }
    {
        // A missing script is a failed request, seen both by the network and by the browser's log.
        let broken = dir.path().join("broken.html");
        std::fs::write(
            &broken,
            "<!doctype html><script src=\"missing.js\"></script><p>broken</p>",
        )
        .expect("write the broken page");
        let page = browser.open(&file_url(&broken));
        let errors = page.console_errors();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("network: ") && e.contains("missing.js")),
            "the failed request is recorded: {errors:#?}"
        );
    }
    drop(browser);
    assert_eq!(
        live_processes(group),
        Vec::<u32>::new(),
        "nothing of Chromium is left"
    );
    eprintln!("browser self-test took {:?}", started.elapsed());
}

#[test]
fn a_browser_dropped_by_a_panicking_test_leaves_no_chromium_behind() {
    let (tx, rx) = mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let browser = Browser::launch();
        tx.send(browser.pid()).expect("send the pid");
        let _page = browser.open("about:blank");
        panic!("a test fails while its browser is open");
    });
    assert!(outcome.is_err());
    let group = rx.recv().expect("the browser started");
    assert_eq!(
        live_processes(group),
        Vec::<u32>::new(),
        "nothing of Chromium is left"
    );
}
