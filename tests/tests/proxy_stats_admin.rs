//! The stats page's admin mode (`stats admin if|unless COND`) beside HAProxy 2.6: the same
//! POSTs to both, the same `Location` (`;st=DONE|PART|NONE|ERRP|EXCD|DENY`), the same server
//! states after them (`show stat`, `show servers state`), the same traffic (a server put in
//! maintenance gets no new connection), the same form and banners on the page, and the same
//! configuration errors.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{
    NamedServer, Proxy, cli, free_port, http_get, http_raw, stat_row, tally, temp_dir,
};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// One proxy (hapx-proxy or HAProxy) with its own servers `a` (checked, every 10 s: its
/// state holds during a test), `b`, `c` and `d` (with an agent, every 10 s, that nothing
/// answers).
struct Setup {
    _proxy: Proxy,
    _servers: Vec<NamedServer>,
    sock: std::path::PathBuf,
    tcp: SocketAddr,
    /// `stats admin if LOCALHOST`.
    admin: SocketAddr,
    /// `stats admin if FALSE`.
    closed: SocketAddr,
    /// No `stats admin`.
    plain: SocketAddr,
    /// `stats admin if TRUE` behind `stats auth admin:pw`.
    locked: SocketAddr,
    /// `stats admin if TRUE` with `timeout client 1s`.
    hasty: SocketAddr,
    _dir: hapx_tests::proxy::TestDir,
}

fn setup_with(binary: &Path, test: &str) -> Setup {
    let servers: Vec<NamedServer> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| NamedServer::start(n, LO, Duration::from_secs(5)))
        .collect();
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
    let cfg = format!(
        "global\n  stats socket {} mode 600 level admin\n\
         defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  mode tcp\n  bind 127.0.0.1:{}\n  default_backend be\n\
         backend be\n  mode tcp\n  balance roundrobin\n  server a {} check inter 10s rise 2 fall 3\n  server b {}\n  server c {}\n  server d {} agent-check agent-port {} agent-inter 10s\n\
         listen stats\n  mode http\n  bind 127.0.0.1:{}\n  stats uri /\n  stats admin if LOCALHOST\n\
         listen closed\n  mode http\n  bind 127.0.0.1:{}\n  stats uri /\n  stats admin if FALSE\n\
         listen plain\n  mode http\n  bind 127.0.0.1:{}\n  stats uri /\n\
         listen locked\n  mode http\n  bind 127.0.0.1:{}\n  stats uri /\n  stats auth admin:pw\n  stats admin if TRUE\n\
         listen hasty\n  mode http\n  bind 127.0.0.1:{}\n  timeout client 1s\n  stats uri /\n  stats admin if TRUE\n",
        sock.display(),
        ports[0],
        servers[0].addr,
        servers[1].addr,
        servers[2].addr,
        servers[3].addr,
        ports[4],
        ports[1],
        ports[2],
        ports[3],
        ports[5],
        ports[6],
    );
    let at = |i: usize| SocketAddr::from((LO, ports[i]));
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, test, &cfg, at(0), &[]);
    Setup {
        _proxy: proxy,
        _servers: servers,
        sock,
        tcp: at(0),
        admin: at(1),
        closed: at(2),
        plain: at(3),
        locked: at(5),
        hasty: at(6),
        _dir: dir,
    }
}

/// hapx-proxy and HAProxy on the same configuration; None (skipped) without HAProxy.
fn side_by_side(test: &str) -> Option<(Setup, Setup)> {
    if !hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let ours = setup_with(
        &hapx_tests::bins::path("hapx-proxy"),
        &format!("{test}-hapx"),
    );
    let theirs = setup_with(Path::new(HAPROXY), &format!("{test}-haproxy"));
    Some((ours, theirs))
}

/// POSTs a form to the page at `path`: the status and the `Location` header.
fn post(addr: SocketAddr, path: &str, form: &str) -> (u16, String) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    let raw = http_raw(addr, request.as_bytes(), Duration::from_secs(5));
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let location = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, location)
}

/// The servers' states: `show stat`'s status (its first word: a check may have moved the
/// counts) and `show servers state`'s operational, admin, check and agent states.
fn server_states(s: &Setup) -> Vec<String> {
    let stat = cli(&s.sock, "show stat");
    let state = cli(&s.sock, "show servers state be");
    ["a", "b", "c", "d"]
        .iter()
        .map(|name| {
            let row = stat_row(&stat, "be", name).expect("a server row");
            let status = row["status"]
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string();
            let line = state
                .lines()
                .map(|l| l.split(' ').collect::<Vec<_>>())
                .find(|f| f.get(3) == Some(name))
                .expect("a server line");
            format!(
                "{name} {status} op={} admin={} check={} agent={}",
                line[5], line[6], line[13], line[14]
            )
        })
        .collect()
}

