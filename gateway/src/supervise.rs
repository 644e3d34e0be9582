//! The gateway's long-lived tasks and what their end means.

/// The gateway's long-lived tasks. Each ends with `Some(name)` when it must not end while the
/// gateway runs (the core, the broker link, the HTTP server ...) and `None` when it may (a
/// subscriber removed over the API): see [`must_run`] and [`may_end`].
pub type Tasks = tokio::task::JoinSet<Option<&'static str>>;

/// A task that must run as long as the gateway does: its end (or its panic, which the join
/// reports) stops the process, so the service manager restarts it rather than leave a gateway
/// that looks alive and judges nothing.
pub async fn must_run(
    name: &'static str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<&'static str> {
    task.await;
    Some(name)
}

/// A task that may end by itself.
pub async fn may_end(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<&'static str> {
    task.await;
    None
}
