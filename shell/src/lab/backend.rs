//! The backends: small TCP responders standing in for the Kubernetes API servers. Each accepts
//! connections on its port and answers its own name and a newline, then closes, so the client
//! sees which backend the load balancer picked.

use std::io::Write;
use std::net::TcpListener;

/// The API servers' port, which the seed's haproxy.cfg forwards to.
pub const PORT: u16 = 6443;

/// Serves forever on `0.0.0.0:port`, answering `name`.
pub fn serve(name: &str, port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port))?;
    let answer = format!("{name}\n");
    // A health check that connects and closes at once is no reason to stop serving.
    for mut stream in listener.incoming().flatten() {
        let _ = stream.write_all(answer.as_bytes());
    }
    Ok(())
}
