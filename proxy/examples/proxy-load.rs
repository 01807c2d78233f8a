//! Load generator and backend for `bench/proxy.sh` (loopback only).
//!
//! - `proxy-load server PORT`: an HTTP/1.1 backend on 127.0.0.1:PORT answering every request
//!   with a small 200 (keep-alive unless the request says close).
//! - `proxy-load connrate ADDR CONCURRENCY SECONDS`: short connections (connect, request,
//!   read the whole response, close) from CONCURRENCY tasks; prints
//!   `connrate <per second> failed <count> cpu_ms <its own CPU time>`.
//! - `proxy-load latency ADDR RATE SECONDS`: requests at a fixed RATE over 32 kept-alive
//!   connections (open loop); prints `latency p50_us p99_us count`.
//! - `proxy-load idle ADDR N SECONDS`: opens N idle connections, holds them SECONDS, prints
//!   `idle <opened>` once they are all open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RESPONSE_KEEP: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
const RESPONSE_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

fn main() -> std::io::Result<()> {
    raise_nofile();
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    let addr = || {
        arg(2)
            .parse::<SocketAddr>()
            .expect("an address like 127.0.0.1:80")
    };
    match arg(1).as_str() {
        "server" => rt.block_on(server(num(2) as u16)),
        "connrate" => rt.block_on(connrate(addr(), num(3), num(4))),
        "latency" => rt.block_on(latency(addr(), num(3), num(4))),
        "idle" => rt.block_on(idle(addr(), num(3), num(4))),
        _ => {
            eprintln!(
                "usage: proxy-load server PORT | connrate ADDR CONC SECS | latency ADDR RATE SECS | idle ADDR N SECS"
            );
            std::process::exit(2);
        }
    }
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/set of this process's limit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn server(port: u16) -> std::io::Result<()> {
    let l = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (mut s, _) = l.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut have = 0usize;
            loop {
                let n = match s.read(&mut buf[have..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                have += n;
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = &buf[..end];
                    let close = head
                        .windows(17)
                        .any(|w| w.eq_ignore_ascii_case(b"connection: close"));
                    let resp = if close { RESPONSE_CLOSE } else { RESPONSE_KEEP };
                    if s.write_all(resp).await.is_err() || close {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                }
                if have == buf.len() {
                    return;
                }
            }
        });
    }
}

async fn connrate(addr: SocketAddr, conc: u64, secs: u64) -> std::io::Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (done, failed) = (done.clone(), failed.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                while Instant::now() < end {
                    let ok = async {
                        let mut s = TcpStream::connect(addr).await?;
                        s.write_all(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                            .await?;
                        while s.read(&mut buf).await? > 0 {}
                        Ok::<_, std::io::Error>(())
                    }
                    .await;
                    match ok {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "connrate {:.0} failed {} cpu_ms {}",
        n as f64 / secs as f64,
        failed.load(Ordering::Relaxed),
        own_cpu_ms()
    );
    Ok(())
}

/// CPU time (user + system) this process has used, in milliseconds: the bench reports what
/// the load generator itself costs, since it shares the machine with the proxy under test.
fn own_cpu_ms() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

async fn latency(addr: SocketAddr, rate: u64, secs: u64) -> std::io::Result<()> {
    const CONNS: u64 = 32;
    let samples = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let per_conn = Duration::from_secs_f64(CONNS as f64 / rate as f64);
    let end = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..CONNS)
        .map(|k| {
            let samples = samples.clone();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                let mut buf = [0u8; 512];
                // Stagger the connections over one period so the load is smooth.
                let mut next = Instant::now() + per_conn * (k as u32) / (CONNS as u32);
                let mut local = Vec::new();
                while next < end {
                    tokio::time::sleep_until(next.into()).await;
                    let t0 = Instant::now();
                    s.write_all(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n").await?;
                    let mut got = 0;
                    while got < RESPONSE_KEEP.len() {
                        let n = s.read(&mut buf).await?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        got += n;
                    }
                    // Latency from the scheduled time: queueing behind a slow answer counts.
                    local.push(
                        t0.max(next).duration_since(next).as_micros() as u64
                            + t0.elapsed().as_micros() as u64,
                    );
                    next += per_conn;
                }
                samples.lock().expect("samples").extend(local);
                Ok::<_, std::io::Error>(())
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let mut v = samples.lock().expect("samples").clone();
    v.sort_unstable();
    let pct = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!("latency {} {} {}", pct(0.50), pct(0.99), v.len());
    Ok(())
}

async fn idle(addr: SocketAddr, n: u64, secs: u64) -> std::io::Result<()> {
    let mut conns = Vec::with_capacity(n as usize);
    for _ in 0..n {
        match TcpStream::connect(addr).await {
            Ok(s) => conns.push(s),
            Err(e) => {
                eprintln!("idle: stopped at {}: {e}", conns.len());
                break;
            }
        }
    }
    println!("idle {}", conns.len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    drop(conns);
    Ok(())
}
