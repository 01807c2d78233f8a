//! Converters, hapx-proxy next to HAProxy 2.6: `%[fetch,conv...]` rendered in an
//! `http-request return ... lf-string` for several requests (bodies compared byte for byte),
//! ACLs using converters routing to different backends (the same backend chosen for each
//! request), and broken converter arguments (the same `-c` messages, word for word).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_frontend_line, check_messages, exchange, get, side_by_side,
};
use hapx_tests::{bins, require};

/// The expressions rendered, one a line: every converter hapx implements, on request
/// headers the requests vary, on addresses and on integers.
const EXPRESSIONS: &[&str] = &[
    "%[src,ipmask(24)]",
    "%[src,ipmask(255.255.0.0)]",
    "%[req.hdr(x-ip),ipmask(16,32)]",
    "%[req.hdr(x-ip),ipmask(8)]",
    "%[src,hex] %[src,add(1)] %[src,length] %[src,json] %[src,crc32]",
    "%[req.hdr(x-a),hex]",
    "%[req.hdr(x-a),base64] %[req.hdr(x-a),base64,b64dec]",
    "%[req.hdr(x-b64),b64dec] %[req.hdr(x-b64),b64dec,hex] %[req.hdr(x-b64),b64dec,length]",
    "%[req.hdr(x-a),length] %[req.hdr(x-a),bytes(2,3)] %[req.hdr(x-a),bytes(4)] %[req.hdr(x-a),bytes(40)]",
    "%[req.fhdr(x-f),field(2,:)] %[req.fhdr(x-f),field(-2,:,2)] %[req.fhdr(x-f),field(2,:.,0)] %[req.fhdr(x-f),field(9,:),length]",
    "%[req.fhdr(x-f),word(2,:)] %[req.fhdr(x-f),word(-1,:,0)] %[req.fhdr(x-f),word(1,.:,2)] %[req.fhdr(x-f),word(9,:),length]",
    "%[path,regsub(/,_,g)] %[req.hdr(x-a),regsub(o,0)] %[req.hdr(x-a),regsub(L,1,gi)] %[path,regsub(^/,<\\0>)]",
    "%[url,url_dec] %[query,url_dec(1)] %[path,url_dec,length]",
    "%[req.hdr(x-j),json] %[req.hdr(x-j),json(utf8)] %[req.hdr(x-j),json(utf8s)]",
    "%[req.hdr(x-n),add(5)] %[req.hdr(x-n),sub(7)] %[req.hdr(x-n),mul(-3)] %[req.hdr(x-n),div(4)] %[req.hdr(x-n),div(0)] %[req.hdr(x-n),mod(3)]",
    "%[req.hdr(x-n),and(6)] %[req.hdr(x-n),or(8)] %[req.hdr(x-n),xor(5)] %[req.hdr(x-n),neg] %[req.hdr(x-n),cpl]",
    "%[req.hdr(x-n),not] %[req.hdr(x-n),bool] %[req.hdr(x-n),even] %[req.hdr(x-n),odd] %[req.hdr(x-n),hex]",
    "%[req.hdr(x-a),crc32] %[req.hdr(x-a),crc32(1)] %[req.hdr(x-a),djb2] %[req.hdr(x-a),sdbm(1)] %[req.hdr(x-a),wt6]",
    "%[req.hdr(x-a),xxh32] %[req.hdr(x-a),xxh32(9)] %[req.hdr(x-a),xxh64] %[req.hdr(x-a),xxh64(9)]",
    "%[req.fhdr(x-f),ltrim(:a)] %[req.fhdr(x-f),rtrim(:d)] %[req.hdr(x-a),concat(<,,>)] %[req.hdr(x-a),concat(-)]",
    "%[req.hdr(x-a),lower] %[req.hdr(x-a),upper,hex,lower] %[method,lower,base64]",
    "%[req.hdr(x-a),ub64enc] %[url,url_enc] %[req.hdr(x-j),url_enc(query)]",
    "%[req.hdr(host),host_only] %[req.hdr(host),port_only] %[req.hdr(x-ip),host_only] %[req.hdr(x-ip),port_only,add(1)]",
    "%[req.hdr(x-j),regsub(.,-,g)]",
    // Elements of a comma-separated value: a comma inside a quoted string does not split.
    "%[req.hdr(x-l,1)]|%[req.hdr(x-l,2)]|%[req.hdr(x-l,-1)]|%[req.hdr_cnt(x-l)]|%[req.fhdr(x-l)]",
];

