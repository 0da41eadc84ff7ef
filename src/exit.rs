//! Outcomes and exit codes, in one place.
//!
//! Every subcommand returns `Result<Outcome, Failure>`; this module turns that into Jepsen's exit
//! codes and prints a one-line message for failures. Bad input (unknown names, malformed durations or
//! histories) is a [`Failure::BadInput`] — exit 254; anything else that goes wrong is the harness's own
//! failure — exit 255.

use std::process::ExitCode;

use verity_checkers::Validity;

/// What a successful command concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command did its job and has no verdict (list, heal, help).
    Done,
    Verdict(Validity),
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Harness(#[from] anyhow::Error),
}

impl Failure {
    pub fn bad_input(msg: impl Into<String>) -> Failure {
        Failure::BadInput(msg.into())
    }
}

pub const EXIT_VALID: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;
pub const EXIT_BAD_INPUT: u8 = 254;
pub const EXIT_HARNESS: u8 = 255;

pub fn code(outcome: &Result<Outcome, Failure>) -> u8 {
    match outcome {
        Ok(Outcome::Done) | Ok(Outcome::Verdict(Validity::Valid)) => EXIT_VALID,
        Ok(Outcome::Verdict(Validity::Invalid)) => EXIT_INVALID,
        Ok(Outcome::Verdict(Validity::Unknown)) => EXIT_UNKNOWN,
        Err(Failure::BadInput(_)) => EXIT_BAD_INPUT,
        Err(Failure::Harness(_)) => EXIT_HARNESS,
    }
}

pub fn run_and_exit(f: impl FnOnce() -> Result<Outcome, Failure>) -> ExitCode {
    let outcome = f();
    match &outcome {
        Err(Failure::BadInput(msg)) => eprintln!("error: {msg}"),
        Err(Failure::Harness(e)) => eprintln!("error: {e:#}"),
        Ok(_) => {}
    }
    ExitCode::from(code(&outcome))
}
