//! The Debian package `scripts/package-deb.sh` builds, made from the binary Cargo built for these tests
//! (`--binary`, so no release build) into a temp dir (`--out`): its files and their modes, the conffile,
//! the control fields (runtime dependencies, nothing from the test stack), the maintainer scripts, the
//! systemd unit as `systemd-analyze verify` sees it, and the packaged binary, extracted with
//! `dpkg-deb -x`, serving the demo camera with the packaged config.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use camhub_testkit::{jpeg_size, Camhub};
use common::{bin, get};

/// This repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `command`, panicking with its output unless it succeeds; returns stdout.
fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A .deb built by `scripts/package-deb.sh` in its own temp dir.
struct Deb {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Deb {
    /// `bash scripts/package-deb.sh --binary <test build> --out <temp dir>`.
    fn build() -> Deb {
        let dir = tempfile::Builder::new()
            .prefix("camhub-deb-test-")
            .tempdir()
            .unwrap();
        let out = dir.path().join("out");
        let stdout = run(Command::new("bash")
            .arg(repo().join("scripts/package-deb.sh"))
            .arg("--binary")
            .arg(bin())
            .arg("--out")
            .arg(&out));
        let arch = run(Command::new("dpkg").arg("--print-architecture"));
        let path = out.join(format!(
            "camhub_{}_{}.deb",
            env!("CARGO_PKG_VERSION"),
            arch.trim()
        ));
        assert!(path.is_file(), "no {} after:\n{stdout}", path.display());
        assert_eq!(
            stdout.trim(),
            path.display().to_string(),
            "package-deb.sh prints the .deb's path last"
        );
        Deb { dir, path }
    }

    /// `dpkg-deb ARGS <deb>` (or `dpkg-deb ARGS <deb> EXTRA`): its stdout.
    fn dpkg_deb(&self, args: &[&str], extra: &[&Path]) -> String {
        run(Command::new("dpkg-deb")
            .args(args)
            .arg(&self.path)
            .args(extra))
    }

    /// The package's files, extracted with `dpkg-deb -x` into a fresh directory.
    fn extract(&self) -> PathBuf {
        let root = self.dir.path().join("root");
        self.dpkg_deb(&["-x"], &[&root]);
        root
    }
}

/// One line of `dpkg-deb -c`: mode string, owner/group, path (without the leading `./`).
fn listing(deb: &Deb) -> Vec<(String, String, String)> {
    deb.dpkg_deb(&["-c"], &[])
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // -rw-r--r-- root/root 1868 2026-01-01 12:00 ./etc/camhub/camhub.toml
            let path = fields.get(5)?.trim_start_matches("./").to_owned();
            Some((fields[0].to_owned(), fields[1].to_owned(), path))
        })
        .collect()
}

/// The package names of a `Depends:` value (`a (>= 1), b | c` → a, b, c).
fn package_names(depends: &str) -> Vec<String> {
    depends
        .split([',', '|'])
        .filter_map(|alt| alt.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name).to_owned())
        .collect()
}

