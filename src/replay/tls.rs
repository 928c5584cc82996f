//! TLS settings of https candidates (and https legacy URLs).

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};

use super::answer::ClientError;

/// The TLS settings of https candidates: rustls' defaults, trusting the
/// webpki (Mozilla) roots and the certificates of `ca_file`, if any.
pub(super) fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let bad = |reason: String| ClientError::CaFile { path: path.display().to_string(), reason };
        let certificates = read_ca_file(path).map_err(bad)?;
        for (n, certificate) in certificates.into_iter().enumerate() {
            roots.add(certificate).map_err(|e| {
                // Not "invalid peer certificate: ...": no peer here.
                let why = match e {
                    rustls::Error::InvalidCertificate(e) => format!("{e:?}"),
                    other => other.to_string(),
                };
                bad(format!("certificate {} is not a usable CA: {why}", n + 1))
            })?;
        }
    }
    Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// The PEM certificates of a CA file (other PEM sections, such as keys,
/// are passed over); at least one.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {}", pem_error(&e)))?;
    if certificates.is_empty() {
        return Err("no PEM certificate in it (want -----BEGIN CERTIFICATE----- blocks)".into());
    }
    Ok(certificates)
}

/// rustls' PEM errors show the offending bytes as a list of numbers.
fn pem_error(error: &pem::Error) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim_end().to_string();
    match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("no \"-----END {}-----\" line", text(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => format!("bad section start {:?}", text(line)),
        other => other.to_string(),
    }
}
