//! What a PostgreSQL store URL says beyond what `tokio-postgres` reads: `sslmode` with libpq's
//! five values (the client knows three), `sslrootcert`, and the pool's size; and the rustls
//! configuration each `sslmode` asks for.
//!
//! | `sslmode`      | encrypted               | certificate checked                           |
//! |----------------|-------------------------|-----------------------------------------------|
//! | `disable`      | no                      | -                                             |
//! | `prefer` (default) | if the server offers TLS | no                                       |
//! | `require`      | yes                     | no: any certificate is accepted               |
//! | `verify-ca`    | yes                     | chain to `sslrootcert`                        |
//! | `verify-full`  | yes                     | chain to `sslrootcert`, and the host name     |

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::durable::redact::redact;
use crate::durable::store::StoreError;

/// How the connection is protected: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A PostgreSQL store URL taken apart.
#[derive(Debug)]
pub(crate) struct UrlParts {
    /// The URL without the parameters read here (the client refuses them), for `tokio-postgres`.
    pub client_url: String,
    pub ssl: SslMode,
    pub root_cert: Option<PathBuf>,
    pub pool_max_size: Option<usize>,
}

/// Takes out of `url` the parameters the client does not know. The query is found as the
/// client finds it: after the first `@` (if any), at the first `?`.
pub(crate) fn split_url(url: &str) -> Result<UrlParts, StoreError> {
    let bad = |reason: String| StoreError::BadUrl {
        url: redact(url),
        reason,
    };
    let mut parts = UrlParts {
        client_url: url.to_owned(),
        ssl: SslMode::Prefer,
        root_cert: None,
        pool_max_size: None,
    };
    let body = url.find("://").map_or(0, |i| i + 3);
    let after_user = url[body..].find('@').map_or(body, |i| body + i + 1);
    let Some(q) = url[after_user..].find('?').map(|i| after_user + i) else {
        return Ok(parts);
    };
    let mut kept = Vec::new();
    for piece in url[q + 1..].split('&') {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        match percent_decode(key).as_str() {
            "sslmode" => {
                parts.ssl = match percent_decode(value).as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(bad(format!(
                            "`sslmode` must be `disable`, `prefer`, `require`, `verify-ca` or \
                             `verify-full`, not `{other}`"
                        )))
                    }
                };
            }
            "sslrootcert" => parts.root_cert = Some(PathBuf::from(percent_decode(value))),
            "pool_max_size" => {
                parts.pool_max_size = Some(
                    percent_decode(value)
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            bad("`pool_max_size` must be a whole number of at least 1".into())
                        })?,
                );
            }
            _ => kept.push(piece),
        }
    }
    if matches!(parts.ssl, SslMode::VerifyCa | SslMode::VerifyFull) && parts.root_cert.is_none() {
        return Err(bad(
            "`sslmode=verify-ca` and `verify-full` need `sslrootcert=PATH`, the PEM file of the \
             certificate authority that signed the server's certificate"
                .into(),
        ));
    }
    parts.client_url = if kept.is_empty() {
        url[..q].to_owned()
    } else {
        format!("{}?{}", &url[..q], kept.join("&"))
    };
    Ok(parts)
}

/// `%XX` decoded, as the client decodes keys and values.
fn percent_decode(text: &str) -> String {
    crate::durable::redact::percent_decode(text)
}

/// The client's own `sslmode` for ours: it checks nothing itself, the connector does.
pub(crate) fn client_mode(ssl: SslMode) -> tokio_postgres::config::SslMode {
    match ssl {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    }
}

/// The TLS connector for `parts` (reads `sslrootcert`).
pub(crate) fn connector(parts: &UrlParts, redacted: &str) -> Result<MakeRustlsConnect, StoreError> {
    // ring, not aws-lc-rs (whose build needs CMake and a C toolchain): rustls 0.23.48 marks it
    // deprecated for its lack of post-quantum key exchange, which PostgreSQL does not offer.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("{redacted}: TLS set-up failed: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (&parts.root_cert, parts.ssl) {
        (Some(path), SslMode::VerifyCa | SslMode::VerifyFull) => {
            let roots = read_roots(path, redacted)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| StoreError::Backend(format!("{redacted}: TLS set-up failed: {e}")))?;
            if parts.ssl == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
        _ => Arc::new(Unverified(provider)),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The certificates of an `sslrootcert` PEM file.
fn read_roots(path: &std::path::Path, redacted: &str) -> Result<RootCertStore, StoreError> {
    let io =
        |why: String| StoreError::Io(format!("{redacted}: sslrootcert {}: {why}", path.display()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| io(e.to_string()))? {
        let cert = cert.map_err(|e| io(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| io(format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(io(
            "no certificate in the file (a PEM file is expected)".into()
        ));
    }
    Ok(roots)
}

/// `sslmode=verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
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

/// `sslmode=prefer` and `require`: encrypted, but any certificate is accepted (as libpq does):
/// no protection against a machine in the middle. The handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::{split_url, SslMode};

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_kept() {
        let parts = split_url(
            "postgres://app:s?e@db/jobs?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Fca.pem&pool_max_size=4",
        )
        .unwrap();
        assert_eq!(
            parts.client_url,
            "postgres://app:s?e@db/jobs?connect_timeout=5"
        );
        assert_eq!(parts.ssl, SslMode::VerifyFull);
        assert_eq!(
            parts.root_cert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert_eq!(parts.pool_max_size, Some(4));
        let plain = split_url("postgres://db/jobs?sslmode=require").unwrap();
        assert_eq!(plain.client_url, "postgres://db/jobs");
        assert_eq!(plain.ssl, SslMode::Require);
        assert_eq!(
            split_url("postgres://db/jobs").unwrap().ssl,
            SslMode::Prefer
        );
    }

    #[test]
    fn bad_values_are_named_and_passwords_hidden() {
        for (url, says) in [
            (
                "postgres://app:s3cret@db/jobs?sslmode=strict",
                "`sslmode` must be",
            ),
            (
                "postgres://app:s3cret@db/jobs?pool_max_size=0",
                "`pool_max_size` must be",
            ),
            (
                "postgres://app:s3cret@db/jobs?sslmode=verify-full",
                "need `sslrootcert=PATH`",
            ),
        ] {
            let text = split_url(url).unwrap_err().to_string();
            assert!(text.contains(says), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }
}
