//! HTTPS for the API: the server certificate, read from `http.tls_cert_file` and
//! `http.tls_key_file` at start and again on SIGHUP. A reload that fails (a file missing, a
//! key that does not match) keeps the certificate in force; the caller logs and counts it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The API's certificate, swapped in place on reload; new connections get the newest.
#[derive(Debug)]
pub struct ApiCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ApiCertificate {
    /// Read the files; an error names the file and why.
    pub fn load(
        cert_file: PathBuf,
        key_file: PathBuf,
    ) -> Result<Arc<ApiCertificate>, broker_link::TlsError> {
        let current = broker_link::server_certified_key(&cert_file, &key_file)?;
        Ok(Arc::new(ApiCertificate {
            cert_file,
            key_file,
            current: RwLock::new(current),
        }))
    }

    /// Read the files again; on an error the certificate in force stays.
    pub fn reload(&self) -> Result<(), broker_link::TlsError> {
        let fresh = broker_link::server_certified_key(&self.cert_file, &self.key_file)?;
        *self.current.write().expect("certificate lock") = fresh;
        Ok(())
    }

    /// The acceptor of the API's TLS connections (HTTP/2 and HTTP/1.1 by ALPN).
    pub fn acceptor(self: &Arc<Self>) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for ApiCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}
