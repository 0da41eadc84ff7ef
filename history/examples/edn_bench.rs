//! Reading Jepsen EDN histories: generates them deterministically and times the readers on them.
//!
//! `gen` writes a history as Jepsen or Knossos would — a cas register, a bank, or list-append
//! transactions, one op map per line or one vector of them — from a seed, so every figure in
//! docs/benchmarks.md can be repeated on the same bytes. `read` times, in one process and
//! alternating, the reader as shipped ([`parse_edn`], which takes the fast path when it can) and the
//! generic reader alone ([`parse_edn_generic`]), and checks that both give the same history.
//!
//! Usage:
//! `cargo run --release -p verity-history --example edn_bench -- gen cas|bank|append OPS CLIENTS SEED lines|vector > FILE`
//! `cargo run --release -p verity-history --example edn_bench -- read REPEAT FILE...`
//! `cargo run --release -p verity-history --example edn_bench -- fast REPEAT FILE` (for a profiler)

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::edn::{parse_edn, parse_edn_fast, parse_edn_generic};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() == 6 => {
            let number = |i: usize| -> u64 {
                args[i]
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("not a number: {}", args[i])))
            };
            let text = generate(
                &args[1],
                number(2),
                number(3).max(1),
                number(4),
                args[5] == "vector",
            );
            std::io::stdout()
                .write_all(text.as_bytes())
                .expect("writing to stdout");
        }
        Some("read") if args.len() >= 3 => {
            let repeat: usize = args[1]
                .parse()
                .unwrap_or_else(|_| usage("REPEAT is a number"));
            for file in &args[2..] {
                read(file, repeat.max(1));
            }
        }
        // The fast reader alone, for a profiler.
        Some("fast") if args.len() == 3 => {
            let bytes = std::fs::read(&args[2]).unwrap_or_else(|e| usage(&e.to_string()));
            for _ in 0..args[1].parse().unwrap_or(1) {
                let h = parse_edn_fast(&bytes)
                    .unwrap_or_else(|| usage("the fast reader stepped aside"));
                std::mem::forget(h);
            }
        }
        _ => usage("expected `gen`, `read` or `fast`"),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: edn_bench gen cas|bank|append OPS CLIENTS SEED lines|vector > FILE\n       edn_bench read REPEAT FILE..."
    );
    std::process::exit(2)
}

/// Times both readers on one file, alternating which goes first, and prints median and spread.
fn read(file: &str, repeat: usize) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| usage(&format!("cannot read {file}: {e}")));
    let mut fast_s = Vec::new();
    let mut generic_s = Vec::new();
    let mut events = 0;
    for round in 0..repeat {
        for which in [round % 2, 1 - round % 2] {
            let started = Instant::now();
            let h = if which == 0 {
                parse_edn(&bytes)
            } else {
                parse_edn_generic(&bytes)
            }
            .unwrap_or_else(|e| usage(&format!("{file}: {e}")));
            let took = started.elapsed().as_secs_f64();
            events = h.len();
            std::mem::forget(h); // as `verity check` does: the process frees nothing at its end
            if which == 0 {
                fast_s.push(took);
            } else {
                generic_s.push(took);
            }
        }
    }
    let same = parse_edn(&bytes).ok() == parse_edn_generic(&bytes).ok();
    let (fast, fast_spread) = median_spread(&mut fast_s);
    let (generic, generic_spread) = median_spread(&mut generic_s);
    let rate = |s: f64| events as f64 / s / 1e6;
    println!(
        "{file}: {events} events, {:.1} MB; parse_edn {:.3} s ({:.2} M events/s, spread {:.3}–{:.3} s); \
         generic {:.3} s ({:.2} M events/s, spread {:.3}–{:.3} s); ratio {:.1}×; same history: {same}",
        bytes.len() as f64 / 1e6,
        fast,
        rate(fast),
        fast_spread.0,
        fast_spread.1,
        generic,
        rate(generic),
        generic_spread.0,
        generic_spread.1,
        generic / fast,
    );
}

