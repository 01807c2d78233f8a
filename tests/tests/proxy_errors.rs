//! Error pages that redirect (`errorloc`, `errorloc302`, `errorloc303`), hapx-proxy next to
//! HAProxy 2.6 on the same configuration and requests: status, `Location`, `Cache-Control`,
//! body; and `-c` messages for bad uses, word for word.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_text, exchange, get, side_by_side};
use hapx_tests::require;

/// `one` for each path, all at once ([`exchange`] waits a while on each connection to see
/// whether it stays open), in the paths' order.
fn at_once<T: Send>(paths: &[&str], one: impl Fn(&str) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let clients: Vec<_> = (paths.iter())
            .map(|p| {
                let one = &one;
                scope.spawn(move || one(p))
            })
            .collect();
        (clients.into_iter())
            .map(|c| c.join().expect("a client thread"))
            .collect()
    })
}

#[test]
fn errorloc_redirects_like_haproxy() {
    let test = "errorloc_redirects_like_haproxy";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    // The backend's only server refuses connections: its 503 is what `errorloc303` replaces.
    let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  errorloc 403 http://errors.example/denied\n\
         frontend fe\n  bind {addr}\n  errorloc302 429 /slow-down?x=1\n  errorloc303 503 /busy\n\
         \x20 http-request deny if {{ path /deny }}\n  http-request deny deny_status 429 if {{ path /rate }}\n\
         \x20 http-request deny deny_status 400 if {{ path /plain }}\n  default_backend b\n\
         backend b\n  server s {dead}\n"
    );
    let paths = ["/deny", "/rate", "/plain", "/other"];
    let traffic = |addr| {
        at_once(&paths, |p| {
            exchange(addr, &[get(p, "")])[0].as_ref().map(|r| {
                (
                    r.status,
                    r.header("location").map(str::to_string),
                    r.header("cache-control").map(str::to_string),
                    r.body.lines().next().unwrap_or_default().to_string(),
                )
            })
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let redirect = |status, to: &str| {
        Some((
            status,
            Some(to.to_string()),
            Some("no-cache".to_string()),
            String::new(),
        ))
    };
    assert_eq!(ours[0], redirect(302, "http://errors.example/denied"));
    assert_eq!(ours[1], redirect(302, "/slow-down?x=1"));
    assert_eq!(
        ours[2].as_ref().map(|r| r.0),
        Some(400),
        "no errorloc: the usual page"
    );
    assert_eq!(ours[3], redirect(303, "/busy"));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn errorloc_errors_read_like_haproxys() {
    let test = "errorloc_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "errorloc",
        "errorloc 503",
        "errorloc302 999 /x",
        "errorloc303 abc /x",
        "errorloc 200x /x",
        "errorloc 503 /ok",
    ];
    for (i, line) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  {line}\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        let [ours, theirs] = check_text(&dir, i, &text);
        assert_eq!(ours, theirs, "{line:?}");
    }
}

/// `http-errors` sections taken by `errorfiles` (all pages, or some codes, a section declared
/// after the proxies), `errorfile` lines before and after them, and `http-error` replies.
#[test]
fn http_errors_sections_and_http_error_like_haproxy() {
    let test = "http_errors_sections_and_http_error_like_haproxy";
    let dir = temp_dir(test);
    let page = |name: &str, status: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "HTTP/1.0 {status}\r\nCache-Control: no-cache\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}\n",
                text.len() + 1
            ),
        )
        .expect("writing an error page");
        path.display().to_string()
    };
    let (site503, site403, own403, late404) = (
        page("503.http", "503 Service Unavailable", "site down"),
        page("403.http", "403 Forbidden", "section forbidden"),
        page("own403.http", "403 Forbidden", "own forbidden"),
        page("404.http", "404 Not Found", "late not found"),
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "http-errors site\n  errorfile 503 {site503}\n  errorfile 403 {site403}\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  errorfiles site\n  errorfile 403 {own403}\n  errorfiles late 404\n\
         \x20 http-error status 429 content-type text/plain string \"slow down\" hdr x-why busy\n\
         \x20 http-error status 400 content-type text/plain\n\
         \x20 http-request deny if {{ path /deny }}\n  http-request deny deny_status 429 if {{ path /rate }}\n\
         \x20 http-request deny deny_status 400 if {{ path /bad }}\n  http-request deny deny_status 404 if {{ path /none }}\n\
         \x20 default_backend b\n\
         backend b\n  errorfiles site 503\n  server s {dead}\n\
         http-errors late\n  errorfile 404 {late404}\n"
    );
    let paths = ["/deny", "/rate", "/bad", "/none", "/other"];
    let traffic = |addr| {
        at_once(&paths, |p| {
            exchange(addr, &[get(p, "")])[0].as_ref().map(|r| {
                (
                    r.status,
                    r.header("content-type").map(str::to_string),
                    r.header("x-why").map(str::to_string),
                    r.body.clone(),
                )
            })
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let text = |s: &str| Some("text/plain".to_string()).zip(Some(s.to_string()));
    let body_of = |i: usize| {
        ours[i]
            .as_ref()
            .map(|r| (r.0, r.1.clone().zip(Some(r.3.clone()))))
    };
    assert_eq!(
        body_of(0),
        Some((403, text("own forbidden\n"))),
        "a later errorfile wins"
    );
    assert_eq!(
        ours[1],
        Some((
            429,
            Some("text/plain".into()),
            Some("busy".into()),
            "slow down".into()
        ))
    );
    assert_eq!(
        ours[2],
        Some((400, None, None, String::new())),
        "no payload: empty"
    );
    assert_eq!(
        body_of(3),
        Some((404, text("late not found\n"))),
        "a section declared later"
    );
    assert_eq!(
        body_of(4),
        Some((503, text("site down\n"))),
        "the backend's own errorfiles"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn http_errors_messages_read_like_haproxys() {
    let test = "http_errors_messages_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let page = dir.join("503.http");
    std::fs::write(&page, "HTTP/1.0 503 Service Unavailable\r\n\r\ndown\n").expect("a page");
    let section = format!("http-errors e1\n  errorfile 503 {}\n", page.display());
    let cases = [
        ("http-errors\n".to_string(), ""),
        ("http-errors e1\n  errorfile 503\n".to_string(), ""),
        ("http-errors e1\n  errorfile 999 x\n".to_string(), ""),
        ("http-errors e1\n  foo\n".to_string(), ""),
        (
            "http-errors e1\n  errorfile 503 /nonexistent/page\n".to_string(),
            "",
        ),
        (format!("{section}http-errors e1\n"), ""),
        (section.clone(), "errorfiles"),
        (section.clone(), "errorfiles nope"),
        (section.clone(), "errorfiles e1 999"),
        (section.clone(), "errorfiles e1 404"),
        (section.clone(), "errorfiles e1 503"),
        (section.clone(), "http-error"),
        (section.clone(), "http-error status 999"),
        (
            section.clone(),
            "http-error status 503 content-type text/plain",
        ),
        (
            section.clone(),
            "http-error status 503 content-type text/plain string x hdr a b",
        ),
    ];
    for (i, (head, line)) in cases.iter().enumerate() {
        let text = format!(
            "{head}defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  {line}\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        let [ours, theirs] = check_text(&dir, i, &text);
        assert_eq!(ours, theirs, "case {i}:\n{text}");
    }
}
