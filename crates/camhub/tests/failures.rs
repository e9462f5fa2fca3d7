//! A camera that cannot be reached says why, with a kind a user (and the UI) can act on: the
//! password, the address, the path. Real failures: a GStreamer RTSP server refusing a password,
//! a port nobody listens on, a file that does not exist.

mod common;

use std::time::Duration;

use camhub_testkit::{free_port, RtspServer, RtspServerOptions};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failures_have_a_kind_in_the_api() {
    let rtsp =
        RtspServer::start(RtspServerOptions::default().with_auth("admin", "right-pw-1")).await;
    let wrong = rtsp.url("/h264").replace("right-pw-1", "wrong-pw-2");
    let config = format!(
        "[[camera]]\nid = \"auth\"\nurl = \"{wrong}\"\nalways_on = true\n\n\
         [[camera]]\nid = \"refused\"\nurl = \"rtsp://127.0.0.1:{}/x\"\nalways_on = true\n\n\
         [[camera]]\nid = \"missing\"\nurl = \"ffmpeg:/nonexistent/camhub-test.mp4\"\nalways_on = true\n",
        free_port()
    );
    let hub = start(&config).await;
    for (id, kind) in [
        ("auth", "auth"),
        ("refused", "refused"),
        ("missing", "not_found"),
    ] {
        let ok = eventually(Duration::from_secs(20), || async {
            camera(&hub, id).await["error_kind"] == kind
        })
        .await;
        let cam = camera(&hub, id).await;
        assert!(ok, "{id}: expected error_kind {kind}: {cam}");
        assert!(
            cam["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{cam}"
        );
    }
}