/// The backend `be`'s id, as `#id` in a form.
fn backend_id(s: &Setup) -> String {
    let state = cli(&s.sock, "show servers state be");
    let id = state
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("be"))
        .and_then(|l| l.split(' ').next())
        .expect("a server line")
        .to_string();
    format!("%23{id}")
}

#[test]
fn posts_answer_and_change_servers_as_haproxy() {
    let Some((ours, theirs)) = side_by_side("stats-admin-post") else {
        return;
    };
    let long = format!("s={}&action=ready&b=be", "x".repeat(3000));
    let huge = format!("action=ready&b=be{}", "&s=zz".repeat(4000));
    let forms: Vec<(&str, String)> = vec![
        ("/", "s=b&action=maint&b=be".into()),
        ("/", "s=b&s=zz&action=ready&b=be".into()),
        ("/", "s=zz&action=ready&b=be".into()),
        ("/", "action=drain&b=be".into()),
        ("/", "s=c&action=drain&b=nope".into()),
        ("/", "s=c&action=bogus&b=be".into()),
        ("/", "s=c&action=dagent&b=be".into()),
        ("/", "s=c&action=ehlth&b=be".into()),
        ("/", "s=c&action=dhlth&b=be".into()),
        ("/", "s=a&action=dhlth&b=be".into()),
        ("/", "s=a&s=c&action=ehlth&b=be".into()),
        // A NUL ends a parameter, as in HAProxy's C strings.
        ("/", "s=b&action=maint&b=be\0junk".into()),
        ("/", "s=b\0&action=ready&b=be".into()),
        ("/", "s\0=b&action=maint&b=be".into()),
        ("/", "s=c&action=stop&b=be".into()),
        ("/", "s=c&action=start&b=be".into()),
        ("/", "s=a&action=hdown&b=be".into()),
        ("/", "s=a&action=hrunn&b=be".into()),
        ("/", "s=a&action=hnolb&b=be".into()),
        ("/", "s=a&action=hrunn&b=be".into()),
        ("/", "s=b&action=hnolb&b=be".into()),
        ("/", "s=b&action=hdown&b=be".into()),
        ("/", "s=b&action=hrunn&b=be".into()),
        ("/", "s=d&action=adown&b=be".into()),
        ("/", "s=d&action=arunn&b=be".into()),
        ("/", "s=d&action=dagent&b=be".into()),
        ("/", "s=d&action=arunn&b=be".into()),
        ("/", "s=d&action=eagent&b=be".into()),
        ("/", "s=c&s=d&action=eagent&b=be".into()),
        // Servers named before the backend and the action, in any order.
        ("/", "b=be&s=b&action=disable&s=c".into()),
        ("/", "s=b&s=c&action=enable&b=be".into()),
        ("/;up", "s=c&action=drain&b=be".into()),
        ("/", "s=c&action=ready&b=be&b=nope".into()),
        ("/", "s=%63&action=maint&b=be".into()),
        ("/", "s=c&action=ready&b=%zz".into()),
        ("/", "".into()),
        ("/", long),
        ("/", huge),
    ];
    for (path, form) in &forms {
        let (code, location) = post(ours.admin, path, form);
        let (their_code, their_location) = post(theirs.admin, path, form);
        let shown = &form[..form.len().min(60)];
        assert_eq!(
            (code, location.as_str()),
            (their_code, their_location.as_str()),
            "{shown}"
        );
        assert_eq!(
            server_states(&ours),
            server_states(&theirs),
            "after {shown}"
        );
    }
    // The backend by id, as the page's form names it.
    let (_, location) = post(
        ours.admin,
        "/",
        &format!("s=c&action=ready&b={}", backend_id(&ours)),
    );
    let (_, their_location) = post(
        theirs.admin,
        "/",
        &format!("s=c&action=ready&b={}", backend_id(&theirs)),
    );
    assert_eq!(location, their_location);
    assert!(location.ends_with(";st=DONE"), "{location}");
    assert_eq!(server_states(&ours), server_states(&theirs));
}

