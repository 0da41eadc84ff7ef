//! The one shape of every registry: targets, workloads, checkers and models are each a static list
//! of named entries, looked up by name with the same error when the name is unknown.
//!
//! A new target, workload or checker is one new file plus one entry in its crate's list; the binary
//! asks the list what an entry can do (its workloads, its default nemesis, its timeout) and never
//! spells a name itself. Order is the list's, so `verity list` and every "valid choices" message read
//! the same on every run.

use thiserror::Error;

/// One entry of a registry.
pub trait Entry: 'static {
    /// The name a user types (`--target postgres`).
    fn name(&self) -> &'static str;
    /// One line for `verity list`.
    fn about(&self) -> &'static str;
}

/// A name that is not in a registry, with the valid choices.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind} {name:?}: valid choices are {choices}")]
pub struct Unknown {
    pub kind: &'static str,
    pub name: String,
    pub choices: String,
}

/// A static list of entries of one kind.
pub struct Registry<E: 'static> {
    /// What the entries are ("target", "workload", "checker"), for messages.
    pub kind: &'static str,
    pub entries: &'static [E],
}

impl<E: Entry> Registry<E> {
    pub const fn new(kind: &'static str, entries: &'static [E]) -> Self {
        Registry { kind, entries }
    }

    /// The entry named `name`, or an error listing the valid choices.
    pub fn get(&self, name: &str) -> Result<&'static E, Unknown> {
        self.entries
            .iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| Unknown {
                kind: self.kind,
                name: name.to_string(),
                choices: self.names().join(", "),
            })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(Entry::name).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static E> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing(&'static str);
    impl Entry for Thing {
        fn name(&self) -> &'static str {
            self.0
        }
        fn about(&self) -> &'static str {
            "a thing"
        }
    }

    static THINGS: Registry<Thing> = Registry::new("thing", &[Thing("a"), Thing("b")]);

    #[test]
    fn entries_are_found_by_name_and_unknown_names_list_the_choices() {
        assert_eq!(THINGS.get("b").map(|t| t.0), Ok("b"));
        let e = THINGS.get("c").err().expect("c is not a thing");
        assert_eq!(e.to_string(), "unknown thing \"c\": valid choices are a, b");
        assert_eq!(THINGS.names(), vec!["a", "b"]);
    }
}
