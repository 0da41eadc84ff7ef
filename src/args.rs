//! Argument types shared by several commands: durations, fractions, JSON values, the check budget.

use std::time::Duration;

use clap::Args;

/// Limits on checking; a checker that runs out answers `unknown` with the cause.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Checking")]
pub struct BudgetArgs {
    /// Wall-clock limit of the checks, e.g. 5m; a checker that runs out answers `unknown`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub check_time_limit: Duration,
    /// Memory a checker's search may hold, in MiB.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    pub check_memory_mib: u64,
}

/// Machine-readable output, for CI.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Print the results document (results.json) on stdout and nothing else; the human summary
    /// goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Also write the JUnit XML of the verdict (one test case per checker) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
}

impl OutputArgs {
    /// Prints the verdict as asked: the summary (and `lines` after it) on stdout, or the results
    /// document on stdout and the rest on stderr; writes the JUnit file if one was asked for.
    pub fn emit(
        &self,
        results: &crate::results::Results,
        lines: &[String],
    ) -> Result<(), crate::exit::Failure> {
        if let Some(path) = &self.junit {
            std::fs::write(path, crate::junit::render(results)).map_err(|e| {
                crate::exit::Failure::bad_input(format!("cannot write {}: {e}", path.display()))
            })?;
        }
        let summary = crate::summary::render(results);
        if self.json {
            let doc = serde_json::to_string_pretty(results)
                .map_err(|e| crate::exit::Failure::Harness(e.into()))?;
            println!("{doc}");
            eprint!("{summary}");
            for l in lines {
                eprintln!("{l}");
            }
        } else {
            print!("{summary}");
            for l in lines {
                println!("{l}");
            }
        }
        Ok(())
    }
}

pub fn parse_json_value(s: &str) -> Result<verity_history::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("{s:?} is not a JSON value: {e}"))
}

/// Parses a duration: `10s`, `2m`, `1m30s`, `500ms`, or a bare number of seconds — the one parser
/// of the command line and of suite files (which keeps it beside them, free of the binary's types).
pub use crate::suite::parse_duration;

pub fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

/// A duration as one shell word that [`parse_duration`] reads back: `10s`, `1500ms`, `250us`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_as_one_word_that_parses_back() {
        for d in [
            Duration::from_secs(10),
            Duration::from_millis(1500),
            Duration::from_micros(250),
            Duration::from_nanos(7),
            Duration::ZERO,
        ] {
            let text = format_duration(d);
            assert!(!text.contains(' '), "{text}");
            assert_eq!(parse_duration(&text).unwrap(), d, "{text}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn durations_parse_or_explain() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        let e = parse_duration("ten").unwrap_err();
        assert!(e.contains("malformed duration") && e.contains("30s"), "{e}");
        assert!(parse_duration("-1").is_err());
        // Regression: a number of seconds beyond what a Duration holds used to panic.
        assert!(parse_duration("1e30").is_err());
    }
}