#[test]
fn deb_holds_binary_unit_conffile_and_maintainer_scripts() {
    let deb = Deb::build();

    let files = listing(&deb);
    let entry = |path: &str| {
        files
            .iter()
            .find(|(_, _, p)| p == path)
            .unwrap_or_else(|| panic!("{path} not in the package: {files:?}"))
    };
    assert_eq!(entry("usr/bin/camhub").0, "-rwxr-xr-x");
    assert_eq!(entry("lib/systemd/system/camhub.service").0, "-rw-r--r--");
    // Passwords live in the config: not world-readable (postinst gives it group camhub).
    assert_eq!(entry("etc/camhub/camhub.toml").0, "-rw-r-----");
    for (mode, owner, path) in &files {
        assert_eq!(owner, "root/root", "{mode} {owner} {path}");
    }

    // The config is a conffile: an administrator's edits survive upgrades.
    let conffiles = deb.dpkg_deb(&["-I"], &[Path::new("conffiles")]);
    assert_eq!(conffiles.trim(), "/etc/camhub/camhub.toml");

    // Control fields.
    let field = |name: &str| deb.dpkg_deb(&["-f"], &[Path::new(name)]).trim().to_owned();
    assert_eq!(field("Package"), "camhub");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Section"), "video");
    assert_eq!(field("Priority"), "optional");
    assert!(!field("Maintainer").is_empty());
    assert!(field("Description").starts_with("self-hosted camera hub"));
    let depends = package_names(&field("Depends"));
    for lib in [
        "libavcodec",
        "libavformat",
        "libavutil",
        "libswscale",
        "libavdevice",
    ] {
        assert!(
            depends
                .iter()
                .any(|d| d.starts_with(lib) && d[lib.len()..].chars().all(|c| c.is_ascii_digit())),
            "Depends should name the {lib} package this binary links: {depends:?}"
        );
    }
    assert!(depends.iter().any(|d| d == "libc6"), "{depends:?}");
    assert!(depends.iter().any(|d| d == "adduser"), "{depends:?}");
    for dep in &depends {
        let test_stack = dep == "ffmpeg"
            || dep.starts_with("gstreamer")
            || dep.starts_with("gir1.2-")
            || dep.starts_with("python3")
            || dep.starts_with("chromium")
            || dep == "systemd";
        assert!(
            !test_stack,
            "{dep} is not a runtime dependency: {depends:?}"
        );
    }

    // Maintainer scripts: executable, valid POSIX sh, and doing their jobs.
    let control = deb.dir.path().join("control");
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb.path)
        .arg(&control));
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.join(script);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o755, "{script} mode {mode:o}");
        run(Command::new("sh").arg("-n").arg(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{script}:\n{text}");
        assert!(text.contains("\nset -e\n"), "{script}:\n{text}");
    }
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    for needle in [
        "adduser --system",
        "--ingroup camhub",
        "adduser --quiet camhub video",
        "chown root:camhub \"$CONFIG\"",
        "chmod 0640 \"$CONFIG\"",
        "deb-systemd-helper enable camhub.service",
        "daemon-reload",
    ] {
        assert!(
            postinst.contains(needle),
            "postinst lacks {needle:?}:\n{postinst}"
        );
    }
    let prerm = std::fs::read_to_string(control.join("prerm")).unwrap();
    assert!(prerm.contains("stop camhub.service"), "{prerm}");
    let postrm = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(
        postrm.contains("deluser --system --quiet camhub"),
        "{postrm}"
    );

    // The unit: what the issue asks of it, and systemd's own verdict.
    let root = deb.extract();
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/camhub.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for line in [
        "ExecStart=/usr/bin/camhub --config /etc/camhub/camhub.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=camhub",
        "Group=camhub",
        "SupplementaryGroups=video",
        "StateDirectory=camhub",
        "WorkingDirectory=/var/lib/camhub",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "WantedBy=multi-user.target",
    ] {
        assert!(lines.contains(&line), "the unit lacks {line:?}:\n{unit}");
    }
    // Webcams: a device allow-list (PrivateDevices, DevicePolicy, DeviceAllow, or ProtectClock, which
    // implies one) would hide /dev/video* from the service.
    for key in [
        "PrivateDevices=",
        "DevicePolicy=",
        "DeviceAllow=",
        "ProtectClock=",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(key)),
            "{key} would lock webcams out:\n{unit}"
        );
    }
    verify_unit(&unit, &root.join("usr/bin/camhub"));
}

