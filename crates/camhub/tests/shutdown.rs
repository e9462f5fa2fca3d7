//! Shutdown says goodbye to the cameras: SIGTERM closes every connection and waits (bounded) for the
//! TEARDOWN of every RTSP session, checked against a real GStreamer RTSP server.

mod common;

use std::time::Duration;

use camhub_testkit::{RtspServer, RtspServerOptions};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_tears_down_every_rtsp_session() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let config = format!(
        "[[camera]]\nid = \"a\"\nurl = \"{}\"\nalways_on = true\n\n\
         [[camera]]\nid = \"b\"\nurl = \"{}\"\nalways_on = true\n",
        rtsp.url("/h264"),
        rtsp.url("/h265"),
    );
    let mut hub = start(&config).await;
    wait_state(&hub, "a", "streaming", Duration::from_secs(20)).await;
    wait_state(&hub, "b", "streaming", Duration::from_secs(20)).await;
    assert_eq!(
        rtsp.count("TEARDOWN", "/h264") + rtsp.count("TEARDOWN", "/h265"),
        0
    );
    let status = hub.terminate().await.expect("camhub exited");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        hub.log_tail(20)
    );
    // The TEARDOWNs were sent before camhub exited: they are in the server's log right away.
    assert!(
        rtsp.wait_for("TEARDOWN", "/h264", 1, Duration::from_secs(2))
            .await
            && rtsp
                .wait_for("TEARDOWN", "/h265", 1, Duration::from_secs(2))
                .await,
        "a session was not torn down at shutdown; events: {:?}\ncamhub log:\n{}",
        rtsp.events(),
        hub.log_tail(20)
    );
}
