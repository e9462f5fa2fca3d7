//! The one access check every route passes. The route table (`http::routes`) gives each route a
//! [`Rule`]; [`authorize`] runs after routing, finds the rule of the matched route (a route without
//! one is refused: fail closed), works out who is asking (API token in `Authorization: Bearer` or
//! `?token=`, HTTP Basic, or the session cookie), and lets the request through only if the rule
//! allows them — with the camera of `{id}` routes on their list. It also refuses cross-site
//! WebSocket upgrades and changes (`Origin`), changes through a session without its CSRF token, and
//! addresses banned after failed logins. [`security_headers`] adds the headers every response gets.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use camhub_config::IpNet;

use super::AppState;
use crate::auth::{Access, Principal, Via};
use crate::error::{Error, ErrorKind};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "camhub_session";
/// The header state-changing requests of a logged-in browser carry (the CSRF token of the session).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sent by camhub's own pages: a 401 then gets no `WWW-Authenticate`, so the browser shows the
/// login page instead of its Basic dialog (as for any request a page makes, told apart by
/// `Sec-Fetch-Mode`).
pub const UI_HEADER: &str = "x-camhub-ui";

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone: the login page, its assets, `/healthz`.
    Public,
    /// A page of the UI: anyone logged in; others are sent to the login page.
    Page,
    /// Anyone logged in who may watch (viewers and admins).
    Viewer,
    /// A viewer who may see the camera of the route's `{id}`.
    Camera,
    /// Admins only.
    Admin,
    /// `/metrics`: admins and metrics tokens (anyone with `metrics = "open"`).
    Metrics,
}

/// The address of the TCP peer, put on every request by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The local address a request's connection arrived at: an address of this machine the client
/// can reach (WebRTC offers it as a candidate).
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// The rules of the route table, by method and route path: what [`authorize`] looks up.
#[derive(Clone)]
pub struct Rules(pub Arc<HashMap<(Method, &'static str), Rule>>);

/// What [`authorize`] needs: the app and the rules.
#[derive(Clone)]
pub struct Guard {
    /// The app's state (the auth state is in it).
    pub state: AppState,
    /// The rules of the route table.
    pub rules: Rules,
}

/// The client's address: the TCP peer, or — when the peer is a trusted proxy — the last address in
/// `X-Forwarded-For` that is not a trusted proxy itself.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer),
    )
}

/// What the request's credentials say.
enum Credentials {
    /// None were sent.
    None,
    /// Valid: this is who.
    Valid(Principal),
    /// Sent but wrong (counts as a failed login).
    Wrong,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `token` query parameter, if any.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
}

async fn credentials(state: &AppState, req: &Parts) -> Credentials {
    let auth = &state.auth;
    if let Some(value) = req.headers.get(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else {
            return Credentials::Wrong;
        };
        return auth
            .authorization(value)
            .await
            .map_or(Credentials::Wrong, Credentials::Valid);
    }
    if let Some(p) = cookie(&req.headers, SESSION_COOKIE).and_then(|c| auth.session(c)) {
        return Credentials::Valid(p);
    }
    // An expired or unknown cookie is not an attack (a restart, a logout in another tab): the
    // request is simply not logged in.
    if let Some(token) = query_token(req.uri.query()) {
        return auth
            .token(token)
            .map_or(Credentials::Wrong, Credentials::Valid);
    }
    Credentials::None
}

/// Whether the request is a WebSocket upgrade.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `host[:port]` of an origin or Host header value, with the default port of the scheme made
/// explicit, for comparison.
fn authority(scheme: &str, host: &str) -> String {
    let host = host.to_ascii_lowercase();
    let has_port = match host.rfind(']') {
        Some(end) => host[end..].contains(':'),
        None => host.contains(':'),
    };
    if has_port {
        host
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{host}:{port}")
    }
}

/// Whether a browser's `Origin` may act on this camhub: its own origin (same host and port as the
/// request's `Host`), or one of `allowed_origins`. A request without `Origin` is not from a
/// browser's cross-site context and passes.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.to_ascii_lowercase();
    if allowed.contains(&origin) {
        return true;
    }
    let Some((scheme, host)) = origin.split_once("://") else {
        return false;
    };
    let Some(request_host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    authority(scheme, host) == authority(scheme, request_host)
}

