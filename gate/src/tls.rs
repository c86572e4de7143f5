//! TLS terminated by the gate (rustls): `[tls] cert = "chain.pem", key = "key.pem"`. ALPN
//! offers HTTP/2 and HTTP/1.1. Without `[tls]` the gate speaks plain HTTP (TLS ended by a
//! balancer in front: list it in `trusted_proxies`, or set `served_over_https`).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// An acceptor for the certificate chain in `cert` and the private key in `key` (PEM).
///
/// # Errors
/// What is wrong with which file, naming the key (`tls.cert`, `tls.key`).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls.cert: cannot read {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "tls.cert: {} is not a PEM certificate chain: {e}",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!("tls.cert: {} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "tls.key: {} holds no usable PEM private key: {e}",
            key.display()
        )
    })?;
    // ring builds with a C compiler alone (aws-lc-rs, which adds post-quantum key exchange,
    // needs cmake and a longer build); its suites are the standard TLS 1.2 and 1.3 ones.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.key: the key does not fit the certificate, or is of a kind rustls does not take: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
