//! The one check every endpoint goes through ([`authorize`]): the caller's credential, the
//! role its route needs ([`need`], one table for the whole API), cross-site protection of
//! cookie-authenticated writes, and an audit entry for every write. And what a caller sees
//! ([`Visible`]): the sites of its scopes, by which every list, item and stream is filtered.
//! Routes: login, logout, who am I, the audit log, users and tokens.

use super::error::bad_request;
use super::{ApiError, AppState};
use crate::access::{parse_scopes, scopes_text, AccessError, Caller, Credential, Grant, Role};
use crate::core::live::Live;
use crate::store::access::Principal;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;
use telemetry::{RegionCode, SiteId};

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub role: Role,
    /// The route acts on the whole gateway (rules, weather, deliveries): scope `*` only.
    pub all_sites: bool,
}

const fn needs(role: Role, all_sites: bool) -> Option<Need> {
    Some(Need { role, all_sites })
}

/// The role each route needs (`None`: a public route). A route not named here needs an admin
/// over `*`: a new route is closed until it is placed in this table.
pub fn need(method: &Method, path: &str) -> Option<Need> {
    use Role::*;
    let read = method == Method::GET || method == Method::HEAD;
    match path {
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/login" | "/api/v1/openapi.json" => None,
        // The console's static files hold no data; what they fetch is checked as any call.
        "/" | "/console/{file}" if read => None,
        "/api/v1/dead-letters"
        | "/api/v1/deliveries/parked"
        | "/api/v1/deliveries/parked/{id}/resend"
        | "/api/v1/subscribers"
        | "/api/v1/subscribers/{id}"
        | "/api/v1/subscribers/{id}/events"
        | "/api/v1/rules/reload"
        | "/api/v1/weather/cap"
        | "/api/v1/weather/cenc" => needs(Admin, true),
        "/api/v1/audit"
        | "/api/v1/users"
        | "/api/v1/users/{name}/disable"
        | "/api/v1/tokens"
        | "/api/v1/tokens/{name}/revoke" => needs(Admin, false),
        "/api/v1/logout" | "/api/v1/me" => needs(Viewer, false),
        "/api/v1/sites/{site}/points/{point}/out-of-service" => needs(Operator, false),
        p if p.starts_with("/api/v1/incidents/{id}/") && !read => needs(Operator, false),
        "/api/v1/sites"
        | "/api/v1/sites/{site}/points"
        | "/api/v1/sites/{site}/agents"
        | "/api/v1/sites/{site}/points/{point}/trend"
        | "/api/v1/sites/{site}/levels"
        | "/api/v1/positions"
        | "/api/v1/incidents"
        | "/api/v1/incidents.csv"
        | "/api/v1/incidents/{id}"
        | "/api/v1/alarm-load"
        | "/api/v1/overdue"
        | "/api/v1/figures"
        | "/api/v1/figures.csv"
        | "/api/v1/out-of-service"
        | "/api/v1/events"
        | "/api/v1/weather/warnings"
            if read =>
        {
            needs(Viewer, false)
        }
        _ => needs(Admin, true),
    }
}

/// The site a write acted on, put on its response by the handler, for the audit entry (and
/// so that a scoped admin reads the entries of its sites).
#[derive(Debug, Clone)]
pub struct AuditSite(pub String);

