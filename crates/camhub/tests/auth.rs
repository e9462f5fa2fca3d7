//! Login and access against the real binary: every route of the route table refuses a request
//! without credentials (a route added later without a rule fails here), a viewer restricted to one
//! camera reaches nothing of another, and login, logout, session expiry, tokens (create, revoke,
//! expiry), Basic, Bearer and `?token=`, bans and their expiry, CSRF and Origin checks, security
//! headers, `trusted_proxies` and secure-by-default start-up all behave — and no password, hash or
//! token reaches the log.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use camhub::http::access::Rule;
use camhub_testkit::Camhub;
use common::{bin, eventually, start};
use futures::{SinkExt, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery";

/// Two cameras, an admin, and a viewer who may see only `a`; extra `[server]` lines.
fn config(server: &str) -> String {
    let hash = camhub::auth::hash_password(PASSWORD).unwrap();
    format!(
        "[server]\n{server}\n\n\
         [[camera]]\nid = \"a\"\nurl = \"demo:?width=320&height=180&fps=10\"\n\n\
         [[camera]]\nid = \"b\"\nurl = \"demo:?width=320&height=180&fps=10\"\n\n\
         [[user]]\nname = \"admin\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n\n\
         [[user]]\nname = \"viewer\"\npassword_hash = \"{hash}\"\ncameras = [\"a\"]\n"
    )
}

/// A client that does not follow redirects and keeps no cookies of its own.
fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A route path with its parameters filled in with things that exist.
fn concrete(path: &str) -> String {
    path.replace("{id}", "a")
        .replace("{file}", "app.js")
        .replace("{session}", "12345")
}

#[tokio::test]
async fn every_route_outside_the_public_list_refuses_anonymous_requests() {
    let hub = start(&config("")).await;
    let http = client();
    let routes = camhub::http::routes();
    assert!(routes.len() >= 15, "the table lists every route");
    // The explicit public list: a route made public by mistake fails here.
    let public: Vec<String> = routes
        .iter()
        .filter(|r| r.rule == Rule::Public)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        public,
        [
            "GET /login",
            "GET /{file}",
            "POST /api/login",
            "OPTIONS /api/cameras/{id}/whep",
            "OPTIONS /api/cameras/{id}/whep/{session}",
            "GET /healthz"
        ],
        "only the login page, its assets, WHEP's OPTIONS (CORS preflights carry no credentials) \
         and /healthz are public"
    );
    // WHEP's OPTIONS says what the endpoint accepts, the same for any id: it reveals no camera.
    for id in ["a", "no-such-camera"] {
        let r = http
            .request(Method::OPTIONS, hub.url(&format!("/api/cameras/{id}/whep")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{id}");
        assert_eq!(r.headers()["accept-post"], "application/sdp");
    }
    let mut checked = 0;
    for route in &routes {
        let url = hub.url(&concrete(route.path));
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let r = http.request(method.clone(), &url).send().await.unwrap();
        let status = r.status();
        match route.rule {
            Rule::Public => {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {url}");
                continue;
            }
            Rule::Page => {
                assert_eq!(status, StatusCode::SEE_OTHER, "{method} {url}");
                let to = r.headers()["location"].to_str().unwrap();
                assert!(to.starts_with("/login?next="), "{method} {url} → {to}");
            }
            _ => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {url}");
                assert!(
                    r.headers().contains_key("www-authenticate"),
                    "{method} {url}: programs are told they may use Basic"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} protected routes");
    // A request from inside a page gets no Basic challenge (no browser dialog over the UI); a
    // navigation does.
    let r = http
        .get(hub.url("/api/cameras/a/stream.mjpeg"))
        .header("sec-fetch-mode", "no-cors")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.headers().contains_key("www-authenticate"));
    let r = http
        .get(hub.url("/api/cameras/a/stream.mjpeg"))
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    // Wrong credentials are refused too, on every kind of route.
    let r = http
        .get(hub.url("/api/cameras/a/frame.jpeg"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(hub.url("/api/cameras?token=chb_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_viewer_reaches_only_the_cameras_on_their_list() {
    let hub = start(&config("")).await;
    let http = client();
    let as_viewer = |path: &str| {
        http.get(hub.url(path))
            .basic_auth("viewer", Some(PASSWORD))
            .send()
    };
    let list: Value = as_viewer("/api/cameras")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a"]);
    for path in [
        "/api/cameras/b",
        "/api/cameras/b/frame.jpeg",
        "/api/cameras/b/stream.mjpeg",
    ] {
        let r = as_viewer(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        as_viewer("/cameras/b").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = as_viewer("/api/cameras/a/frame.jpeg").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.unwrap()[..2], &[0xff, 0xd8]);
    // Admin-only and metrics routes.
    assert_eq!(
        as_viewer("/api/tokens").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        as_viewer("/metrics").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let r = http
        .get(hub.url("/metrics"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The grid WebSocket: the other camera is refused by name, the allowed one streams.
    let mut request = hub
        .url("/api/ws")
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    let basic = format!(
        "Basic {}",
        base64_encode(format!("viewer:{PASSWORD}").as_bytes())
    );
    request
        .headers_mut()
        .insert("authorization", basic.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!({"subscribe": [{"camera": "b"}, {"camera": "a", "width": 160}]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let (mut refused, mut frames_of_a) = (false, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(refused && frames_of_a > 0) && tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        else {
            break;
        };
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).unwrap();
            match (v["type"].as_str(), v["camera"].as_str()) {
                (Some("error"), Some("b")) => {
                    assert!(v["error"].as_str().unwrap().contains("may not"), "{v}");
                    refused = true;
                }
                (Some("frame"), Some("a")) => frames_of_a += 1,
                (Some("frame" | "status"), Some("b")) => panic!("the viewer got camera b: {v}"),
                _ => {}
            }
        }
    }
    assert!(
        refused && frames_of_a > 0,
        "refused {refused}, frames {frames_of_a}"
    );
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Logs in with JSON; returns the session cookie (`name=value`) and the CSRF token.
async fn login(hub: &Camhub, user: &str) -> (String, String) {
    let r = client()
        .post(hub.url("/api/login"))
        .json(&json!({"name": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    let body: Value = r.json().await.unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    (pair, body["csrf"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn login_form_session_csrf_logout_and_expiry() {
    let hub = start(&config("session_lifetime = \"3s\"")).await;
    let http = client();
    // The form (what the login page posts) redirects back to where the user was going.
    let r = http
        .post(hub.url("/api/login"))
        .form(&[
            ("name", "admin"),
            ("password", PASSWORD),
            ("next", "/cameras/a"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/cameras/a");
    let r = http
        .post(hub.url("/api/login"))
        .form(&[
            ("name", "admin"),
            ("password", "nope"),
            ("next", "//evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/login?error=wrong&next=%2F"),
        "no open redirect: {to}"
    );

    let (cookie, csrf) = login(&hub, "admin").await;
    let with_cookie = |m: Method, path: &str| {
        http.request(m, hub.url(path))
            .header("cookie", cookie.clone())
    };
    let session: Value = with_cookie(Method::GET, "/api/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"], "admin");
    assert_eq!(session["auth"], "users");
    assert_eq!(session["csrf"], csrf.as_str());
    assert_eq!(
        with_cookie(Method::GET, "/").send().await.unwrap().status(),
        StatusCode::OK
    );
    // A change through the cookie needs the CSRF token.
    let body = json!({"name": "x"});
    let r = with_cookie(Method::POST, "/api/tokens")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("CSRF"));
    let r = with_cookie(Method::POST, "/api/tokens")
        .header("x-csrf-token", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = with_cookie(Method::POST, "/api/tokens")
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // And it must come from this site.
    let r = with_cookie(Method::POST, "/api/tokens")
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Logout ends the session at once.
    let r = with_cookie(Method::POST, "/api/logout")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        with_cookie(Method::GET, "/api/session")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // A session ends by itself after session_lifetime.
    let (cookie, _) = login(&hub, "viewer").await;
    let get_session = || {
        http.get(hub.url("/api/session"))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(get_session().await.unwrap().status(), StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(10), || async {
            get_session().await.unwrap().status() == StatusCode::UNAUTHORIZED
        })
        .await,
        "the session outlived its 3 s lifetime"
    );
}

#[tokio::test]
async fn tokens_work_as_bearer_and_query_until_revoked_or_expired() {
    let hub = start(&config("")).await;
    let http = client();
    let create = |body: Value| {
        http.post(hub.url("/api/tokens"))
            .basic_auth("admin", Some(PASSWORD))
            .json(&body)
            .send()
    };
    let r = create(json!({"name": "kitchen", "cameras": ["b"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("chb_"), "{made}");
    let id = made["id"].as_i64().unwrap();

    let bearer = |path: &str| http.get(hub.url(path)).bearer_auth(&token).send();
    assert_eq!(
        bearer("/api/cameras/b/frame.jpeg").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        bearer("/api/cameras/a/frame.jpeg").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let q = format!("/api/cameras/b/frame.jpeg?width=160&token={token}");
    assert_eq!(
        http.get(hub.url(&q)).send().await.unwrap().status(),
        StatusCode::OK
    );
    let q = format!("/api/cameras/b/stream.mjpeg?token={token}");
    let r = http.get(hub.url(&q)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(r);

    // The list shows it without its secret.
    let list = http
        .get(hub.url("/api/tokens"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("kitchen") && !list.contains(&token), "{list}");

    // Revoked: refused at once.
    let r = http
        .delete(hub.url(&format!("/api/tokens/{id}")))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        bearer("/api/cameras/b/frame.jpeg").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Expired: refused after its time.
    let r = create(json!({"name": "brief", "expires_in": "2s"}))
        .await
        .unwrap();
    let brief: Value = r.json().await.unwrap();
    let brief = brief["token"].as_str().unwrap().to_owned();
    let status = || http.get(hub.url("/api/cameras")).bearer_auth(&brief).send();
    assert_eq!(status().await.unwrap().status(), StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(10), || async {
            status().await.unwrap().status() == StatusCode::UNAUTHORIZED
        })
        .await
    );

    // A metrics token reads /metrics and nothing else.
    let r = create(json!({"name": "prometheus", "role": "metrics"}))
        .await
        .unwrap();
    let metrics: Value = r.json().await.unwrap();
    let metrics = metrics["token"].as_str().unwrap().to_owned();
    let m = |path: &str| http.get(hub.url(path)).bearer_auth(&metrics).send();
    assert_eq!(m("/metrics").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        m("/api/cameras/a/frame.jpeg").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Bad requests are explained.
    let r = create(json!({"name": "x", "cameras": ["nope"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = create(json!({"name": "x", "role": "root"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Nothing secret reached the log.
    let log = hub.log();
    for secret in [
        token.as_str(),
        brief.as_str(),
        metrics.as_str(),
        PASSWORD,
        "$argon2id$",
    ] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

#[tokio::test]
async fn repeated_failures_ban_the_address_for_a_while() {
    let hub = start(&config("login_attempts = 3\nban_time = \"3s\"")).await;
    let http = client();
    let frame = |password: &'static str| {
        http.get(hub.url("/api/cameras/a/frame.jpeg"))
            .basic_auth("admin", Some(password))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            frame("wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Banned: even the right password is refused, with how long to wait.
    let r = frame(PASSWORD).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = http
        .post(hub.url("/api/login"))
        .json(&json!({"name": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Public routes still answer.
    assert_eq!(
        http.get(hub.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    // The ban runs out.
    assert!(
        eventually(Duration::from_secs(15), || async {
            frame(PASSWORD).await.unwrap().status() == StatusCode::OK
        })
        .await
    );
    assert!(hub.log().contains("banned for"), "{}", hub.log_tail(20));
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // camhub behind a proxy on loopback: bans hit the forwarded client, not the proxy.
    let hub = start(&config(
        "login_attempts = 2\nban_time = \"1h\"\ntrusted_proxies = [\"127.0.0.1\"]",
    ))
    .await;
    let http = client();
    let from = |ip: &str, password: &'static str| {
        http.get(hub.url("/api/cameras"))
            .header("x-forwarded-for", ip)
            .basic_auth("admin", Some(password))
            .send()
    };
    for _ in 0..2 {
        from("203.0.113.5", "wrong").await.unwrap();
    }
    assert_eq!(
        from("203.0.113.5", PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        from("203.0.113.6", PASSWORD).await.unwrap().status(),
        StatusCode::OK
    );

    // Without trusted_proxies the header is ignored: the ban hits the real peer.
    let hub = start(&config("login_attempts = 2\nban_time = \"1h\"")).await;
    let from = |ip: &str, password: &'static str| {
        http.get(hub.url("/api/cameras"))
            .header("x-forwarded-for", ip)
            .basic_auth("admin", Some(password))
            .send()
    };
    for _ in 0..2 {
        from("203.0.113.5", "wrong").await.unwrap();
    }
    assert_eq!(
        from("203.0.113.6", PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn websockets_from_other_sites_are_refused() {
    let hub = start(&config("")).await;
    let (cookie, _) = login(&hub, "admin").await;
    let connect = |origin: Option<&str>| {
        let mut request = hub
            .url("/api/ws")
            .replace("http://", "ws://")
            .into_client_request()
            .unwrap();
        let h = request.headers_mut();
        h.insert("cookie", cookie.parse().unwrap());
        if let Some(o) = origin {
            h.insert("origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    let own = format!("http://127.0.0.1:{}", hub.port());
    assert!(connect(Some(&own)).await.is_ok());
    assert!(connect(None).await.is_ok(), "programs send no Origin");
    match connect(Some("http://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a cross-site WebSocket was accepted: {other:?}"),
    }
}

#[tokio::test]
async fn security_headers_on_pages_and_api() {
    let hub = start(&config("")).await;
    let http = client();
    let page = http.get(hub.url("/login")).send().await.unwrap();
    let h: &HeaderMap = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert_eq!(
        h["x-content-type-options"],
        HeaderValue::from_static("nosniff")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    let api = http
        .get(hub.url("/api/cameras"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert_eq!(api.headers()["cache-control"], "no-store");
    // Refusals carry them too.
    let refused = http.get(hub.url("/api/cameras")).send().await.unwrap();
    assert_eq!(refused.headers()["x-frame-options"], "DENY");
}

#[test]
fn camhub_refuses_to_serve_beyond_loopback_without_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camhub.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"0.0.0.0:0\"\n\n[[camera]]\nid = \"a\"\nurl = \"demo:\"\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("with no [[user]]"), "{err}");
    assert!(err.contains("camhub hash-password"), "{err}");
    assert!(err.contains("auth = \"none\""), "{err}");
}

#[tokio::test]
async fn auth_none_is_allowed_when_written_and_the_ui_is_told() {
    let hub = start("[server]\nauth = \"none\"\n\n[[camera]]\nid = \"a\"\nurl = \"demo:\"\n").await;
    let session = client()
        .get(hub.url("/api/session"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(session["auth"], "none");
    assert!(
        hub.log().contains("auth = \"none\""),
        "{}",
        hub.log_tail(10)
    );
}

#[test]
fn hash_password_reads_stdin_and_prints_a_hash_that_logs_in() {
    use std::io::Write;
    let mut child = Command::new(bin())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret pass\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    // The hash is accepted by the config.
    let text = format!("[[user]]\nname = \"u\"\npassword_hash = \"{hash}\"\n");
    assert!(camhub_config::parse(&text, "t.toml").is_ok());
    // An empty password is refused.
    let out = Command::new(bin())
        .arg("hash-password")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

#[tokio::test]
async fn a_wrong_method_is_405_with_the_allowed_ones() {
    let hub = start(&config("")).await;
    let r = client().get(hub.url("/api/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    let r = client()
        .put(hub.url("/api/tokens"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, POST");
}