fn median_spread(xs: &mut [f64]) -> (f64, (f64, f64)) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], (xs[0], xs[xs.len() - 1]))
}

/// One history as EDN text.
fn generate(kind: &str, ops: u64, clients: u64, seed: u64, vector: bool) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sim: Box<dyn Simulation> = match kind {
        "cas" => Box::new(CasRegister { value: 0 }),
        "bank" => Box::new(Bank {
            balances: vec![10; 8],
        }),
        "append" => Box::new(Append {
            lists: Vec::new(),
            base: 0,
        }),
        other => usage(&format!(
            "unknown kind {other}: expected cas, bank or append"
        )),
    };
    let mut out = String::new();
    if vector {
        out.push('[');
    }
    // Each client has at most one op in flight; an op takes effect when it completes, so the
    // history is linearizable (the bank's :info transfers may or may not have happened).
    let mut pending: Vec<Option<(String, String)>> = vec![None; clients as usize];
    let mut process: Vec<u64> = (0..clients).collect();
    let mut next_process = clients;
    let (mut index, mut time, mut done) = (0u64, 0u64, 0u64);
    let line = |out: &mut String, body: &str, process: &str, index: &mut u64, time: u64| {
        if vector && *index > 0 {
            out.push_str("\n ");
        }
        write!(
            out,
            "{{{body}, :process {process}, :time {time}, :index {index}}}"
        )
        .expect("writing to a string");
        if !vector {
            out.push('\n');
        }
        *index += 1;
    };
    while done < ops || pending.iter().any(Option::is_some) {
        time += rng.gen_range(1_000..50_000);
        let c = rng.gen_range(0..clients as usize);
        let p = process[c].to_string();
        if let Some((f, value)) = pending[c].take() {
            let (kind, value, extra) = sim.complete(&f, &value, &mut rng);
            let body = format!(":type :{kind}, :f :{f}, :value {value}{extra}");
            line(&mut out, &body, &p, &mut index, time);
            if kind == "info" {
                process[c] = next_process;
                next_process += 1;
            }
        } else if done < ops {
            let (f, value) = sim.invoke(&mut rng);
            let body = format!(":type :invoke, :f :{f}, :value {value}");
            line(&mut out, &body, &p, &mut index, time);
            pending[c] = Some((f, value));
            done += 1;
        }
        if kind == "bank" && rng.gen_ratio(1, 500) {
            let f = ["start", "stop"][rng.gen_range(0..2)];
            let body = format!(
                ":type :info, :f :{f}, :value [:n{} :n{}]",
                rng.gen_range(1..4),
                rng.gen_range(1..6)
            );
            line(&mut out, &body, ":nemesis", &mut index, time);
        }
    }
    if vector {
        out.push_str("]\n");
    }
    out
}

trait Simulation {
    /// An invocation: its `:f` and `:value`.
    fn invoke(&mut self, rng: &mut ChaCha8Rng) -> (String, String);
    /// Its completion: `:type`, `:value` and any further fields, applying the op if it happened.
    fn complete(
        &mut self,
        f: &str,
        value: &str,
        rng: &mut ChaCha8Rng,
    ) -> (&'static str, String, String);
}

struct CasRegister {
    value: i64,
}

impl Simulation for CasRegister {
    fn invoke(&mut self, rng: &mut ChaCha8Rng) -> (String, String) {
        match rng.gen_range(0..3) {
            0 => ("read".into(), "nil".into()),
            1 => ("write".into(), rng.gen_range(0..5).to_string()),
            _ => (
                "cas".into(),
                format!("[{} {}]", rng.gen_range(0..5), rng.gen_range(0..5)),
            ),
        }
    }

