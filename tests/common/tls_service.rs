//! The demo's answers (`shadowtap::demo::answer`) served over TLS on
//! 127.0.0.1, for tests of https candidates: a throwaway CA is made at
//! test time (rcgen), with a server certificate for 127.0.0.1 and
//! localhost signed by it; tokio-rustls accepts, hyper serves HTTP/1.1.
//! The service runs on its own runtime thread and lives as long as the
//! test process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use shadowtap::demo::{Flavor, answer};

pub struct TlsService {
    pub addr: SocketAddr,
    /// The CA that signed the service's certificate, as PEM.
    pub ca_pem: String,
    /// Requests answered (after a completed TLS handshake).
    pub answered: Arc<AtomicUsize>,
}

impl TlsService {
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

/// Starts the service on 127.0.0.1 (any free port).
pub fn tls_service(flavor: Flavor) -> TlsService {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "shadowtap test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca_cert.der().clone()];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, private).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                tokio::spawn(async move {
                    // A client that does not trust the CA aborts here.
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            let method = req.method().as_str().to_string();
                            let target = req.uri().path_and_query().map_or("/".into(), |p| p.as_str().to_string());
                            let _ = req.into_body().collect().await;
                            let (status, body, content_type) = answer(flavor, &method, &target);
                            counter.fetch_add(1, Ordering::SeqCst);
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", content_type)
                                .header("server", "tls-candidate")
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
    });
    TlsService { addr: rx.recv().unwrap(), ca_pem: ca_cert.pem(), answered }
}
