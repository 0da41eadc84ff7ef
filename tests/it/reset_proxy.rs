//! A TCP proxy on loopback that resets connections: in front of a server, it forwards every byte
//! both ways, except that every `every`-th request starting with a given prefix is forwarded and
//! its answer thrown away, and the client's connection is closed with `SO_LINGER` 0 — a TCP RST, what
//! a client sees when a load balancer, a crashing server or a middlebox drops a connection in the
//! middle of a request. The operation may or may not have happened: the harness must record it as
//! indeterminate and go on.
//!
//! Two threads per connection (one per direction), one accepting; every loop ends when its socket
//! does, and dropping the proxy stops the acceptor. Nothing here sleeps.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The most bytes one read moves: a request of the protocols under test fits in one.
const CHUNK: usize = 64 * 1024;

pub struct ResettingProxy {
    pub addr: SocketAddr,
    /// Connections reset so far.
    pub resets: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

struct Rule {
    prefix: &'static [u8],
    every: u64,
    seen: AtomicU64,
}

impl ResettingProxy {
    /// Listens on a free loopback port and forwards to `upstream`, resetting after every `every`-th
    /// request whose first bytes are `prefix` (e.g. `b"POST /transfer"`).
    pub fn start(upstream: SocketAddr, prefix: &'static [u8], every: u64) -> ResettingProxy {
        assert!(every > 0, "reset every n-th request, n >= 1");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let stop = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicU64::new(0));
        let rule = Arc::new(Rule {
            prefix,
            every,
            seen: AtomicU64::new(0),
        });
        let acceptor = {
            let (stop, resets) = (stop.clone(), resets.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    connect(client, server, rule.clone(), resets.clone());
                }
            })
        };
        ResettingProxy {
            addr,
            resets,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ResettingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Relays one connection. The client-to-server thread marks the connection doomed when it forwards
/// the request to reset; the server-to-client thread, at that request's answer, sets `SO_LINGER` 0
/// on the client's socket instead of forwarding, and shuts its reading side (which ends the other
/// thread); the last close of the socket then sends the RST.
fn connect(client: TcpStream, server: TcpStream, rule: Arc<Rule>, resets: Arc<AtomicU64>) {
    let doomed = Arc::new(AtomicBool::new(false));
    let (mut c_read, mut s_write) = (
        client.try_clone().expect("clone the client socket"),
        server.try_clone().expect("clone the server socket"),
    );
    let (mut c_write, mut s_read) = (client, server);
    let up_doomed = doomed.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if buf[..n].starts_with(rule.prefix)
                && (rule.seen.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(rule.every)
            {
                up_doomed.store(true, Ordering::SeqCst);
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if doomed.load(Ordering::SeqCst) {
                socket2::SockRef::from(&c_write)
                    .set_linger(Some(std::time::Duration::ZERO))
                    .expect("set SO_LINGER on a live socket");
                resets.fetch_add(1, Ordering::SeqCst);
                let _ = c_write.shutdown(Shutdown::Read);
                let _ = s_read.shutdown(Shutdown::Both);
                return;
            }
            if c_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Write);
    });
}
