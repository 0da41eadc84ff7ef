//! verity's integration tests: the binary as a user runs it. One test binary, as ripgrep does.

mod check;
mod cli;
mod cluster;
mod etcd;
mod exec;
mod http;
mod nemesis;
mod redis;
mod run;
mod sql;
mod support;