fn refuse(kind: ErrorKind, message: &str, ui: bool) -> Response {
    let mut response = Error::new(kind, message).into_response();
    if kind == ErrorKind::Unauthorized && !ui {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"camhub\", charset=\"UTF-8\""),
        );
    }
    response
}

/// What a banned address is told, `left` being how long the ban still lasts.
pub fn banned_error(left: std::time::Duration) -> Error {
    Error::new(
        ErrorKind::TooMany,
        format!(
            "too many failed logins from this address: try again in {} s",
            left.as_secs().max(1)
        ),
    )
}

fn banned_response(left: std::time::Duration) -> Response {
    let mut response = banned_error(left).into_response();
    if let Ok(v) = HeaderValue::from_str(&left.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Where the login page sends the user back to: a path on this site only.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if ok {
        next
    } else {
        "/"
    }
}

fn to_login(req: &Parts, base: &str) -> Response {
    // The full path, prefix included (a nested router sees its own part only).
    let uri = req
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&req.uri, |o| &o.0);
    let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let next: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let location = format!("{base}/login?next={next}");
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location)],
        "login required\n",
    )
        .into_response()
}

/// The middleware: see the module doc.
pub async fn authorize(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    // Parts, not the request: the body is not `Sync`, and the checks hold references across awaits.
    let (mut req, body) = req.into_parts();
    let Some(matched) = req.extensions.get::<MatchedPath>().cloned() else {
        return refuse(ErrorKind::Forbidden, "this route has no access rule", true);
    };
    let method = if req.method == Method::HEAD {
        Method::GET
    } else {
        req.method.clone()
    };
    // Under a prefix the matched path may carry it; the rules are written without.
    let route = match matched.as_str().strip_prefix(&*guard.state.base_path) {
        Some("") => "/",
        Some(r) if r.starts_with('/') => r,
        _ => matched.as_str(),
    };
    let Some(rule) = guard.rules.0.get(&(method, route)).copied() else {
        // The path exists with other methods (axum's own 405 comes after this layer).
        let mut allowed: Vec<&str> = guard
            .rules
            .0
            .keys()
            .filter(|(_, path)| *path == route)
            .map(|(m, _)| m.as_str())
            .collect();
        if allowed.is_empty() {
            return refuse(ErrorKind::Forbidden, "this route has no access rule", true);
        }
        allowed.sort_unstable();
        let allow = allowed.join(", ");
        let message = format!("{} is not allowed here; use {allow}", req.method);
        let mut response = (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, v);
        }
        return response;
    };
    let state = &guard.state;
    let auth = &state.auth;
    let policy = auth.policy();
    let unsafe_method = !matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS);
    // A page on another site must not drive a logged-in browser: no cross-site WebSocket (the
    // cookie would go with it) and no cross-site changes.
    if (is_upgrade(&req.headers) || unsafe_method)
        && !origin_allowed(&req.headers, &policy.allowed_origins)
    {
        return refuse(
            ErrorKind::Forbidden,
            "this request comes from another web site (Origin); add it to [server] allowed_origins if that is intended",
            true,
        );
    }
    // No Basic dialog for requests made from inside a page (the UI's fetches, an `<img>` whose
    // session ran out): the page leads to the login form instead. Programs send no Sec-Fetch-Mode,
    // and a URL typed into the address bar is a navigation: those are told Basic works.
    let from_page = req
        .headers
        .get("sec-fetch-mode")
        .is_some_and(|m| m.as_bytes() != b"navigate");
    let ui = req.headers.contains_key(UI_HEADER) || from_page;
    if rule == Rule::Public || (rule == Rule::Metrics && policy.metrics_open) {
        return next.run(Request::from_parts(req, body)).await;
    }
    let principal = if auth.enforced() {
        let peer = req.extensions.get::<ClientAddr>().map(|c| c.0.ip());
        let ip = client_ip(&req.headers, peer, &policy.trusted_proxies);
        if let Some(left) = ip.and_then(|ip| auth.banned(ip)) {
            return banned_response(left);
        }
        match credentials(state, &req).await {
            Credentials::Valid(p) => {
                if let (Some(ip), Via::Basic) = (ip, &p.via) {
                    auth.succeeded(ip);
                }
                p
            }
            Credentials::Wrong => {
                if let Some(ip) = ip {
                    let delay = auth.failed(ip);
                    tokio::time::sleep(delay).await;
                }
                return refuse(ErrorKind::Unauthorized, "wrong credentials", ui);
            }
            Credentials::None if rule == Rule::Page => return to_login(&req, &state.base_path),
            Credentials::None => {
                return refuse(
                    ErrorKind::Unauthorized,
                    "login required: log in on /login, or send an API token (Authorization: Bearer …, or ?token=…) or HTTP Basic credentials",
                    ui,
                )
            }
        }
    } else {
        Principal::open()
    };
    let allowed = match rule {
        Rule::Public => true,
        Rule::Page | Rule::Viewer => principal.access != Access::Metrics,
        Rule::Camera => camera_id(&mut req)
            .await
            .is_some_and(|id| principal.can_see(&id)),
        Rule::Admin => principal.access == Access::Admin,
        Rule::Metrics => matches!(principal.access, Access::Admin | Access::Metrics),
    };
    if !allowed {
        let message = match rule {
            Rule::Camera => "you may not watch this camera",
            Rule::Admin => "this needs an admin",
            _ => "you may not use this",
        };
        return refuse(ErrorKind::Forbidden, message, ui);
    }
    if unsafe_method {
        if let Via::Session { csrf, .. } = &principal.via {
            let sent = req.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(csrf.as_str()) {
                return refuse(
                    ErrorKind::Forbidden,
                    "missing or wrong X-CSRF-Token (reload the page)",
                    ui,
                );
            }
        }
    }
    req.extensions.insert(principal);
    next.run(Request::from_parts(req, body)).await
}

