//! `send-proxy` behind a wildcard bind, beside HAProxy: the PROXY header names the address the
//! client connected to (not `0.0.0.0`), whichever backend the frontend chooses, its default
//! one or one of its `use_backend` rules. Run in a private network namespace, since a
//! wildcard bind listens on every address of the namespace.

use std::path::Path;
use std::time::Duration;

use hapx_tests::netns::Network;
use hapx_tests::proxy_rules::HAPROXY;
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};

/// Listens on 127.0.0.1:PORT, then creates FILE.ready; accepts one connection and writes its
/// first line to FILE, whole (written aside, then renamed).
const RECORDER: &str = "import os,socket,sys\n\
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
l.bind(('127.0.0.1', int(sys.argv[1]))); l.listen(4)\n\
open(sys.argv[2]+'.ready','wb').close()\n\
c,_=l.accept(); line=c.makefile('rb').readline()\n\
open(sys.argv[2]+'.part','wb').write(line); os.rename(sys.argv[2]+'.part',sys.argv[2])\n";

#[test]
fn a_wildcard_bind_sends_the_address_connected_to() {
    let test = "a_wildcard_bind_sends_the_address_connected_to";
    if !require::network_namespaces(test) || !require::command(test, "python3") {
        return;
    }
    let mut programs = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        programs.push(("haproxy", HAPROXY.into()));
    }
    let dir = hapx_tests::proxy::temp_dir("send-proxy-wildcard");
    let mut net = Network::new().expect("a private network");
    let lb = net.add_host("lb", &["192.0.2.10/24"]).expect("a host");
    for (i, (name, program)) in programs.into_iter().enumerate() {
        // Both backends send the header; traffic goes to the one a rule chooses.
        let (port, recorder_port) = (8080 + i, 9000 + i);
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
                 frontend fe\n  bind *:{port}\n  use_backend chosen if TRUE\n  default_backend other\n\
                 backend chosen\n  server s 127.0.0.1:{recorder_port} send-proxy\n\
                 backend other\n  server s 127.0.0.1:9 send-proxy\n"
            ),
        )
        .unwrap();
        let seen = dir.join(format!("{name}.seen"));
        let mut recorder = net.command(&lb, "python3");
        recorder
            .args(["-c", RECORDER, &recorder_port.to_string()])
            .arg(&seen);
        net.spawn(recorder).unwrap();
        let ready = seen.with_extension("seen.ready");
        assert!(
            eventually(Duration::from_secs(10), || ready.exists()),
            "{name}: the server did not start listening"
        );
        let mut proxy = net.command(&lb, &program);
        proxy.arg("-db").arg("-f").arg(&cfg);
        net.spawn(proxy).unwrap();
        let client = format!(
            "import socket,time\n\
             for _ in range(100):\n  try:\n    s=socket.create_connection(('192.0.2.10',{port}),1); break\n  \
             except OSError: time.sleep(0.05)\n\
             s.sendall(b'x\\n'); time.sleep(0.3)\n"
        );
        let out = net.run(&lb, &["python3", "-c", &client]).unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(
            eventually(Duration::from_secs(5), || seen.exists()),
            "{name}: the server got no connection"
        );
        let line = std::fs::read_to_string(&seen).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words.get(..4),
            Some(&["PROXY", "TCP4", "192.0.2.10", "192.0.2.10"][..]),
            "{name}: {line:?}"
        );
        assert_eq!(
            words.get(5),
            Some(&port.to_string().as_str()),
            "{name}: {line:?}"
        );
    }
}
