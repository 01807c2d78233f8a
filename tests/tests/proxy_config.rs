//! `hapx-proxy -c` against `haproxy -c` on the same files: the seed's configuration, broken
//! ones, environment variables, several files and directories; and the parser fuzzed.

use std::path::{Path, PathBuf};
use std::process::Command;

use hapx_tests::{bins, proxy::temp_dir, require};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// (exit code, the `[file:line]` places named on stderr, stderr).
fn check(binary: &Path, files: &[&Path], env: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let mut cmd = Command::new(binary);
    cmd.arg("-c");
    for f in files {
        cmd.arg("-f").arg(f);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running the checker");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut places: Vec<String> = stderr
        .lines()
        .filter_map(|l| {
            let start = l.find('[')? + 1;
            let rest = &l[start..];
            // Skip the "[WARNING]"/"[ALERT]" prefix: places contain a colon and a line number.
            let rest = &rest[rest.find('[').map_or(0, |i| i + 1)..];
            let end = rest.find(']')?;
            let place = &rest[..end];
            place
                .rsplit_once(':')
                .filter(|(_, n)| n.parse::<u32>().is_ok())
                .map(|_| place.to_string())
        })
        .collect();
    places.sort();
    places.dedup();
    (out.status.code().unwrap_or(-1), places, stderr)
}

fn hapx() -> PathBuf {
    bins::path("hapx-proxy")
}

fn seed() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seed/haproxy.cfg");
    std::env::var_os("HAPX_SEED_DIR").map_or(root, |d| PathBuf::from(d).join("haproxy.cfg"))
}

#[test]
fn seed_configuration_checks_like_haproxy() {
    let seed = seed();
    if !require::path(
        "seed_configuration_checks_like_haproxy",
        &seed,
        "the seed's haproxy.cfg",
    ) || !require::path(
        "seed_configuration_checks_like_haproxy",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        return;
    }
    let ours = check(&hapx(), &[&seed], &[]);
    let theirs = check(Path::new(HAPROXY), &[&seed], &[]);
    assert_eq!(ours.0, 0, "{}", ours.2);
    assert_eq!(theirs.0, 0, "{}", theirs.2);
    assert_eq!(
        ours.1, theirs.1,
        "warnings at different places:\nours:\n{}\nHAProxy:\n{}",
        ours.2, theirs.2
    );
    assert!(
        ours.2
            .contains("'option httplog' not usable with frontend 'kubernetes-apiserver-https'")
    );
}

#[test]
fn errors_name_the_same_places_as_haproxy() {
    if !require::path(
        "errors_name_the_same_places_as_haproxy",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        return;
    }
    let dir = temp_dir("cfg-errors");
    let cases = [
        "global\n  foo bar\n",
        "defaults\n  mode tcp\n  timeout clinet 3s\n",
        "frontend f\n  bind 127.0.0.1:1\n  balanse roundrobin\n  timeout client 1s\n",
        "backend b\n  server s1 127.0.0.1:1 chek\n",
        "frontend f\n  bind 127.0.0.1:1\n  default_backend nowhere\n  timeout client 1s\n",
        "listen l\n  bind 127.0.0.1:1\n  mode tcp\n  balance nonsense\n",
        "global\n  maxconn 'unterminated\n",
        "defaults\n  mode foo\n",
    ];
    for (i, text) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).unwrap();
        let ours = check(&hapx(), &[&file], &[]);
        let theirs = check(Path::new(HAPROXY), &[&file], &[]);
        assert_eq!(
            theirs.0, 1,
            "HAProxy accepted case {i}:\n{text}\n{}",
            theirs.2
        );
        assert_eq!(ours.0, 1, "hapx accepted case {i}:\n{text}\n{}", ours.2);
        // The places HAProxy names, no more: a default_backend that does not exist is
        // named without its line, as HAProxy's.
        assert_eq!(
            ours.1, theirs.1,
            "case {i}:\n{text}\nours:\n{}\nHAProxy:\n{}",
            ours.2, theirs.2
        );
    }
}

