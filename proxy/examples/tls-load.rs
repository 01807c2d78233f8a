//! TLS backend and load generator for `bench/proxy-tls.sh` (loopback only), both ways: the
//! proxy under test takes plain connections and speaks TLS to this backend (`server ...
//! ssl`), or takes TLS connections from this load generator and speaks plain TCP to this
//! backend (`bind ... ssl`, TLS termination).
//!
//! - `tls-load server PORT [CERT_AND_KEY.pem]`: a TLS server on 127.0.0.1:PORT (plain TCP
//!   without a PEM). A connection whose first bytes are `SINK` is drained to its end, then
//!   answered with the count of bytes read (as text); any other connection gets its first
//!   read echoed, then is closed. Each second that saw handshakes, it prints `handshakes full
//!   <n> resumed <n>` (the totals), so that the bench can tell whether the proxy resumed its
//!   TLS sessions.
//! - `tls-load bulk ADDR SECONDS STREAMS [tls]`: STREAMS connections each sending for SECONDS
//!   (`SINK` first), then half-closing (with `tls`: TLS connections, ending with
//!   close_notify); prints `bulk <Gbit/s the server counted>`.
//! - `tls-load connrate ADDR CONCURRENCY SECONDS [tls]`: short connections (connect, send
//!   `ping`, read the echo, close) from CONCURRENCY tasks; with `tls`, each a new TLS
//!   connection with a full handshake (no session resumption: the proxy's handshake cost);
//!   prints `connrate <per second> failed <n>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tls = args.get(5).map(String::as_str) == Some("tls");
    match args.get(1).map(String::as_str) {
        Some("server") if args.len() == 4 => rt.block_on(server(args[2].parse()?, Some(&args[3]))),
        Some("server") if args.len() == 3 => rt.block_on(server(args[2].parse()?, None)),
        Some("bulk") if (5..=6).contains(&args.len()) => {
            let (addr, secs, streams) = (args[2].parse()?, args[3].parse()?, args[4].parse()?);
            rt.block_on(bulk(addr, Duration::from_secs(secs), streams, tls))
        }
        Some("connrate") if (5..=6).contains(&args.len()) => {
            let (addr, conc, secs) = (args[2].parse()?, args[3].parse()?, args[4].parse()?);
            rt.block_on(connrate(addr, conc, Duration::from_secs(secs), tls))
        }
        _ => Err("usage: tls-load server PORT [PEM] | bulk ADDR SECONDS STREAMS [tls] | connrate ADDR CONCURRENCY SECONDS [tls]".into()),
    }
}

async fn server(port: u16, pem: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let acceptor = match pem {
        Some(pem) => Some(tokio_rustls::TlsAcceptor::from(server_config(pem)?)),
        None => None,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let counts: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    tokio::spawn(report_handshakes(counts.clone()));
    loop {
        let (conn, _) = listener.accept().await?;
        let (acceptor, counts) = (acceptor.clone(), counts.clone());
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return serve_one(conn).await;
            };
            let Ok(tls) = acceptor.accept(conn).await else {
                return;
            };
            let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            counts[usize::from(resumed)].fetch_add(1, Ordering::Relaxed);
            serve_one(tls).await
        });
    }
}

fn server_config(pem: &str) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pem)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// One connection: `SINK` drained and counted, anything else echoed once.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = vec![0u8; 64 * 1024];
    let Ok(n) = s.read(&mut buf).await else {
        return;
    };
    if !buf[..n].starts_with(b"SINK") {
        let _ = s.write_all(&buf[..n]).await;
        let _ = s.shutdown().await;
        return;
    }
    let mut total = (n - 4) as u64;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    let _ = s.write_all(total.to_string().as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A TLS client configuration that accepts the proxy's certificate as it is (the bench
/// measures the proxy, not verification; hapx's own `verify none` client side) and resumes
/// no session: each connection is a full handshake.
fn client_config() -> Arc<rustls::ClientConfig> {
    use hapx_proxy::config::model::{ServerTls, Verify};
    let settings = ServerTls {
        ssl: true,
        verify: Some(Verify::None),
        no_reuse: true,
        ..ServerTls::default()
    };
    let client = hapx_proxy::config::tls::build(&settings, Default::default())
        .expect("a TLS client configuration");
    client.connector(None, None).config
}

/// A connection to the proxy, plain or TLS.
async fn open(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> std::io::Result<Box<dyn Stream>> {
    let conn = TcpStream::connect(addr).await?;
    let _ = conn.set_nodelay(true);
    match tls {
        None => Ok(Box::new(conn)),
        Some(connector) => {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            Ok(Box::new(connector.connect(name, conn).await?))
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Prints the handshake totals each second they changed.
async fn report_handshakes(counts: Arc<[AtomicU64; 2]>) {
    let mut last = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (
            counts[0].load(Ordering::Relaxed),
            counts[1].load(Ordering::Relaxed),
        );
        if now != last {
            println!("handshakes full {} resumed {}", now.0, now.1);
            last = now;
        }
    }
}

async fn bulk(
    addr: SocketAddr,
    secs: Duration,
    streams: usize,
    tls: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let connector = tls.then(|| tokio_rustls::TlsConnector::from(client_config()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let connector = connector.clone();
            tokio::spawn(async move {
                let mut conn = open(addr, connector.as_ref()).await?;
                conn.write_all(b"SINK").await?;
                let chunk = vec![0x5au8; 128 * 1024];
                let end = Instant::now() + secs;
                while Instant::now() < end {
                    conn.write_all(&chunk).await?;
                }
                conn.shutdown().await?;
                let mut answer = String::new();
                conn.read_to_string(&mut answer).await?;
                answer
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| std::io::Error::other(format!("bad count {answer:?}: {e}")))
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let gbits = total as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9;
    println!("bulk {gbits:.2}");
    Ok(())
}

async fn connrate(
    addr: SocketAddr,
    conc: usize,
    secs: Duration,
    tls: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let connector = tls.then(|| tokio_rustls::TlsConnector::from(client_config()));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + secs;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (done, failed) = (done.clone(), failed.clone());
            let connector = connector.clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    match one_connection(addr, connector.as_ref()).await {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / secs.as_secs_f64();
    println!(
        "connrate {rate:.0} failed {}",
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn one_connection(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> std::io::Result<()> {
    let mut conn = open(addr, tls).await?;
    conn.write_all(b"ping").await?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await?;
    if answer != b"ping" {
        return Err(std::io::Error::other("wrong echo"));
    }
    Ok(())
}
