//! Helpers shared by the testkit's own tests (included with `mod common;`).
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `ffmpeg -v info <args>` and returns (success, stderr); stops it (SIGKILL) after `limit`.
pub fn ffmpeg(args: &[&str], limit: Duration) -> (bool, String) {
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "info"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg");
    let mut stderr = child.stderr.take().expect("ffmpeg stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ffmpeg") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().expect("ffmpeg stderr thread");
    (status.is_some_and(|s| s.success()), text)
}

/// Frame sizes ffmpeg's `showinfo` filter reported, one per frame.
pub fn showinfo_sizes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("Parsed_showinfo") && l.contains(" n:"))
        .filter_map(|l| l.split(" s:").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// One JPEG grabbed from `url` by ffmpeg (frame `skip` + 1, so a decoder has settled).
pub fn grab_jpeg(url: &str, skip: u32) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-v", "error"]);
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    let out = cmd
        .args([
            "-i",
            url,
            "-vf",
            &format!("select=gte(n\\,{skip})"),
            "-frames:v",
            "1",
        ])
        .args(["-c:v", "mjpeg", "-q:v", "2", "-f", "image2pipe", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg to grab a JPEG");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "grab {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
