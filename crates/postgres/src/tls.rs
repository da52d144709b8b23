//! TLS for the queue's connections: libpq's `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey`, on rustls with the ring provider, and what a
//! failed handshake means.
//!
//! The driver's own `sslmode` knows `disable`, `prefer` and `require`
//! only; the modes that check the server's certificate are the verifier
//! given to rustls here. `prefer` and `require` check nothing about the
//! certificate (as libpq), only that the server holds its key: the
//! handshake's signature is still verified.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`: whether to encrypt, and what to check of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, plain text when it does not; the
    /// certificate is not checked. libpq's default.
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS, with a certificate signed by a trusted authority (whatever
    /// host it names).
    VerifyCa,
    /// TLS, with a certificate signed by a trusted authority for the host
    /// connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode named `s`, as libpq spells it.
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The mode's name, as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The driver's mode: whether it asks for TLS, and insists on it.
    pub(crate) fn driver(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS parameters as given (in the URL or the environment).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TlsParams {
    pub(crate) mode: Option<String>,
    pub(crate) rootcert: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
}

/// The TLS settings of a queue's connections.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    pub(crate) connector: MakeRustlsConnect,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
    }
}

/// Where libpq looks for a file it is not told of: `~/.postgresql/NAME`.
fn default_file(home: Option<&Path>, name: &str) -> Option<PathBuf> {
    let p = home?.join(".postgresql").join(name);
    p.is_file().then_some(p)
}

impl Tls {
    /// Reads the parameters and the files they name. `home` is the user's
    /// home directory, where libpq's default files are.
    pub(crate) fn from_params(p: &TlsParams, home: Option<&Path>) -> Result<Tls, String> {
        let system = p.rootcert.as_deref() == Some("system");
        let mode = match p.mode.as_deref() {
            None if system => SslMode::VerifyFull,
            None => SslMode::Prefer,
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                format!(
                    "`sslmode={m}`: expected disable, prefer, require, verify-ca or verify-full"
                )
            })?,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(format!(
                "`sslmode={mode}` with `sslrootcert=system`: the system's roots vouch for \
                 any host a public authority signed for, so only sslmode=verify-full \
                 (the default with sslrootcert=system) makes them mean something"
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // An explicit root file under `require` checks the chain, as libpq does.
        let mode = if mode == SslMode::Require && p.rootcert.is_some() {
            SslMode::VerifyCa
        } else {
            mode
        };
        let verifier: Arc<dyn ServerCertVerifier> = if mode.verifies() {
            let roots = roots(p.rootcert.as_deref(), home, mode)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        } else {
            Arc::new(AnyCertificate(provider.clone()))
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cert = p
            .cert
            .as_deref()
            .map(PathBuf::from)
            .or_else(|| default_file(home, "postgresql.crt"));
        let config = match (cert, mode) {
            (_, SslMode::Disable) | (None, _) => builder.with_no_client_auth(),
            (Some(cert), _) => {
                let key = p
                    .key
                    .as_deref()
                    .map(PathBuf::from)
                    .or_else(|| home.map(|h| h.join(".postgresql").join("postgresql.key")))
                    .ok_or_else(|| {
                        format!("sslcert={} needs its key: set sslkey=FILE", cert.display())
                    })?;
                let (certs, key) = client_identity(&cert, &key)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("sslcert and sslkey: {e}"))?
            }
        };
        Ok(Tls {
            mode,
            connector: MakeRustlsConnect::new(config),
        })
    }
}

/// The authorities to trust: `sslrootcert`'s file, the system's store, or
/// libpq's default file.
fn roots(
    rootcert: Option<&str>,
    home: Option<&Path>,
    mode: SslMode,
) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if rootcert == Some("system") {
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            // A root the system holds that webpki cannot read is skipped.
            let _ = store.add(c);
        }
        if store.is_empty() {
            return Err(format!(
                "sslrootcert=system: no certificate authorities found in the system's store \
                 ({} errors); install the `ca-certificates` package or name a file",
                found.errors.len()
            ));
        }
        return Ok(store);
    }
    let path = match rootcert {
        Some(f) => PathBuf::from(f),
        None => default_file(home, "root.crt").ok_or_else(|| {
            format!(
                "sslmode={mode} checks the server's certificate, but no authority to trust is \
                 named: set sslrootcert=FILE (the authority's certificate, in PEM), or \
                 sslrootcert=system for the system's roots (~/.postgresql/root.crt does not exist)"
            )
        })?,
    };
    let certs = read_certs(&path, "sslrootcert")?;
    for c in certs {
        store
            .add(c)
            .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    }
    Ok(store)
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no certificate in the file (expected PEM, -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client's certificate chain and key, the key's file checked as
/// libpq checks it (no access for others than its owner, or, owned by
/// root, read access for its group).
fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    use std::os::unix::fs::MetadataExt;
    let certs = read_certs(cert, "sslcert")?;
    let meta = std::fs::metadata(key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
    let mode = meta.mode() & 0o777;
    let ok = if meta.uid() == 0 {
        mode & 0o037 == 0
    } else {
        mode & 0o077 == 0
    };
    if !ok {
        return Err(format!(
            "sslkey {}: the private key's file has group or world access (mode {mode:o}); \
             make it u=rw (0600), or u=rw,g=r (0640) if root owns it",
            key.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("sslkey {}: not a PEM private key: {e}", key.display()))?;
    Ok((certs, key_der))
}

/// `prefer` and `require`: any certificate, but the handshake's signature
/// must be made with its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain up to a trusted authority (its dates and
/// signatures), whatever host the certificate names.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked after the chain: a name error means the
        // chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What a failed connection's TLS says, in words naming the check that
/// failed; `None` when the failure is not of TLS.
pub(crate) fn explain(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(t) = tls {
            return Some(explain_rustls(t));
        }
        if err.to_string() == "server does not support TLS" {
            return Some(
                "the server does not offer TLS, and the sslmode (require, verify-ca or \
                 verify-full) insists on it: turn `ssl` on in the server's configuration, \
                 or connect with sslmode=prefer or sslmode=disable"
                    .to_string(),
            );
        }
        cur = err.source();
    }
    None
}

fn server_name(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => format!("{n:?}"),
    }
}

/// A name as rustls lists a certificate's names (`DnsName("db")`,
/// `IpAddress(10.0.0.5)`), without the wrapping.
fn presented_name(n: &str) -> &str {
    n.strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| {
            n.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
        })
        .unwrap_or(n)
}

fn explain_rustls(e: &rustls::Error) -> String {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "unknown CA: the server's certificate is not signed by a \
                 certificate authority that sslrootcert trusts"
                .to_string(),
            C::NotValidForName => "host name mismatch: the server's certificate is not for \
                 the host connected to (sslmode=verify-full checks the name, verify-ca does not)"
                .to_string(),
            C::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "host name mismatch: the server's certificate is for {}, not for `{}` \
                 (sslmode=verify-full checks the name, verify-ca does not)",
                if presented.is_empty() {
                    "no host name".to_string()
                } else {
                    presented
                        .iter()
                        .map(|n| presented_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                server_name(expected)
            ),
            C::Expired | C::ExpiredContext { .. } => {
                "the server's certificate has expired".to_string()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet".to_string()
            }
            other => format!("the server's certificate was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => format!(
            "the server ended the TLS handshake ({alert:?}); if it asks for a client \
             certificate, give one with sslcert and sslkey"
        ),
        other => format!("TLS failed: {other}"),
    }
}
