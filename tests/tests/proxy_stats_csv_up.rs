//! The stats page's CSV export beside HAProxy 2.6: it carries the page's `refresh` header
//! (not with `;norefresh`), and with `;up` leaves out the servers down or in maintenance and
//! follows each backend's status with its servers up out of all (`UP (1/3)`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, http_raw, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::side_by_side;

/// The answer's `refresh` header (or none) and its rows' proxy, name and status.
fn export(stats: SocketAddr, path: &str) -> (Option<String>, Vec<String>) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let answer = http_raw(stats, request.as_bytes(), Duration::from_secs(3));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let refresh = (head.lines()).find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("refresh: ")
            .map(str::to_string)
    });
    let rows = (body.lines())
        .filter(|l| l.contains(','))
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            format!(
                "{},{},{}",
                fields[0],
                fields[1],
                fields.get(17).unwrap_or(&"")
            )
        })
        .collect();
    (refresh, rows)
}

#[test]
fn the_csv_export_takes_up_and_refresh_as_haproxys() {
    let test = "the_csv_export_takes_up_and_refresh_as_haproxys";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let stats = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    // m1 checks the stats page (UP), m2 a port nothing listens on (DOWN), m3 is disabled.
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         listen stats\n  bind {stats}\n  stats enable\n  stats uri /\n  stats refresh 10s\n\
         backend kb\n  server m1 {stats} check inter 200ms\n  server m2 127.0.0.1:{} check inter 200ms fall 1\n  server m3 {stats} disabled\n",
        sock.display(),
        free_port()
    );
    let (ours, theirs) = side_by_side(test, &config, stats, |stats| {
        let settled = wait_until(Duration::from_secs(5), || {
            let csv = cli(&sock, "show stat");
            let status = |sv: &str| stat_row(&csv, "kb", sv).map(|r| r["status"].clone());
            status("m1").as_deref() == Some("UP") && status("m2").as_deref() == Some("DOWN")
        });
        (
            settled,
            export(stats, "/;csv;up"),
            export(stats, "/;csv"),
            export(stats, "/;csv;norefresh").0,
        )
    });
    let (settled, up, all, norefresh) = &ours;
    assert!(settled);
    assert_eq!(up.0.as_deref(), Some("10"));
    assert!(up.1.contains(&"kb,BACKEND,UP (1/3)".to_string()), "{up:?}");
    assert!(!up.1.iter().any(|r| r.starts_with("kb,m2")), "{up:?}");
    assert!(all.1.contains(&"kb,m3,MAINT".to_string()), "{all:?}");
    assert_eq!(norefresh, &None);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