/// An option for the other side of a proxy (`tcp-smart-connect` acts on server connections,
/// `tcp-smart-accept` on the listeners) is ignored with a warning on its line, as in HAProxy;
/// in the sections where they apply, both are accepted silently, and `defer-accept` too.
#[test]
fn options_for_the_other_side_warn_like_haproxy() {
    let test = "options_for_the_other_side_warn_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir("cfg-sides");
    let file = dir.join("sides.cfg");
    std::fs::write(
        &file,
        "defaults\n  mode tcp\n  option tcp-smart-accept\n  option tcp-smart-connect\n  \
         timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:1 defer-accept\n  option tcp-smart-connect\n  \
         no option tcp-smart-accept\n  default_backend b\n\
         backend b\n  option tcp-smart-accept\n  no option tcp-smart-connect\n  \
         server s 127.0.0.1:2\n\
         listen l\n  bind 127.0.0.1:3\n  option tcp-smart-accept\n  option tcp-smart-connect\n  \
         server s 127.0.0.1:2\n",
    )
    .unwrap();
    let ours = check(&hapx(), &[&file], &[]);
    let theirs = check(Path::new(HAPROXY), &[&file], &[]);
    assert_eq!((ours.0, theirs.0), (0, 0), "{}\n{}", ours.2, theirs.2);
    let lines = |places: &[String]| -> Vec<String> {
        places
            .iter()
            .map(|p| p.rsplit(':').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(lines(&theirs.1), ["10", "14"], "{}", theirs.2);
    assert_eq!(
        lines(&ours.1),
        lines(&theirs.1),
        "ours:\n{}\nHAProxy:\n{}",
        ours.2,
        theirs.2
    );
    assert!(
        ours.2.contains(
            "'tcp-smart-connect' ignored because frontend 'f' has no backend capability."
        ),
        "{}",
        ours.2
    );
}

#[test]
fn unknown_keyword_suggests_and_unimplemented_warns() {
    let dir = temp_dir("cfg-suggest");
    let file = dir.join("a.cfg");
    std::fs::write(&file, "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:1\n  balanse roundrobin\n").unwrap();
    let (code, _, err) = check(&hapx(), &[&file], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("parsing [{}:8] : unknown keyword 'balanse' in 'frontend' section; did you mean 'balance' maybe ?", file.display())), "{err}");
    std::fs::write(&file, "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:1\n  compression algo gzip\n  default_backend b\nbackend b\n  server s 127.0.0.1:2 tfo\n").unwrap();
    let (code, _, err) = check(&hapx(), &[&file], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "[{}:8] : 'compression' is not implemented by hapx",
            file.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "[{}:11] : server option 'tfo' is not implemented",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn environment_variables_and_several_files() {
    let dir = temp_dir("cfg-env");
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(dir.join("main.cfg"), "global\n  maxconn \"${MAXCONN}\"\ndefaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n").unwrap();
    std::fs::write(
        conf_d.join("10-fe.cfg"),
        "frontend f\n  bind 127.0.0.1:$PORT\n  default_backend b\n",
    )
    .unwrap();
    std::fs::write(
        conf_d.join("20-be.cfg"),
        "backend b\n  server s \"${ADDR}\":1\n",
    )
    .unwrap();
    std::fs::write(conf_d.join("ignored.txt"), "this is not configuration\n").unwrap();
    let env = [("MAXCONN", "100"), ("PORT", "8080"), ("ADDR", "127.0.0.1")];
    let (code, _, err) = check(&hapx(), &[&dir.join("main.cfg"), &conf_d], &env);
    assert_eq!(code, 0, "{err}");
    // Without PORT the bind address has no port: an error naming the file and line.
    let (code, places, err) = check(
        &hapx(),
        &[&dir.join("main.cfg"), &conf_d],
        &[("MAXCONN", "100"), ("ADDR", "127.0.0.1")],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        places,
        [format!("{}:2", conf_d.join("10-fe.cfg").display())],
        "{err}"
    );
    if require::path(
        "environment_variables_and_several_files",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        let (theirs, _, herr) = check(Path::new(HAPROXY), &[&dir.join("main.cfg"), &conf_d], &env);
        assert_eq!(theirs, 0, "{herr}");
    }
}

/// `tcp-smart-accept` is automatic in HTTP mode and off in TCP mode unless set; a defaults
/// section passes it on, `no option` turns it off; `tcp-smart-connect` is off unless set.
#[test]
fn smart_options_in_the_model() {
    let dir = temp_dir("cfg-smart-model");
    let file = dir.join("smart.cfg");
    std::fs::write(
        &file,
        "defaults plain\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend tcp_fe from plain\n  mode tcp\n  bind 127.0.0.1:1\n  default_backend b\n\
         frontend http_fe from plain\n  mode http\n  bind 127.0.0.1:2\n  default_backend hb\n\
         frontend http_off from plain\n  mode http\n  bind 127.0.0.1:3\n  \
         no option tcp-smart-accept\n  default_backend hb\n\
         backend b from plain\n  server s 127.0.0.1:9\n\
         backend hb from plain\n  mode http\n  server s 127.0.0.1:9\n\
         defaults smart\n  option tcp-smart-accept\n  option tcp-smart-connect\n  \
         timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         listen tcp_smart from smart\n  mode tcp\n  bind 127.0.0.1:4 defer-accept\n  \
         server s 127.0.0.1:9\n",
    )
    .unwrap();
    let (config, diags) = hapx_proxy::config::load(&[file]);
    assert!(!diags.has_errors());
    let proxy = |name: &str| {
        config
            .proxies
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no proxy {name}"))
    };
    let accept = |name: &str| proxy(name).smart_accept();
    assert!(!accept("tcp_fe") && accept("http_fe") && !accept("http_off") && accept("tcp_smart"));
    assert!(!proxy("b").options.tcp_smart_connect);
    assert!(proxy("tcp_smart").options.tcp_smart_connect);
    assert!(proxy("tcp_smart").binds[0].defer_accept && !proxy("tcp_fe").binds[0].defer_accept);
}

#[test]
fn model_of_the_seed() {
    let seed = seed();
    if !require::path("model_of_the_seed", &seed, "the seed's haproxy.cfg") {
        return;
    }
    let (config, diags) = hapx_proxy::config::load(&[seed]);
    assert!(!diags.has_errors());
    let g = &config.global;
    assert!(g.daemon);
    assert_eq!(g.user.as_deref(), Some("haproxy"));
    assert_eq!(g.stats_sockets[0].mode, Some(0o660));
    let fe = config.proxy("kubernetes-apiserver-https").unwrap();
    assert_eq!(fe.binds[0].addr.port(), 6443);
    assert_eq!(fe.mode.as_str(), "tcp");
    let be = config.backend("kubernetes-master-nodes").unwrap();
    assert_eq!(be.servers.len(), 3);
    assert_eq!(be.servers[0].opts.fall, 3);
    assert_eq!(be.servers[0].opts.resolvers.as_deref(), Some("dns"));
    assert!(be.options.tcp_check);
    let stats = config.proxy("stats").unwrap();
    assert_eq!(
        stats.stats.auth,
        [("admin".to_string(), "admin".to_string())]
    );
    assert!(stats.stats.hide_version);
    let dns = config.resolvers("dns").unwrap();
    assert_eq!(dns.nameservers[0].addr.to_string(), "192.168.4.1:53");
    assert_eq!(dns.hold("valid").as_secs(), 10);
}

mod fuzz {
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "global",
        "defaults",
        "frontend f",
        "backend b",
        "listen l",
        "resolvers r",
        "bind",
        "*:80",
        "server s",
        "127.0.0.1:1",
        "check",
        "inter",
        "fall",
        "rise",
        "timeout",
        "client",
        "5s",
        "option",
        "httpchk",
        "tcp-check",
        "expect",
        "string",
        "stats",
        "auth",
        "a:b",
        "mode",
        "http",
        "tcp",
        "balance",
        "leastconn",
        "\"",
        "'",
        "\\",
        "$X",
        "${Y",
        "#",
        ".if",
        ".endif",
        "1",
        "nameserver",
        "n",
        "hold",
        "valid",
        "default_backend",
        "errorfile",
        "400",
        "weight",
        "300",
        "-1",
        "",
        "\t",
        "log",
        "global",
        "local0",
        "init-addr",
        "none,libc",
        "from",
        "random(3)",
        "random(x",
        "http-check",
        "200-399",
        "forwardfor",
        "except",
        "10.0.0.0/8",
        "if-none",
        "clitcpka-idle",
        "id",
        "0",
        "backlog",
        "nbproc",
        "acl",
        "a",
        "use_backend",
        "if",
        "unless",
        "{",
        "}",
        "!",
        "||",
        "path_beg",
        "/x",
        "hdr(host)",
        "-i",
        "-m",
        "-f",
        "http-request",
        "http-response",
        "deny",
        "redirect",
        "set-header",
        "%[src]",
        "tcp-request",
        "content",
        "inspect-delay",
        "req.ssl_sni",
        "monitor-uri",
        "monitor",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn parser_never_panics(lines in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(WORDS), 0..6), 0..25),
            noise in ".{0,40}") {
            let mut text: String = lines.iter().map(|l| l.join(" ")).collect::<Vec<_>>().join("\n");
            text.push('\n');
            text.push_str(&noise);
            let _ = hapx_proxy::config::load_text("fuzz.cfg", &text, &|_| None);
        }
    }
}

