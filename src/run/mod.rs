//! `verity run`: its arguments, the controller that drives a run, and the fault side of a run.

mod args;
mod controller;
mod faults;
mod replay;

pub use args::RunArgs;
pub use controller::run;
pub use faults::state_dir;
