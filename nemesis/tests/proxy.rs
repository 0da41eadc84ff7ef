//! Integration tests of the TCP proxy mesh against real loopback echo servers: each link state really
//! does what it says (drop carries no byte, delay delays, loss keeps the stream intact), healing
//! restores flow, and the limits hold. Timing is only ever asserted as a lower bound.

mod support;

use std::time::{Duration, Instant};

use support::{eventually, Echo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use verity_nemesis::proxy::{LinkState, ProxyConfig, ProxyMesh, CLIENT};

const WITHIN: Duration = Duration::from_secs(10);

async fn mesh_to(echoes: &[&Echo], config: ProxyConfig) -> ProxyMesh {
    let nodes: Vec<(String, Option<std::net::SocketAddr>)> = echoes
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("n{}", i + 1), Some(e.addr)))
        .collect();
    ProxyMesh::start(&[CLIENT], &nodes, config, 7)
        .await
        .expect("start mesh")
}

/// Writes `msg` and reads the same number of bytes back, with a deadline.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(WITHIN, s.read_exact(&mut back))
        .await
        .expect("echo within the deadline")
        .expect("read");
    back
}

#[tokio::test]
async fn pass_forwards_both_ways_and_counts_bytes() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    assert_eq!(round_trip(&mut s, b"hello").await, b"hello");
    let all = mesh.all_stats();
    assert_eq!(all.keys().collect::<Vec<_>>(), vec!["c->n1", "n1->c"]);
    assert_eq!(all["c->n1"].bytes, 5);
    let there = mesh.stats(CLIENT, "n1").unwrap();
    let back = mesh.stats("n1", CLIENT).unwrap();
    assert_eq!((there.bytes, back.bytes, there.accepted), (5, 5, 1));
    assert!(
        mesh.addr("n1", CLIENT).is_none(),
        "nodes never dial clients"
    );
}

#[tokio::test]
async fn a_dropped_link_carries_no_bytes_until_it_heals() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    assert_eq!(round_trip(&mut s, b"before").await, b"before");

    mesh.set(CLIENT, "n1", LinkState::Drop).unwrap();
    s.write_all(b"during the partition").await.unwrap();
    // Observe for a while that nothing got through; this bounds an absence, it does not time a result.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(echo.received(), 6, "no byte may cross a dropped link");
    assert_eq!(mesh.stats(CLIENT, "n1").unwrap().bytes, 6);

    mesh.pass_all();
    let mut back = vec![0u8; 20];
    tokio::time::timeout(WITHIN, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &back, b"during the partition",
        "held bytes arrive intact after the heal"
    );
}

#[tokio::test]
async fn a_new_connection_over_a_dropped_link_never_reaches_the_node() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    mesh.set(CLIENT, "n1", LinkState::Drop).unwrap();
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    s.write_all(b"x").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        echo.accepted(),
        0,
        "the held connection must not reach the node"
    );
    mesh.set(CLIENT, "n1", LinkState::Pass).unwrap();
    let mut back = [0u8; 1];
    tokio::time::timeout(WITHIN, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo.accepted(), 1);
}

#[tokio::test]
async fn dropping_only_the_reply_direction_holds_replies() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    mesh.set("n1", CLIENT, LinkState::Drop).unwrap();
    s.write_all(b"ping").await.unwrap();
    assert!(
        eventually(WITHIN, || echo.received() == 4).await,
        "requests still pass"
    );
    let mut back = [0u8; 4];
    let early = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut back)).await;
    assert!(early.is_err(), "no reply may cross the dropped direction");
    mesh.pass_all();
    tokio::time::timeout(WITHIN, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"ping");
}

