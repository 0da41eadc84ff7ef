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

/// Whether [`invariant!`] checks: in debug builds, and in any build with the `invariants` feature of
/// this crate on. Every crate of the workspace turns that feature on through its dev-dependencies, so
/// `cargo test --release` (unit, property and end-to-end tests, and the `verity` binary those tests
/// run) checks the invariants while `cargo build --release` — which resolves no dev-dependency —
/// ships without them.
pub const INVARIANTS: bool = cfg!(any(debug_assertions, feature = "invariants"));

/// `assert!` of an invariant the code relies on that is too costly to check in the shipped binary
/// (it runs on every Raft step, every applied transfer, every search step). On when [`INVARIANTS`]
/// is; otherwise the condition is not even evaluated. Cheap invariants use a plain `assert!`.
#[macro_export]
macro_rules! invariant {
    ($($arg:tt)+) => {
        if $crate::INVARIANTS {
            assert!($($arg)+);
        }
    };
}
pub use history::{History, HistoryError, Op, OpOutcome, TornTail};
pub use invocation::{Completion, Invocation};
pub use value::{MicroOp, MopF, MopValue, Transfer, Value};