/// A condition where a rule's action should be (`http-request if`, found by the fuzzer:
/// the log-format scan sliced the action's words backwards) is an error naming the line,
/// not a panic.
#[test]
fn a_condition_in_place_of_the_action_is_an_error() {
    for rule in [
        "http-request if",
        "http-response unless",
        "http-after-response if",
        "tcp-request content if",
        "tcp-response content unless",
        "tcp-request if",
    ] {
        let text = format!("frontend f\n  {rule}\n");
        let (_, diags) = hapx_proxy::config::load_text("rule.cfg", &text, &|_| None);
        let errors: Vec<String> = (diags.list.iter())
            .filter(|d| d.is_error())
            .map(|d| d.text())
            .collect();
        assert!(
            errors.iter().any(|e| e.contains("rule.cfg:2")),
            "{rule}: {errors:?}"
        );
    }
}

/// HAProxy's own example configurations: every one HAProxy accepts, hapx accepts too (with
/// warnings for what it does not implement) unless it has a rule hapx cannot evaluate (then
/// refused for that alone: hapx does not run without a rule), and each one HAProxy rejects
/// for a keyword it does not know, hapx rejects at the same places.
#[test]
fn haproxys_examples_check_alike() {
    let dir = Path::new("/usr/share/doc/haproxy/examples");
    if !require::path(
        "haproxys_examples_check_alike",
        dir,
        "HAProxy's example configurations",
    ) || !require::path(
        "haproxys_examples_check_alike",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "too few examples in {}", dir.display());
    let mut compared = 0;
    for file in &files {
        let theirs = check(Path::new(HAPROXY), &[file], &[]);
        let ours = check(&hapx(), &[file], &[]);
        if theirs.0 == 0 {
            let alerts: Vec<&str> = ours
                .2
                .lines()
                .filter(|l| l.starts_with("[ALERT]") && l.contains(" : parsing ["))
                .collect();
            let refused_rules = !alerts.is_empty()
                && alerts
                    .iter()
                    .all(|l| l.ends_with("hapx refuses to run without this rule."));
            assert!(
                ours.0 == 0 || (ours.0 == 1 && refused_rules),
                "{} is valid for HAProxy:\n{}",
                file.display(),
                ours.2
            );
            compared += 1;
        } else if theirs.2.contains("unknown keyword") {
            assert_eq!(ours.0, 1, "{}:\n{}", file.display(), ours.2);
            let unknown = |s: &str| -> Vec<String> {
                s.lines()
                    .filter(|l| l.contains("unknown keyword"))
                    .filter_map(|l| {
                        l.split("parsing [")
                            .nth(1)?
                            .split(']')
                            .next()
                            .map(str::to_string)
                    })
                    .collect()
            };
            assert_eq!(unknown(&ours.2), unknown(&theirs.2), "{}", file.display());
            compared += 1;
        }
    }
    assert!(compared >= 3, "only {compared} examples compared");
}

