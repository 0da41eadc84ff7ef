//! verity-history: the shared vocabulary of verity.
//!
//! Every other crate speaks in these types: an [`Event`] is one line of a history (an invocation or a
//! completion of an operation by a process, or a nemesis action), a [`History`] is the ordered list of
//! them, and [`Value`] is the payload. The shape follows Jepsen's history (`io.jepsen/history`) so that
//! EDN import and export is a mapping rather than a translation. The JSONL codec in [`jsonl`] is the
//! durable on-disk format written while a run happens (plain or zstd-compressed), and [`chain`] is the
//! hash chain that makes it tamper-evident.

pub mod anomaly;
pub mod chain;
pub mod edn;
pub mod event;
pub mod history;
pub mod invocation;
pub mod jsonl;
pub mod registry;
pub mod value;

pub use event::{Event, EventType, Process, F};
pub use history::{History, HistoryError, Op, OpOutcome, TornTail};
pub use invocation::{Completion, Invocation};
pub use value::{MicroOp, MopF, MopValue, Transfer, Value};
