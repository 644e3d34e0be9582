//! Serving the API: header and body timeouts, the concurrency bound, panics answered 500.

use super::*;

/// What every request goes through: a bound on requests handled at once (503 at once beyond
/// it, counted in `hrs_bounds_hit_total{bound="http_concurrency"}`), a request-body read
/// timeout, and a panic in a handler answered 500 (and logged), never a dropped connection.
pub fn bounded(app: Router, cfg: &config::HttpConfig, metrics: Metrics) -> Router {
    let gate = Arc::new((
        tokio::sync::Semaphore::new(cfg.max_concurrent_requests),
        metrics,
    ));
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let gate = gate.clone();
            async move {
                match gate.0.try_acquire() {
                    Ok(_permit) => next.run(req).await,
                    Err(_) => {
                        gate.1
                            .bounds_hit
                            .with_label_values(&["http_concurrency"])
                            .inc();
                        ApiError(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too many requests at once; try again".into(),
                        )
                        .into_response()
                    }
                }
            }
        },
    ))
    .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        Duration::from_millis(cfg.body_read_timeout_ms),
    ))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            tracing::error!("an HTTP handler panicked; answered 500");
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()).into_response()
        },
    ))
}

/// Serve the API until `shutdown`: a client that does not send its request headers within
/// `header_read_timeout_ms` is disconnected (a slow client cannot hold connections open);
/// with `tls`, every connection must complete a TLS handshake within
/// `tls_handshake_timeout_ms` first (plain HTTP gets no answer); open connections finish
/// their requests on shutdown (at most 5 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    cfg: config::HttpConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms));
    builder.http2().timer(TokioTimer::new());
    let handshake_within = Duration::from_millis(cfg.tls_handshake_timeout_ms);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // The peer address, for the audit log.
        let svc = hyper_util::service::TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let served = match tls {
                None => serve_one(&builder, watcher, stream, svc).await,
                Some(tls) => match tokio::time::timeout(handshake_within, tls.accept(stream)).await
                {
                    Ok(Ok(stream)) => serve_one(&builder, watcher, stream, svc).await,
                    Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                    Err(_) => Err("TLS handshake timed out".to_string()),
                },
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "HTTP connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

/// One connection, plain or TLS, until it ends (or the shutdown closes it).
async fn serve_one<S, Svc>(
    builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    svc: Svc,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
        > + Clone
        + Send
        + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder
        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), svc)
        .into_owned();
    watcher.watch(conn).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// Beyond `max_concurrent_requests` requests at once, the next is answered 503 at once and
    /// counted; when one finishes, the next is served again.
    #[tokio::test]
    async fn requests_beyond_the_concurrency_bound_are_shed() {
        use tower::ServiceExt;
        let gate = Arc::new(tokio::sync::Notify::new());
        let waiting = gate.clone();
        let app = Router::new().route(
            "/slow",
            get(move || {
                let waiting = waiting.clone();
                async move {
                    waiting.notified().await;
                    "done"
                }
            }),
        );
        let cfg = config::HttpConfig {
            max_concurrent_requests: 1,
            ..Default::default()
        };
        let metrics = Metrics::new();
        let app = bounded(app, &cfg, metrics.clone());
        let req = || {
            axum::http::Request::get("/slow")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let first = tokio::spawn(app.clone().oneshot(req()));
        // Wait until the first request holds the only slot.
        while Arc::strong_count(&gate) < 3 {
            tokio::task::yield_now().await;
        }
        let shed = app.clone().oneshot(req()).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            metrics
                .bounds_hit
                .with_label_values(&["http_concurrency"])
                .get(),
            1
        );
        gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        let again = tokio::spawn(app.clone().oneshot(req()));
        while Arc::strong_count(&gate) < 3 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!(again.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}
