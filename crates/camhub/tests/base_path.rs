//! camhub under a path prefix (`[server] base_path`), as behind a reverse proxy that forwards
//! `/camhub/…`: every route answers under the prefix and nowhere else (but `/healthz`), pages
//! carry `<base href="/camhub/">` so their relative links resolve, and login's redirects and
//! cookie stay inside the prefix.

#![allow(clippy::unwrap_used)]

mod common;

use common::start;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn everything_lives_under_the_prefix() {
    let hash = camhub::auth::hash_password("pw").unwrap();
    let hub = start(&format!(
        "[server]\nbase_path = \"/camhub/\"\n\n[[camera]]\nid = \"a\"\nurl = \"demo:?width=320&height=180&fps=10\"\n\n\
         [[user]]\nname = \"admin\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n"
    ))
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let status = |path: &str| {
        let url = hub.url(path);
        let http = http.clone();
        async move {
            http.get(url)
                .basic_auth("admin", Some("pw"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status("/camhub/api/cameras").await, StatusCode::OK);
    assert_eq!(
        status("/camhub/api/cameras/a/frame.jpeg").await,
        StatusCode::OK
    );
    assert_eq!(status("/camhub/style.css").await, StatusCode::OK);
    assert_eq!(status("/camhub").await, StatusCode::OK);
    assert_eq!(status("/api/cameras").await, StatusCode::NOT_FOUND);
    assert_eq!(status("/healthz").await, StatusCode::OK);
    assert_eq!(status("/camhub/healthz").await, StatusCode::OK);
    let r = http.get(hub.url("/camhub/")).send().await.unwrap();
    assert!(r.status().is_redirection());

    // Pages carry the prefix as their base.
    let page = http
        .get(hub.url("/camhub/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<base href=\"/camhub/\">"), "{page}");
    // Anonymous page requests go to the login page under the prefix, and come back.
    let r = http.get(hub.url("/camhub/cameras/a")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/camhub/login?next=%2Fcamhub%2Fcameras%2Fa"
    );
    let r = http
        .post(hub.url("/camhub/api/login"))
        .form(&[
            ("name", "admin"),
            ("password", "pw"),
            ("next", "/camhub/cameras/a"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/camhub/cameras/a");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    // The grid is at /camhub itself: a Path=/camhub/ cookie would not be sent there.
    assert!(cookie.contains("Path=/camhub;"), "{cookie}");
    let r = http
        .post(hub.url("/camhub/api/login"))
        .form(&[("name", "admin"), ("password", "nope")])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/camhub/login?error=wrong&next=%2Fcamhub%2F"),
        "{:?}",
        r.headers()["location"]
    );

    // The grid WebSocket under the prefix, with the session cookie.
    let mut request = hub
        .url("/camhub/api/ws")
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    request
        .headers_mut()
        .insert("cookie", pair.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!({"subscribe": [{"camera": "a"}]}).to_string().into(),
    ))
    .await
    .unwrap();
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(20), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "frame" {
                break;
            }
        }
    }
}
