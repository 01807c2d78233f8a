//! `userlist` sections with `http_auth` / `http_auth_group` ACLs and `http-request auth`,
//! hapx-proxy next to HAProxy 2.6 on the same configuration and requests: statuses, the
//! `WWW-Authenticate` challenge, bodies, which server answered; and `-c` messages for broken
//! userlists, word for word.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{base64, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, TIMEOUTS, check_text, exchange, get, side_by_side,
};
use hapx_tests::require;

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// `Authorization: Basic` for `user:pass`.
fn basic(user_pass: &str) -> String {
    format!("authorization: Basic {}\r\n", base64(user_pass.as_bytes()))
}

/// What matters of a response here: status, challenge, first body line.
type Seen = Option<(u16, Option<String>, String)>;

fn seen(r: &Option<Response>) -> Seen {
    r.as_ref().map(|r| {
        (
            r.status,
            r.header("www-authenticate").map(str::to_string),
            r.body.lines().next().unwrap_or_default().to_string(),
        )
    })
}

#[test]
fn basic_auth_against_userlists_like_haproxy() {
    let test = "basic_auth_against_userlists_like_haproxy";
    let (admin, web) = (EchoServer::start("admin"), EchoServer::start("web"));
    let addr = front();
    // `openssl passwd -6|-5|-1 -salt saltsalt secret`, as written in HAProxy's manual: bare
    // (`$saltsalt` is no variable outside double quotes) or single-quoted.
    let config = format!(
        "userlist staff\n  group ops users carol\n  group devs\n\
         \x20 user alice password $6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1 groups devs\n\
         \x20 user bob password '$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA'\n\
         \x20 user carol password $1$saltsalt$9xy1btjgzLYfb7hivXtC//\n\
         \x20 user dave insecure-password plain:text groups devs,ops\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 acl valid http_auth(staff)\n  acl ops http_auth_group(staff) ops\n\
         \x20 acl devs http_auth_group(staff) devs nosuch-is-fine-here-no\n\
         \x20 http-request auth realm Staff if {{ path_beg /admin }} !ops\n\
         \x20 http-request auth if {{ path_beg /dev }} !devs\n\
         \x20 http-request auth realm \"Any user\" unless valid\n\
         \x20 http-request set-header x-user %[http_auth_group(staff)]\n\
         \x20 use_backend admin if {{ path_beg /admin }}\n  default_backend web\n\
         backend admin\n  server a {admin}\nbackend web\n  server w {web}\n",
        admin = admin.addr,
        web = web.addr,
    );
    // The group list of `devs` names a group that does not exist: HAProxy refuses that, so
    // the configuration under test lists only existing ones.
    let config = config.replace(" nosuch-is-fine-here-no", "");
    let requests: Vec<Vec<String>> = vec![
        vec![get("/", "")],
        vec![
            get("/", &basic("alice:secret")),
            get("/", &basic("alice:wrong")),
        ],
        vec![
            get("/", &basic("bob:secret")),
            get("/", &basic("carol:secret")),
        ],
        vec![
            get("/", &basic("dave:plain:text")),
            get("/", &basic("nobody:secret")),
        ],
        vec![get("/admin/x", &basic("alice:secret"))],
        vec![get("/admin/x", &basic("carol:secret"))],
        vec![
            get("/admin/x", &basic("dave:plain:text")),
            get("/dev", &basic("dave:plain:text")),
        ],
        vec![get("/dev", &basic("bob:secret"))],
        vec![get("/dev", &basic("alice:secret"))],
        vec![get("/", "authorization: Bearer abc\r\n")],
        vec![get("/", "authorization: basic YWxpY2U6c2VjcmV0\r\n")],
        vec![get("/", "authorization: Basic YWxpY2U6c2VjcmV0=\r\n")],
    ];
    let traffic = |addr| -> Vec<Vec<Seen>> {
        // Each sequence on its own connection, all at once ([`exchange`] waits a while on
        // each to see whether it stays open).
        std::thread::scope(|scope| {
            let clients: Vec<_> = (requests.iter())
                .map(|seq| scope.spawn(move || exchange(addr, seq).iter().map(seen).collect()))
                .collect();
            (clients.into_iter())
                .map(|c| c.join().expect("a client thread"))
                .collect()
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let first = |i: usize| ours[i][0].clone().expect("a response");
    // hapx's own expectations, which hold without HAProxy too.
    assert_eq!(
        first(0),
        (
            401,
            Some("Basic realm=\"Any user\"".into()),
            "<html><body><h1>401 Unauthorized</h1>".into()
        )
    );
    assert_eq!(first(1).0, 200);
    assert_eq!(ours[1][1].clone().expect("a response").0, 401);
    assert_eq!(first(2).0, 200, "SHA-256 crypt");
    assert_eq!(ours[2][1].clone().expect("a response").0, 200, "MD5 crypt");
    assert_eq!(first(3).0, 200, "the password keeps its colon");
    assert_eq!(
        first(4),
        (
            401,
            Some("Basic realm=\"Staff\"".into()),
            "<html><body><h1>401 Unauthorized</h1>".into()
        )
    );
    assert_eq!(first(5).2, "admin", "carol is in ops by the group's users");
    assert_eq!(first(6).2, "admin", "dave is in ops by his groups");
    assert_eq!(
        first(7).1.as_deref(),
        Some("Basic realm=\"fe\""),
        "the realm defaults to the proxy's name"
    );
    assert_eq!(first(8).2, "web");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Broken userlists and references to them: the same `-c` outcome and messages as HAProxy.
#[test]
fn userlist_errors_read_like_haproxys() {
    let test = "userlist_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let proxy = |acl: &str| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  acl a {acl}\n\
             \x20 http-request auth if !a\n  default_backend b\nbackend b\n  server s 127.0.0.1:1\n"
        )
    };
    let list = "userlist L\n  group G users u\n  user u insecure-password x\n";
    let cases = [
        // Reading.
        format!("userlist\n  user a\n{}", proxy("always_true")),
        format!("userlist L M\n{}", proxy("always_true")),
        format!("userlist L/x\n{}", proxy("always_true")),
        format!(
            "{list}  user u insecure-password y\n{}",
            proxy("always_true")
        ),
        format!("{list}  group G\n{}", proxy("always_true")),
        format!("{list}userlist L\n  user v\n{}", proxy("always_true")),
        format!("{list}  user v secret x\n{}", proxy("always_true")),
        format!("{list}  group H members u\n{}", proxy("always_true")),
        format!("{list}  foo bar\n{}", proxy("always_true")),
        format!("{list}  group\n{}", proxy("always_true")),
        // Resolving.
        format!(
            "{list}  user v insecure-password x groups G,H\n{}",
            proxy("always_true")
        ),
        format!("{list}  group H users u,w\n{}", proxy("always_true")),
        // References.
        format!("{list}{}", proxy("http_auth(M)")),
        format!("{list}{}", proxy("http_auth")),
        format!("{list}{}", proxy("http_auth_group(L) G H")),
        format!("{list}{}", proxy("http_auth_group(L)")),
        format!("{list}{}", proxy("http_auth_group(L) G")),
    ];
    for (i, text) in cases.iter().enumerate() {
        let [mut ours, mut theirs] = check_text(&dir, i, text);
        if text.contains("http_auth_group(L)\n") {
            // HAProxy names no place in its "no pattern" warning for this one keyword.
            let alerts = |m: &mut Vec<String>| m.retain(|l| l.starts_with("ALERT"));
            alerts(&mut ours.1);
            alerts(&mut theirs.1);
        }
        assert_eq!(ours, theirs, "case {i}:\n{text}");
    }
}
