//! Benchmark of the TCP proxy mesh: what a link in `pass` state adds to a round trip, and how much
//! throughput one proxied connection carries, each compared with a direct connection on loopback.
//! The proxy must never be the bottleneck of the system under test (design.md, "Fast").
//!
//! Run: `cargo run --release -p verity-targets --example proxy_bench [repeats]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use verity_nemesis::{ProxyConfig, ProxyMesh, CLIENT};

const ROUND_TRIPS: usize = 5_000;
const STREAM_BYTES: usize = 256 << 20;

/// A server that echoes small messages and, on the first byte `S`, swallows a stream until EOF and
/// answers one byte.
async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let Ok(n) = s.read(&mut buf).await else {
                    return;
                };
                if n > 0 && buf[0] == b'S' {
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    let _ = s.write_all(b"k").await;
                    return;
                }
                let mut n = n;
                while n > 0 {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    n = s.read(&mut buf).await.unwrap_or(0);
                }
            });
        }
    });
    addr
}

async fn rtt_us(addr: SocketAddr) -> (f64, f64) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let msg = [b'p'; 64];
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t0 = Instant::now();
        s.write_all(&msg).await.expect("write");
        s.read_exact(&mut back).await.expect("read");
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

async fn throughput_mib_s(addr: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let chunk = vec![b'S'; 64 * 1024];
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < STREAM_BYTES {
        s.write_all(&chunk).await.expect("write");
        sent += chunk.len();
    }
    s.shutdown().await.expect("shutdown");
    let mut k = [0u8; 1];
    s.read_exact(&mut k).await.expect("ack");
    (STREAM_BYTES as f64 / (1 << 20) as f64) / t0.elapsed().as_secs_f64()
}

fn summary(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!(
        "median {:.1} (min {:.1}, max {:.1})",
        xs[xs.len() / 2],
        xs[0],
        xs[xs.len() - 1]
    )
}

#[tokio::main]
async fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let direct = server().await;
    let mesh = ProxyMesh::start(
        &[CLIENT],
        &[("n1".into(), Some(direct))],
        ProxyConfig::default(),
        0,
    )
    .await
    .expect("mesh");
    let proxied = mesh.addr(CLIENT, "n1").expect("link");
    for (name, addr) in [("direct", direct), ("proxied", proxied)] {
        let (mut p50, mut p99, mut tput) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            let (a, b) = rtt_us(addr).await;
            p50.push(a);
            p99.push(b);
            tput.push(throughput_mib_s(addr).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{name:8} rtt p50 us: {}", summary(p50));
        println!("{name:8} rtt p99 us: {}", summary(p99));
        println!("{name:8} MiB/s:      {}", summary(tput));
    }
}