#[test]
fn only_the_condition_allows_actions() {
    let Some((ours, theirs)) = side_by_side("stats-admin-deny") else {
        return;
    };
    for s in [&ours, &theirs] {
        for page in [s.closed, s.plain] {
            let (code, location) = post(page, "/", "s=b&action=maint&b=be");
            assert_eq!((code, location.as_str()), (303, "/;st=DENY"));
        }
        let states = server_states(s);
        assert!(states.iter().all(|l| l.contains(" admin=0 ")), "{states:?}");
        // Shown the form only where the condition holds.
        assert!(
            !http_get(s.closed, "/", None)
                .2
                .contains("<form method=\"post\">")
        );
        assert!(!http_get(s.plain, "/", None).2.contains("name=\"s\""));
        assert!(
            http_get(s.admin, "/", None)
                .2
                .contains("<form method=\"post\">")
        );
    }
}

#[test]
fn a_server_in_maintenance_gets_no_new_connection() {
    let Some((ours, theirs)) = side_by_side("stats-admin-traffic") else {
        return;
    };
    for s in [&ours, &theirs] {
        assert_eq!(
            post(s.admin, "/", "s=b&s=c&s=d&action=maint&b=be").1,
            "/;st=DONE"
        );
        let seen = tally(s.tcp, 6);
        assert_eq!(seen.get("a"), Some(&6), "{seen:?}");
        assert_eq!(
            post(s.admin, "/", "s=b&s=c&s=d&action=ready&b=be").1,
            "/;st=DONE"
        );
        assert_eq!(post(s.admin, "/", "s=a&action=drain&b=be").1, "/;st=DONE");
        let seen = tally(s.tcp, 6);
        assert_eq!(seen.get("a"), None, "{seen:?}");
        assert_eq!(seen.values().sum::<usize>(), 6, "{seen:?}");
    }
}

/// The parts of the page a user acts with: the checkboxes, the actions, the backend and the
/// button.
fn form_parts(page: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("<input") {
        let end = rest[at..].find('>').map_or(rest.len(), |e| at + e + 1);
        let input = &rest[at..end];
        if !input.contains("name=\"scope\"") {
            // The select-all box's handler and each box's class name the backend.
            parts.push(input.split(" onclick").next().unwrap_or(input).to_string());
        }
        rest = &rest[end..];
    }
    let select = page.find("<select name=action>").and_then(|at| {
        page[at..]
            .find("</select>")
            .map(|e| page[at..at + e].to_string())
    });
    parts.extend(select);
    parts
}

#[test]
fn the_page_shows_the_form_and_the_banners_as_haproxy() {
    let Some((ours, theirs)) = side_by_side("stats-admin-page") else {
        return;
    };
    let (ours_page, theirs_page) = (
        http_get(ours.admin, "/", None).2,
        http_get(theirs.admin, "/", None).2,
    );
    let (parts, their_parts) = (form_parts(&ours_page), form_parts(&theirs_page));
    // The hidden backend id is the proxy's own in each.
    let without_id = |p: &[String]| -> Vec<String> {
        p.iter()
            .filter(|i| !i.contains("name=\"b\""))
            .cloned()
            .collect()
    };
    assert_eq!(without_id(&parts), without_id(&their_parts));
    assert!(
        parts.iter().any(|p| p.contains("value=\"Apply\"")),
        "{parts:?}"
    );
    let id = backend_id(&ours).replace("%23", "#");
    assert!(
        parts
            .iter()
            .any(|p| *p == format!("<input type=\"hidden\" name=\"b\" value=\"{id}\">")),
        "{parts:?}"
    );
    for code in [
        "DONE", "NONE", "PART", "ERRP", "EXCD", "DENY", "IVAL", "UNKN", "XXXX",
    ] {
        let banner = |page: &str| {
            let at = page.find("<p><div class=").expect("a banner");
            page[at..]
                .split("</div>")
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let path = format!("/;st={code}");
        assert_eq!(
            banner(&http_get(ours.admin, &path, None).2),
            banner(&http_get(theirs.admin, &path, None).2),
            "{code}"
        );
    }
    assert!(
        !ours_page.contains("<p><div class="),
        "no banner without ;st="
    );
}

/// `hapx-proxy -c` and `haproxy -c` on a configuration: exit code and the alert's message.
fn check(binary: &Path, dir: &Path, name: &str, cfg: &str) -> (bool, String) {
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, cfg).expect("writing the configuration");
    let out = std::process::Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("running the check");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let alert = text
        .lines()
        .find(|l| l.contains(&format!("{name}.cfg:")))
        .and_then(|l| l.split_once("] : ").or_else(|| l.split_once("]: ")))
        .map(|(_, msg)| msg.to_string())
        .unwrap_or_default();
    (out.status.success(), alert)
}