/// The proxies named in "missing timeouts for KIND 'NAME'" warnings.
fn missing_timeouts(stderr: &str) -> Vec<String> {
    let mut names: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.split("missing timeouts for ").nth(1))
        .filter_map(|rest| rest.split('.').next().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// "A defaults section resets all settings": a second anonymous `defaults` does not inherit the
/// first one's timeouts (HAProxy then warns about missing timeouts), while `defaults NAME from
/// OTHER` does.
#[test]
fn a_second_defaults_section_starts_afresh() {
    let test = "a_second_defaults_section_starts_afresh";
    let dir = temp_dir("cfg-two-defaults");
    let file = dir.join("two.cfg");
    std::fs::write(
        &file,
        "defaults base\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  \
         timeout connect 1s\n\
         defaults\n  option dontlognull\n\
         frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:2\n\
         defaults inherited from base\n  option dontlognull\n\
         listen l\n  bind 127.0.0.1:3\n  server s 127.0.0.1:2\n",
    )
    .unwrap();
    let ours = check(&hapx(), &[&file], &[]);
    assert_eq!(ours.0, 0, "{}", ours.2);
    assert_eq!(
        missing_timeouts(&ours.2),
        ["backend 'b'", "frontend 'f'"],
        "{}",
        ours.2
    );
    let (config, _) = hapx_proxy::config::load(std::slice::from_ref(&file));
    let l = config.proxy("l").unwrap();
    assert!(l.timeouts.client.is_some() && l.options.dontlognull);
    assert!(config.proxy("f").unwrap().timeouts.client.is_none());
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = check(Path::new(HAPROXY), &[&file], &[]);
        assert_eq!(theirs.0, 0, "{}", theirs.2);
        assert_eq!(
            missing_timeouts(&ours.2),
            missing_timeouts(&theirs.2),
            "ours:\n{}\nHAProxy:\n{}",
            ours.2,
            theirs.2
        );
    }
}

