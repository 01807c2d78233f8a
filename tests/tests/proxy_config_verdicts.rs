//! `hapx-proxy -c` beside `haproxy -c` on typical mistakes: the exit code, the level of
//! each message and its words must be HAProxy's, since the OCF agent and systemd run `-c`
//! before a start or a reload (review round 12, findings 11, 16 and 19). Then, where a
//! configuration HAProxy accepts used to be refused, the traffic it now carries, side by side.
//!
//! - Verdicts: a frontend without `bind` is a warning (and `-c` exits 2 when nothing
//!   listens); `maxconn abc`, `ulimit-n abc` and `stats auth admin` are read as HAProxy
//!   reads them; `server`/`default-server` in a frontend are errors, `retries` and backend
//!   timeouts there warnings; a `nameserver` without port and an unknown `user`/`group` are
//!   errors.
//! - Words: `log`, `nbthread`, `stats socket ... mode`, `stats timeout`, `spread-checks`,
//!   duplicate servers and proxies, missing backends and timeouts, `errorfile`, timers.
//! - The command line: no `-f` prints the usage (exit 1), an absent file HAProxy's alert.
//! - Traffic: `redirect ... set-cookie|clear-cookie` answers byte for byte as HAProxy's,
//!   `ignore-empty` skips a redirect whose location renders nothing;
//!   `stats auth admin` is the user `admin` with an empty password.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, HAPROXY, side_by_side};
use hapx_tests::{bins, require};

const DEFAULTS: &str =
    "defaults\n  mode tcp\n  timeout client 20s\n  timeout server 20s\n  timeout connect 4s\n";

/// One checker's exit code and output (stdout, then stderr), with pids masked and the
/// version notices left out (they name each program).
type Checked = (i32, String);

/// `BINARY -c [ARGS]` run in `dir`.
fn run_check(binary: &Path, dir: &Path, args: &[&str]) -> Checked {
    let out = Command::new(binary)
        .current_dir(dir)
        .arg("-c")
        .args(args)
        .output()
        .expect("running the checker");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<String> = text
        .lines()
        // The version and the path are each one's own.
        .filter(|l| !(l.contains("haproxy version is") || l.contains("path to executable is")))
        .map(mask_pid)
        .collect();
    (out.status.code().unwrap_or(-1), lines.join("\n"))
}

/// `[LEVEL]  (1234) : ...` as `[LEVEL]  (PID) : ...`.
fn mask_pid(line: &str) -> String {
    match (line.find(" ("), line.find(") : ")) {
        (Some(open), Some(close)) if open < close && line.starts_with('[') => {
            format!("{} (PID{}", &line[..open], &line[close..])
        }
        _ => line.to_string(),
    }
}

/// Both checkers on `NAME.cfg` holding `text`; HAProxy's None when it is not installed.
fn check_both(test: &str, dir: &Path, name: &str, text: &str) -> (Checked, Option<Checked>) {
    let file = format!("{name}.cfg");
    std::fs::write(dir.join(&file), text).expect("writing the configuration");
    let ours = run_check(&bins::path("hapx-proxy"), dir, &["-f", &file]);
    let theirs = require::path(test, Path::new(HAPROXY), "HAProxy")
        .then(|| run_check(Path::new(HAPROXY), dir, &["-f", &file]));
    (ours, theirs)
}

/// A case: its name, the configuration after [`DEFAULTS`], hapx's exit code and a piece of
/// its output (so that the case says something without HAProxy too).
struct Case {
    name: &'static str,
    text: String,
    code: i32,
    says: &'static str,
}

fn case(name: &'static str, text: impl Into<String>, code: i32, says: &'static str) -> Case {
    Case {
        name,
        text: text.into(),
        code,
        says,
    }
}

/// A frontend on a free port with `lines`, to backend `b` (one server).
fn frontend(lines: &str) -> String {
    format!(
        "{DEFAULTS}frontend f\n  bind 127.0.0.1:{}\n{lines}  default_backend b\nbackend b\n  server s1 127.0.0.1:9\n",
        free_port()
    )
}

fn global(lines: &str) -> String {
    format!("global\n{lines}{}", frontend(""))
}

