//! Progress on the terminal while a run is under way: elapsed time, ops/s and outcome counts.
//!
//! Hidden when stderr is not a terminal or under CI, so logs stay clean.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Outcome counters shared by the workers.
#[derive(Debug, Default)]
pub struct Counters {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

impl Counters {
    pub fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.fail.load(Ordering::Relaxed)
            + self.info.load(Ordering::Relaxed)
    }
}

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn start(time_limit: Duration, quiet: bool) -> Progress {
        let hidden = quiet
            || std::env::var_os("CI").is_some()
            || !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = ProgressBar::with_draw_target(
            Some(time_limit.as_millis() as u64),
            if hidden {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr_with_hz(10)
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        Progress { bar }
    }

    pub fn update(&self, elapsed: Duration, counters: &Arc<Counters>) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let total = counters.total();
        self.bar.set_position(elapsed.as_millis() as u64);
        self.bar.set_message(format!(
            "{:>8.0} ops/s  ok {}  fail {}  info {}",
            total as f64 / secs,
            counters.ok.load(Ordering::Relaxed),
            counters.fail.load(Ordering::Relaxed),
            counters.info.load(Ordering::Relaxed)
        ));
    }

    pub fn phase(&self, name: &str) {
        self.bar.set_prefix(name.to_string());
        self.bar.set_message(name.to_string());
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
