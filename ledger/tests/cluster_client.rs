//! The cluster client while nodes are starting: a connection that closes at once (a proxy whose node
//! is not listening yet) must not burn through every attempt in a tight loop. Regression test for a
//! cluster setup that failed instantly with "timeout" instead of waiting out its startup deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use verity_ledger::wire::ClientOp;
use verity_ledger::ClusterClient;

#[tokio::test]
async fn connections_closed_at_once_are_retried_until_the_deadline() {
    // Accepts and drops every connection, as the proxy does while its node is down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        for _ in 0..10_000 {
            match listener.accept().await {
                Ok((socket, _)) => drop(socket),
                Err(_) => break,
            }
        }
    });
    let addrs = BTreeMap::from([("n1".to_string(), addr)]);
    let mut client = ClusterClient::new(addrs, 0, Duration::from_secs(1));
    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let outcome = client.run(&ClientOp::Read, deadline).await;
    let waited = started.elapsed();
    accepting.abort();
    assert!(
        outcome.is_err() || matches!(outcome, Ok(verity_ledger::wire::Outcome::Fail { .. })),
        "{outcome:?}"
    );
    // Only a lower bound: the client must have kept trying for (nearly) its whole deadline.
    assert!(
        waited >= Duration::from_millis(600),
        "gave up after {waited:?} of an {deadline:?} deadline"
    );
}
