//! HTTPS with `[server] tls_cert` / `tls_key`: a test CA and server certificate made here (rcgen),
//! checked with the real curl (HTTP/1.1 and HTTP/2), reqwest and a rustls client; a renewed
//! certificate is served without a restart, a broken one is refused and the old one kept; a
//! missing or wrong file stops camhub at start with its name; the session cookie is `Secure`;
//! headless Chromium loads the UI over HTTP/2 and still opens the grid WebSocket.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camhub_testkit::{free_port, jpeg_size, Chromium};
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use tokio_rustls::rustls;

/// A test certificate authority.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "camhub test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A server certificate for localhost and 127.0.0.1 with this serial and common name, written
    /// to `cert` and `key`; its DER.
    fn issue(&self, serial: u64, name: &str, cert: &Path, key: &Path) -> Vec<u8> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        let key_pair = KeyPair::generate().unwrap();
        let issued = params.signed_by(&key_pair, &self.0).unwrap();
        std::fs::write(cert, issued.pem()).unwrap();
        std::fs::write(key, key_pair.serialize_pem()).unwrap();
        issued.der().to_vec()
    }
}

/// camhub serving HTTPS on a free port, killed on drop.
struct Hub {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
}

impl Hub {
    /// Runs camhub in `dir` with `config` (plus `listen` on a free port) and waits until
    /// `https://localhost:PORT/healthz` answers through the CA in `dir/ca.pem`.
    async fn start(dir: tempfile::TempDir, config: &str) -> Hub {
        let port = free_port();
        let path = dir.path().join("camhub.toml");
        std::fs::write(
            &path,
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{config}"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("camhub.log")).unwrap();
        let child = Command::new(common::bin())
            .arg("--config")
            .arg(&path)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let ca = dir.path().join("ca.pem");
        let mut hub = Hub {
            child: Some(child),
            dir,
            port,
            ca,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = hub.curl(&["-sS", "--max-time", "2"], "/healthz");
            if out.status.success() {
                assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
                return hub;
            }
            if let Some(status) = hub.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("camhub exited ({status}):\n{}", hub.log());
            }
            assert!(Instant::now() < deadline, "not healthy:\n{}", hub.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("camhub.log")).unwrap_or_default()
    }

    /// The curl CLI with the test CA.
    fn curl(&self, args: &[&str], path: &str) -> Output {
        Command::new("curl")
            .arg("--cacert")
            .arg(&self.ca)
            .args(args)
            .arg(self.url(path))
            .output()
            .expect("curl (scripts/setup.sh installs it)")
    }

    /// A reqwest client that trusts the test CA (HTTP/1.1: camhub's reqwest has no HTTP/2).
    fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// The certificate camhub presents to a new handshake (DER), seen by a rustls client that
    /// trusts the test CA.
    async fn served_certificate(&self) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

use rustls::pki_types::pem::PemObject;

/// A temp dir with `ca.pem`, `cert.pem` and `key.pem` (serial 1, CN "camhub first").
fn certs() -> (tempfile::TempDir, Ca, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let der = ca.issue(
        1,
        "camhub first",
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
    );
    (dir, ca, der)
}

const CAMERA: &str = "[[camera]]\nid = \"demo\"\nurl = \"demo:\"\n";

/// Frames (multipart parts) in an MJPEG body.
fn parts(body: &[u8]) -> usize {
    body.windows(8).filter(|w| w == b"--frame\r").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_http2_mjpeg_snapshots_and_certificate_renewal() {
    let (dir, ca, first) = certs();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let hub = Hub::start(
        dir,
        &format!("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n{CAMERA}"),
    )
    .await;
    assert!(hub.log().contains("on https://127.0.0.1:"), "{}", hub.log());
    // A client that connects and never says anything holds up no one, and is dropped when the
    // handshake times out (10 s; checked at the end).
    let silent = std::net::TcpStream::connect(("127.0.0.1", hub.port)).unwrap();
    let silent_since = Instant::now();

    // curl negotiates HTTP/2 when it may, and HTTP/1.1 when told to.
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = hub.curl(
            &["-sS", flag, "-o", "/dev/null", "-w", "%{http_version}"],
            "/healthz",
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), version, "{flag}");
    }
    // HTTPS only: plain HTTP on the port gets no answer.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{}/healthz", hub.port))
        .output()
        .unwrap();
    assert!(!plain.status.success(), "{plain:?}");

    // A snapshot over HTTP/2.
    let snap = hub.dir.path().join("snap.jpg");
    let out = hub.curl(
        &[
            "-sS",
            "--http2",
            "-o",
            snap.to_str().unwrap(),
            "-w",
            "%{http_version} %{http_code}",
        ],
        "/api/cameras/demo/frame.jpeg?width=320",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}");
    let jpeg = std::fs::read(&snap).unwrap();
    assert_eq!(jpeg_size(&jpeg), Some((320, 180)));

    // MJPEG over HTTP/2 (curl, for 3 s: it stops with "timeout", exit 28) delivers frames.
    let mjpeg = hub.dir.path().join("h2.mjpeg");
    let out = hub.curl(
        &[
            "-sS",
            "--http2",
            "--max-time",
            "3",
            "-o",
            mjpeg.to_str().unwrap(),
            "-w",
            "%{http_version}",
        ],
        "/api/cameras/demo/stream.mjpeg?width=320",
    );
    assert_eq!(out.status.code(), Some(28), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2");
    let body = std::fs::read(&mjpeg).unwrap();
    // The demo camera runs at 25 fps: far more than 10 in 3 s, however slow the machine.
    assert!(parts(&body) >= 10, "{} frames over HTTP/2", parts(&body));

    // MJPEG over HTTP/1.1 with TLS (reqwest + rustls + the test CA).
    let response = hub
        .client()
        .get(hub.url("/api/cameras/demo/stream.mjpeg?width=320"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while parts(&body) < 5 && Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        body.extend_from_slice(&chunk);
    }
    assert!(parts(&body) >= 5, "{} frames over HTTP/1.1", parts(&body));
    let start = body.windows(2).position(|w| w == [0xFF, 0xD8]).unwrap();
    assert_eq!(jpeg_size(&body[start..]), Some((320, 180)));
    drop(stream);

    // Renewal: a new certificate and key in the same files, served without a restart.
    assert_eq!(hub.served_certificate().await, first);
    let renewed = ca.issue(2, "camhub renewed", &cert, &key);
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.served_certificate().await != renewed {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served:\n{}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        hub.log()
            .contains("TLS: the files changed: now serving the certificate in cert.pem"),
        "{}",
        hub.log()
    );

    // A broken renewal (a key that is not the certificate's) is logged; the last good pair stays.
    let other = dir_key_of_another_certificate(&ca, hub.dir.path());
    std::fs::copy(&other, &key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !hub.log().contains("cannot be used") {
        assert!(Instant::now() < deadline, "no error logged:\n{}", hub.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        hub.log()
            .contains("is not the key of the certificate in tls_cert cert.pem"),
        "{}",
        hub.log()
    );
    assert_eq!(hub.served_certificate().await, renewed);
    let out = hub.curl(&["-sS", "--http2"], "/healthz");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");

    let wait = Duration::from_secs(25).saturating_sub(silent_since.elapsed());
    silent
        .set_read_timeout(Some(wait.max(Duration::from_secs(1))))
        .unwrap();
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut &silent, &mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!(
            "the silent connection is still open after {:?}: {other:?}",
            silent_since.elapsed()
        ),
    }
    assert!(silent_since.elapsed() >= Duration::from_secs(9));
}

/// The key file of a certificate other than the served one.
fn dir_key_of_another_certificate(ca: &Ca, dir: &Path) -> PathBuf {
    let (cert, key) = (dir.join("other.pem"), dir.join("other-key.pem"));
    ca.issue(3, "camhub other", &cert, &key);
    key
}

/// Runs camhub with `config` in `dir` and expects it to refuse to start: its stderr.
fn refused(dir: &Path, config: &str) -> String {
    let path = dir.join("camhub.toml");
    let port = free_port();
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{config}{CAMERA}"),
    )
    .unwrap();
    let out = Command::new(common::bin())
        .arg("--config")
        .arg(&path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "camhub started with\n{config}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_or_wrong_file_refuses_to_start_naming_it() {
    let (dir, ca, _) = certs();
    let dir = dir.path();

    let e = refused(
        dir,
        "tls_cert = \"cert.pem\"\ntls_key = \"missing-key.pem\"\n",
    );
    let shown = dir.join("missing-key.pem");
    assert!(
        e.contains(&format!(
            "cannot read [server] tls_key {}: No such file or directory",
            shown.display()
        )),
        "{e}"
    );
    assert!(e.contains("check the path"), "{e}");

    let other = dir_key_of_another_certificate(&ca, dir);
    let e = refused(
        dir,
        &format!(
            "tls_cert = \"cert.pem\"\ntls_key = \"{}\"\n",
            other.display()
        ),
    );
    assert!(
        e.contains("is not the key of the certificate in tls_cert cert.pem"),
        "{e}"
    );

    let e = refused(dir, "tls_cert = \"key.pem\"\ntls_key = \"cert.pem\"\n");
    assert!(e.contains("are tls_cert and tls_key swapped?"), "{e}");

    // A certificate without a key is a config error (camhub check finds it too), with its line.
    let e = refused(dir, "tls_cert = \"cert.pem\"\n");
    assert!(
        e.contains("camhub.toml:3:12: server.tls_key: tls_cert is set but tls_key is not"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_is_secure_under_tls() {
    let mut hash = Command::new(common::bin())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    hash.stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = hash.wait_with_output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    let (dir, _, _) = certs();
    let hub = Hub::start(
        dir,
        &format!(
            "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n{CAMERA}\n\
             [[user]]\nname = \"alice\"\nrole = \"admin\"\npassword_hash = \"{}\"\n",
            hash.trim()
        ),
    )
    .await;
    let response = hub
        .client()
        .post(hub.url("/api/login"))
        .json(&serde_json::json!({"name": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", hub.log());
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("camhub_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

/// What a browser does: the page comes over HTTP/2 (ALPN), and the grid WebSocket still opens —
/// camhub does not advertise extended CONNECT, so Chromium makes an HTTP/1.1 connection for it.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_loads_the_ui_over_http2_and_opens_the_websocket() {
    let (dir, _, _) = certs();
    let hub = Hub::start(
        dir,
        &format!("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n{CAMERA}"),
    )
    .await;
    let mut chromium = Chromium::start().await;
    chromium
        .call(
            "Security.setIgnoreCertificateErrors",
            serde_json::json!({"ignore": true}),
        )
        .await;
    chromium.open(&hub.url("/")).await;
    let protocol = chromium
        .eval("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        .await;
    assert_eq!(protocol, "h2", "{}", hub.log());
    // A WebSocket of our own on the same page: it opens and carries a frame of the demo camera.
    chromium
        .eval(&format!(
            "window.wsResult = 'pending';
             const ws = new WebSocket('wss://localhost:{}/api/ws');
             ws.binaryType = 'arraybuffer';
             ws.onopen = () => ws.send(JSON.stringify({{subscribe: [{{camera: 'demo', width: 160}}]}}));
             ws.onmessage = (m) => {{ if (m.data instanceof ArrayBuffer) window.wsResult = 'frame'; }};
             ws.onerror = () => window.wsResult = 'error';
             ws.onclose = (e) => {{ if (window.wsResult === 'pending') window.wsResult = 'closed ' + e.code; }};
             'started'",
            hub.port
        ))
        .await;
    let ok = chromium
        .wait_until("window.wsResult === 'frame'", Duration::from_secs(20))
        .await;
    assert!(
        ok,
        "WebSocket over TLS: {}\n{}",
        chromium.eval("window.wsResult").await,
        hub.log()
    );
}