    fn complete(
        &mut self,
        f: &str,
        value: &str,
        _: &mut ChaCha8Rng,
    ) -> (&'static str, String, String) {
        match f {
            "read" => ("ok", self.value.to_string(), String::new()),
            "write" => {
                self.value = value.parse().expect("written by invoke");
                ("ok", value.into(), String::new())
            }
            _ => {
                let mut parts = value[1..value.len() - 1]
                    .split(' ')
                    .map(|p| p.parse::<i64>());
                let (Some(Ok(old)), Some(Ok(new))) = (parts.next(), parts.next()) else {
                    unreachable!("written by invoke")
                };
                if old == self.value {
                    self.value = new;
                    ("ok", value.into(), String::new())
                } else {
                    ("fail", value.into(), String::new())
                }
            }
        }
    }
}

struct Bank {
    balances: Vec<i64>,
}

impl Bank {
    fn read(&self) -> String {
        let entries: Vec<String> = self
            .balances
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{i} {b}"))
            .collect();
        format!("{{{}}}", entries.join(", "))
    }
}

impl Simulation for Bank {
    fn invoke(&mut self, rng: &mut ChaCha8Rng) -> (String, String) {
        if rng.gen_ratio(1, 4) {
            return ("read".into(), "nil".into());
        }
        let n = self.balances.len();
        let from = rng.gen_range(0..n);
        let to = (from + rng.gen_range(1..n)) % n;
        (
            "transfer".into(),
            format!(
                "{{:from {from}, :to {to}, :amount {}}}",
                rng.gen_range(1..5)
            ),
        )
    }

    fn complete(
        &mut self,
        f: &str,
        value: &str,
        rng: &mut ChaCha8Rng,
    ) -> (&'static str, String, String) {
        if f == "read" {
            return ("ok", self.read(), String::new());
        }
        let field = |name: &str| -> i64 {
            let at = value.find(name).expect("written by invoke") + name.len() + 1;
            value[at..]
                .split([',', '}'])
                .next()
                .and_then(|v| v.trim().parse().ok())
                .expect("written by invoke")
        };
        let (from, to, amount) = (
            field(":from") as usize,
            field(":to") as usize,
            field(":amount"),
        );
        let happens = self.balances[from] >= amount;
        if rng.gen_ratio(1, 100) {
            // Timed out: it may or may not have happened.
            if happens && rng.gen_bool(0.5) {
                self.balances[from] -= amount;
                self.balances[to] += amount;
            }
            return ("info", value.into(), ", :error :timeout".into());
        }
        if !happens {
            return (
                "fail",
                value.into(),
                format!(", :error [:negative {from} -1]"),
            );
        }
        self.balances[from] -= amount;
        self.balances[to] += amount;
        ("ok", value.into(), String::new())
    }
}

/// Elle's list-append: a window of eight live keys that moves on as lists grow, so reads stay short.
struct Append {
    lists: Vec<Vec<i64>>,
    base: usize,
}

impl Simulation for Append {
    fn invoke(&mut self, rng: &mut ChaCha8Rng) -> (String, String) {
        let n = rng.gen_range(1..5);
        let mops: Vec<String> = (0..n)
            .map(|_| {
                let k = self.base + rng.gen_range(0..8);
                if rng.gen_bool(0.5) {
                    format!("[:r {k} nil]")
                } else {
                    format!("[:append {k} {}]", rng.gen_range(0..1_000_000))
                }
            })
            .collect();
        ("txn".into(), format!("[{}]", mops.join(" ")))
    }

    fn complete(
        &mut self,
        _: &str,
        value: &str,
        _: &mut ChaCha8Rng,
    ) -> (&'static str, String, String) {
        let mut out = Vec::new();
        for mop in value[1..value.len() - 1].split("] [") {
            let parts: Vec<&str> = mop.trim_matches(['[', ']']).split(' ').collect();
            let k: usize = parts[1].parse().expect("written by invoke");
            if self.lists.len() <= k {
                self.lists.resize(k + 1, Vec::new());
            }
            if parts[0] == ":r" {
                let items: Vec<String> = self.lists[k].iter().map(i64::to_string).collect();
                out.push(format!("[:r {k} [{}]]", items.join(" ")));
            } else {
                self.lists[k].push(parts[2].parse().expect("written by invoke"));
                if self.lists[k].len() >= 16 {
                    self.base += 1;
                }
                out.push(format!("[:append {k} {}]", parts[2]));
            }
        }
        ("ok", format!("[{}]", out.join(" ")), String::new())
    }
}
