//! The demo's legacy or candidate service (`shadowtap::demo`), started on
//! its own runtime thread for a test; it lives as long as the test process.

use std::net::SocketAddr;

use shadowtap::demo::{Flavor, start_service};

/// Starts a demo service on 127.0.0.1 (any free port) and returns its address.
pub fn service(flavor: Flavor) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let addr = start_service(flavor, 0).await.unwrap();
            tx.send(addr).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}
