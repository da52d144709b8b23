//! TLS and credentials against real servers: a cluster of the test's own
//! with `ssl = on` and a certificate authority made here, password
//! authentication (scram-sha-256) over TLS only, and client certificates;
//! and the shared server, which has no TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use runyard_postgres::testing::OwnServer;
use runyard_postgres::{PgOptions, PgQueue, SslMode};
use runyard_queue::{QueueErrorKind, SystemClock};

const PASSWORD: &str = "pw-3f9c1d-never-shown";

/// A certificate authority of the test's own.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate signed by `ca` for `names` (host names or IP addresses)
/// and common name `cn`: the certificate's PEM and its key's.
fn signed(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str], cn: &str) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// An environment of the given variables only (none of the process's).
fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn connect(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<postgres::Client, String> {
    let o = PgOptions::from_url_and_env(url, env).map_err(|e| e.to_string())?;
    o.connect_client().map_err(|e| e.to_string())
}

fn uses_tls(c: &mut postgres::Client) -> bool {
    c.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn tls_modes_certificates_and_passwords_against_a_tls_only_server() {
    let ca = authority("runyard test CA");
    // The server's certificate names 127.0.0.1 only, not `localhost`.
    let (server_crt, server_key) = signed(&ca, &["127.0.0.1"], "runyard test server");
    let server = OwnServer::start(
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
         ssl_ca_file = 'root.crt'\npassword_encryption = 'scram-sha-256'",
        "hostssl all certuser 127.0.0.1/32 cert\n\
         hostssl all all 127.0.0.1/32 scram-sha-256\n\
         hostnossl all all 0.0.0.0/0 reject",
        &[
            ("server.crt", server_crt.as_bytes()),
            ("server.key", server_key.as_bytes()),
            ("root.crt", ca.pem().as_bytes()),
        ],
    );
    let mut admin = server.admin("postgres");
    admin
        .batch_execute(&format!(
            "CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'; CREATE ROLE certuser LOGIN"
        ))
        .unwrap();
    admin
        .batch_execute("CREATE DATABASE appdb OWNER app")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let other_ca_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, authority("someone else").pem()).unwrap();
    // The client's certificate, by the same authority: its common name is the user.
    let (client_pem, client_key_pem) = signed(&ca, &[], "certuser");
    let client_crt = dir.path().join("client.crt");
    let client_key = dir.path().join("client.key");
    std::fs::write(&client_crt, client_pem).unwrap();
    write_private(&client_key, &client_key_pem);
    let port = server.port();
    let ca = ca_file.display();
    let none = env_of(&[]);
    let with_password = env_of(&[("PGPASSWORD", PASSWORD.to_string())]);
    let at = |host: &str, query: &str| {
        format!("postgres://app@{host}:{port}/appdb?hostaddr=127.0.0.1&{query}")
    };
    let no_password = |r: &Result<postgres::Client, String>| {
        if let Err(e) = r {
            assert!(!e.contains(PASSWORD), "{e}");
        }
    };

    // require: encrypted, the certificate not checked (no root given).
    let mut c = connect(&at("localhost", "sslmode=require"), &with_password).unwrap();
    assert!(uses_tls(&mut c));
    // prefer (the default) takes the TLS the server offers.
    let mut c = connect(&at("localhost", ""), &with_password).unwrap();
    assert!(uses_tls(&mut c));
    // verify-ca checks the chain, not the name.
    let r = connect(
        &at("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        &with_password,
    );
    assert!(uses_tls(&mut r.unwrap()));
    // verify-full checks both: right name, wrong name, unknown CA.
    let mut c = connect(
        &at(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &with_password,
    )
    .unwrap();
    assert!(uses_tls(&mut c));
    let r = connect(
        &at(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &with_password,
    );
    no_password(&r);
    let e = r
        .err()
        .expect("a certificate for 127.0.0.1 is not one for localhost");
    assert!(e.contains("host name mismatch"), "{e}");
    assert!(
        e.contains("certificate is for 127.0.0.1, not for `localhost`"),
        "{e}"
    );
    let r = connect(
        &at(
            "127.0.0.1",
            &format!(
                "sslmode=verify-full&sslrootcert={}",
                other_ca_file.display()
            ),
        ),
        &with_password,
    );
    no_password(&r);
    let e = r.err().expect("a certificate of another authority");
    assert!(e.contains("unknown CA"), "{e}");
    // The same through the environment.
    let env = env_of(&[
        ("PGPASSWORD", PASSWORD.to_string()),
        ("PGSSLMODE", "verify-full".to_string()),
        ("PGSSLROOTCERT", ca_file.display().to_string()),
    ]);
    let e = connect(&at("localhost", ""), &env).err().unwrap();
    assert!(e.contains("host name mismatch"), "{e}");

    // A wrong password is refused by the server, and not said.
    let r = connect(
        &at("127.0.0.1", "sslmode=require"),
        &env_of(&[("PGPASSWORD", format!("{PASSWORD}-wrong"))]),
    );
    let e = r.err().expect("a wrong password");
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    // No password at all.
    assert!(connect(&at("127.0.0.1", "sslmode=require"), &none).is_err());

    // The password file, for the host and port connected to.
    let pgpass = dir.path().join("pgpass");
    write_private(
        &pgpass,
        &format!("otherhost:{port}:*:app:nope\n127.0.0.1:{port}:appdb:app:{PASSWORD}\n"),
    );
    let env = env_of(&[("PGPASSFILE", pgpass.display().to_string())]);
    let url = format!(
        "postgres://app@127.0.0.1:{port}/appdb?sslmode=verify-full&sslrootcert={ca}&schema=tls_q"
    );
    let mut c = connect(&url, &env).unwrap();
    assert!(uses_tls(&mut c));
    // A queue opens over it (the schema created through TLS, with the
    // password from the file).
    let opts = PgOptions::from_url_and_env(&url, &env).unwrap();
    assert_eq!(opts.ssl_mode(), SslMode::VerifyFull);
    let q = PgQueue::open(opts, Arc::new(SystemClock)).unwrap();
    drop(q);
    // A password file others may read is ignored (libpq warns and goes on
    // without it).
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = connect(&url, &env).err().expect("the file is ignored");
    assert!(!e.contains(PASSWORD), "{e}");
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A second host that refuses is passed over for the one that takes it
    // (multi-host URL, `passfile=` naming the file).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let url = format!(
        "postgres://app@127.0.0.1:{dead_port},127.0.0.1:{port}/appdb?sslmode=require\
         &target_session_attrs=read-write&passfile={}",
        pgpass.display()
    );
    let mut c = connect(&url, &none).unwrap();
    assert!(uses_tls(&mut c));
    // A standby first (a server that takes no writes, without TLS): passed
    // over with target_session_attrs=read-write, as after a failover;
    // taken without it.
    let standby = OwnServer::start("", "host all all 127.0.0.1/32 trust", &[]);
    let mut s = standby.admin("postgres");
    s.batch_execute("CREATE ROLE app LOGIN").unwrap();
    s.batch_execute("CREATE DATABASE appdb OWNER app").unwrap();
    s.batch_execute("ALTER DATABASE appdb SET default_transaction_read_only = on")
        .unwrap();
    let both = |attrs: &str| {
        format!(
            "postgres://app@127.0.0.1:{},127.0.0.1:{port}/appdb?passfile={}{attrs}",
            standby.port(),
            pgpass.display()
        )
    };
    let mut c = connect(&both("&target_session_attrs=read-write"), &none).unwrap();
    assert!(uses_tls(&mut c), "the writable server, with TLS");
    let mut c = connect(&both(""), &none).unwrap();
    assert!(!uses_tls(&mut c), "the first server, the standby");
    drop(standby);

    // A client certificate (pg_hba `cert`: its common name is the user).
    let cert_url = |extra: &str| {
        format!(
            "postgres://certuser@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={ca}{extra}"
        )
    };
    let mut c = connect(
        &cert_url(&format!(
            "&sslcert={}&sslkey={}",
            client_crt.display(),
            client_key.display()
        )),
        &none,
    )
    .unwrap();
    assert!(uses_tls(&mut c));
    let e = connect(&cert_url(""), &none)
        .err()
        .expect("no client certificate");
    assert!(e.contains("certificate"), "{e}");
    // A key others may read is refused before connecting, as libpq does.
    std::fs::set_permissions(&client_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = PgOptions::from_url_and_env(
        &cert_url(&format!(
            "&sslcert={}&sslkey={}",
            client_crt.display(),
            client_key.display()
        )),
        &none,
    )
    .unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::InvalidInput);
    assert!(e.to_string().contains("group or world access"), "{e}");
}

#[test]
fn require_refuses_a_server_without_tls_and_prefer_falls_back() {
    let server = runyard_postgres::testing::server();
    let plain = server.url();
    let sep = if plain.contains('?') { '&' } else { '?' };
    let none = env_of(&[]);
    let e = connect(&format!("{plain}{sep}sslmode=require"), &none)
        .err()
        .expect("the shared server has no TLS");
    assert!(e.contains("the server does not offer TLS"), "{e}");
    let mut c = connect(&format!("{plain}{sep}sslmode=prefer"), &none).unwrap();
    assert!(!uses_tls(&mut c));
    let mut c = connect(&format!("{plain}{sep}sslmode=disable"), &none).unwrap();
    assert!(!uses_tls(&mut c));
}
