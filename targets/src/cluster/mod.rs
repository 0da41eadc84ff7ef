//! The built-in replicated ledger's harness side: the TCP proxy mesh every link goes through, the fault
//! vocabulary, the seeded fault schedule and the nemesis that executes it.

pub mod faults;
pub mod nemesis;
pub mod proxy;
pub mod schedule;
