//! The runtime API's `shutdown frontend NAME` (level admin), side by side with HAProxy 2.6
//! (same configuration, same traffic): the frontend's listeners stop for good (new
//! connections are refused on every one of its addresses), `show stat` says STOP, the
//! warning is logged with the cumulated connections, and HAProxy's answers come to a lower
//! level, a missing or unknown name, a backend's name, a second shutdown and an `enable` or
//! `disable frontend` after it. A connection it had accepted before goes on.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, get, read_response, side_by_side};

/// The commands run in turn, each on the socket of its level.
const COMMANDS: [(&str, &str); 9] = [
    ("operator", "shutdown frontend fe"),
    ("admin", "shutdown frontend"),
    ("admin", "shutdown frontend nope"),
    ("admin", "shutdown frontend be"),
    ("admin", "shutdown frontend fe"),
    ("admin", "shutdown frontend fe"),
    ("admin", "enable frontend fe"),
    ("admin", "disable frontend fe"),
    ("admin", "shutdown frontend li"),
];

/// What a run saw.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    answers: Vec<String>,
    /// `show stat`'s proxy, service and status columns.
    statuses: Vec<String>,
    /// Whether each listening address still took a connection.
    connectable: Vec<bool>,
    /// The statuses of the requests on a connection accepted before, around the shutdown
    /// (and of one through the listen section before).
    kept: Vec<Option<u16>>,
    logs: Vec<String>,
}

#[test]
fn shutdown_frontend_stops_its_listeners_as_haproxy() {
    let test = "shutdown_frontend_stops_its_listeners_as_haproxy";
    let dir = temp_dir(test);
    let ports = [free_port(), free_port(), free_port()];
    let server = EchoServer::start("s1");
    let syslog = Syslog::bind();
    let sock = |level: &str| dir.join(format!("{level}.sock"));
    let config = format!(
        "global\n  stats socket {} level admin\n  stats socket {} level operator\n\
         defaults\n  mode http\n  log {} local0 warning\n  timeout connect 2s\n  \
         timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{}\n  bind 127.0.0.1:{}\n  default_backend be\n\
         listen li\n  bind 127.0.0.1:{}\n  server s1 {}\n\
         backend be\n  server s1 {}\n",
        sock("admin").display(),
        sock("operator").display(),
        syslog.addr,
        ports[0],
        ports[1],
        ports[2],
        server.addr,
        server.addr,
    );
    let addrs = ports.map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let traffic = |_| traffic(&addrs, &dir, &syslog);
    let (ours, theirs) = side_by_side(test, &config, addrs[2], traffic);
    // hapx's own view, whatever HAProxy says.
    assert_eq!(ours.connectable, [false, false, false], "{ours:#?}");
    assert!(ours.statuses.contains(&"fe,FRONTEND,STOP".to_string()));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

fn traffic(addrs: &[SocketAddr; 3], dir: &Path, syslog: &Syslog) -> Seen {
    let cmd = |level: &str, command: &str| cli(&dir.join(format!("{level}.sock")), command);
    // A kept-alive connection to `fe`, one request before the shutdown and one after.
    let held = TcpStream::connect(addrs[0]).expect("connecting to fe");
    let mut kept = Vec::new();
    let mut ask = |conn: &TcpStream| kept.push(exchange_on(conn, &get("/", "")));
    ask(&held);
    // One request through the listen section: its frontend and backend halves count it.
    let through_listen = TcpStream::connect(addrs[2]).expect("connecting to li");
    ask(&through_listen);
    drop(through_listen);
    let answers = COMMANDS.iter().map(|(l, c)| cmd(l, c)).collect();
    let connectable = addrs
        .iter()
        .map(|addr| TcpStream::connect(addr).is_ok())
        .collect();
    ask(&held);
    let stat = cmd("admin", "show stat");
    let statuses = stat
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            format!(
                "{},{},{}",
                fields[0],
                fields[1],
                fields.get(17).unwrap_or(&"")
            )
        })
        .collect();
    Seen {
        answers,
        statuses,
        connectable,
        kept,
        logs: syslog.lines(2),
    }
}

/// One request on an open connection: its response's status, None if none came.
fn exchange_on(conn: &TcpStream, request: &str) -> Option<u16> {
    use std::io::{BufReader, Write};
    let mut writer = conn.try_clone().ok()?;
    writer
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    writer.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(writer);
    read_response(&mut reader).map(|r| r.status)
}
