//! The operator's HTTP endpoints: `/healthz` (the process serves requests), `/readyz` (ready
//! to work: the KmsKey watch has synced, or this replica is a standby waiting for the lease)
//! and `/metrics` (Prometheus).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What the probes report.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The response for `path`.
pub fn respond(path: &str, health: &Health, metrics: &Metrics) -> (StatusCode, String) {
    match path {
        "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
        "/readyz" if health.is_ready() => (StatusCode::OK, "ready\n".to_owned()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "the KmsKey watch has not synced yet\n".to_owned()),
        "/metrics" => (StatusCode::OK, metrics.encode()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    }
}

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(listener: TcpListener, health: Arc<Health>, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (health, metrics) = (health.clone(), metrics.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (status, body) = respond(req.uri().path(), &health, &metrics);
                let response = Response::builder().status(status).body(Full::new(Bytes::from(body)));
                async move { response }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Binds `addr`, failing early (at start) when the port is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_flag_and_liveness_is_always_ok() {
        let (health, metrics) = (Health::default(), Metrics::default());
        assert_eq!(respond("/healthz", &health, &metrics).0, StatusCode::OK);
        assert_eq!(respond("/readyz", &health, &metrics).0, StatusCode::SERVICE_UNAVAILABLE);
        health.set_ready(true);
        assert_eq!(respond("/readyz", &health, &metrics).0, StatusCode::OK);
        assert_eq!(respond("/nope", &health, &metrics).0, StatusCode::NOT_FOUND);
        assert!(respond("/metrics", &health, &metrics).1.contains("kms_operator_leader"));
    }
}