/// HAProxy's own list of the configuration keywords it registered (`haproxy -dKcfg`): every
/// one is known to hapx, implemented or warned about, never an "unknown keyword" error.
#[test]
fn every_keyword_haproxy_registers_is_known() {
    use hapx_proxy::config::keywords::{Scope, support};
    let test = "every_keyword_haproxy_registers_is_known";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let out = Command::new(HAPROXY)
        .args(["-dKcfg", "-q", "-c", "-f", "/dev/null"])
        .output()
        .expect("running haproxy -dKcfg");
    let dump = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut section = String::new();
    let mut checked = 0;
    let mut unknown = Vec::new();
    for line in dump.lines().filter(|l| !l.starts_with('#')) {
        let Some(entry) = line.strip_prefix('\t') else {
            section = line.trim().to_string();
            if section != "crt-list" {
                assert!(
                    support(Scope::Section, &section).is_some(),
                    "section '{section}'"
                );
            }
            continue;
        };
        let words: Vec<&str> = entry.split_whitespace().collect();
        let (scope, word) = match (section.as_str(), words.as_slice()) {
            ("global", [kw, ..]) => (Scope::Global, *kw),
            ("listen", ["bind", "<addr>", "ssl", kw, ..] | ["bind", "<addr>", kw, ..]) => {
                (Scope::Bind, *kw)
            }
            ("listen", ["server", "<name>", "<addr>", kw, ..]) => (Scope::Server, *kw),
            ("listen", ["option", kw, ..]) => (Scope::Option, *kw),
            // Actions of rule keywords (`http-request set-header`): the rule keyword.
            ("listen", [kw, ..]) => (Scope::Proxy, *kw),
            // Sections hapx skips with one warning, and crt-list file options.
            _ => continue,
        };
        checked += 1;
        if support(scope, word).is_none() {
            unknown.push(format!("{section}: {entry}"));
        }
    }
    assert!(checked > 300, "only {checked} keywords in:\n{dump}");
    assert!(
        unknown.is_empty(),
        "HAProxy keywords hapx does not know:\n{}",
        unknown.join("\n")
    );
}

/// Keywords hapx accepts without a warning and without acting on them, each with the reason
/// that is not a silent drop. A new silent keyword must be added here with its reason, or
/// implemented, or warn (`Support::No`).
#[test]
fn every_silently_accepted_keyword_has_a_reason() {
    use hapx_proxy::config::keywords::{Scope, Support, all};
    const SSL: &str = "SSL settings only act on `ssl` binds and servers, which warn";
    let allowed: &[(Scope, &str, &str)] = &[
        (Scope::Global, "ca-base", SSL),
        (Scope::Global, "crt-base", SSL),
        (Scope::Global, "ssl-default-bind-options", SSL),
        (Scope::Global, "ssl-default-server-ciphers", SSL),
        (Scope::Global, "ssl-default-server-ciphersuites", SSL),
        (Scope::Global, "ssl-default-server-options", SSL),
        (Scope::Global, "ssl-dh-param-file", SSL),
        (Scope::Global, "ssl-server-verify", SSL),
        (Scope::Global, "tune.ssl.default-dh-param", SSL),
        (
            Scope::Bind,
            "name",
            "names a listener in per-listener stats (`option socket-stats`), which warns",
        ),
        (
            Scope::Bind,
            "id",
            "numbers a listener in per-listener stats (`option socket-stats`), which warns",
        ),
    ];
    let silent: Vec<(Scope, &str)> = all()
        .into_iter()
        .filter(|(_, _, s)| *s == Support::Accepted)
        .map(|(scope, name, _)| (scope, name))
        .collect();
    assert!(!silent.is_empty());
    for (scope, name) in &silent {
        assert!(
            allowed.iter().any(|(s, n, _)| s == scope && n == name),
            "{scope:?} keyword '{name}' is accepted silently without a reason in this list"
        );
    }
}