fn refuse(status: StatusCode, msg: impl Into<String>) -> Response {
    ApiError(status, msg.into()).into_response()
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        let status = match &e {
            AccessError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AccessError::Refused(_) => StatusCode::FORBIDDEN,
            AccessError::Invalid(_) => StatusCode::BAD_REQUEST,
            AccessError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

/// The value of a cookie of the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Where a request came from: the peer address.
pub(super) fn source(req_ext: &axum::http::Extensions) -> String {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Every request of the API passes here (a route layer over the whole router).
pub async fn authorize(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let method = req.method().clone();
    if path == "/metrics" {
        if let Some(want) = s.access.config.metrics_token.as_deref() {
            if bearer(req.headers()) != Some(want) {
                return refuse(StatusCode::UNAUTHORIZED, "the metrics token is required");
            }
        }
        return next.run(req).await;
    }
    let Some(need) = need(&method, &path) else {
        return next.run(req).await;
    };
    let from = source(req.extensions());
    let caller = match s
        .access
        .authenticate(
            bearer(req.headers()),
            cookie(req.headers(), crate::access::SESSION_COOKIE),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let action = format!("{method} {path}");
    let target = req.uri().path().to_string();
    let refused = if let (true, Credential::Session { csrf, .. }) = (write, &caller.credential) {
        // A write with the session cookie must show the CSRF token the login gave: a page of
        // another site can make the browser send the cookie, never read the token.
        let shown = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        (shown != Some(csrf.as_str()))
            .then(|| "a write with the session cookie needs its X-CSRF-Token header".to_string())
    } else if caller.grant.role < need.role {
        Some(format!(
            "{} is {}; this needs {}",
            caller.name, caller.grant.role, need.role
        ))
    } else if need.all_sites && !caller.grant.covers_all() {
        Some(format!(
            "this acts on the whole gateway and needs scope * ({} has {})",
            caller.name,
            scopes_text(&caller.grant.scopes)
        ))
    } else {
        None
    };
    if let Some(why) = refused {
        s.access
            .audit(
                &caller.name,
                &from,
                &action,
                Some(&target),
                None,
                "403",
                Some(&why),
            )
            .await;
        return refuse(StatusCode::FORBIDDEN, why);
    }
    req.extensions_mut().insert(caller.clone());
    // For routes with their own state (forwarding) that hold streams open.
    req.extensions_mut().insert(s.access.clone());
    let resp = next.run(req).await;
    if write && path != "/api/v1/logout" {
        let site = resp.extensions().get::<AuditSite>().map(|a| a.0.clone());
        s.access
            .audit(
                &caller.name,
                &from,
                &action,
                Some(&target),
                site.as_deref(),
                resp.status().as_str(),
                None,
            )
            .await;
    }
    resp
}

/// The sites a caller sees.
pub struct Visible {
    all: bool,
    sites: HashSet<String>,
}

impl Visible {
    /// From the registry and births: a site is seen when one of the caller's scopes covers it.
    pub fn of(caller: &Caller, live: &Live) -> Visible {
        if caller.grant.covers_all() {
            return Visible {
                all: true,
                sites: HashSet::new(),
            };
        }
        let sites = live
            .sites
            .iter()
            .filter(|(id, s)| caller.grant.covers(id, s.info.region.as_ref()))
            .map(|(id, _)| id.to_string())
            .collect();
        Visible { all: false, sites }
    }

    /// Whether the caller sees one site (without listing them all).
    pub fn sees_one(caller: &Caller, live: &Live, site: &SiteId) -> bool {
        caller.grant.covers_all()
            || live
                .sites
                .get(site)
                .is_some_and(|s| caller.grant.covers(site, s.info.region.as_ref()))
    }

    pub fn sees(&self, site: &str) -> bool {
        self.all || self.sites.contains(site)
    }

    /// For store queries: `None` for every site, else the list (possibly empty).
    pub fn sites(&self) -> Option<Vec<String>> {
        (!self.all).then(|| self.sites.iter().cloned().collect())
    }
}

/// Resolves when the caller's credential no longer holds (a token revoked, a user disabled,
/// a session ended, also from the command line): an open stream ends on it.
pub async fn revoked(access: crate::access::Access, caller: Caller) {
    let mut changes = access.changes();
    loop {
        if changes.changed().await.is_err() {
            // The watcher stopped: the gateway is stopping.
            return std::future::pending().await;
        }
        if !access.still_holds(&caller).await {
            tracing::info!(caller = %caller.name, "the credential of an open stream no longer holds; the stream ends");
            return;
        }
    }
}

/// What a caller sees, now.
pub(super) fn visible(s: &AppState, caller: &Caller) -> Visible {
    Visible::of(caller, &s.live.read().expect("live lock"))
}

/// The region of a site as the registry or its birth says (to place `site:` grants).
fn region_of(s: &AppState) -> impl Fn(&SiteId) -> Option<RegionCode> + Sync + '_ {
    move |id| {
        s.live
            .read()
            .expect("live lock")
            .sites
            .get(id)
            .and_then(|site| site.info.region.clone())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    user: String,
    password: String,
}

/// `POST /api/v1/login`: a session cookie (HttpOnly, SameSite=Strict, Secure when
/// `auth.secure_cookies`) and, in the body, the CSRF token its writes must show.
pub(super) async fn login(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let from = source(req.extensions());
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|e| bad_request(format!("body: {e}")))?;
    let b: LoginBody =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("body: {e}")))?;
    if s.access.is_open() {
        return Err(bad_request("this gateway is open: no login is needed"));
    }
    let login = s.access.login(&b.user, &b.password, &from).await?;
    let secure = if s.access.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        crate::access::SESSION_COOKIE,
        login.session,
        s.access.config.session_max_ms / 1000
    );
    let mut resp = Json(json!({
        "user": login.caller.name,
        "role": login.caller.grant.role,
        "scopes": scopes_text(&login.caller.grant.scopes),
        "csrf_token": login.csrf,
        "idle_timeout_ms": s.access.config.session_idle_ms,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub(super) async fn logout(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    s.access.logout(&caller, &source(req.extensions())).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let gone = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        crate::access::SESSION_COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&gone) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `GET /api/v1/me`: the caller, and the `[presentation]` setting (language, time zone) the
/// console shows in.
pub(super) async fn me(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<serde_json::Value> {
    Json(json!({
        "user": caller.name,
        "role": caller.grant.role,
        "scopes": scopes_text(&caller.grant.scopes),
        "open": s.access.is_open(),
        "language": s.presentation.language.as_str(),
        "time_zone": s.presentation.time_zone,
        "words": presentation::words_json(),
    }))
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

/// `GET /api/v1/audit?limit=&before=`: newest first; an admin over `*` reads every entry, a
/// scoped admin those of its sites.
pub(super) async fn audit(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let seen = visible(&s, &caller);
    let mut out = Vec::new();
    let mut before = q.before;
    // Read pages until `limit` visible entries or the log's start.
    loop {
        let page = s.store.audit(before, 500).await?;
        let Some(last) = page.last().map(|e| e.pos) else {
            break;
        };
        before = Some(last);
        out.extend(page.into_iter().filter(|e| match &e.site {
            Some(site) => seen.sees(site),
            None => caller.grant.covers_all(),
        }));
        if out.len() >= limit as usize {
            break;
        }
    }
    out.truncate(limit as usize);
    let out: Vec<_> = out
        .iter()
        .map(|e| {
            json!({
                "pos": e.pos,
                "at": telemetry::format_time(&chrono::DateTime::from_timestamp_millis(e.at_ms).unwrap_or_default()),
                "who": e.who, "source": e.source, "action": e.action, "target": e.target,
                "site": e.site, "outcome": e.outcome, "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!(out)))
}

fn principal_json(p: &Principal) -> serde_json::Value {
    json!({
        "name": p.name, "role": p.role, "scopes": p.scopes, "disabled": p.off,
        "created_at": telemetry::format_time(&chrono::DateTime::from_timestamp_millis(p.created_ms).unwrap_or_default()),
        "created_by": p.created_by,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantBody {
    name: String,
    role: String,
    scopes: String,
    password: Option<String>,
}

fn grant_of_body(b: &GrantBody) -> Result<Grant, ApiError> {
    Ok(Grant {
        role: Role::from_str(&b.role).map_err(bad_request)?,
        scopes: parse_scopes(&b.scopes).map_err(bad_request)?,
    })
}

/// Users or tokens a caller may see: those whose grant lies within its own.
async fn within(s: &AppState, caller: &Caller, list: Vec<Principal>) -> Vec<serde_json::Value> {
    let region_of = region_of(s);
    let mut out = Vec::new();
    for p in list {
        if let Some(p) = s.access.grant_of(caller, Some(p), &region_of).await {
            out.push(principal_json(&p));
        }
    }
    out
}

pub(super) async fn users(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s.store.users().await?;
    Ok(Json(json!(within(&s, &caller, list).await)))
}

pub(super) async fn tokens(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s.store.tokens().await?;
    Ok(Json(json!(within(&s, &caller, list).await)))
}

/// `POST /api/v1/users` `{"name","role","scopes","password"}`: 201.
pub(super) async fn add_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<GrantBody>,
) -> Result<Response, ApiError> {
    let grant = grant_of_body(&b)?;
    let password = b
        .password
        .as_deref()
        .ok_or_else(|| bad_request("password is required"))?;
    s.access
        .add_user(&caller, &b.name, &grant, password, &region_of(&s))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"name": b.name}))).into_response())
}

/// `POST /api/v1/tokens` `{"name","role","scopes"}`: 201 with the token, shown this once.
pub(super) async fn add_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(b): Json<GrantBody>,
) -> Result<Response, ApiError> {
    if b.password.is_some() {
        return Err(bad_request("a token has no password"));
    }
    let grant = grant_of_body(&b)?;
    let token = s
        .access
        .add_token(&caller, &b.name, &grant, &region_of(&s))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": b.name, "token": token})),
    )
        .into_response())
}

pub(super) async fn disable_user(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = s.store.user(&name).await?.map(|u| u.principal);
    s.access
        .grant_of(&caller, found, &region_of(&s))
        .await
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no user {name}")))?;
    s.store.disable_user(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn revoke_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = s.store.token(&name).await?;
    s.access
        .grant_of(&caller, found, &region_of(&s))
        .await
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no token {name}")))?;
    s.store.revoke_token(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_openapi_is_in_the_table_or_closed() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).unwrap();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let m = Method::from_str(&method.to_uppercase()).unwrap();
                let n = need(&m, path);
                let public = [
                    "/healthz",
                    "/readyz",
                    "/metrics",
                    "/api/v1/login",
                    "/api/v1/openapi.json",
                ];
                assert_eq!(
                    n.is_none(),
                    public.contains(&path.as_str()),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(
            need(&Method::POST, "/api/v1/new-thing"),
            needs(Role::Admin, true)
        );
        assert_eq!(
            need(&Method::POST, "/api/v1/incidents"),
            needs(Role::Admin, true)
        );
        assert_eq!(
            need(&Method::POST, "/api/v1/incidents/{id}/close"),
            needs(Role::Operator, false)
        );
        assert_eq!(
            need(&Method::GET, "/api/v1/incidents/{id}"),
            needs(Role::Viewer, false)
        );
        // The console's files are public to read, closed to anything else.
        assert_eq!(need(&Method::GET, "/"), None);
        assert_eq!(need(&Method::GET, "/console/{file}"), None);
        assert_eq!(need(&Method::POST, "/"), needs(Role::Admin, true));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hrs_session=s_x; b=2"),
        );
        assert_eq!(cookie(&h, "hrs_session"), Some("s_x"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