#[test]
fn stats_admin_is_configured_as_in_haproxy() {
    if !hapx_tests::require::path("stats-admin-config", Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir("stats-admin-config");
    let listen = "listen x\n  mode http\n  bind 127.0.0.1:1\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";
    for (name, cfg, valid) in [
        (
            "ok",
            format!(
                "{listen}  stats admin if LOCALHOST\n  stats admin unless {{ src 10.0.0.0/8 }}\n"
            ),
            true,
        ),
        ("nocond", format!("{listen}  stats admin\n"), false),
        (
            "badword",
            format!("{listen}  stats admin when TRUE\n"),
            false,
        ),
        ("noacl", format!("{listen}  stats admin if NOPE\n"), false),
        (
            "defaults",
            "defaults\n  stats admin if TRUE\n".to_string(),
            false,
        ),
    ] {
        let ours = check(&hapx_tests::bins::path("hapx-proxy"), &dir, name, &cfg);
        let theirs = check(Path::new(HAPROXY), &dir, name, &cfg);
        assert_eq!(ours.0, valid, "{name}: {}", ours.1);
        assert_eq!(theirs.0, valid, "{name}: {}", theirs.1);
        assert_eq!(ours.1, theirs.1, "{name}");
    }
}

#[test]
fn a_chunked_post_then_the_page_on_one_connection() {
    let Some((ours, theirs)) = side_by_side("stats-admin-chunked") else {
        return;
    };
    let request = "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
                   4\r\ns=b&\r\n11\r\naction=maint&b=be\r\n0\r\n\r\n\
                   GET /;st=DONE HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    // The redirect, then the page it leads to with its banner.
    let seen = |s: &Setup| {
        let raw = http_raw(s.admin, request.as_bytes(), Duration::from_secs(5));
        let lines: Vec<String> = raw
            .lines()
            .filter(|l| {
                l.starts_with("HTTP/1.1") || l.to_ascii_lowercase().starts_with("location:")
            })
            .map(str::to_string)
            .collect();
        let banner = raw.contains("Action processed successfully.");
        (lines, banner, server_states(s))
    };
    let ours_seen = seen(&ours);
    assert_eq!(ours_seen, seen(&theirs));
    assert!(ours_seen.1, "{ours_seen:?}");
    assert!(ours_seen.2[1].starts_with("b MAINT"), "{ours_seen:?}");
}

#[test]
fn the_largest_form_is_haproxys() {
    let Some((ours, theirs)) = side_by_side("stats-admin-excd") else {
        return;
    };
    // A form that fits HAProxy's buffer is read (its one long parameter is refused: ERRP),
    // a longer one is not (EXCD): the first length HAProxy refuses, then both around it.
    let form = |len: usize| format!("action=ready&b=be&s={}", "x".repeat(len - 20));
    let refused = |s: &Setup, len: usize| post(s.admin, "/", &form(len)).1 == "/;st=EXCD";
    let (mut fits, mut too_long) = (14_000, 17_000);
    while too_long - fits > 1 {
        let middle = (fits + too_long) / 2;
        if refused(&theirs, middle) {
            too_long = middle;
        } else {
            fits = middle;
        }
    }
    for len in too_long - 3..too_long + 3 {
        assert_eq!(
            post(ours.admin, "/", &form(len)),
            post(theirs.admin, "/", &form(len)),
            "a form of {len} bytes (HAProxy's largest: {fits})"
        );
    }
}

/// The first answer to `request` sent on a new connection (the connection kept open, the
/// rest of the body never sent), waiting at most `wait`; empty if none came.
fn first_answer(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connecting");
    s.set_read_timeout(Some(wait)).ok();
    std::io::Write::write_all(&mut s, request).expect("sending");
    let mut buf = [0u8; 4096];
    let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The status line of an answer.
fn status_line(answer: &str) -> &str {
    answer.split("\r\n").next().unwrap_or_default()
}

#[test]
fn credentials_are_checked_before_the_body_is_awaited() {
    let Some((ours, theirs)) = side_by_side("stats-admin-auth") else {
        return;
    };
    // A body announced, three bytes of it sent: the 401 comes at once, well before `timeout
    // client` (5 s), as HAProxy sends it.
    let request = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\ns=b";
    for s in [&ours, &theirs] {
        let answer = first_answer(s.locked, request, Duration::from_secs(3));
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 401 Unauthorized",
            "{answer}"
        );
    }
    // With the credentials, the form is taken.
    let form = "s=b&action=maint&b=be";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: test\r\nAuthorization: Basic YWRtaW46cHc=\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    let location = |s: &Setup| {
        let raw = http_raw(s.locked, request.as_bytes(), Duration::from_secs(5));
        raw.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("location:"))
            .map(str::to_string)
    };
    assert_eq!(location(&ours), location(&theirs));
    assert_eq!(location(&ours).as_deref(), Some("location: /;st=DONE"));
    assert_eq!(server_states(&ours), server_states(&theirs));
}

