//! Headless Chromium over DevTools against a tiny page served by our own tokio server.

use std::time::Duration;

use camhub_testkit::Chromium;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGE: &str = "<!doctype html><title>t</title><body><p id=p>0</p><script>
window.ticks = 0;
setInterval(() => { window.ticks += 1; document.getElementById('p').textContent = String(window.ticks); }, 50);
window.answer = { ok: true, n: 42, list: [1, 2] };
</script></body>";

async fn serve_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    PAGE.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(PAGE.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_reads_live_page_state_and_drop_leaves_no_process() {
    let url = serve_page().await;
    let mut browser = Chromium::start().await;
    browser.open(&url).await;
    assert_eq!(
        browser.eval("window.answer").await,
        serde_json::json!({ "ok": true, "n": 42, "list": [1, 2] })
    );
    assert!(
        browser
            .wait_until("window.ticks >= 10", Duration::from_secs(10))
            .await
    );
    let text = browser
        .eval("document.getElementById('p').textContent")
        .await;
    assert!(
        text.as_str()
            .and_then(|t| t.parse::<u32>().ok())
            .is_some_and(|n| n >= 10),
        "{text}"
    );
    assert_eq!(
        browser
            .eval("new Promise(r => setTimeout(() => r('later'), 100))")
            .await,
        "later"
    );

    let dir = tempfile::tempdir().expect("tmp");
    let png = dir.path().join("page.png");
    browser.screenshot(&png).await;
    let bytes = std::fs::read(&png).expect("screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    // Every Chromium process, crashpad handlers included, carries the marker; none may outlive Drop.
    let marker = format!(
        "CAMHUB_TESTKIT_CHROMIUM={}",
        browser.profile_dir().display()
    );
    let ours = |marker: &str| -> Vec<String> {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("environ")).is_ok_and(|raw| {
                    String::from_utf8_lossy(&raw)
                        .split('\0')
                        .any(|v| v == marker)
                })
            })
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
            .collect()
    };
    let running = ours(&marker);
    assert!(
        running.iter().any(|c| c.contains("crashpad")),
        "expected crashpad handlers among {running:?}"
    );
    drop(browser);
    let survivors = ours(&marker);
    assert!(
        survivors.is_empty(),
        "Chromium processes left behind: {survivors:?}"
    );
}
