//! TLS from PEM files, for every link the programs make or take: a client configuration (a
//! broker, an HTTP target: a CA file or the system's roots, an optional client certificate)
//! and a server's certificate and key (the gateway's HTTPS API). rustls with `ring`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS files or settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: {what} {path:?}: {reason}")]
    File {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS: {0}")]
    Settings(String),
}

/// The TLS files of a client link (a broker, an HTTP target), as a config names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates of the CAs that sign the server's certificate; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain), for servers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

impl TlsFiles {
    pub fn any(&self) -> bool {
        self.ca_file.is_some() || self.client_cert_file.is_some() || self.client_key_file.is_some()
    }
}

fn read_pem_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::File {
            what,
            path: path.to_path_buf(),
            reason: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            what,
            path: path.to_path_buf(),
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// A client configuration from the files: trust the `ca_file`'s CAs (else the system's roots),
/// and present the client certificate when one is set.
pub fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, TlsError> {
    if files.client_cert_file.is_some() != files.client_key_file.is_some() {
        return Err(TlsError::Settings(
            "client_cert_file and client_key_file go together".into(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca_file {
        Some(path) => {
            for cert in certificates("ca_file", path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    what: "ca_file",
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::Settings(
                    "no ca_file is set and the system has no usable root certificates \
                     (install ca-certificates or set ca_file)"
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Settings(e.to_string()))?
        .with_root_certificates(roots);
    match (&files.client_cert_file, &files.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = certificates("client_cert_file", cert)?;
            let pem = read_pem_file("client_key_file", key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::File {
                what: "client_key_file",
                path: key.clone(),
                reason: format!("no PEM private key: {e}"),
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TlsError::Settings(format!("client certificate and key: {e}")))
        }
        // Neither (a pair with one half missing was refused above).
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A server's certificate chain and private key from PEM files, checked to belong together.
pub fn server_certified_key(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let chain = certificates("tls_cert_file", cert_file)?;
    let pem = read_pem_file("tls_key_file", key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::File {
        what: "tls_key_file",
        path: key_file.to_path_buf(),
        reason: format!("no PEM private key: {e}"),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::File {
            what: "tls_key_file",
            path: key_file.to_path_buf(),
            reason: format!("not a usable private key: {e}"),
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        TlsError::Settings(format!(
            "{cert_file:?} and {key_file:?} do not belong together: {e}"
        ))
    })?;
    Ok(Arc::new(certified))
}
