//! TLS for the protocol examples and their tests: a self-signed test
//! certificate made at start (rcgen), a rustls server config on the `ring`
//! provider, and a client config that trusts that one certificate.
//! Included with `#[path]`.
#![allow(dead_code)] // the examples use the server side, the tests both

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A certificate for `localhost` and `127.0.0.1`, and its key.
#[derive(Debug)]
pub struct TestCert {
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// The certificate, PEM (for `redis-cli --cacert`, `curl --cacert`).
    pub pem: String,
    /// The private key, PKCS#8 DER.
    key: PrivatePkcs8KeyDer<'static>,
}

/// Makes a fresh self-signed certificate.
pub fn test_cert() -> io::Result<TestCert> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    Ok(TestCert {
        der: made.cert.der().clone(),
        pem: made.cert.pem(),
        key: PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()),
    })
}

/// rustls's `ring` provider (not the default aws-lc-rs, which needs cmake).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server presenting `cert`.
pub fn acceptor(cert: &TestCert) -> io::Result<TlsAcceptor> {
    let key = PrivateKeyDer::Pkcs8(cert.key.clone_key());
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], key)
        .map_err(io::Error::other)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS client that trusts only `cert`.
pub fn connector(cert: CertificateDer<'static>) -> io::Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).map_err(io::Error::other)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