fn requests() -> Vec<String> {
    vec![
        get(
            "/a/b%20c+d?x=1+2%41&y",
            "x-a: Hello World\r\nx-ip: 198.51.100.77\r\nx-b64: QQBC\r\n\
             x-f: :aa::bb.cc:dd:\r\nx-j: a\"b\\c/\u{e9}\td<\r\nx-n: 42\r\n\
             x-l: a ,\"b, c\" , d\r\n",
        ),
        get(
            "/v1/users/%zz",
            "x-a: tests and toasts\r\nx-ip: 2001:db8::1:2\r\nx-b64: not base64\r\n\
             x-f: one.two\r\nx-j: x\u{1f600}y\r\nx-n: -17\r\n\
             x-l: \"q\\\",x\",y,,\r\nx-l: z\r\n",
        ),
        get("/", "x-n: 12abc\r\nx-f: ::\r\nx-b64: SGk=\r\n"),
    ]
}

/// Renders the expressions, one a line, in a reply: the same bodies as HAProxy's.
#[test]
fn converters_render_like_haproxy() {
    let test = "converters_render_like_haproxy";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let body: Vec<String> = EXPRESSIONS
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i}={e}"))
        .collect();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"{}\\n\"\n",
        body.join("\\n")
    );
    let requests = requests();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| exchange(a, &requests));
    let bodies: Vec<String> = ours
        .iter()
        .take(requests.len())
        .map(|r| r.as_ref().expect("a response").body.clone())
        .collect();
    // hapx's own answers, checked by value where HAProxy's were read once.
    let first: Vec<&str> = bodies[0].lines().collect();
    assert_eq!(first.len(), EXPRESSIONS.len(), "{}", bodies[0]);
    assert_eq!(first[0], "0=127.0.0.0");
    assert_eq!(first[2], "2=198.51.0.0");
    assert_eq!(first[5], "5=48656C6C6F20576F726C64");
    assert_eq!(first[7], "7=A 410042 1");
    assert_eq!(first[9], "9=aa bb.cc:dd aa::bb.cc:dd: ");
    assert_eq!(
        first[17],
        "17=1243066710 1404468991 2272792705 1975300275 530152375"
    );
    assert_eq!(first[24], r#"24=a|"b, c"|d|3|a ,"b, c" , d"#);
    let second: Vec<&str> = bodies[1].lines().collect();
    assert_eq!(second[24], r#"24="q\",x"|y|z|5|z"#);
    assert_eq!(second[2], "2=2001:db8::");
    assert_eq!(second[3], "3=");
    if let Some(theirs) = theirs {
        for (i, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
            let body = |r: &Option<hapx_tests::proxy_rules::Response>| {
                r.as_ref().map(|r| r.body.clone()).unwrap_or_default()
            };
            let (a, b) = (body(ours), body(theirs));
            for (la, lb) in a.lines().zip(b.lines()) {
                assert_eq!(la, lb, "request {i}");
            }
            assert_eq!(ours, theirs, "request {i}");
        }
    }
}

/// ACLs on converted samples send each request to the same backend as HAProxy does.
#[test]
fn acls_with_converters_route_like_haproxy() {
    let test = "acls_with_converters_route_like_haproxy";
    let names = [
        "net", "host", "big", "hash", "len", "word", "tok", "ver", "field", "other",
    ];
    let servers: Vec<EchoServer> = names.iter().map(|n| EchoServer::start(n)).collect();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let backends: String = names
        .iter()
        .zip(&servers)
        .map(|(n, s)| format!("backend be_{n}\n  server s_{n} {}\n", s.addr))
        .collect();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 acl net src,ipmask(24) 127.0.0.0/24\n\
         \x20 acl host req.hdr(host),field(1,:),lower -m str api.example\n\
         \x20 acl big req.hdr(x-n),mul(2) gt 100\n\
         \x20 acl hash req.hdr(x-a),crc32,mod(3) eq 2\n\
         \x20 acl len path,length 5\n\
         \x20 acl word path,word(1,/) -m str api\n\
         \x20 acl tok req.hdr(x-tok),b64dec -m str secret\n\
         \x20 acl ver path,regsub(^/v[0-9]+/,/) -m beg /users\n\
         \x20 acl field path,field(4,/) -m found\n\
         \x20 use_backend be_net if net {{ path_beg /net }}\n\
         \x20 use_backend be_host if host\n\
         \x20 use_backend be_big if big\n\
         \x20 use_backend be_hash if hash\n\
         \x20 use_backend be_len if len\n\
         \x20 use_backend be_word if word\n\
         \x20 use_backend be_tok if tok\n\
         \x20 use_backend be_ver if ver\n\
         \x20 use_backend be_field if field\n\
         \x20 default_backend be_other\n{backends}"
    );
    let requests: Vec<String> = vec![
        get("/net/x", ""),
        "GET /a HTTP/1.1\r\nhost: API.Example:8443\r\n\r\n".into(),
        get("/n", "x-n: 51\r\n"),
        get("/n", "x-n: 50\r\n"),
        get("/h", "x-a: b\r\n"),
        get("/h", "x-a: a\r\n"),
        get("/five", ""),
        get("/api/v1/things", ""),
        get("/t", "x-tok: c2VjcmV0\r\n"),
        get("/t", "x-tok: c2VjcmV0Cg==\r\n"),
        get("/v12/users/7", ""),
        get("/a/b/c/d", ""),
        get("/a/b", ""),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        exchange(a, &requests)
            .into_iter()
            .take(requests.len())
            .map(|r| r.map(|r| r.server().to_string()))
            .collect::<Vec<_>>()
    });
    let served: Vec<&str> = ours.iter().map(|s| s.as_deref().unwrap_or("-")).collect();
    assert_eq!(
        served,
        [
            "net", "host", "big", "other", "hash", "other", "len", "word", "tok", "other", "ver",
            "field", "other"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Broken converter arguments: HAProxy's messages, in log formats and in ACLs.
#[test]
fn converter_errors_read_like_haproxys() {
    let test = "converter_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "  http-request set-header X %[src,ipmask(33)]",
        "  http-request set-header X %[src,ipmask(24,129)]",
        "  http-request set-header X %[src,ipmask]",
        "  http-request set-header X %[path,bytes(a)]",
        "  http-request set-header X %[path,field(0,:)]",
        "  http-request set-header X %[path,field(1)]",
        "  http-request set-header X %[path,field(1,)]",
        "  http-request set-header X %[path,regsub(a)]",
        "  http-request set-header X %[path,regsub(a,b,x)]",
        "  http-request set-header X %[path,add(x)]",
        "  http-request set-header X %[path,json(foo)]",
        "  http-request set-header X %[path,crc32(x)]",
        "  http-request set-header X %[path,concat(a,b,c)]",
        "  http-request set-header X %[req.hdr(x),b64dec,add(1)]",
        "  http-request set-header X %[always_true,hex]",
        "  http-request set-header X %[always_true,ipmask(8)]",
        "  http-request set-header X %[path,len]",
        "  http-request set-header X %[path,url_enc(foo)]",
        "  acl a path,url_enc(query,1) -m found\n  http-request deny if a",
        "  acl a path,field(0,:) -m found\n  http-request deny if a",
        "  acl a path,b64dec,neg -m found\n  http-request deny if a",
        "  acl a src,bytes(a) -m found\n  http-request deny if a",
        "  acl a hdr(x),regsub(a) -m found\n  http-request deny if a",
        "  acl a path,hex(1) -m found\n  http-request deny if a",
        "  acl a path,ipmask -m found\n  http-request deny if a",
        "  http-request set-header X %[src,ipmask(255.0.255.0)]",
        "  http-request deny if { path,bytes(1,-1),length lt 3 }",
    ];
    for (i, line) in cases.iter().enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, line, "", "");
        assert_eq!(ours, theirs, "{line:?}");
    }
}

