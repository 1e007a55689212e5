//! [`TcpProxy`]: a loopback TCP forwarder in front of a database, so the ingest workload can
//! take the database away from the server it drives (every connection cut, new ones closed
//! at once) and give it back, as in a network outage.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A forwarder from a free loopback port to `target`. Dropping it cuts every connection.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// What the accept loop and the proxy's owner share.
#[derive(Debug, Default)]
struct Shared {
    /// Whether new connections are forwarded.
    up: AtomicBool,
    /// Connections forwarded.
    forwarded: AtomicU64,
    /// Connections closed at once because the proxy was cut.
    refused: AtomicU64,
}

impl TcpProxy {
    /// Start forwarding a free port of 127.0.0.1 to `target`.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(target: SocketAddr) -> io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            up: AtomicBool::new(true),
            ..Shared::default()
        });
        let (cut, _) = watch::channel(0u64);
        let (state, cuts) = (shared.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !state.up.load(Ordering::SeqCst) {
                    state.refused.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                state.forwarded.fetch_add(1, Ordering::Relaxed);
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(TcpProxy {
            addr,
            shared,
            cut,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cut every connection and close new ones at once, until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Forward new connections again.
    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Connections forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// Connections closed at once so far because the proxy was cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// An echo server on a free loopback port.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(conn: &mut TcpStream) -> io::Result<[u8; 4]> {
        conn.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn forwards_cuts_and_restores() {
        let proxy = TcpProxy::start(echo().await).await.expect("proxy");
        let mut live = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(&round_trip(&mut live).await.expect("echo"), b"ping");
        assert_eq!(proxy.forwarded(), 1);

        proxy.cut();
        assert!(
            round_trip(&mut live).await.is_err(),
            "a live connection survived the cut"
        );
        let mut refused = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert!(
            round_trip(&mut refused).await.is_err(),
            "a new one was forwarded"
        );
        assert_eq!(proxy.refused(), 1);

        proxy.restore();
        let mut back = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(&round_trip(&mut back).await.expect("echo"), b"ping");
        assert_eq!(proxy.forwarded(), 2);
    }
}
