//! The C and C++ examples build with the system compilers against include/camhub.h and
//! libcamhub.so, and read frames from the test RTSP server; the C API under valgrind gives every
//! byte back over repeated open/close ("definitely lost: 0 bytes").

use std::path::{Path, PathBuf};
use std::process::Command;

use camhub_testkit::{RtspServer, RtspServerOptions};

/// The directory cargo put libcamhub.so in (the test binary lives in its `deps/`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    let dir = deps.parent().expect("profile dir").to_path_buf();
    assert!(
        dir.join("libcamhub.so").exists() || deps.join("libcamhub.so").exists(),
        "no libcamhub.so next to {}",
        exe.display()
    );
    if dir.join("libcamhub.so").exists() {
        dir
    } else {
        deps.to_path_buf()
    }
}

/// Compiles `examples/{source}` with `compiler` into `out`, linking libcamhub.so.
fn build(compiler: &str, source: &str, extra: &[&str], out: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    let status = Command::new(compiler)
        .arg(manifest.join("examples").join(source))
        .args(["-Wall", "-Wextra", "-Werror", "-g"])
        .args(extra)
        .arg(format!("-I{}", manifest.join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lcamhub")
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(status.success(), "{compiler} {source} failed");
}

fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("300")
        .arg(program)
        .args(args)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `key=value` out of an example's output line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_and_cpp_examples_read_the_test_camera() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let url = rtsp.url("/h264");
    let dir = tempdir();

    let c = dir.join("read");
    build("cc", "read.c", &["-std=c99"], &c);
    let out = tokio::task::spawn_blocking({
        let (c, url) = (c.clone(), url.clone());
        move || run(&c, &[&url, "8"])
    })
    .await
    .expect("C example");
    let frames: Vec<&str> = out.lines().filter(|l| l.starts_with("frame ")).collect();
    assert_eq!(frames.len(), 8, "{out}");
    let mut last = 0u64;
    for line in &frames {
        assert_eq!(field(line, "size"), "320x180", "{line}");
        let seq: u64 = field(line, "seq").parse().expect("seq");
        assert!(seq > last, "sequence numbers increase: {out}");
        last = seq;
        for v in field(line, "white").split(',') {
            assert!(v.parse::<u8>().expect("level") > 235, "white patch: {line}");
        }
        let time: u64 = field(line, "time").parse().expect("time");
        assert!(time.abs_diff(unix_ms()) < 60_000, "{line}");
    }
    assert!(out.contains("gray size=160x90 bytes=14400"), "{out}");

    let cpp = dir.join("read_cpp");
    build("c++", "read.cpp", &["-std=c++17", "-pthread"], &cpp);
    let out = tokio::task::spawn_blocking({
        let (cpp, url) = (cpp.clone(), url.clone());
        move || run(&cpp, &[&url, "5"])
    })
    .await
    .expect("C++ example");
    for thread in ["thread 1 ", "thread 2 "] {
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with(thread)).collect();
        assert_eq!(lines.len(), 5, "{out}");
        for line in lines {
            assert_eq!(field(line, "size"), "320x180", "{line}");
            for v in field(line, "white").split(',') {
                assert!(v.parse::<u8>().expect("level") > 235, "white patch: {line}");
            }
        }
    }
    // 64x36 I420: 64*36 + 2 * 32*18.
    assert!(out.contains("yuv420 size=64x36 bytes=3456"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_open_and_close_lose_nothing_under_valgrind() {
    let rtsp = RtspServer::start(RtspServerOptions::default()).await;
    let url = rtsp.url("/h264");
    let dir = tempdir();
    let program = dir.join("open_close");
    build("cc", "open_close.c", &["-std=c99"], &program);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("600")
            .arg("valgrind")
            .args(["--leak-check=full", "--errors-for-leak-kinds=definite"])
            .arg(&program)
            .args([&url, "3"])
            .output()
            .expect("run valgrind (Debian package valgrind)")
    })
    .await
    .expect("valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{report}", out.status);
    for round in 0..3 {
        assert!(stdout.contains(&format!("round {round} ok")), "{stdout}");
    }
    assert!(stdout.contains("unreachable: "), "{stdout}");
    let lost = report
        .lines()
        .find(|l| l.contains("definitely lost:"))
        .map(|l| l.contains("definitely lost: 0 bytes"))
        // Without the line valgrind found no leak at all ("All heap blocks were freed").
        .unwrap_or_else(|| report.contains("no leaks are possible"));
    assert!(lost, "valgrind's leak summary:\n{report}");
}

fn tempdir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("camhub-capi-{}-{}", std::process::id(), unix_ms()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