/// Keywords HAProxy 2.6 accepts that hapx once rejected: hapx accepts them too (with a
/// warning naming each line it does not act on), and the values it parses land in the model.
#[test]
fn valid_keywords_are_accepted_like_haproxy() {
    let test = "valid_keywords_are_accepted_like_haproxy";
    let dir = temp_dir("cfg-keywords");
    let file = dir.join("kw.cfg");
    std::fs::write(
        &file,
        "global\n  maxsslconn 100\n  maxsslrate 10\n  maxcomprate 10\n  maxcompcpuusage 50\n  \
         maxzlibmem 10\n  max-spread-checks 1s\n  nogetaddrinfo\n  nokqueue\n  noevports\n  \
         insecure-setuid-wanted\n  set-var proc.x int(1)\n  fd-hard-limit 10000\n  \
         close-spread-time 1s\n  h1-accept-payload-with-any-method\n  no-memory-trimming\n  \
         spread-checks 5\n\
         defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:1 ssl-min-ver TLSv1.2 no-sslv3 ciphersuites X curves Y\n  \
         id 42\n  backlog 77\n  option clitcpka\n  clitcpka-idle 30\n  clitcpka-cnt 4\n  \
         clitcpka-intvl 5s\n  option forwardfor except 10.0.0.0/8 if-none\n  default_backend b\n\
         backend b\n  bind-process 1\n  retry-on all-retryable-errors\n  hash-balance-factor 150\n  \
         balance random(3)\n  option httpchk\n  http-check expect status 200-399\n  \
         option srvtcpka\n  srvtcpka-cnt 2\n  \
         server s1 127.0.0.1:2 id 7 no-ssl no-tfo no-send-proxy-v2\n  server s2 127.0.0.1:3\n",
    )
    .unwrap();
    let ours = check(&hapx(), &[&file], &[]);
    assert_eq!(ours.0, 0, "{}", ours.2);
    assert!(
        ours.2.contains(&format!(
            "[{}:2] : 'maxsslconn' is not implemented",
            file.display()
        )),
        "{}",
        ours.2
    );
    let (config, diags) = hapx_proxy::config::load(std::slice::from_ref(&file));
    assert!(!diags.has_errors());
    assert_eq!(config.global.spread_checks, 5);
    let f = config.proxy("f").unwrap();
    assert_eq!((f.id, f.backlog), (42, Some(77)));
    assert!(f.options.clitcpka && !f.options.srvtcpka);
    assert_eq!(f.clitcpka.idle, Some(std::time::Duration::from_secs(30)));
    assert_eq!(f.clitcpka.count, Some(4));
    let ff = f.options.forwardfor.as_ref().unwrap();
    assert!(ff.if_none && ff.except.unwrap().contains([10, 1, 2, 3].into()));
    let b = config.backend("b").unwrap();
    assert_eq!(b.balance, hapx_proxy::config::model::Balance::Random(3));
    let expects = &b.options.httpchk.as_ref().unwrap().groups[0].expects;
    assert!(
        matches!(
            expects.as_slice(),
            [hapx_proxy::config::model::HttpExpect {
                negate: false,
                kind: hapx_proxy::config::model::HttpExpectKind::Status(ranges),
                ..
            }] if ranges == &[(200, 399)]
        ),
        "{expects:?}"
    );
    assert_eq!(b.srvtcpka.count, Some(2));
    // Servers are numbered as HAProxy numbers them: custom ids kept, the others next free.
    let ids: Vec<usize> = b.servers.iter().map(|s| s.id).collect();
    assert_eq!(ids, [7, 2]);
    // Proxy ids count by position from 1 (from 2 with a `stats socket`, whose CLI proxy
    // takes 1; checked with 2.6.12: here `b` is 2); a custom one is kept.
    assert_eq!(b.id, 2);
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = check(Path::new(HAPROXY), &[&file], &[]);
        assert_eq!(theirs.0, 0, "{}", theirs.2);
    }
}

/// Directives HAProxy 2.6 rejects although it knows them (`clitimeout`, `nbproc`): the same
/// error at the same line; a duplicate custom id is an error too.
#[test]
fn removed_directives_and_duplicate_ids_are_errors_like_haproxy() {
    let test = "removed_directives_and_duplicate_ids_are_errors_like_haproxy";
    let dir = temp_dir("cfg-removed");
    let cases = [
        ("global\n  nbproc 2\n", "nbproc is not supported any more"),
        (
            "defaults\n  clitimeout 5s\n",
            "the 'clitimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout client'.",
        ),
        (
            "backend b\n  server s 127.0.0.1:1 id 3\n  server t 127.0.0.1:2 id 3\n",
            "custom id 3 already used",
        ),
        ("backend b\n  id 0\n", "custom id has to be > 0."),
        (
            "defaults\n  id 5\n",
            "'id' not allowed in 'defaults' section.",
        ),
        (
            "backend b\n  balance random(0)\n",
            "number of draws must be at least 1.",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).unwrap();
        let ours = check(&hapx(), &[&file], &[]);
        assert_eq!(ours.0, 1, "{text}\n{}", ours.2);
        assert!(ours.2.contains(message), "{text}\n{}", ours.2);
        if require::path(test, Path::new(HAPROXY), "HAProxy") {
            let theirs = check(Path::new(HAPROXY), &[&file], &[]);
            assert_eq!(theirs.0, 1, "{text}\n{}", theirs.2);
            assert!(theirs.2.contains(message), "{text}\n{}", theirs.2);
            assert!(
                theirs.1.iter().all(|p| ours.1.contains(p)),
                "{text}\nours:\n{}\nHAProxy:\n{}",
                ours.2,
                theirs.2
            );
        }
    }
}

