//! The ffmpeg one-client MJPEG camera: one client at a time, counted, restartable.

use std::time::Duration;

use camhub_testkit::{decode_jpeg_rgb, MjpegReader, OneClientMjpegCamera};

#[tokio::test(flavor = "multi_thread")]
async fn serves_exactly_one_client_at_a_time() {
    let mut camera = OneClientMjpegCamera::start(320, 240, 10).await;
    assert_eq!(
        camera.connections(),
        0,
        "waiting for a client is not a connection"
    );

    let mut first = MjpegReader::connect(&camera.url())
        .await
        .expect("first client");
    assert_eq!(
        first.content_type(),
        "multipart/x-mixed-replace;boundary=ffmpeg"
    );
    let frame = first
        .next_frame_within(Duration::from_secs(10))
        .await
        .expect("a frame");
    let (w, h, _) = decode_jpeg_rgb(&frame);
    assert_eq!((w, h), (320, 240));
    assert!(camera.wait_connections(1, Duration::from_secs(5)).await);

    // While the first client streams, the camera does not listen: a second client is refused.
    assert!(!camera.is_listening());
    let second = MjpegReader::connect(&camera.url()).await;
    assert!(
        second.is_err(),
        "a second concurrent client must be refused"
    );
    let curl = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-m", "3", &camera.url()])
        .status()
        .expect("run curl");
    assert_eq!(
        curl.code(),
        Some(7),
        "curl must fail to connect (exit 7) while a client is served"
    );
    for _ in 0..5 {
        first
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("the first client keeps streaming");
    }
    assert_eq!(camera.connections(), 1);

    // The client leaves: ffmpeg exits, the supervisor starts a new one, the next client is served.
    drop(first);
    assert!(
        camera.wait_listening(Duration::from_secs(10)).await,
        "the camera must come back for the next client"
    );
    let mut next = MjpegReader::connect(&camera.url())
        .await
        .expect("next client");
    next.next_frame_within(Duration::from_secs(10))
        .await
        .expect("a frame for the next client");
    assert!(camera.wait_connections(2, Duration::from_secs(5)).await);
    drop(next);

    // A camera that goes away and comes back on the same port.
    camera.stop();
    assert!(
        MjpegReader::connect(&camera.url()).await.is_err(),
        "a stopped camera refuses clients"
    );
    camera.start_again().await;
    let mut again = MjpegReader::connect(&camera.url())
        .await
        .expect("client after start_again");
    again
        .next_frame_within(Duration::from_secs(10))
        .await
        .expect("a frame after start_again");
    assert!(camera.wait_connections(3, Duration::from_secs(5)).await);
    assert_eq!(camera.connections(), 3);
}
