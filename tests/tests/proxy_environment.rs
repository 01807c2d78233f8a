//! Global keywords, hapx-proxy next to HAProxy 2.6 on the same configuration: `setenv`,
//! `presetenv`, `unsetenv` and `resetenv` (applied in file order to the variables the rest of
//! the configuration expands and to the `env()` fetch), `description` (global: `show info`;
//! proxies: the stats page), `maxconnrate`; and `-c` messages for bad uses, word for word.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{base64, cli, free_port, http_get, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_text, exchange, get, side_by_side,
};
use hapx_tests::require;

#[test]
fn environment_keywords_apply_in_file_order_like_haproxy() {
    let test = "environment_keywords_apply_in_file_order_like_haproxy";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let config = format!(
        "global\n  stats socket {socket}\n  description The  main \"LB node\"\n\
         \x20 setenv GREETING hello\n  presetenv GREETING ignored\n  presetenv WHO \"world-$GREETING\"\n\
         \x20 setenv CODE 203\n  setenv GONE soon\n  unsetenv GONE\n  resetenv GREETING WHO CODE\n\
         \x20 setenv AFTER \"${{WHO}}!\"\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  description front end \"one\"\n\
         \x20 http-request set-header x-path \"<$PATH>\"\n\
         \x20 http-request return status \"$CODE\" content-type text/plain lf-string \"%[env(GREETING)] %[env(AFTER)] %[env(CODE)] [%[req.hdr(x-path)]]\"\n",
        socket = socket.display(),
    );
    let traffic = |addr| {
        let r = exchange(addr, &[get("/", "")])[0]
            .clone()
            .expect("a response");
        let info = cli(&socket, "show info");
        let description: Vec<String> = info
            .lines()
            .filter(|l| l.starts_with("description:"))
            .map(str::to_string)
            .collect();
        (r.status, r.body, description)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        (
            203,
            "hello world-hello! 203 [<>]".to_string(),
            vec!["description: The main LB node".to_string()]
        ),
        "PATH is gone after resetenv; the rest in file order"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Variables outside double quotes expand in addresses only (HAProxy's address parser does
/// that), never in other words of those lines: `stats auth admin:$PW` keeps its `$` (once
/// expanded, an unset variable made an empty password that logged in), and so does a
/// server's `cookie $CK`; the address words of `bind`, `server`, `default-server addr` and
/// `tcp-check connect addr` do expand.
#[test]
fn unquoted_variables_expand_in_addresses_only_like_haproxy() {
    let test = "unquoted_variables_expand_in_addresses_only_like_haproxy";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let server = EchoServer::start("s1");
    let config = format!(
        "global
  setenv LPORT {port}
  setenv SADDR {saddr}
  setenv PW envsecret
           setenv CK zz
  setenv IP 127.0.0.1
         defaults
  mode http
{TIMEOUTS}         listen web
  bind 127.0.0.1:$LPORT
  stats enable
  stats uri /st
           stats auth admin:$PW
  stats auth other:$NOPE
  cookie SRV insert
           default-server addr $IP
  option tcp-check
  tcp-check connect addr $IP port 1
           server s1 $SADDR cookie $CK
",
        port = addr.port(),
        saddr = server.addr,
    );
    let traffic = |addr| {
        let auth = |credentials: &str| {
            format!(
                "authorization: Basic {}\r\n",
                base64(credentials.as_bytes())
            )
        };
        let statuses: Vec<u16> = ["admin:$PW", "admin:envsecret", "other:$NOPE", "other:"]
            .iter()
            .map(|c| {
                exchange(addr, &[get("/st", &auth(c))])[0]
                    .as_ref()
                    .map_or(0, |r| r.status)
            })
            .collect();
        let cookie = exchange(addr, &[get("/", "")])[0]
            .as_ref()
            .and_then(|r| r.header("set-cookie").map(str::to_string));
        (statuses, cookie)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        (
            vec![200, 401, 200, 401],
            Some("SRV=$CK; path=/".to_string())
        )
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn proxy_descriptions_show_on_the_stats_page() {
    let test = "proxy_descriptions_show_on_the_stats_page";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         listen stats\n  bind {addr}\n  description the \"stats\" <page>\n  stats enable\n  stats uri /st\n"
    );
    let traffic = |addr| {
        let (_, _, body) = http_get(addr, "/st", None);
        body.lines()
            .filter_map(|l| l.split("<th class=\"desc\"").nth(1))
            .filter_map(|l| l.split_once('>').map(|(_, rest)| rest.to_string()))
            .filter_map(|l| l.split("</th>").next().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(ours, ["the stats <page>"]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn environment_and_description_errors_read_like_haproxys() {
    let test = "environment_and_description_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "global\n  setenv\n",
        "global\n  setenv A\n",
        "global\n  presetenv A\n",
        "global\n  setenv A b c\n",
        "global\n  setenv A b c d\n",
        "global\n  setenv A=B x\n",
        "global\n  unsetenv\n",
        "global\n  unsetenv A=B\n",
        "global\n  resetenv\n",
        "global\n  description\n",
        "global\n  maxconnrate\n",
        "global\n  maxsessrate 10 20\n",
        "global\n  maxconnrate x\n",
        "defaults\n  description d\n",
    ];
    let rest = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:1\n"
    );
    for (i, case) in cases.iter().enumerate() {
        let [ours, theirs] = check_text(&dir, i, &format!("{case}{rest}"));
        assert_eq!(ours, theirs, "{case:?}");
    }
}

/// `maxconnrate 3`: a burst of connections is served about three a second, by both.
#[test]
fn maxconnrate_spreads_a_burst_like_haproxy() {
    let test = "maxconnrate_spreads_a_burst_like_haproxy";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let config = format!(
        "global\n  maxconnrate 3\n  stats socket {socket}\ndefaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  http-request return status 200 content-type text/plain string ok\n",
        socket = socket.display(),
    );
    const BURST: usize = 9;
    let traffic = |addr| {
        let start = std::time::Instant::now();
        let answered: Vec<std::time::Duration> = std::thread::scope(|scope| {
            let clients: Vec<_> = (0..BURST)
                .map(|_| {
                    scope.spawn(move || {
                        let r = exchange(addr, &[get("/", "connection: close\r\n")]);
                        assert_eq!(r[0].as_ref().map(|r| r.status), Some(200));
                        start.elapsed()
                    })
                })
                .collect();
            (clients.into_iter())
                .map(|c| c.join().expect("a client thread"))
                .collect()
        });
        let info = cli(&socket, "show info");
        let limit: Vec<String> = (info.lines())
            .filter(|l| l.starts_with("ConnRateLimit:"))
            .map(str::to_string)
            .collect();
        // The limit is over a sliding second (HAProxy's freq_ctr): a burst at a second's end
        // and another at the next one's start may both pass, but never all nine at once.
        let early = answered
            .iter()
            .filter(|t| **t < std::time::Duration::from_millis(500))
            .count();
        let slowest = answered.iter().max().copied().unwrap_or_default();
        (
            early <= 6 && slowest >= std::time::Duration::from_secs(1),
            answered.len(),
            limit,
        )
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(ours, (true, BURST, vec!["ConnRateLimit: 3".to_string()]));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
