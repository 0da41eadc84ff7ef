//! The counterexample a person can read, and the verdict built from the searches.
//!
//! Knossos reports the first operation that cannot be linearized with the configurations it reached;
//! Porcupine draws the longest partial linearizations. Here the verdict carries both in plain words:
//! the operation that cannot be linearized, the operations concurrent with it, the tail of the longest
//! linearizable prefix with the model state after each operation, and the states the model was in
//! where that operation was due and could not be placed. The same structure goes into `results.json` (`details.counterexample`) and,
//! through [`summary_lines`], into the terminal summary.

use serde_json::{json, Value as Json};
use verity_history::anomaly::NONLINEARIZABLE;

use crate::linearizable::model::{Interner, Model};
use crate::linearizable::partition::{OpRecord, Partition};
use crate::linearizable::search::Failure;
use crate::verdict::{Anomaly, Validity, Verdict};

/// How many concurrent operations the counterexample lists.
pub const CONCURRENT_MAX: usize = 16;

fn outcome_name(op: &OpRecord<impl Sized>) -> &'static str {
    use verity_history::OpOutcome::*;
    match op.outcome {
        Ok => "ok",
        Fail => "fail",
        Info => "info",
        Pending => "pending",
    }
}

fn op_json<M: Model>(model: &M, values: &Interner, op: &OpRecord<M::Op>) -> Json {
    json!({
        "process": op.process,
        "op": model.describe_op(&op.op, values),
        "outcome": outcome_name(op),
        "invoke_index": op.invoke_index,
        "completion_index": op.completion_index,
    })
}

/// Whether two operations' intervals overlap (`info` and pending ones never end).
fn concurrent<O>(a: &OpRecord<O>, b: &OpRecord<O>) -> bool {
    let a_before_b = a.ret.is_some_and(|r| r < b.call);
    let b_before_a = b.ret.is_some_and(|r| r < a.call);
    !a_before_b && !b_before_a
}

/// Turns a failed search into the anomaly and the `details.counterexample` structure.
pub fn counterexample<M: Model>(
    model: &M,
    values: &Interner,
    partition: &Partition<M::Op>,
    failure: &Failure<M::State>,
) -> (Anomaly, Json) {
    let ops = &partition.ops;
    let blocked = &ops[failure.blocked];
    let concurrent_ops: Vec<&OpRecord<M::Op>> = ops
        .iter()
        .enumerate()
        .filter(|(i, o)| *i != failure.blocked && concurrent(o, blocked))
        .map(|(_, o)| o)
        .collect();
    let states: Vec<String> = failure
        .states
        .iter()
        .map(|s| model.describe_state(s, values))
        .collect();
    let prefix: Vec<Json> = failure
        .prefix_tail
        .iter()
        .map(|(i, s)| json!({"op": op_json(model, values, &ops[*i]), "state_after": model.describe_state(s, values)}))
        .collect();
    let what = model.describe_op(&blocked.op, values);
    let key = partition
        .key
        .as_ref()
        .map(|k| format!(" on key {k}"))
        .unwrap_or_default();
    let message = if states.is_empty() {
        // Decided before any search (`Model::unreachable`): no reachable state accepts it.
        format!(
            "{what} by process {} (events {}–{}){key} cannot be linearized: no state the {} can \
             reach from its initial state shows that ({} concurrent operations)",
            blocked.process,
            blocked.invoke_index,
            blocked
                .completion_index
                .map_or("…".to_string(), |c| c.to_string()),
            model.name(),
            concurrent_ops.len(),
        )
    } else {
        format!(
        "{what} by process {} (events {}–{}){key} cannot be linearized: where it was due, the {} \
         was {}, and no order of the {} concurrent operations helps; the longest linearizable prefix \
         holds {} of {} operations",
        blocked.process,
        blocked.invoke_index,
        blocked.completion_index.map_or("…".to_string(), |c| c.to_string()),
        model.name(),
        states.join(" or "),
        concurrent_ops.len(),
        failure.prefix_len,
        ops.len(),
    )
    };
    let mut events = vec![blocked.invoke_index];
    events.extend(blocked.completion_index);
    for o in concurrent_ops.iter().take(CONCURRENT_MAX) {
        events.push(o.invoke_index);
        events.extend(o.completion_index);
    }
    events.sort_unstable();
    events.dedup();
    let anomaly = Anomaly {
        name: NONLINEARIZABLE.to_string(),
        message,
        events,
        expected: json!({ "states": states }),
        observed: json!(what),
    };
    let structure = json!({
        "key": partition.key,
        "op": op_json(model, values, blocked),
        "concurrent": concurrent_ops.iter().take(CONCURRENT_MAX).map(|o| op_json(model, values, o)).collect::<Vec<_>>(),
        "concurrent_count": concurrent_ops.len(),
        "prefix_len": failure.prefix_len,
        "prefix_tail": prefix,
        "states": states,
    });
    (anomaly, structure)
}

