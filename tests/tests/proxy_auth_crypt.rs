//! `userlist` passwords in every crypt(3) format the system's libcrypt knows, and the
//! `http_auth_type` / `http_auth_user` / `http_auth_pass` / `http_auth_bearer` fetches:
//! hapx-proxy next to HAProxy 2.6 on the same configuration and requests.
//!
//! The hashes are made at run time by `mkpasswd` (Debian package `whois`, libxcrypt's own
//! front end, whose default is yescrypt), so that they are what an administrator would paste.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hapx_tests::proxy::{base64, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Syslog, TIMEOUTS, check_messages, check_text, exchange, get, side_by_side,
};
use hapx_tests::{bins, require};

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// What matters of an answer here: its status and the `x-user` the server got.
type Seen = Option<(u16, Option<String>)>;

/// `Authorization: Basic` for `user:pass`.
fn basic(user_pass: &str) -> String {
    format!("authorization: Basic {}\r\n", base64(user_pass.as_bytes()))
}

/// `mkpasswd -m METHOD PASSWORD`: a fresh hash with a random salt; `METHOD` may end in
/// ` -R ROUNDS`, the hash's cost.
fn mkpasswd(method: &str, password: &str) -> String {
    let out = Command::new("mkpasswd")
        .arg("-m")
        .args(method.split(' '))
        .arg(password)
        .output()
        .expect("running mkpasswd");
    assert!(out.status.success(), "mkpasswd -m {method}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("a hash is ASCII")
        .trim()
        .to_string()
}

/// Users with a password hashed by each method, one whose hash libcrypt refuses (a `!` in
/// the salt), one with an unknown method, and an insecure one; each user is asked for with
/// its password, a wrong one and an empty one. Both proxies must answer alike. The costly
/// methods are asked for their least cost: HAProxy hashes on the threads that serve the
/// connections, so default costs (most of a second per scrypt hash on a loaded machine)
/// leave answers waiting past the clients' patience.
#[test]
fn crypt_formats_like_haproxy() {
    let test = "crypt_formats_like_haproxy";
    if !require::command(test, "mkpasswd") {
        return;
    }
    let methods = [
        ("y", "yescrypt -R 1"),
        ("gy", "gost-yescrypt -R 1"),
        ("sc", "scrypt -R 6"),
        ("b", "bcrypt"),
        ("ba", "bcrypt-a"),
        ("s6", "sha512crypt"),
        ("s5", "sha256crypt"),
        ("m1", "md5crypt"),
        ("des", "descrypt"),
    ];
    let mut users: Vec<(String, String)> = methods
        .iter()
        .map(|(user, method)| (user.to_string(), mkpasswd(method, &format!("pw-{user}"))))
        .collect();
    users.push(("bad".into(), "$6$salt!salt$x".into()));
    users.push(("unknown".into(), "$9$abc$def".into()));
    let web = EchoServer::start("web");
    let addr = front();
    let mut config = String::from("userlist L\n");
    for (user, hash) in &users {
        config.push_str(&format!("  user {user} password '{hash}'\n"));
    }
    // HAProxy hashes on its own threads: a loaded machine can hold a forwarded request's
    // response unread past a 2 s `timeout server` (a 504), so the server gets longer.
    config.push_str(&format!(
        "  user plain insecure-password pw-plain\n\
         defaults\n  mode http\n{TIMEOUTS}  timeout server 20s\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request auth realm R unless {{ http_auth(L) }}\n\
         \x20 http-request set-header x-user %[http_auth_group(L)]\n\
         \x20 default_backend web\n\
         backend web\n  server w {web}\n",
        web = web.addr,
    ));
    // At load, hapx warns about exactly the hashes libcrypt cannot check (HAProxy says
    // nothing and never lets those users in).
    let dir = temp_dir(test);
    let file = dir.join("check.cfg");
    std::fs::write(&file, &config).expect("writing the configuration");
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:?}");
    let warned: Vec<&String> = (messages.iter())
        .filter(|m| m.contains("can never log in"))
        .collect();
    assert_eq!(warned.len(), 2, "{messages:?}");
    assert!(warned[0].contains("user 'bad'") && warned[1].contains("user 'unknown'"));
    let mut names: Vec<String> = users.iter().map(|(u, _)| u.clone()).collect();
    names.push("plain".into());
    // Each user on its own kept-alive connection: right, wrong, empty, right again (the
    // second right one is the one hapx may have remembered).
    let requests: Vec<Vec<String>> = names
        .iter()
        .map(|u| {
            let right = format!("{u}:pw-{u}");
            vec![
                get("/", &basic(&right)),
                get("/", &basic(&format!("{u}:pw-{u}x"))),
                get("/", &basic(&format!("{u}:"))),
                get("/", &basic(&right)),
            ]
        })
        .collect();
    let traffic = |addr| -> Vec<Vec<Seen>> {
        std::thread::scope(|scope| {
            let clients: Vec<_> = (requests.iter())
                .map(|seq| {
                    scope.spawn(move || {
                        (exchange(addr, seq).iter())
                            .map(|r| {
                                r.as_ref()
                                    .map(|r| (r.status, r.forwarded("x-user").map(str::to_string)))
                            })
                            .collect()
                    })
                })
                .collect();
            (clients.into_iter())
                .map(|c| c.join().expect("a client thread"))
                .collect()
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    for (user, answers) in names.iter().zip(&ours) {
        let statuses: Vec<u16> = answers
            .iter()
            .map(|a| a.as_ref().expect("an answer").0)
            .collect();
        let expected = if matches!(user.as_str(), "bad" | "unknown") {
            [401, 401, 401, 401]
        } else {
            [200, 401, 401, 200]
        };
        assert_eq!(statuses, expected, "user {user}");
        if expected[0] == 200 {
            assert_eq!(
                answers[0].as_ref().and_then(|a| a.1.as_deref()),
                Some(user.as_str())
            );
        }
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A wrong password's hash (yescrypt, ~15 ms) does not hold up the other connections of
/// its thread. With one thread, eight pipelined wrong-password requests are sent, then,
/// while they are being checked, a request to another frontend: hapx answers it before
/// most of the eight (it hashes on a blocking thread meanwhile). HAProxy hashes inline, on
/// its one thread: its count is printed beside hapx's, not asserted (hapx is meant to do
/// better). No timing is asserted either: only which answers came first.
#[test]
fn password_hashes_do_not_stall_the_thread() {
    let test = "password_hashes_do_not_stall_the_thread";
    if !require::command(test, "mkpasswd") {
        return;
    }
    const WRONG: usize = 8;
    let hash = mkpasswd("yescrypt", "right");
    let (auth, other) = (front(), front());
    let config = format!(
        "global\n  nbthread 1\n\
         userlist L\n  user u password '{hash}'\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend auth\n  bind {auth}\n\
         \x20 http-request auth unless {{ http_auth(L) }}\n\
         \x20 http-request return status 200\n\
         frontend other\n  bind {other}\n  http-request return status 200\n"
    );
    let traffic = |auth: SocketAddr| -> usize {
        let mut attacker = TcpStream::connect(auth).expect("connecting");
        let batch = get("/", &basic("u:wrong")).repeat(WRONG);
        attacker.write_all(batch.as_bytes()).expect("sending");
        // Let the first check start.
        std::thread::sleep(Duration::from_millis(20));
        let mut probe = TcpStream::connect(other).expect("connecting");
        probe
            .write_all(get("/", "connection: close\r\n").as_bytes())
            .expect("sending");
        let mut answer = String::new();
        probe.read_to_string(&mut answer).expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let before = answers_so_far(&mut attacker, false);
        // The rest, so that the proxy is idle when it is stopped.
        let all = before + answers_so_far(&mut attacker, true);
        assert_eq!(all, WRONG, "every wrong password answered");
        before
    };
    let (ours, theirs) = side_by_side(test, &config, auth, traffic);
    eprintln!(
        "{test}: wrong-password answers sent before the other frontend's: \
         hapx {ours}/{WRONG}, HAProxy {theirs:?}/{WRONG}"
    );
    assert!(ours < WRONG / 2, "hapx answered {ours} of {WRONG} first");
}

/// How many `401` answers `stream` brought: those already there, or (`wait`) all of them
/// until it has been quiet for a second.
fn answers_so_far(stream: &mut TcpStream, wait: bool) -> usize {
    let mut seen = Vec::new();
    let mut buf = [0u8; 16384];
    if !wait {
        stream.set_nonblocking(true).expect("non-blocking");
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("a timeout");
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        seen.extend_from_slice(&buf[..n]);
    }
    stream.set_nonblocking(false).expect("blocking");
    let text = String::from_utf8_lossy(&seen);
    text.matches("HTTP/1.1 401").count()
}

/// The `Authorization` header as the auth fetches read it, shown in a returned body, in a
/// header set for the server, in ACLs and in a log line through `unique-id-format` (`%[fetch]`
/// straight in `log-format` is refused as HAProxy refuses it: see
/// [`auth_fetches_in_log_format_like_haproxy`]).
#[test]
fn auth_fetches_like_haproxy() {
    let test = "auth_fetches_like_haproxy";
    let web = EchoServer::start("web");
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 log {log} local0\n\
         \x20 unique-id-format %[http_auth_type]:%[http_auth_user]:%[http_auth_pass]\n\
         \x20 log-format \"auth=%ID\"\n\
         \x20 acl admin http_auth_user -m str admin\n\
         \x20 http-request deny deny_status 403 if admin {{ http_auth_pass -m beg wrong }}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"t=[%[http_auth_type]] u=[%[http_auth_user]] p=[%[http_auth_pass]] b=[%[http_auth_bearer]] x=[%[http_auth_bearer(x-token)]]\\n\" if {{ path /show }}\n\
         \x20 http-request set-header x-auth %[http_auth_type]:%[http_auth_user]:%[http_auth_pass]\n\
         \x20 default_backend web\n\
         backend web\n  server w {web}\n",
        log = syslog.addr,
        web = web.addr,
    );
    let headers = [
        String::new(),
        basic("tiger:scott"),
        basic("a:b:c"),
        basic("nocolon"),
        basic(":onlypass"),
        basic("onlyuser:"),
        basic("admin:secret"),
        "authorization: Bearer abc.def\r\nx-token: bearer  tok\r\n".into(),
        "authorization: Be YTpiOmM=\r\nx-token: Bear tok\r\n".into(),
        "authorization: B YTpiOmM=\r\n".into(),
        "authorization: Basic YTpiOmM\r\n".into(),
        "authorization: Basic !!!!\r\n".into(),
        "authorization: Basic YQBiOmM=\r\n".into(),
        "authorization: basic   YTpiOmM= , Bearer x\r\n".into(),
        "authorization: Digest username=x\r\n".into(),
        "authorization: Basic\r\n".into(),
        "authorization: Negotiate YTpi\r\n".into(),
        // HAProxy's base64 quanta: padding ends a quantum (`a:` then `b1`), and may not be
        // followed by anything but padding in its own quantum, nor fill one.
        "authorization: Basic YTo=YjE=\r\n".into(),
        "authorization: Basic YTpi====\r\n".into(),
        "authorization: Basic YT=pi===\r\n".into(),
        "authorization: Basic YTpiYw==\r\n".into(),
        // Last: a denial may close the connection.
        basic("admin:wrongpass"),
    ];
    let requests: Vec<String> = headers
        .iter()
        .flat_map(|h| [get("/show", h), get("/", h)])
        .collect();
    let traffic = |addr| {
        let answers: Vec<_> = (exchange(addr, &requests).into_iter())
            .map(|r| {
                r.map(|r| {
                    let seen = if r.status == 200 && r.server() == "web" {
                        r.forwarded("x-auth").map(str::to_string)
                    } else {
                        Some(r.body.clone())
                    };
                    (r.status, seen)
                })
            })
            .collect();
        let answered = answers.iter().flatten().count();
        (answers, syslog.lines(answered))
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let answer = |i: usize| ours.0[i].clone().expect("an answer");
    let show = |i: usize| answer(2 * i).1.unwrap_or_default();
    assert_eq!(show(0), "t=[] u=[] p=[] b=[] x=[]\n");
    assert_eq!(show(1), "t=[Basic] u=[tiger] p=[scott] b=[] x=[]\n");
    assert_eq!(
        show(2),
        "t=[Basic] u=[a] p=[b:c] b=[] x=[]\n",
        "the password keeps colons"
    );
    assert_eq!(
        show(3),
        "t=[] u=[] p=[] b=[] x=[]\n",
        "no colon: no credentials"
    );
    assert_eq!(show(7), "t=[Bearer] u=[] p=[] b=[abc.def] x=[tok]\n");
    assert_eq!(answer(2 * 6).0, 200);
    assert_eq!(show(17), "t=[Basic] u=[a] p=[b1] b=[] x=[]\n");
    assert_eq!(
        show(18),
        "t=[] u=[] p=[] b=[] x=[]\n",
        "a quantum of padding"
    );
    assert_eq!(show(19), "t=[] u=[] p=[] b=[] x=[]\n", "data after padding");
    assert_eq!(show(20), "t=[Basic] u=[a] p=[bc] b=[] x=[]\n");
    let denied = headers.len() - 1;
    assert_eq!(answer(2 * denied).0, 403, "the ACLs on user and password");
    assert_eq!(answer(2 * 6 + 1).1.as_deref(), Some("Basic:admin:secret"));
    let answered = ours.0.iter().flatten().count();
    assert!(answered >= requests.len() - 1, "only a denial may close");
    assert_eq!(ours.1.len(), answered, "a log line per answered request");
    assert!(
        ours.1[3].ends_with("auth=Basic:tiger:scott"),
        "{}",
        ours.1[3]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours.0, theirs.0);
        assert_eq!(logged_ids(&ours.1), logged_ids(&theirs.1));
    }
}

/// The unique id each log line ends with (after `auth=`), as logged: the lines' syslog
/// headers (dates, pids) differ, the ids must not, for forwarded, returned and denied
/// requests alike.
fn logged_ids(lines: &[String]) -> Vec<&str> {
    (lines.iter())
        .map(|l| l.split_once("auth=").map_or(l.as_str(), |(_, id)| id))
        .collect()
}

/// `stats auth`: HAProxy checks these accounts as `http_auth` does, so the credentials are
/// read by the same rules (scheme prefix, base64 quanta, NUL, first colon), and a user
/// declared twice keeps its first password.
#[test]
fn stats_auth_reads_credentials_like_haproxy() {
    let test = "stats_auth_reads_credentials_like_haproxy";
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         listen stats\n  bind {addr}\n  stats enable\n  stats uri /\n\
         \x20 stats auth a:b1\n  stats auth a:b\n  stats auth u:p:q\n"
    );
    let headers = [
        String::new(),
        basic("a:b1"),
        basic("a:b"),
        basic("a:b2"),
        basic("u:p:q"),
        "authorization: Basic YTo=YjE=\r\n".into(),
        "authorization: Basic YTpi====\r\n".into(),
        "authorization: Basic YT=pi===\r\n".into(),
        // "u:p:q", then "u:p:q\0x" (a C string ends at the NUL).
        "authorization: B dTpwOnE=\r\n".into(),
        "authorization: BASIC   dTpwOnE=\r\n".into(),
        "authorization: Basic dTpwOnEAeA==\r\n".into(),
        "authorization: Bearer dTpwOnE=\r\n".into(),
    ];
    let requests: Vec<String> = headers.iter().map(|h| get("/;csv", h)).collect();
    // One connection each: HAProxy closes after its 401.
    let traffic = |addr| -> Vec<Option<u16>> {
        (requests.iter())
            .map(|r| {
                exchange(addr, std::slice::from_ref(r))[0]
                    .as_ref()
                    .map(|r| r.status)
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let ok = Some(200);
    let refused = Some(401);
    assert_eq!(
        ours,
        [
            refused, ok, refused, refused, ok, ok, refused, refused, ok, ok, ok, refused
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// `%[http_auth_user]` straight in `log-format`: HAProxy 2.6 refuses the request-header
/// fetches there (they may not be there at log time); hapx says the same.
#[test]
fn auth_fetches_in_log_format_like_haproxy() {
    let test = "auth_fetches_in_log_format_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "http_auth_user",
        "http_auth_type",
        "http_auth_pass",
        "http_auth_bearer",
    ];
    for (i, fetch) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
             \x20 log-format \"u=%[{fetch}]\"\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        // Both refuse it with the same reason (hapx words the place of log-format errors
        // `[file:line] :` where HAProxy says `Parsing [file:line]:`).
        let reason = |(code, messages): &(i32, Vec<String>)| {
            let alert = messages.iter().find(|m| m.starts_with("ALERT")).cloned();
            let reason = alert.and_then(|a| a.split_once("failed").map(|(_, r)| r.to_string()));
            (*code != 0, reason)
        };
        let [ours, theirs] = check_text(&dir, i, &text);
        assert_eq!(
            reason(&ours),
            (
                true,
                Some(format!(
                    " to parse log-format : sample fetch <{fetch}]> may not be reliably used \
                     here because it needs 'HTTP request headers' which is not available here."
                ))
            ),
            "{ours:?}"
        );
        assert_eq!(reason(&ours), reason(&theirs), "{fetch}");
    }
}
