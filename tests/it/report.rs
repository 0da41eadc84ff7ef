//! report.html in a real browser (headless Chromium): for a valid cluster run under faults, a
//! nonlinearizable run, a cycle (G2-item) run, a conservation (lost-transfer) run and an imported
//! Knossos history, the page logs no error and fetches nothing, shows the anomaly and its drawing,
//! draws the timeline with the nemesis bands, and zooms — with the wheel, the buttons and a click on
//! an anomaly's operation. Screenshots go to target/test-artifacts/browser/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::browser::{file_url, Browser, Page};
use crate::support::{results_of, verity};

const READY: Duration = Duration::from_secs(60);

/// Runs `verity run ARGS` into `store` and returns the run directory (exit code asserted).
fn run(store: &Path, args: &[&str], code: i32) -> PathBuf {
    let out = verity()
        .args(["run", "--quiet", "--store"])
        .arg(store)
        .args(args)
        .output()
        .expect("verity runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "verity run {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report:"))
        .map(|p| PathBuf::from(p.trim()))
        .expect("the summary names the report");
    assert!(report.is_file(), "{} is written", report.display());
    std::fs::canonicalize(store.join("latest")).expect("latest")
}

/// Opens a report, waits for its charts, and checks what every report must do.
fn open<'b>(browser: &'b Browser, report: &Path, shot: &str) -> Page<'b> {
    let page = browser.open(&file_url(report));
    assert!(
        page.wait_for("window.verity && window.verity.ready === true", READY),
        "{shot}: the charts never became ready"
    );
    page.assert_no_console_errors();
    let fetched: Vec<String> = page
        .requests()
        .into_iter()
        .filter(|u| !u.starts_with("file://"))
        .collect();
    assert!(fetched.is_empty(), "{shot}: the report fetched {fetched:?}");
    let drawn: u64 =
        page.eval("(verity.stats.timeline.drawn || 0) + (verity.stats.timeline.merged || 0)");
    assert!(drawn > 0, "{shot}: the timeline drew no operation");
    page.screenshot(shot);
    page
}

/// The wheel zooms in about the cursor, the button zooms out, and the view stays inside the history.
fn zooms(page: &Page, shot: &str) {
    let before: f64 = page.eval("verity.view().t1 - verity.view().t0");
    page.eval::<()>(
        "(() => { const c = document.querySelector('#chart-timeline canvas'); const r = c.getBoundingClientRect();
           c.dispatchEvent(new WheelEvent('wheel', {deltaY: -600, clientX: r.left + r.width / 2,
             clientY: r.top + 10, bubbles: true, cancelable: true})); })()",
    );
    assert!(
        page.wait_for(
            &format!("verity.view().t1 - verity.view().t0 < {before} * 0.7"),
            READY
        ),
        "{shot}: the wheel did not zoom in"
    );
    page.screenshot(&format!("{shot}-zoomed"));
    page.click("#zoom-reset");
    assert!(
        page.wait_for(
            "Math.abs(verity.view().t1 - verity.view().t0 - verity.view().span) < 1",
            READY
        ),
        "{shot}: the reset button did not show the whole history again"
    );
    page.assert_no_console_errors();
}

/// The first anomaly shows its drawing, and clicking its first operation zooms the timeline onto it.
fn anomaly_is_drawn_and_linked(page: &Page, shot: &str, name: &str, drawing: &str) {
    let names: Vec<String> =
        page.eval("Array.from(document.querySelectorAll('.anomaly h3')).map(h => h.textContent)");
    assert!(
        names.iter().any(|n| n == name),
        "{shot}: no {name} among {names:?}"
    );
    let selector = format!(".anomaly {drawing}");
    let present: bool = page.eval(&format!(
        "document.querySelector({}) !== null",
        serde_json::to_string(&selector).unwrap()
    ));
    assert!(present, "{shot}: no drawing `{selector}`");
    let before: f64 = page.eval("verity.view().t1 - verity.view().t0");
    page.click(".anomaly a.op-link");
    assert!(
        page.wait_for(
            &format!("verity.view().t1 - verity.view().t0 < {before}"),
            READY
        ),
        "{shot}: a click on the anomaly's operation did not zoom onto it"
    );
    page.screenshot(&format!("{shot}-focused"));
}

