//! `GET /api/v1/events`: incident events as Server-Sent Events, resumable by `Last-Event-ID`.

use super::*;

pub(super) async fn events(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(permit) = s.sse_streams.clone().try_acquire_owned() else {
        s.metrics
            .bounds_hit
            .with_label_values(&["sse_streams"])
            .inc();
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams open; try again later".into(),
        ));
    };
    // Subscribe first, then catch up from the store, so nothing falls between the two.
    let live = s.events.subscribe();
    let mut from = None;
    let mut unknown = None;
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        match EventLog::new(&s.store).position_of(last).await? {
            Some(pos) => from = Some(pos),
            // `0`: from the beginning of the log (streamed page by page).
            None if last == "0" => from = Some(0),
            // An id the log does not hold: the stream starts now, and says so first (never a
            // replay of the whole log).
            None => unknown = Some(last.chars().take(128).collect::<String>()),
        }
    }
    let to_sse = |ev: &IncidentEvent| {
        SseEvent::default()
            .id(ev.event_id.clone())
            .event("incident")
            .data(serde_json::to_string(ev).unwrap_or_default())
    };
    let notice = unknown.map(|id| {
        Ok(SseEvent::default().event("resync").data(
            json!({"reason": "unknown Last-Event-ID; the stream starts now", "last_event_id": id,
                "hint": "GET /api/v1/incidents for what stands"})
            .to_string(),
        ))
    });
    // The backlog, read page by page as the client takes it.
    let reader = from.map(|pos| EventLog::new(&s.store).reader(Scope::All, pos, 500));
    let backlog_stream = stream::unfold(reader, |reader| async move {
        let mut reader = reader?;
        match reader.next_page().await {
            Ok(Some(page)) => Some((page, Some(reader))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "SSE backlog cut short by a store error; the client may resume");
                None
            }
        }
    })
    .flat_map(stream::iter);
    let resumed = from.is_some();
    let last_seen = Arc::new(std::sync::atomic::AtomicI64::new(from.unwrap_or(i64::MIN)));
    let seen_backlog = last_seen.clone();
    // Only the events of sites the caller sees.
    let sees = {
        let (live, caller) = (s.live.clone(), caller.clone());
        move |ev: &IncidentEvent| {
            Visible::sees_one(&caller, &live.read().expect("live lock"), &ev.incident.site)
        }
    };
    let sees_live = sees.clone();
    let backlog_stream = backlog_stream
        .map(move |(pos, ev)| {
            seen_backlog.store(pos, Ordering::Relaxed);
            ev
        })
        .filter(move |ev| std::future::ready(sees(ev)))
        .map(move |ev| Ok(to_sse(&ev)));
    let live_stream = stream::unfold((live, last_seen), move |(mut rx, last_seen)| {
        let sees_live = sees_live.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok((pos, ev)) => {
                        if (resumed && pos <= last_seen.load(Ordering::Relaxed)) || !sees_live(&ev)
                        {
                            continue;
                        }
                        return Some((Ok(to_sse(&ev)), (rx, last_seen)));
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "SSE client lagged; it may resume with Last-Event-ID"
                        );
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = stream::iter(notice)
        .chain(backlog_stream)
        .chain(live_stream)
        .take_until(access::revoked(s.access.clone(), caller))
        .map(move |item: Result<SseEvent, Infallible>| {
            let _held = &permit;
            item
        });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