fn verdict_cases() -> Vec<Case> {
    let port = free_port();
    vec![
        case(
            "nobind2",
            format!(
                "{DEFAULTS}frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\nfrontend g\n  default_backend b\nbackend b\n  server s1 127.0.0.1:9\n"
            ),
            0,
            "[WARNING]  (PID) : config : frontend 'g' has no 'bind' directive.",
        ),
        case(
            "no_bind",
            format!("{DEFAULTS}listen l\n  server s1 127.0.0.1:9\n"),
            2,
            "will not start (no listener) => exit(2).",
        ),
        case("maxconn_abc", frontend("  maxconn abc\n"), 0, "Configuration file is valid"),
        case("fullconn_retries", frontend("").replace("  server s1", "  fullconn abc\n  retries -1\n  server s1"), 0, "Configuration file is valid"),
        case("ulimit_abc", global("  ulimit-n abc\n  maxconn 10k\n"), 0, "Configuration file is valid"),
        case(
            "stats_auth",
            format!(
                "{DEFAULTS}listen stats\n  bind 127.0.0.1:{port}\n  mode http\n  stats enable\n  stats uri /\n  stats auth admin\n"
            ),
            0,
            "Configuration file is valid",
        ),
        case(
            "server_in_fe",
            frontend("  default-server check\n  server s2 127.0.0.1:9\n  server-template t 2 127.0.0.1:9\n  retries 3\n  fullconn 5\n"),
            1,
            "[server_in_fe.cfg:8] : parsing [server_in_fe.cfg:8] : 'default-server' not allowed because frontend 'f' has no backend capability.",
        ),
        case(
            "timeouts_in_fe",
            frontend("  timeout server 5s\n  timeout connect 5s\n  timeout queue 5s\n  timeout tunnel 5s\n  timeout check 5s\n  option checkcache\n  option smtpchk\n  dispatch 127.0.0.1:9\n"),
            0,
            "'timeout server' will be ignored because frontend 'f' has no backend capability",
        ),
        case(
            "timeouts_in_be",
            frontend("").replace("  server s1", "  timeout client 5s\n  timeout client-fin 1s\n  server s1"),
            0,
            "'timeout client' will be ignored because backend 'b' has no frontend capability",
        ),
        case(
            "ns_noport",
            format!("resolvers dns\n  nameserver d1 127.0.0.1\n  nameserver d2 [::1]\n  nameserver d3 127.0.0.1:abc\n{}", frontend("")),
            1,
            "'nameserver d1' : missing port specification in '127.0.0.1'",
        ),
        case("ns_ok", format!("resolvers dns\n  nameserver d1 localhost:53\n{}", frontend("")), 0, "valid"),
        case(
            "no_user",
            global("  user hapx-no-such-user-12\n  group hapx-no-such-group-12\n"),
            1,
            "cannot find user id for 'hapx-no-such-user-12' (0:Success)",
        ),
        case(
            "dup_server",
            frontend("").replace("  server s1 127.0.0.1:9\n", "  server s1 127.0.0.1:9\n  server s1 127.0.0.1:10\n"),
            1,
            "another server named 's1' was already defined at line 10, please use distinct names.",
        ),
        case(
            "dup_proxy",
            format!("{}backend b\n  server s 127.0.0.1:9\nlisten l\n  bind 127.0.0.1:{}\nlisten l\n  server s 127.0.0.1:9\n", frontend(""), free_port()),
            1,
            "Parsing [dup_proxy.cfg:11]: backend 'b' has the same name as backend 'b' declared at dup_proxy.cfg:9.",
        ),
        case(
            "missing_be",
            format!("{DEFAULTS}frontend f\n  bind 127.0.0.1:{port}\n  default_backend nob\n"),
            1,
            "config : Proxy 'f': unable to find required default_backend: 'nob'.",
        ),
        case(
            "missing_resolvers",
            frontend("").replace("127.0.0.1:9\n", "127.0.0.1:9 resolvers dnsx\n"),
            1,
            "backend 'b', server 's1': unable to find required resolvers 'dnsx'",
        ),
        case(
            "no_timeouts",
            format!("listen l\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:9\n"),
            0,
            "\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
        ),
        case("log_facility", global("  log 127.0.0.1:514 local9\n"), 1, "log : unknown log facility 'local9'"),
        case("log_bare", global("  log\n"), 1, "log : expects <address> and <facility>  as arguments"),
        case("log_extra", frontend("  log 127.0.0.1:514 local0 info info x\n"), 1, "log : cannot handle unexpected argument 'x'"),
        case("nbthread", global("  nbthread 0\n"), 1, "'nbthread' value must be between 1 and 64 (was 0)"),
        case("nbthread_big", global("  nbthread 65\n"), 1, "(was 65)"),
        case(
            "socket_mode",
            global("  stats socket /nonexistent/x.sock mode 999\n"),
            1,
            "'stats socket' : ''mode' : missing or invalid mode '999' (octal integer expected)'",
        ),
        case("stats_timeout", global("  stats timeout 30x\n"), 1, "'stats timeout' : unexpected character 'x'"),
        case("spread_checks", global("  spread-checks 100\n"), 1, "parsing [spread_checks.cfg:2]: 'spread-checks'"),
        case("spread_abc", global("  spread-checks abc\n"), 0, "valid"),
        case("timer_char", frontend("  timeout client 1.5s\n"), 1, "unexpected character '.' in 'timeout client'"),
        case(
            "errorfile",
            frontend("  errorfile 503 /nonexistent/503.http\n  errorfile 999 /nonexistent/x.http\n"),
            1,
            "errorfile : error opening file '/nonexistent/503.http'.",
        ),
        case(
            "redirect_cookie",
            frontend("  mode http\n  http-request redirect location /x set-cookie A=1 clear-cookie B if { path /a }\n  redirect prefix /p set-cookie C\n").replace("mode tcp", "mode http"),
            0,
            "valid",
        ),
        case(
            "redirect_cookie_arg",
            frontend("  mode http\n  http-request redirect location /x set-cookie\n").replace("mode tcp", "mode http"),
            1,
            "while parsing 'http-request redirect' rule : missing argument for 'set-cookie'.",
        ),
        case(
            "unused_checks",
            format!(
                "defaults\n  mode http\n  tcp-check connect\nlisten l\n  bind 127.0.0.1:{port}\n\
                 \x20 http-check send meth GET\n  tcp-check connect\n  server s 127.0.0.1:9 check\n\
                 backend b\n  tcp-check connect\n  option tcp-check\n  server s 127.0.0.1:9 check\n\
                 backend d\n  tcp-check connect\n  option httpchk\n  server s 127.0.0.1:9 check\n\
                 frontend f\n  tcp-check connect\n  http-check send meth GET\n"
            ),
            0,
            "proxy 'l' uses tcp-check rules without 'option tcp-check', so the rules are ignored.",
        ),
        case("removed_reqadd", frontend("  reqadd X-A:\\ b\n"), 1, "The 'reqadd' directive is not supported anymore since HAProxy 2.1."),
        case("removed_block", frontend("  block if TRUE\n"), 1, "Use 'http-request deny' which uses the exact same syntax."),
        case("removed_monitor_net", frontend("  monitor-net 10.0.0.0/8\n"), 1, "{ src 10.0.0.0/8 }"),
        case("removed_grace", frontend("  grace 10s\n"), 1, "parsing [removed_grace.cfg:8]: the 'grace' keyword"),
        case("removed_option", frontend("  option forceclose\n  option http-tunnel\n"), 1, "]: option 'forceclose' is not supported any more"),
        case("errorfile_atol", frontend("  errorfile 503x /dev/null\n  errorfile abc /dev/null\n"), 1, "errorfile : status code '0' not handled."),
        case(
            "stats_global_word",
            frontend("  stats socket /tmp/x.sock\n").replace("frontend f", "listen f"),
            1,
            "]: unknown stats parameter 'socket', expects 'admin',",
        ),
        case("stats_bare", frontend("  stats\n"), 1, "]: missing keyword in 'stats', expects"),
        case(
            "default_backend_loop",
            format!("{DEFAULTS}listen l\n  bind 127.0.0.1:{port}\n  default_backend l\n  server s 127.0.0.1:9\n"),
            1,
            "config : Proxy 'l': loop detected for default_backend: 'l'.",
        ),
        // HAProxy's `.notice` informs, `.diag` says nothing without `-dD`, `.warning` warns,
        // each quoted; more than one word is an error; `.alert` stops the reading.
        case(
            "notice_diag",
            global("  .notice \"just info\"\n  .diag \"diag only\"\n"),
            0,
            "[NOTICE]   (PID) : config : parsing [notice_diag.cfg:2]: 'just info'.",
        ),
        case(
            "dot_warning",
            global("  .warning \"new enough\"\n"),
            0,
            "[WARNING]  (PID) : config : parsing [dot_warning.cfg:2]: 'new enough'.",
        ),
        case(
            "dot_words",
            global("  .warning new enough\n"),
            1,
            "parsing [dot_words.cfg:2]: Unexpected argument 'enough' for '.warning'. Use quotes if the message should contain spaces.",
        ),
        case(
            "dot_alert",
            global("  .alert \"stop here\"\n  .notice \"after\"\n"),
            1,
            "parsing [dot_alert.cfg:2]: 'stop here'.",
        ),
        // `no log` drops the inherited targets (a `log-format` then has none to go to);
        // `len`, `format` and `sample` come in that order only.
        case(
            "no_log",
            format!("global\n  log 127.0.0.1:514 local0\n{}", frontend("  log global\n  no log\n  log-format %ci\n")),
            0,
            "log format ignored for frontend 'f' since it has no log address.",
        ),
        case(
            "no_log_words",
            frontend("  no log foo\n"),
            1,
            "parsing [no_log_words.cfg:8] : log : 'no log' does not expect arguments",
        ),
        case(
            "log_len_after_format",
            frontend("  log stdout format raw len 120 local0\n"),
            1,
            "parsing [log_len_after_format.cfg:8] : log : unknown log facility 'len'",
        ),
        case(
            "log_options_in_order",
            frontend("  log stdout len 100 format raw sample 1:2 local0\n"),
            0,
            "Configuration file is valid",
        ),
        case(
            "resolvers_hold",
            format!("resolvers dns\n  nameserver d1 127.0.0.1:53\n  hold valid 10x\n{}", frontend("")),
            1,
            "parsing [resolvers_hold.cfg:3]: unexpected character 'x' in argument to <hold>.",
        ),
    ]
}