/// Converters HAProxy has and hapx does not stay refused: an error naming them.
#[test]
fn unimplemented_converters_are_refused() {
    let dir = temp_dir("unimplemented_converters_are_refused");
    for (i, (line, what)) in [
        (
            "http-request set-header X %[path,sha1,hex]",
            "the converter 'sha1'",
        ),
        ("http-request set-header X %[path,add(txn.n)]", "variables"),
        (
            "http-request deny if { path,ub64dec /x }",
            "the converter 'ub64dec'",
        ),
        // As HAProxy: a binary sample has no default matching method.
        (
            "http-request deny if { path,b64dec -- }",
            "matching method must be specified first (using '-m') when using a sample fetch of this type ('path')",
        ),
    ]
    .iter()
    .enumerate()
    {
        let file = dir.join(format!("u{i}.cfg"));
        std::fs::write(
            &file,
            format!(
                "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  {line}\n  default_backend b\n\
                 backend b\n  server s 127.0.0.1:1\n"
            ),
        )
        .unwrap();
        let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_eq!(code, 1, "{line}: {messages:#?}");
        assert!(
            messages.iter().any(|m| m.starts_with("ALERT: ")
                && m.contains(&format!("u{i}.cfg:8]"))
                && m.contains(what)),
            "{line}: {messages:#?}"
        );
    }
}
