//! The process supervisor: a node leads its own process group (a kill takes its children too), a
//! private `/etc/hosts` is the node's alone, and the registry lists what runs until it stops.

use std::time::{Duration, Instant};

use verity_nemesis::process::{ProcessSpec, Supervisor};
use verity_nemesis::signal::group_alive;

fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn a_kill_takes_the_whole_process_group_and_the_registry_follows() {
    let dir = tempfile::tempdir().unwrap();
    // A server that forks a worker, as PostgreSQL's postmaster does.
    let spec = ProcessSpec::new("n1", "/bin/sh", dir.path().join("n1.log"))
        .args(["-c", "sleep 60 & sleep 60"]);
    let registry = dir.path().join("processes.json");
    let s = Supervisor::new(vec![spec], Some(registry.clone()));
    let pid = s.start("n1").unwrap();
    assert!(wait_for(Duration::from_secs(5), || registry.exists()));
    let text = std::fs::read_to_string(&registry).unwrap();
    assert!(text.contains(&pid.to_string()), "{text}");
    s.kill("n1").unwrap();
    assert!(!group_alive(pid), "the forked worker died with its group");
    s.stop_all();
    assert!(
        !registry.exists(),
        "a stopped supervisor leaves no registry behind"
    );
}

#[test]
fn a_private_hosts_file_is_seen_by_the_node_alone() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "a mount namespace needs root: run the suite as scripts/test does, as root"
    );
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.3.2 n1.verity\n").unwrap();
    let log = dir.path().join("n2.log");
    let mut spec = ProcessSpec::new("n2", "/bin/cat", log.clone()).args(["/etc/hosts"]);
    spec.hosts = Some(hosts);
    let s = Supervisor::new(vec![spec], None);
    s.start("n2").unwrap();
    assert!(wait_for(Duration::from_secs(5), || s
        .exited("n2")
        .is_some()));
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("127.0.3.2 n1.verity"), "{seen}");
    let ours = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        !ours.contains("n1.verity"),
        "the bind mount leaked into our namespace"
    );
}