/// `-c` ends as HAProxy's does: exit 2 and its line when nothing would listen, an "Error(s)
/// found in configuration file" line after each file with errors, and no warning under the
/// global `quiet` unless `-V`.
#[test]
fn check_mode_ends_like_haproxy() {
    let test = "check_mode_ends_like_haproxy";
    let dir = temp_dir("cfg-check-mode");
    let run = |binary: &Path, args: &[&str], files: &[&Path]| {
        let mut cmd = Command::new(binary);
        cmd.args(args);
        for f in files {
            cmd.arg("-f").arg(f);
        }
        let out = cmd.output().expect("running the checker");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let no_listener = dir.join("no-listener.cfg");
    std::fs::write(
        &no_listener,
        "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         backend b\n  server s 127.0.0.1:1\n",
    )
    .unwrap();
    let bad1 = dir.join("bad1.cfg");
    let bad2 = dir.join("bad2.cfg");
    let good = dir.join("good.cfg");
    std::fs::write(&bad1, "global\n  foo\n").unwrap();
    std::fs::write(&bad2, "global\n  bar\n").unwrap();
    std::fs::write(&good, "global\n  maxconn 10\n").unwrap();
    let quiet = dir.join("quiet.cfg");
    std::fs::write(
        &quiet,
        "global\n  quiet\n  set-dumpable\ndefaults\n  mode tcp\n  timeout client 1s\n  \
         timeout server 1s\n  timeout connect 1s\nlisten l\n  bind 127.0.0.1:1\n  \
         server s 127.0.0.1:2\n",
    )
    .unwrap();
    let binaries = if require::path(test, Path::new(HAPROXY), "HAProxy") {
        vec![hapx(), PathBuf::from(HAPROXY)]
    } else {
        vec![hapx()]
    };
    for binary in &binaries {
        let (code, stdout, stderr) = run(binary, &["-c"], &[&no_listener]);
        assert_eq!(code, 2, "{}: {stdout}{stderr}", binary.display());
        assert!(
            stdout.contains(
                "Configuration file has no error but will not start (no listener) => exit(2)."
            ),
            "{}: {stdout}",
            binary.display()
        );
        let (code, _, stderr) = run(binary, &["-c"], &[&bad1, &good, &bad2]);
        assert_eq!(code, 1, "{}: {stderr}", binary.display());
        let errors: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.split("Error(s) found in configuration file : ").nth(1))
            .collect();
        assert_eq!(
            errors,
            [bad1.to_str().unwrap(), bad2.to_str().unwrap()],
            "{}: {stderr}",
            binary.display()
        );
        let (code, stdout, stderr) = run(binary, &["-c"], &[&quiet]);
        assert_eq!(code, 0, "{}: {stderr}", binary.display());
        assert!(
            stdout.is_empty() && stderr.is_empty(),
            "{}: {stdout}{stderr}",
            binary.display()
        );
    }
    let (code, _, stderr) = run(&hapx(), &["-c", "-V"], &[&quiet]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("'set-dumpable' is not implemented"),
        "{stderr}"
    );
}