fn op_line(op: &Json) -> String {
    let idx = |k: &str| {
        op.get(k)
            .and_then(Json::as_u64)
            .map_or("…".to_string(), |v| v.to_string())
    };
    format!(
        "process {} {} [{}] (events {}–{})",
        op.get("process").and_then(Json::as_u64).unwrap_or_default(),
        op.get("op").and_then(Json::as_str).unwrap_or("?"),
        op.get("outcome").and_then(Json::as_str).unwrap_or("?"),
        idx("invoke_index"),
        idx("completion_index"),
    )
}

/// The lines the terminal summary prints for a verdict of this checker: the readable counterexample
/// when it is invalid, the cause when unknown, and the search statistics.
pub fn summary_lines(verdict: &Verdict) -> Vec<String> {
    let mut lines = Vec::new();
    match verdict.valid {
        Validity::Valid => lines.push("linearizable".to_string()),
        Validity::Unknown => lines.push(format!(
            "unknown: {}",
            verdict.cause.as_deref().unwrap_or("no cause given")
        )),
        Validity::Invalid => lines.push("NOT linearizable".to_string()),
    }
    if let Some(cx) = verdict.details.get("counterexample") {
        if let Some(key) = cx.get("key").filter(|k| !k.is_null()) {
            lines.push(format!("  key: {key}"));
        }
        if let Some(op) = cx.get("op") {
            lines.push(format!("  cannot linearize: {}", op_line(op)));
        }
        let concurrent = cx
            .get("concurrent")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let count = cx
            .get("concurrent_count")
            .and_then(Json::as_u64)
            .unwrap_or(0);
        lines.push(format!("  concurrent with it ({count}):"));
        for op in &concurrent {
            lines.push(format!("    {}", op_line(op)));
        }
        if (concurrent.len() as u64) < count {
            lines.push(format!(
                "    … and {} more",
                count - concurrent.len() as u64
            ));
        }
        let prefix_len = cx.get("prefix_len").and_then(Json::as_u64).unwrap_or(0);
        let tail = cx
            .get("prefix_tail")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let states: Vec<&str> = cx
            .get("states")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if states.is_empty() && tail.is_empty() {
            // Decided before any search (`Model::unreachable`): there is no prefix or state to show.
            lines.push(
                "  no state reachable from the initial one shows that: decided before any search"
                    .to_string(),
            );
        } else {
            lines.push(format!(
                "  longest linearizable prefix: {prefix_len} operations{}",
                if (tail.len() as u64) < prefix_len {
                    format!(", the last {}:", tail.len())
                } else {
                    ":".into()
                }
            ));
            for step in &tail {
                let state = step
                    .get("state_after")
                    .and_then(Json::as_str)
                    .unwrap_or("?");
                lines.push(format!("    {}  ⇒ {state}", op_line(&step["op"])));
            }
            lines.push(format!(
                "  model states where it was due (none allows it): {}",
                states.join(" | ")
            ));
        }
    }
    if let Some(stats) = verdict.details.get("stats") {
        let get = |k: &str| stats.get(k).and_then(Json::as_u64).unwrap_or(0);
        lines.push(format!(
            "  search: {} configurations explored, {} cache hits, {} partitions, {} operations",
            get("states_explored"),
            get("cache_hits"),
            verdict
                .details
                .get("partitions")
                .and_then(Json::as_u64)
                .unwrap_or(0),
            verdict
                .details
                .get("ops")
                .and_then(Json::as_u64)
                .unwrap_or(0),
        ));
    }
    lines
}
