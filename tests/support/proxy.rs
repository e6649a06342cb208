//! A TCP proxy between one Warden process and PostgreSQL that can cut that process's
//! connections (and refuse new ones for a while) or slow every packet down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Default)]
struct Faults {
    refusing: AtomicBool,
    delay_ms: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    faults: Arc<Faults>,
    /// Bumped to close every connection open now.
    cuts: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let (cuts, _) = watch::channel(0);
        let proxy = Self {
            port,
            faults: faults.clone(),
            cuts: cuts.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if faults.refusing.load(Ordering::Relaxed) {
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
        });
        Ok(proxy)
    }

    /// Closes every connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.faults.refusing.store(true, Ordering::Relaxed);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Every packet in either direction waits `delay` first.
    pub fn slow(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.faults.delay_ms.store(ms, Ordering::Relaxed);
    }

    pub fn heal(&self) {
        self.faults.refusing.store(false, Ordering::Relaxed);
        self.faults.delay_ms.store(0, Ordering::Relaxed);
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
        let delay = faults.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
