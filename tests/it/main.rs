//! verity's integration tests: the binary as a user runs it. One test binary, as ripgrep does.

mod bench;
mod browser;
mod check;
mod cli;
mod cluster;
mod crash;
mod etcd;
mod exec;
mod graph_scale;
mod http;
mod interop;
mod nemesis;
mod redis;
mod report;
mod reset_proxy;
mod run;
mod serve;
mod sql;
mod suite;
mod support;
mod verify;