/// A form of `len` bytes that puts `b` in maintenance, in chunks of `chunk` bytes.
fn chunked_form(len: usize, chunk: usize) -> String {
    let tail = "&action=maint&b=be";
    let mut form = String::from("s=b");
    while form.len() + tail.len() < len {
        let pad = (len - tail.len() - form.len()).min(1000);
        form.push_str(&format!("&z={}", "y".repeat(pad.saturating_sub(3))));
    }
    form.push_str(tail);
    let mut body = String::new();
    for piece in form.as_bytes().chunks(chunk) {
        body.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            String::from_utf8_lossy(piece)
        ));
    }
    format!(
        "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}0\r\n\r\n"
    )
}

#[test]
fn chunked_forms_are_measured_by_their_data() {
    let Some((ours, theirs)) = side_by_side("stats-admin-chunked-size") else {
        return;
    };
    // The framing of small chunks takes the request far past HAProxy's buffer, the data
    // not: both take the form.
    for (len, chunk) in [(3000, 2), (8000, 4), (12000, 16), (20000, 1000)] {
        let request = chunked_form(len, chunk);
        let answer = |s: &Setup| {
            let raw = http_raw(s.admin, request.as_bytes(), Duration::from_secs(5));
            let head = raw.split("\r\n\r\n").next().unwrap_or_default().to_string();
            let location = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("location:"))
                .map(str::to_string);
            (status_line(&head).to_string(), location)
        };
        for s in [&ours, &theirs] {
            post(s.admin, "/", "s=b&action=ready&b=be");
        }
        let ours_answer = answer(&ours);
        assert_eq!(
            ours_answer,
            answer(&theirs),
            "{len} bytes in {chunk}-byte chunks"
        );
        assert_eq!(
            server_states(&ours),
            server_states(&theirs),
            "{len}/{chunk}"
        );
        let done = len < 14000;
        assert_eq!(
            ours_answer.1.as_deref() == Some("location: /;st=DONE"),
            done,
            "{ours_answer:?}"
        );
    }
}

#[test]
fn an_incomplete_form_is_answered_as_haproxy_answers_it() {
    let Some((ours, theirs)) = side_by_side("stats-admin-incomplete") else {
        return;
    };
    let request =
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\ns=b&action=maint&b=be";
    // The client waits: 408 at `timeout client` (1 s), and the connection closes.
    let waited = |s: &Setup| {
        let raw = http_raw(s.hasty, request, Duration::from_secs(4));
        let head = raw.split("\r\n\r\n").next().unwrap_or_default();
        let close = head.to_ascii_lowercase().contains("\r\nconnection: close");
        (status_line(head).to_string(), close)
    };
    let ours_waited = waited(&ours);
    assert_eq!(ours_waited, waited(&theirs));
    assert_eq!(
        ours_waited,
        ("HTTP/1.1 408 Request Time-out".to_string(), true)
    );
    // The client closes its side: no answer.
    let closed = |s: &Setup| {
        let mut c = std::net::TcpStream::connect(s.hasty).expect("connecting");
        c.set_read_timeout(Some(Duration::from_secs(4))).ok();
        std::io::Write::write_all(&mut c, request).expect("sending");
        c.shutdown(std::net::Shutdown::Write).ok();
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    assert_eq!(closed(&ours), closed(&theirs));
    assert_eq!(closed(&ours), "");
    // Nothing was changed.
    assert_eq!(server_states(&ours), server_states(&theirs));
    assert!(server_states(&ours)[1].contains(" admin=0 "));
}

#[test]
fn expect_100_continue_is_answered_first() {
    let Some((ours, theirs)) = side_by_side("stats-admin-expect") else {
        return;
    };
    let form = "s=b&action=drain&b=be";
    let head = format!(
        "POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        form.len()
    );
    let exchange = |s: &Setup| {
        let mut c = std::net::TcpStream::connect(s.admin).expect("connecting");
        c.set_read_timeout(Some(Duration::from_secs(3))).ok();
        std::io::Write::write_all(&mut c, head.as_bytes()).expect("sending");
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
        let interim = String::from_utf8_lossy(&buf[..n]).into_owned();
        std::io::Write::write_all(&mut c, form.as_bytes()).expect("sending the form");
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut rest);
        let rest = String::from_utf8_lossy(&rest).into_owned();
        let location = rest
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("location:"))
            .map(str::to_string);
        (interim, location)
    };
    let ours_seen = exchange(&ours);
    assert_eq!(ours_seen, exchange(&theirs));
    assert_eq!(ours_seen.0, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(ours_seen.1.as_deref(), Some("location: /;st=DONE"));
    assert_eq!(server_states(&ours), server_states(&theirs));
}

