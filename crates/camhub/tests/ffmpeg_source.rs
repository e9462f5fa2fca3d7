//! The `ffmpeg:` source against a server that accepts connections and never answers: the open
//! times out, and the reader thread stops with it (FFmpeg's blocking calls are interrupted), so
//! retries don't pile up threads and sockets.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{camera, eventually, start, wait_state};

fn input_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "cam-mute/input")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_does_not_leak_reader_threads() {
    // Accepts and holds every connection, says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let hub = start(&format!(
        "[[camera]]\nid = \"mute\"\nurl = \"ffmpeg:http://127.0.0.1:{port}/live.flv\"\nalways_on = true\n"
    ))
    .await;
    wait_state(&hub, "mute", "retrying", Duration::from_secs(30)).await;
    let reason = camera(&hub, "mute").await["last_error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        reason.contains("no answer") || reason.contains("timed out"),
        "{reason}"
    );
    // Each attempt waits 10 s for an answer. After the second attempt ends, at most one reader
    // thread (the current attempt's) may exist.
    let retried = eventually(Duration::from_secs(60), || async {
        camera(&hub, "mute").await["reconnects"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    })
    .await;
    assert!(retried, "{}", camera(&hub, "mute").await);
    let threads = input_threads(hub.pid());
    assert!(
        threads <= 1,
        "{threads} reader threads alive after 2 failed attempts"
    );
}