/// The `{id}` of the matched route.
async fn camera_id(parts: &mut Parts) -> Option<String> {
    use axum::extract::FromRequestParts;
    Path::<HashMap<String, String>>::from_request_parts(parts, &())
        .await
        .ok()
        .and_then(|Path(mut params)| params.remove("id"))
}

/// The content security policy of camhub's pages: only its own scripts, styles and connections;
/// pictures also from `blob:` (the grid draws WebSocket frames through blobs).
const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
     media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers on every response: no MIME sniffing, no referrer to other sites (a `?token=` URL must
/// not leak; `same-origin`, not `no-referrer`, because under `no-referrer` browsers send
/// `Origin: null` with the page's own form posts, which the origin check must refuse), no framing
/// (clickjacking), the CSP on pages, and no caching of API answers.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let trusted = [
            IpNet::parse("127.0.0.1").unwrap(),
            IpNet::parse("10.0.0.0/8").unwrap(),
        ];
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.1.1")]);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.4".parse().unwrap();
        assert_eq!(
            client_ip(&h, Some(proxy), &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        // Anyone else's X-Forwarded-For is ignored: it could say anything.
        assert_eq!(client_ip(&h, Some(stranger), &trusted), Some(stranger));
        assert_eq!(client_ip(&h, Some(proxy), &[]), Some(proxy));
        // A client that forges the first entry does not get to pick: the last untrusted one counts.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(
            client_ip(&h, Some(proxy), &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&HeaderMap::new(), Some(proxy), &trusted),
            Some(proxy)
        );
    }

    #[test]
    fn origins() {
        let same = headers(&[("origin", "http://cam.lan:8080"), ("host", "cam.lan:8080")]);
        assert!(origin_allowed(&same, &[]));
        let tls = headers(&[("origin", "https://cam.example"), ("host", "cam.example")]);
        assert!(origin_allowed(&tls, &[]));
        let other = headers(&[("origin", "http://evil.example"), ("host", "cam.lan:8080")]);
        assert!(!origin_allowed(&other, &[]));
        assert!(origin_allowed(&other, &["http://evil.example".to_owned()]));
        let port = headers(&[("origin", "http://cam.lan:9999"), ("host", "cam.lan:8080")]);
        assert!(!origin_allowed(&port, &[]));
        assert!(origin_allowed(&headers(&[("host", "cam.lan")]), &[]));
        let null = headers(&[("origin", "null"), ("host", "cam.lan")]);
        assert!(!origin_allowed(&null, &[]));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/cameras/door"), "/cameras/door");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn tokens_in_queries() {
        assert_eq!(query_token(Some("width=640&token=chb_x")), Some("chb_x"));
        assert_eq!(query_token(Some("width=640")), None);
        assert_eq!(query_token(None), None);
    }
}