#[test]
fn check_verdicts_and_messages_are_haproxys() {
    let test = "check_verdicts_and_messages_are_haproxys";
    let dir = temp_dir(test);
    for c in verdict_cases() {
        let ((code, ours), theirs) = check_both(test, &dir, c.name, &c.text);
        assert_eq!(code, c.code, "{}: {ours}", c.name);
        assert!(ours.contains(c.says), "{}: {ours}", c.name);
        if let Some((their_code, theirs)) = theirs {
            assert_eq!((code, &ours), (their_code, &theirs), "{}", c.name);
        }
    }
}

#[test]
fn the_command_line_without_a_readable_configuration_is_refused_as_haproxy_refuses_it() {
    let test = "the_command_line_without_a_readable_configuration_is_refused_as_haproxy_refuses_it";
    let dir = temp_dir(test);
    let ours_bare = run_check(&bins::path("hapx-proxy"), &dir, &[]);
    assert_eq!(ours_bare.0, 1, "{}", ours_bare.1);
    assert!(
        ours_bare.1.starts_with("Usage : hapx-proxy "),
        "{}",
        ours_bare.1
    );
    let absent = ["-f", "/nonexistent/hapx-absent.cfg"];
    let ours_absent = run_check(&bins::path("hapx-proxy"), &dir, &absent);
    let alert = "[ALERT]    (PID) : config : Cannot open configuration file/directory /nonexistent/hapx-absent.cfg : No such file or directory";
    assert_eq!(ours_absent, (1, alert.to_string()));
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs_bare = run_check(Path::new(HAPROXY), &dir, &[]);
        assert_eq!(theirs_bare.0, 1);
        assert!(
            theirs_bare.1.contains("Usage : haproxy "),
            "{}",
            theirs_bare.1
        );
        assert_eq!(run_check(Path::new(HAPROXY), &dir, &absent), ours_absent);
    }
}