#[test]
fn legacy_actions_keep_maintenance_and_drain_apart() {
    let Some((ours, theirs)) = side_by_side("stats-admin-legacy") else {
        return;
    };
    for steps in [
        ["drain", "disable", "start", "enable"],
        ["maint", "stop", "enable", "start"],
        ["drain", "maint", "stop", "ready"],
        ["stop", "disable", "enable", "stop"],
    ] {
        for s in [&ours, &theirs] {
            post(s.admin, "/", "s=c&action=ready&b=be");
        }
        for step in steps {
            let form = format!("s=c&action={step}&b=be");
            assert_eq!(
                post(ours.admin, "/", &form),
                post(theirs.admin, "/", &form),
                "{steps:?}: {step}"
            );
            assert_eq!(
                server_states(&ours),
                server_states(&theirs),
                "{steps:?}: after {step}"
            );
        }
    }
}

/// Runs each runtime API command on both: the same answers, the same server states after.
fn same_after_commands(ours: &Setup, theirs: &Setup, commands: &[&str]) {
    for command in commands {
        assert_eq!(
            cli(&ours.sock, command),
            cli(&theirs.sock, command),
            "{command}"
        );
        assert_eq!(
            server_states(ours),
            server_states(theirs),
            "after {command}"
        );
    }
}

#[test]
fn health_checks_are_disabled_and_enabled_as_in_haproxy() {
    let Some((ours, theirs)) = side_by_side("stats-admin-health") else {
        return;
    };
    same_after_commands(
        &ours,
        &theirs,
        &[
            "disable health be/b",
            "enable health be/b",
            "disable health be/a",
            "disable health be/a",
            "enable health be/a",
            "disable health be/nope",
            "set server be/a state maint",
            "disable health be/a",
            "set server be/a state ready",
            "enable health be/a",
            "set server be/a state maint",
            "set server be/a state ready",
        ],
    );
    // Disabled checks leave the server as it was: no check runs, its health is kept.
    cli(&ours.sock, "disable health be/a");
    let stat = cli(&ours.sock, "show stat");
    let row = stat_row(&stat, "be", "a").expect("a row");
    assert_eq!(row["status"], "no check");
    assert_eq!(row["check_status"], "");
}

#[test]
fn health_is_forced_as_in_haproxy() {
    let Some((ours, theirs)) = side_by_side("stats-admin-force") else {
        return;
    };
    same_after_commands(
        &ours,
        &theirs,
        &[
            "set server be/a health stopping",
            "set server be/a health down",
            "set server be/a health up",
            "set server be/b health stopping",
            "set server be/b health bogus",
            "set server be/b health",
            "set server be/b state maint",
            "set server be/b health down",
            "set server be/b state ready",
            "set server be/b health up",
            "set server be/a health stopping",
            "disable health be/a",
        ],
    );
    // A stopping server (NOLB) gets no new connection.
    for s in [&ours, &theirs] {
        cli(&s.sock, "set server be/b health stopping");
        let seen = tally(s.tcp, 6);
        assert_eq!(seen.get("a"), None, "{seen:?}");
        assert_eq!(seen.get("b"), None, "{seen:?}");
        assert_eq!(seen.values().sum::<usize>(), 6, "{seen:?}");
    }
}