#[test]
fn reports_of_every_kind_of_verdict_render_in_a_browser() {
    let store = tempfile::tempdir().expect("temp dir");
    let s = store.path();
    let cluster = run(
        s,
        &[
            "--time-limit",
            "4s",
            "--nemesis-interval",
            "1s",
            "--recovery",
            "3s",
            "--seed",
            "1",
        ],
        0,
    );
    let stale = run(
        s,
        &[
            "--target",
            "memory",
            "--bug",
            "stale-read",
            "--time-limit",
            "2s",
            "--seed",
            "1",
        ],
        1,
    );
    let cycle = run(
        s,
        &[
            "--target",
            "memory",
            "--workload",
            "ledger-append",
            "--bug",
            "snapshot-isolation",
            "--time-limit",
            "2s",
            "--seed",
            "1",
        ],
        1,
    );
    let lost = run(
        s,
        &[
            "--target",
            "memory",
            "--bug",
            "lose-acked",
            "--time-limit",
            "2s",
            "--seed",
            "1",
        ],
        1,
    );
    for (dir, anomaly) in [
        (&stale, "nonlinearizable"),
        (&cycle, "G2-item"),
        (&lost, "lost-transfer"),
    ] {
        let types = results_of(dir)["anomaly_types"].to_string();
        assert!(types.contains(anomaly), "{}: {types}", dir.display());
    }
    let knossos = s.join("knossos.html");
    let out = verity()
        .args(["report", "--model", "cas-register", "--out"])
        .arg(&knossos)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/knossos/cas-register/bad/cas-failure.edn"),
        )
        .output()
        .expect("verity report runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let browser = Browser::launch();

    let page = open(
        &browser,
        &cluster.join("report.html"),
        "report-cluster-valid",
    );
    let verdict: String = page.eval("document.getElementById('verdict').textContent");
    assert_eq!(verdict, "VALID");
    let bands: u64 = page.eval("verity.stats.timeline.bands");
    assert!(
        bands > 0,
        "the cluster run's faults are not shaded on the timeline"
    );
    let node_bands: u64 = page.eval("verity.stats.nodes ? verity.stats.nodes.bands : 0");
    assert!(node_bands > 0, "the node availability chart shows no fault");
    zooms(&page, "report-cluster-valid");
    drop(page);

    let page = open(
        &browser,
        &stale.join("report.html"),
        "report-nonlinearizable",
    );
    anomaly_is_drawn_and_linked(
        &page,
        "report-nonlinearizable",
        "nonlinearizable",
        "svg.concurrency .bar.failing",
    );
    zooms(&page, "report-nonlinearizable");
    drop(page);

    let page = open(&browser, &cycle.join("report.html"), "report-g2-item");
    anomaly_is_drawn_and_linked(&page, "report-g2-item", "G2-item", ".drawing svg");
    drop(page);

    let page = open(&browser, &lost.join("report.html"), "report-lost-transfer");
    anomaly_is_drawn_and_linked(
        &page,
        "report-lost-transfer",
        "lost-transfer",
        "table.evidence",
    );
    let charts: Vec<String> =
        page.eval("Array.from(document.querySelectorAll('.chart')).map(c => c.id)");
    for c in [
        "chart-timeline",
        "chart-latency",
        "chart-throughput",
        "chart-info",
        "chart-total",
        "chart-balances",
    ] {
        assert!(charts.iter().any(|x| x == c), "no {c} among {charts:?}");
    }
    drop(page);

    let page = open(&browser, &knossos, "report-knossos");
    anomaly_is_drawn_and_linked(
        &page,
        "report-knossos",
        "nonlinearizable",
        "svg.concurrency",
    );
    zooms(&page, "report-knossos");
}

/// Report size, first paint and charts-ready time for runs of about 10k, 100k and 1M operations
/// (docs/benchmarks.md). A benchmark, not a test: it asserts nothing about time. Run with
/// `cargo test --release --test it report::report_size_and_first_paint -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run it by name (see the doc comment and docs/benchmarks.md)"]
fn report_size_and_first_paint() {
    let store = tempfile::tempdir().expect("temp dir");
    let sizes = [
        ("10k", &["--rate", "5000", "--time-limit", "2s"][..]),
        ("100k", &["--rate", "0", "--time-limit", "130ms"][..]),
        ("1M", &["--rate", "0", "--time-limit", "1300ms"][..]),
    ];
    let browser = Browser::launch();
    println!("| run | operations | report.html | bytes per op | first paint (median of 3, min–max) | charts ready (median, min–max) |");
    println!("|---|---|---|---|---|---|");
    for (name, args) in sizes {
        let dir = run(
            &store.path().join(name),
            &[&["--target", "memory", "--seed", "1"][..], args].concat(),
            0,
        );
        let ops = results_of(&dir)["stats"]["ops"].as_u64().unwrap_or(0);
        let report = dir.join("report.html");
        let bytes = std::fs::metadata(&report).expect("report").len();
        let (mut paint, mut ready) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let page = browser.open(&file_url(&report));
            assert!(page.wait_for("window.verity && window.verity.ready === true", READY));
            paint.push(page.first_paint_ms().unwrap_or(f64::NAN));
            ready.push(page.eval::<f64>("verity.readyMs"));
        }
        let stat = |xs: &mut Vec<f64>| {
            xs.sort_by(|a, b| a.total_cmp(b));
            format!("{:.0} ms ({:.0}–{:.0})", xs[1], xs[0], xs[2])
        };
        println!(
            "| {name} | {ops} | {:.1} MB | {:.1} | {} | {} |",
            bytes as f64 / 1e6,
            bytes as f64 / ops.max(1) as f64,
            stat(&mut paint),
            stat(&mut ready)
        );
    }
}
