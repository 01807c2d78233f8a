//! The TLS fetches of mutual-TLS configurations (`ssl_c_s_dn`, `ssl_c_serial`,
//! `ssl_fc_has_crt` ...): a `bind ... ssl verify optional` listener answers each request with
//! every fetch's value (`http-request return ... lf-string`), through hapx-proxy and HAProxy
//! 2.6 running the same configuration side by side; clients with and without a certificate
//! compare the answers byte for byte. The fetches' argument errors are compared too.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{check_alike, side_by_side};
use hapx_tests::proxy_tls::{ClientHello, TlsClient, site_certificate};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SerialNumber, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// What HAProxy did (when it ran) is what hapx-proxy did.
fn same_as_haproxy<T: std::fmt::Debug + PartialEq>(ours: &T, theirs: Option<T>) {
    if let Some(theirs) = theirs {
        assert_eq!(
            ours, &theirs,
            "hapx-proxy (left) and HAProxy (right) differ"
        );
    }
}

/// A CA with a distinguished name of several attributes, and a client certificate it
/// signed whose subject has a repeated attribute and characters RFC 2253 escapes; written as
/// `ca.pem` and `client.pem` (certificate, the CA's as its chain, and key) in `dir`.
fn mutual_tls_pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.distinguished_name
        .push(DnType::OrganizationName, "Example, Inc.");
    ca.distinguished_name
        .push(DnType::CommonName, "hapx test CA");
    let ca = ca.self_signed(&ca_key).expect("a self-signed CA");

    let key = KeyPair::generate().expect("a client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client.distinguished_name.push(DnType::CountryName, "FR");
    client
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "ops");
    // rcgen keeps one value per type: the second OU under its OID. (It writes the CN
    // first.)
    client
        .distinguished_name
        .push(DnType::CustomDnType(vec![2, 5, 4, 11]), "a+b");
    client
        .distinguished_name
        .push(DnType::CommonName, "hapx client");
    client.serial_number = Some(SerialNumber::from(vec![0x9a, 0x01, 0x42]));
    client.not_before = date_time_ymd(2024, 2, 29);
    client.not_after = date_time_ymd(2049, 12, 31);
    let client = client
        .signed_by(&key, &ca, &ca_key)
        .expect("signing the client certificate");

    let (ca_file, client_file) = (dir.join("ca.pem"), dir.join("client.pem"));
    std::fs::write(&ca_file, ca.pem()).expect("writing the CA");
    std::fs::write(
        &client_file,
        format!("{}{}{}", client.pem(), ca.pem(), key.serialize_pem()),
    )
    .expect("writing the client certificate");
    (ca_file, client_file)
}

/// Every fetch the answer shows, one a line.
const FETCHES: &[&str] = &[
    "ssl_c_s_dn",
    "ssl_c_s_dn(cn)",
    "ssl_c_s_dn(OU,2)",
    "ssl_c_s_dn(ou,-1)",
    "ssl_c_s_dn(ou,3)",
    "ssl_c_s_dn(,1,rfc2253)",
    "ssl_c_i_dn",
    "ssl_c_i_dn(o)",
    "ssl_c_i_dn(,1,rfc2253)",
    "ssl_c_serial,hex",
    "ssl_c_sha1,hex",
    "ssl_c_der,hex",
    "ssl_c_chain_der,hex",
    "ssl_c_notbefore",
    "ssl_c_notafter",
    "ssl_c_version",
    "ssl_c_sig_alg",
    "ssl_c_key_alg",
    "ssl_c_used",
    "ssl_c_verify",
    "ssl_c_err",
    "ssl_c_ca_err",
    "ssl_c_ca_err_depth",
    "ssl_fc_has_crt",
    "ssl_fc_has_sni",
    "ssl_fc_is_resumed",
    "ssl_fc_use_keysize",
    "ssl_fc_alg_keysize",
];

/// `bytes` as the `hex` converter writes them.
fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The answer's body over TLS with `hello`, or why there was none.
fn fetched(front: SocketAddr, hello: &ClientHello<'_>) -> Result<String, String> {
    let mut client = TlsClient::connect(front, hello)?;
    let response =
        client.send_and_read(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok(body.to_string())
}

#[test]
fn client_certificate_fetches_match_haproxy() {
    let test = "tls_client_certificate_fetches";
    let dir = temp_dir(test);
    let (ca, client) = mutual_tls_pki(&dir);
    let site = dir.join("site.pem");
    site_certificate(&site, &["api.example"], false);
    let front = free_port();
    let body: String = FETCHES.iter().map(|f| format!("{f}=%[{f}]\\n")).collect();
    let config = format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt {} ca-file {} verify optional\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"{body}\"\n",
        site.display(),
        ca.display(),
    );
    let (ours, theirs) = side_by_side(test, &config, local(front), |front| {
        let with = ClientHello {
            sni: Some("api.example"),
            certificate: Some(&client),
            ..ClientHello::default()
        };
        [
            fetched(front, &with),
            fetched(front, &ClientHello::default()),
        ]
    });
    let with = ours[0].as_ref().expect("an answer with a certificate");
    let ca_der = rustls::pki_types::CertificateDer::from_pem_file(&ca).expect("the CA's DER");
    let chain = format!("ssl_c_chain_der,hex={}", hex_upper(&ca_der));
    assert!(with.lines().any(|l| l == chain), "{chain:?} in {with}");
    for line in [
        "ssl_c_s_dn=/CN=hapx client/C=FR/OU=ops/OU=a+b",
        "ssl_c_s_dn(cn)=hapx client",
        "ssl_c_s_dn(OU,2)=a+b",
        "ssl_c_s_dn(ou,-1)=a+b",
        "ssl_c_s_dn(,1,rfc2253)=OU=a\\+b,OU=ops,C=FR,CN=hapx client",
        "ssl_c_i_dn(o)=Example, Inc.",
        "ssl_c_serial,hex=9A0142",
        "ssl_c_notbefore=240229000000Z",
        "ssl_c_version=3",
        "ssl_fc_has_crt=1",
        "ssl_fc_has_sni=1",
    ] {
        assert!(with.lines().any(|l| l == line), "{line:?} in {with}");
    }
    let without = ours[1].as_ref().expect("an answer without a certificate");
    for line in ["ssl_c_s_dn=", "ssl_fc_has_crt=0", "ssl_fc_has_sni=0"] {
        assert!(without.lines().any(|l| l == line), "{line:?} in {without}");
    }
    same_as_haproxy(&ours, theirs);
}

#[test]
fn dn_fetch_arguments_are_checked_like_haproxy() {
    let test = "tls_dn_fetch_arguments";
    // Not the test's own directory, which each check starts afresh.
    let dir = temp_dir(&format!("{test}-certs"));
    let site = dir.join("site.pem");
    site_certificate(&site, &["api.example"], false);
    for (fetch, valid) in [
        ("ssl_c_s_dn(cn,-2)", true),
        ("ssl_c_i_dn(cn,1,rfc2253)", true),
        ("ssl_c_s_dn(cn,x)", false),
        ("ssl_c_s_dn(cn,1,ldap)", false),
        ("ssl_c_serial(1)", false),
    ] {
        let config = format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:{} ssl crt {}\n\
             \x20 http-request set-var(txn.a) {fetch}\n  default_backend be\n\
             backend be\n  server s 127.0.0.1:1\n",
            free_port(),
            site.display(),
        );
        let (code, messages) = check_alike(test, &config);
        assert_eq!(code == 0, valid, "{fetch}: {messages:?}");
    }
}