/// Values `-c` must judge as HAProxy does, because a value taken but unusable would panic or
/// wrap later (at start or per connection): timers beyond 2^31-1 ms are "timer overflow"
/// errors naming the argument and keyword; any `maxconn` is taken (hapx then caps or
/// saturates what it derives from it).
#[test]
fn value_limits_are_haproxys() {
    let test = "value_limits_are_haproxys";
    let dir = temp_dir("cfg-value-limits");
    let overflow = |arg: &str, kw: &str| {
        format!(
            "timer overflow in argument '{arg}' to '{kw}' (maximum value is 2147483647 ms or ~24.8 days)"
        )
    };
    let base = |global: &str, frontend: &str| {
        format!(
            "global\n{global}defaults\n  mode http\n  timeout connect 1s\n  timeout server 1s\n  timeout client 1s\n\
             frontend fe\n  bind 127.0.0.1:8080\n{frontend}  default_backend be\nbackend be\n  server s 127.0.0.1:8081\n"
        )
    };
    let cases = [
        (
            base("", "  timeout client 999999999999999999d\n"),
            Some(overflow("999999999999999999d", "timeout client")),
        ),
        (
            base("", "  timeout client 18446744073709551615s\n"),
            Some(overflow("18446744073709551615s", "timeout client")),
        ),
        (
            base("", "  timeout client 99999999999999999999\n"),
            Some(overflow("99999999999999999999", "timeout client")),
        ),
        (
            base("", "  timeout http-request 25d\n"),
            Some(overflow("25d", "timeout http-request")),
        ),
        (
            base("", "  timeout client 2147483648\n"),
            Some(overflow("2147483648", "timeout client")),
        ),
        (
            base("  hard-stop-after 25d\n", ""),
            Some(overflow("25d", "hard-stop-after")),
        ),
        (base("", "  timeout client 2147483647\n"), None),
        (base("", "  timeout client 24d\n"), None),
        (base("  maxconn 9223372036854775807\n", ""), None),
        (base("", "  maxconn 2305843009213693952\n"), None),
    ];
    let with_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (i, (text, message)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).unwrap();
        let mut binaries = vec![hapx()];
        if with_haproxy {
            binaries.push(PathBuf::from(HAPROXY));
        }
        for binary in binaries {
            let (code, places, stderr) = check(&binary, &[&file], &[]);
            match message {
                Some(message) => {
                    assert_eq!(code, 1, "{binary:?}\n{text}\n{stderr}");
                    assert!(stderr.contains(message), "{binary:?}\n{text}\n{stderr}");
                    // The place is the line holding the refused argument.
                    let arg = message.split('\'').nth(1).unwrap();
                    let line = text.lines().position(|l| l.ends_with(arg)).unwrap() + 1;
                    let place = format!("{}:{line}", file.display());
                    assert!(places.contains(&place), "{binary:?} {place}\n{stderr}");
                }
                None => assert_eq!(code, 0, "{binary:?}\n{text}\n{stderr}"),
            }
        }
    }
}

/// `sni` takes a sample expression: a bare word is a fetch name, so `sni api.example` is
/// HAProxy's "unknown fetch method"; a real fetch is valid for HAProxy but hapx can only send
/// a constant name, and says so instead of sending the fetch's name as the server name.
#[test]
fn sni_is_an_expression_like_haproxys() {
    let test = "sni_is_an_expression_like_haproxys";
    let dir = temp_dir("cfg-sni");
    let while_parsing = "error detected while parsing sni expression : ";
    let only_constant = "hapx supports only a constant name (str(...)) in 'sni'";
    // (expression, HAProxy's error, hapx's error when HAProxy has none).
    let cases = [
        ("str(api.example)", None, None),
        (
            "api.example",
            Some(format!("{while_parsing}unknown fetch method 'api.example'")),
            None,
        ),
        (
            "nosuch(x)",
            Some(format!("{while_parsing}unknown fetch method 'nosuch'")),
            None,
        ),
        (
            "str(api.example",
            Some(format!("{while_parsing}fetch method 'str' : expected ')'")),
            None,
        ),
        ("ssl_fc_sni", None, Some(only_constant)),
        ("req.hdr(host)", None, Some(only_constant)),
        ("str(a),lower", None, Some(only_constant)),
    ];
    let with_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (i, (expr, haproxy_error, hapx_error)) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode tcp\n  timeout connect 1s\n  timeout server 1s\n  timeout client 1s\n\
             listen l\n  bind 127.0.0.1:8080\n  server s 127.0.0.1:8443 ssl verify none sni {expr}\n"
        );
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, &text).unwrap();
        let place = format!("{}:8", file.display());
        let mut runs = vec![(
            hapx(),
            haproxy_error.clone().or(hapx_error.map(String::from)),
        )];
        if with_haproxy {
            runs.push((PathBuf::from(HAPROXY), haproxy_error.clone()));
        }
        for (binary, error) in runs {
            let (code, places, stderr) = check(&binary, &[&file], &[]);
            match error {
                Some(error) => {
                    assert_eq!(code, 1, "{binary:?} sni {expr}\n{stderr}");
                    assert!(stderr.contains(&error), "{binary:?} sni {expr}\n{stderr}");
                    assert!(places.contains(&place), "{binary:?} {place}\n{stderr}");
                }
                None => assert_eq!(code, 0, "{binary:?} sni {expr}\n{stderr}"),
            }
        }
    }
}
