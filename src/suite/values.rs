//! The value shapes of a suite file that TOML has no type for: durations as the command line writes
//! them (`10s`, `1m30s`, `500ms`, or a bare number of seconds), seeds as a count or a list, and
//! names given as one string or a list of strings.
//!
//! Each is a serde type with its own visitor, so a wrong shape fails inside the TOML deserializer,
//! which then locates the error at the offending value; the messages say what was expected.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// At most this many seeds per scenario (a count or a list).
pub const SEEDS_MAX: u64 = 1000;
/// At most this many names in one list (bugs, anomalies, checkers, faults).
pub const NAMES_MAX: usize = 100;

/// A duration, with the text it was written as (passed unchanged to `verity run`, whose parser
/// reads exactly what this one reads).
#[derive(Debug, Clone, PartialEq)]
pub struct Dur {
    pub duration: Duration,
    pub text: String,
}

/// Parses a duration as `verity run` does: a bare number of seconds, or `10s`, `2m`, `1m30s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && (0.0..1e12).contains(&secs) {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s).map_err(|_| {
        format!("malformed duration {s:?}: expected e.g. \"30s\", \"2m\", \"1m30s\" or \"500ms\"")
    })
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"2m\", \"1m30s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                let duration = parse_duration(s).map_err(E::custom)?;
                Ok(Dur {
                    duration,
                    text: s.trim().to_string(),
                })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                let secs = u64::try_from(n)
                    .map_err(|_| E::custom(format!("a duration cannot be negative ({n})")))?;
                Ok(Dur {
                    duration: Duration::from_secs(secs),
                    text: secs.to_string(),
                })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Dur, E> {
                if !(x.is_finite() && (0.0..1e12).contains(&x)) {
                    return Err(E::custom(format!(
                        "a duration is a non-negative number of seconds, not {x}"
                    )));
                }
                Ok(Dur {
                    duration: Duration::from_secs_f64(x),
                    text: x.to_string(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The seeds of a scenario: a count (seeds `seed`, `seed + 1`, …) or an explicit list.
#[derive(Debug, Clone, PartialEq)]
pub enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

impl<'de> Deserialize<'de> for Seeds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Seeds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a number of seeds (1 to {SEEDS_MAX}) or a list of seeds such as [1, 2, 3]"
                )
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Seeds, E> {
                match u64::try_from(n) {
                    Ok(n @ 1..=SEEDS_MAX) => Ok(Seeds::Count(n)),
                    _ => Err(E::custom(format!(
                        "seeds = {n}: a count of seeds is between 1 and {SEEDS_MAX}"
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Seeds, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seeds, A::Error> {
                let mut seeds = Vec::new();
                while let Some(s) = seq.next_element::<u64>()? {
                    if seeds.contains(&s) {
                        return Err(de::Error::custom(format!("seed {s} is listed twice")));
                    }
                    if seeds.len() as u64 >= SEEDS_MAX {
                        return Err(de::Error::custom(format!(
                            "more than {SEEDS_MAX} seeds in one scenario"
                        )));
                    }
                    seeds.push(s);
                }
                if seeds.is_empty() {
                    return Err(de::Error::custom(
                        "the list of seeds is empty: give at least one seed",
                    ));
                }
                Ok(Seeds::List(seeds))
            }
        }
        d.deserialize_any(V)
    }
}

/// One name or a list of names (`bugs = "lost-update"` or `bugs = ["lost-update", "overdraft"]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Names(pub Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    if names.len() >= NAMES_MAX {
                        return Err(de::Error::custom(format!(
                            "more than {NAMES_MAX} names in one list"
                        )));
                    }
                    names.push(s);
                }
                Ok(Names(names))
            }
        }
        d.deserialize_any(V)
    }
}
