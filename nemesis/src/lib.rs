//! verity-nemesis: the fault layer, for any target that runs nodes.
//!
//! A target with processes exposes them through [`Nodes`] (names, listen addresses, kill, restart,
//! the primary, each node's own state); this crate breaks them and heals them, knowing nothing of the
//! store behind them. One concept per file:
//! - [`faults`]: the fault vocabulary as data (grudges, pause, kill, delay, loss) and its events;
//! - [`schedule`]: the seeded schedule, a pure function of the seed;
//! - [`proxy`]: the TCP proxy mesh every client→node and node→node link goes through;
//! - [`nodes`]: the [`Nodes`] interface and [`Links`] (who dials which address);
//! - [`nemesis`]: the executor, with the heal-on-drop guard;
//! - [`process`]: a supervisor that starts, kills and restarts node processes (process groups,
//!   optionally as an unprivileged user) and records them;
//! - [`state`]: the state files behind `verity heal`;
//! - [`signal`]: signals and `/proc`, with the guards that keep faults on the nodes.

pub mod faults;
pub mod nemesis;
pub mod nodes;
pub mod process;
pub mod proxy;
pub mod schedule;
pub mod signal;
pub mod state;

pub use faults::{Fault, FaultKind, Transition, FAULT_KINDS};
pub use nemesis::{Applied, HealGuard, Nemesis};
pub use nodes::{ControlError, DirectLinks, Endpoint, Links, Nodes};
pub use process::{ProcessSpec, Supervisor, SupervisorError};
pub use proxy::{LinkState, ProxyConfig, ProxyMesh, CLIENT};
pub use state::{heal_state_dir, state_file_path, HealReport, NemesisError};