#[tokio::test]
async fn node_to_node_links_follow_their_own_state() {
    let (e1, e2, e3) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let mesh = mesh_to(&[&e1, &e2, &e3], ProxyConfig::default()).await;
    // Isolate n1: bytes between n1 and the others are dropped both ways; n2 <-> n3 and clients pass.
    mesh.set_all(|src, dst| {
        let isolated = (src == "n1") != (dst == "n1") && src != CLIENT && dst != CLIENT;
        if isolated {
            LinkState::Drop
        } else {
            LinkState::Pass
        }
    })
    .unwrap();
    let mut n1_to_n2 = TcpStream::connect(mesh.addr("n1", "n2").unwrap())
        .await
        .unwrap();
    let mut n3_to_n2 = TcpStream::connect(mesh.addr("n3", "n2").unwrap())
        .await
        .unwrap();
    let mut c_to_n1 = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    assert_eq!(round_trip(&mut n3_to_n2, b"ok").await, b"ok");
    assert_eq!(round_trip(&mut c_to_n1, b"ok").await, b"ok");
    n1_to_n2.write_all(b"cut").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e2.received(), 2, "only n3's bytes reached n2");
    assert!(!mesh.all_pass());
    mesh.pass_all();
    assert!(mesh.all_pass());
    let mut back = [0u8; 3];
    tokio::time::timeout(WITHIN, n1_to_n2.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"cut");
}

#[tokio::test]
async fn delay_delays_at_least_the_delay_and_heal_removes_it() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    mesh.set(
        CLIENT,
        "n1",
        LinkState::Delay {
            delay_ms: 200,
            jitter_ms: 50,
        },
    )
    .unwrap();
    for _ in 0..3 {
        let t0 = Instant::now();
        assert_eq!(round_trip(&mut s, b"slow").await, b"slow");
        assert!(
            t0.elapsed() >= Duration::from_millis(150),
            "took {:?}",
            t0.elapsed()
        );
    }
    mesh.pass_all();
    assert_eq!(round_trip(&mut s, b"fast").await, b"fast");
}

#[tokio::test]
async fn loss_stalls_but_never_corrupts_the_stream() {
    let echo = Echo::start().await;
    let config = ProxyConfig {
        chunk_bytes: 64,
        loss_rto_ms: 1,
        loss_rto_max_ms: 4,
        loss_retries_max: 40,
        ..ProxyConfig::default()
    };
    let mesh = mesh_to(&[&echo], config).await;
    mesh.set(CLIENT, "n1", LinkState::Loss { p: 0.5 }).unwrap();
    mesh.set("n1", CLIENT, LinkState::Loss { p: 0.5 }).unwrap();
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    let msg: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    assert_eq!(
        round_trip(&mut s, &msg).await,
        msg,
        "bytes arrive complete and in order"
    );
    assert!(mesh.stats(CLIENT, "n1").unwrap().chunks > 1);
}

#[tokio::test]
async fn a_connection_held_too_long_is_severed() {
    let echo = Echo::start().await;
    let config = ProxyConfig {
        hold_ms_max: 100,
        ..ProxyConfig::default()
    };
    let mesh = mesh_to(&[&echo], config).await;
    mesh.set(CLIENT, "n1", LinkState::Drop).unwrap();
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(WITHIN, s.read(&mut buf))
        .await
        .expect("severed within the deadline");
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "the proxy closed the connection"
    );
    assert!(eventually(WITHIN, || mesh.stats(CLIENT, "n1").unwrap().severed == 1).await);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let echo = Echo::start().await;
    let config = ProxyConfig {
        connections_per_link_max: 2,
        ..ProxyConfig::default()
    };
    let mesh = mesh_to(&[&echo], config).await;
    let addr = mesh.addr(CLIENT, "n1").unwrap();
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut a, b"a").await, b"a");
    assert_eq!(round_trip(&mut b, b"b").await, b"b");
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let _ = c.write_all(b"c").await;
    let r = tokio::time::timeout(WITHIN, c.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)));
    assert_eq!(mesh.stats(CLIENT, "n1").unwrap().refused, 1);
}