/// `systemd-analyze verify` on the unit, its `ExecStart` pointing at the extracted binary (verify wants the
/// program to exist). Fails on any message about the unit: unknown keys are only warnings to systemd.
fn verify_unit(unit: &str, binary: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camhub.service");
    let rewritten = unit.replace(
        "ExecStart=/usr/bin/camhub ",
        &format!("ExecStart={} ", binary.display()),
    );
    assert_ne!(rewritten, unit, "no ExecStart=/usr/bin/camhub in the unit");
    std::fs::write(&path, rewritten).unwrap();
    let out: Output = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run systemd-analyze ({e}): install the Debian package systemd (bash scripts/setup.sh test)"
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("camhub.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify ({}):\n{stderr}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn extracted_package_serves_the_demo_with_its_config() {
    let deb = Deb::build();
    let root = deb.extract();
    let camhub = root.join("usr/bin/camhub");
    let config_path = root.join("etc/camhub/camhub.toml");

    let version = run(Command::new(&camhub).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("camhub {}", env!("CARGO_PKG_VERSION"))
    );
    // Debug info stripped: smaller than the binary it was made from.
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&camhub) < size(&bin()),
        "the packaged binary is not stripped"
    );

    // The packaged config passes `camhub check`, with no warning (so --strict passes too).
    let check = Command::new(&camhub)
        .args(["check", "--strict"])
        .arg(&config_path)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "camhub check --strict: {report}");
    assert!(report.contains("valid, 1 camera(s)"), "{report}");

    // Run it as the service would, but on a free port and with its data in a temp dir.
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        config.contains("\nlisten = \"127.0.0.1:8080\"\n"),
        "{config}"
    );
    let data_dir = "data_dir = \"/var/lib/camhub\"";
    assert!(config.contains(data_dir), "{config}");
    let config = config.replace(data_dir, "data_dir = \"camhub-data\"");
    let hub = Camhub::start(&camhub, &config).await;

    let cameras = get(&hub.url("/api/cameras")).await;
    assert_eq!(cameras.status, 200, "{}", cameras.text());
    let ids: Vec<String> = cameras
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, ["demo"]);

    let frame = get(&hub.url("/api/cameras/demo/frame.jpeg")).await;
    assert_eq!(frame.status, 200, "{}\n{}", frame.text(), hub.log_tail(20));
    assert_eq!(frame.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(
        jpeg_size(&frame.body),
        Some((1280, 720)),
        "the demo camera is 1280x720"
    );
}

/// `config` with the commented-out example tables whose header is `#[[TABLE]]` uncommented: the header
/// and the `#key = value` lines that follow it.
fn uncomment(config: &str, table: &str) -> String {
    let header = format!("#[[{table}]]");
    let mut in_example = false;
    let mut out: Vec<&str> = Vec::new();
    for line in config.lines() {
        if line == header {
            in_example = true;
            out.push(&line[1..]);
            continue;
        }
        let assignment = line.strip_prefix('#').filter(|rest| {
            rest.split_once(" = ")
                .is_some_and(|(key, _)| !key.contains(' '))
        });
        match assignment {
            Some(rest) if in_example => out.push(rest),
            _ => {
                in_example = false;
                out.push(line);
            }
        }
    }
    out.join("\n") + "\n"
}

/// `camhub check FILE` on `config` written to a temp file: (success, stdout + stderr).
fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camhub.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[test]
fn config_camera_examples_are_valid_once_uncommented() {
    // A newcomer uncomments an example and fills in the address: the keys must be right. The placeholder
    // hosts make `check` warn (that is what --strict is for) but not fail.
    let config = std::fs::read_to_string(repo().join("packaging/camhub.toml")).unwrap();
    let uncommented = uncomment(&config, "camera");
    assert_eq!(
        uncommented.matches("\n[[camera]]").count(),
        4,
        "the demo and three examples:\n{uncommented}"
    );
    let (ok, report) = check(&uncommented);
    assert!(
        ok && report.contains("valid, 4 camera(s)"),
        "{uncommented}\n---\n{report}"
    );
    for id in ["driveway", "esp32", "webcam"] {
        assert!(report.contains(id), "{id} not checked:\n{report}");
    }
}

#[test]
fn config_user_example_serves_the_lan_once_filled_in() {
    // Uncommented with a hash from `camhub hash-password`, the [[user]] example lets camhub listen
    // beyond loopback, as the comment on `listen` says.
    let config = std::fs::read_to_string(repo().join("packaging/camhub.toml")).unwrap();
    let mut hash_password = Command::new(bin())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        hash_password.stdin.as_mut().unwrap(),
        b"correct horse battery",
    )
    .unwrap();
    let out = hash_password.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let placeholder = "PASTE THE OUTPUT OF camhub hash-password";
    assert!(config.contains(placeholder), "{config}");
    let lan = config.replace("listen = \"127.0.0.1:8080\"", "listen = \"0.0.0.0:8080\"");
    assert_ne!(lan, config);
    let (ok, report) = check(&lan);
    assert!(
        !ok && report.contains("[[user]]"),
        "no user: serving the LAN must be refused:\n{report}"
    );

    let with_user = uncomment(&lan, "user").replace(placeholder, &hash);
    assert!(with_user.contains("\n[[user]]\n"), "{with_user}");
    let (ok, report) = check(&with_user);
    assert!(ok, "{with_user}\n---\n{report}");
}