/// The head of the answer to `GET path` on a new connection, as bytes.
fn answer_head(front: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(front).expect("connecting to the proxy");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = format!("GET {path} HTTP/1.1\r\nhost: h\r\n\r\n");
    s.write_all(request.as_bytes())
        .expect("sending the request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(s.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
    head
}

#[test]
fn redirect_cookies_are_set_and_cleared_with_haproxys_bytes() {
    let test = "redirect_cookies_are_set_and_cleared_with_haproxys_bytes";
    let port = free_port();
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    let config = format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 4s\n\
         frontend f\n  bind {front}\n\
         \x20 http-request redirect location /x set-cookie SEEN=1 if {{ path /a }}\n\
         \x20 http-request redirect location /x clear-cookie SEEN= if {{ path /b }}\n\
         \x20 http-request redirect prefix /p code 301 set-cookie A if {{ path /c }}\n\
         \x20 http-request redirect location /x set-cookie A=1 clear-cookie B if {{ path /d }}\n\
         \x20 http-request redirect location /x code 308 set-cookie %[path] if {{ path /e }}\n\
         \x20 http-request redirect location %[url_param(to)] ignore-empty if {{ path /f }}\n\
         \x20 http-request return status 200 content-type text/plain string skipped if {{ path /f }}\n\
         \x20 default_backend b\nbackend b\n  server s 127.0.0.1:9\n"
    );
    let paths = ["/a", "/b?q=1", "/c?q=1", "/d", "/e", "/f?to=/there", "/f"];
    let traffic = |front: SocketAddr| -> Vec<String> {
        paths
            .iter()
            .map(|p| String::from_utf8_lossy(&answer_head(front, p)).into_owned())
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert!(
        ours[0].contains("\r\ncache-control: no-cache\r\nset-cookie: SEEN=1; path=/;\r\n\r\n"),
        "{ours:?}"
    );
    assert!(
        ours[1].ends_with("\r\nset-cookie: SEEN=; path=/; Max-Age=0;\r\n\r\n"),
        "{ours:?}"
    );
    assert!(
        ours[2].contains("location: /p/c?q=1\r\nset-cookie: A; path=/;\r\n"),
        "{ours:?}"
    );
    assert!(
        ours[3].contains("set-cookie: B; path=/; Max-Age=0;\r\n"),
        "{ours:?}"
    );
    assert!(
        ours[4].contains("set-cookie: %[path]; path=/;\r\n"),
        "{ours:?}"
    );
    assert!(ours[5].contains("location: /there\r\n"), "{ours:?}");
    assert!(ours[6].starts_with("HTTP/1.1 200 "), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn stats_auth_without_a_colon_and_maxconn_abc_run_as_haproxy_runs_them() {
    let test = "stats_auth_without_a_colon_and_maxconn_abc_run_as_haproxy_runs_them";
    let server = EchoServer::start("s");
    let front: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("an address");
    let stats = free_port();
    let config = format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 4s\n\
         frontend f\n  bind {front}\n  maxconn abc\n  default_backend b\n\
         backend b\n  server s {}\n\
         listen stats\n  bind 127.0.0.1:{stats}\n  stats enable\n  stats uri /\n  stats auth admin\n",
        server.addr
    );
    let status = |addr: SocketAddr, credentials: Option<&str>| -> String {
        let mut s = TcpStream::connect(addr).expect("connecting to the proxy");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let auth = credentials.map_or(String::new(), |c| {
            format!("authorization: Basic {}\r\n", base64(c.as_bytes()))
        });
        let request = format!("GET / HTTP/1.1\r\nhost: h\r\n{auth}connection: close\r\n\r\n");
        s.write_all(request.as_bytes())
            .expect("sending the request");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") && matches!(s.read(&mut byte), Ok(1)) {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).trim_end().to_string()
    };
    let stats_addr: SocketAddr = format!("127.0.0.1:{stats}").parse().expect("an address");
    let traffic = |front: SocketAddr| {
        [
            status(front, None),
            status(stats_addr, Some("admin:")),
            status(stats_addr, Some("admin:x")),
            status(stats_addr, None),
        ]
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(
        ours.each_ref()
            .map(|l| l.split(' ').nth(1).unwrap_or_default()),
        ["200", "200", "401", "401"],
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Standard base64, for a Basic authorization.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
