//! A TCP proxy between one Warden process and PostgreSQL that can cut that process's
//! connections (both ends see them closed, and new ones are refused), partition them (nothing
//! passes and nobody is told) or slow every packet down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Faults {
    refusing: AtomicBool,
    partitioned: AtomicBool,
    delay_ms: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    faults: Arc<Faults>,
    /// Bumped to close every connection open now.
    cuts: watch::Sender<u64>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to the PostgreSQL listening on `upstream` (a port on 127.0.0.1).
    pub async fn start(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let (cuts, _) = watch::channel(0);
        let accepting = tokio::spawn({
            let faults = faults.clone();
            let cuts = cuts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if faults.refusing.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let faults = faults.clone();
                    let cut = cuts.subscribe();
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                            relay(client, server, faults, cut).await;
                        }
                    });
                }
            }
        });
        Ok(Self {
            port,
            faults,
            cuts,
            accepting,
        })
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, database_url: &str) -> String {
        let (scheme_user, rest) = database_url.split_once('@').unwrap_or(("postgres://", ""));
        let database = rest.split_once('/').map_or("postgres", |(_, d)| d);
        format!("{scheme_user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Closes every connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.faults.refusing.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Nothing passes either way, and no connection is closed, until `heal`.
    pub fn partition(&self) {
        self.faults.partitioned.store(true, Ordering::SeqCst);
    }

    /// Every packet in either direction waits `delay` first.
    pub fn slow(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.faults.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.faults.refusing.store(false, Ordering::SeqCst);
        self.faults.partitioned.store(false, Ordering::SeqCst);
        self.faults.delay_ms.store(0, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cuts.send_modify(|n| *n += 1);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    faults: Arc<Faults>,
    mut cut: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, faults.clone());
    let down = pump(server_read, client_write, faults);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
}

/// Copies one direction, holding every byte back while partitioned.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    faults: Arc<Faults>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while faults.partitioned.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delay = faults.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