#[tokio::test]
async fn invalid_states_and_unknown_endpoints_are_errors() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    assert!(mesh.set(CLIENT, "n9", LinkState::Drop).is_err());
    assert!(mesh.set(CLIENT, "n1", LinkState::Loss { p: 1.0 }).is_err());
    let huge = LinkState::Delay {
        delay_ms: 1_000_000,
        jitter_ms: 0,
    };
    assert!(mesh.set(CLIENT, "n1", huge).is_err());
    assert_eq!(mesh.state(CLIENT, "n1"), Some(LinkState::Pass));
    assert!(
        ProxyMesh::start(&[CLIENT], &[("c".into(), None)], ProxyConfig::default(), 0)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn upstream_can_be_set_after_start_and_dropping_the_mesh_closes_connections() {
    let echo = Echo::start().await;
    let mesh = ProxyMesh::start(&[CLIENT], &[("n1".into(), None)], ProxyConfig::default(), 1)
        .await
        .unwrap();
    mesh.set_upstream("n1", echo.addr).unwrap();
    let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
        .await
        .unwrap();
    assert_eq!(round_trip(&mut s, b"late").await, b"late");
    drop(mesh);
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(WITHIN, s.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "the connection closed with the mesh"
    );
}

#[tokio::test]
async fn closed_connections_are_not_leaked() {
    let echo = Echo::start().await;
    let mesh = mesh_to(&[&echo], ProxyConfig::default()).await;
    for _ in 0..20 {
        let mut s = TcpStream::connect(mesh.addr(CLIENT, "n1").unwrap())
            .await
            .unwrap();
        assert_eq!(round_trip(&mut s, b"x").await, b"x");
    }
    assert!(eventually(WITHIN, || mesh.stats(CLIENT, "n1").unwrap().active == 0).await);
    assert_eq!(mesh.stats(CLIENT, "n1").unwrap().accepted, 20);
}

/// For stores whose members dial one advertised address per peer (etcd): every member's link to a
/// node shares one port, on its own loopback address, and reaches the node's peer upstream; a link
/// fault still acts on that member's link alone.
#[tokio::test]
async fn per_source_addresses_share_a_port_and_keep_links_apart() {
    let client_side = Echo::start().await;
    let peer_side = Echo::start().await;
    let others = [Echo::start().await, Echo::start().await];
    let config = ProxyConfig {
        per_source_addresses: true,
        ..ProxyConfig::default()
    };
    let mesh = mesh_to(&[&client_side, &others[0], &others[1]], config).await;
    mesh.set_peer_upstream("n1", peer_side.addr).unwrap();
    let (from2, from3) = (
        mesh.addr("n2", "n1").unwrap(),
        mesh.addr("n3", "n1").unwrap(),
    );
    assert_eq!(
        from2.port(),
        from3.port(),
        "one advertised port per destination"
    );
    assert_ne!(from2.ip(), from3.ip(), "each source on its own address");
    assert_eq!(from2.ip().to_string(), "127.0.3.2");
    let client = mesh.addr(CLIENT, "n1").unwrap();
    assert_eq!(client.ip().to_string(), "127.0.0.1");

    let mut s = TcpStream::connect(from2).await.unwrap();
    assert_eq!(round_trip(&mut s, b"peer").await, b"peer");
    assert_eq!(
        peer_side.received(),
        4,
        "node links reach the peer upstream"
    );
    let mut c = TcpStream::connect(client).await.unwrap();
    assert_eq!(round_trip(&mut c, b"client").await, b"client");
    assert_eq!(
        client_side.received(),
        6,
        "client links reach the client upstream"
    );

    mesh.set("n2", "n1", LinkState::Drop).unwrap();
    let mut cut = TcpStream::connect(from2).await.unwrap();
    cut.write_all(b"held").await.unwrap();
    let mut open = TcpStream::connect(from3).await.unwrap();
    assert_eq!(round_trip(&mut open, b"free").await, b"free");
    assert!(eventually(WITHIN, || peer_side.received() == 8).await);
    assert_eq!(
        mesh.stats("n2", "n1").unwrap().bytes,
        4,
        "n2's cut link carried nothing new"
    );
}
