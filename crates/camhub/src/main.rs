//! The `camhub` command: `camhub` (built-in demo camera), `camhub --config FILE`,
//! `camhub check [--strict] FILE`. Thin: parses arguments, sets up logging, runs the server until
//! SIGINT/SIGTERM (SIGHUP applies the config file again).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camhub::http::{app, serve, AppState};
use camhub::hub::Hub;
use camhub::reload::load;
use camhub_config::Config;
use tokio::sync::watch;
use tracing::{error, info, warn};

const USAGE: &str = "\
camhub — connect once to each camera, serve it to any number of viewers

usage:
  camhub [OPTIONS]                 run with the built-in demo camera on http://127.0.0.1:8080/
  camhub [OPTIONS] --config FILE   run with the cameras in FILE (see docs/config.md)
  camhub check [--strict] FILE     check FILE and exit (0 = valid, 2 = invalid); see camhub check --help
  camhub hash-password             read a password, print its hash for a [[user]]'s password_hash
  camhub import-config FILE [-o OUT]
                                   convert seed 004's cameras_config.json into a camhub.toml
  camhub --help | --version

options:
  -c, --config FILE                the config file (TOML); without it, the built-in demo camera
      --log-format text|json       log lines as text (the default; coloured only when stdout is a
                                   terminal and NO_COLOR is unset) or as one JSON object per line,
                                   for log shippers
  -h, --help                       print this help
  -V, --version                    print the version

signals: SIGINT/SIGTERM stop camhub (cameras are closed cleanly); SIGHUP reads the config file
again and applies it (only changed cameras restart; an invalid file changes nothing)
logging: to stdout, camera credentials scrubbed; RUST_LOG=debug for more (default info)";

const CHECK_USAGE: &str = "\
camhub check — check a config file without starting camhub

usage:
  camhub check [--strict] FILE

Prints every error (file:line:column: key: what is wrong — how to fix it) and every warning (a
valid value that is almost certainly a mistake: a placeholder host such as IP or HOST left from an
example, an ESP32-CAM stream URL without :81, an input_format FFmpeg does not know), then each
camera with its URL (credentials hidden).

options:
  --strict      warnings fail the check too
  -h, --help    print this help

exit status: 0 = valid, 2 = errors (or warnings with --strict)";

const HASH_USAGE: &str = "\
camhub hash-password — make a password_hash for a [[user]] in camhub.toml

usage:
  camhub hash-password             asks for the password twice on a terminal
  echo -n 'password' | camhub hash-password
                                   reads the first line of stdin (scripts)

Prints an argon2id hash (19 MiB, 2 passes: OWASP's parameters) to paste into the config:
  [[user]]
  name = \"alice\"
  password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$…\"
  role = \"admin\"        # or \"viewer\"";

const IMPORT_USAGE: &str = "\
camhub import-config — convert another tool's camera config into a camhub.toml

usage:
  camhub import-config FILE          print the converted config
  camhub import-config FILE -o OUT   write it to OUT (refuses to overwrite an existing file)

FILE is seed 004's cameras_config.json (the Flask + OpenCV ESP32-CAM relay): each camera's url.jpg /
url.rtsp, rotate, perspective (src, width, hight) and concat_x (front, back) become a [[camera]] with
the same rotation and warp, and a [[composite]] \"panorama\" stitches them with the same cuts.
What could not be mapped as it was is printed on stderr (and written as comments).

exit status: 0 = converted, 2 = the file could not be read or converted";

#[derive(Debug, PartialEq)]
enum Command {
    /// `import-config FILE [-o OUT]`.
    Import {
        input: PathBuf,
        output: Option<PathBuf>,
    },
    Run(Option<PathBuf>),
    HashPassword,
    Check {
        path: PathBuf,
        strict: bool,
    },
    /// Print this text to stdout and exit 0 (`--help`, `--version`).
    Print(String),
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines; ANSI colour only on a terminal.
    Text,
    /// One JSON object per line (tracing-subscriber's JSON layout), for log shippers.
    Json,
}

/// Takes `--log-format VALUE` / `--log-format=VALUE` out of `args`, wherever it is.
fn log_format(args: &[String]) -> Result<(LogFormat, Vec<String>), String> {
    let parse = |v: &str| match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!(
            "invalid --log-format \"{v}\": use text or json\n\n{USAGE}"
        )),
    };
    let mut format = LogFormat::Text;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--log-format" {
            let value = args
                .next()
                .ok_or_else(|| format!("--log-format needs a value: text or json\n\n{USAGE}"))?;
            format = parse(value)?;
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            format = parse(value)?;
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((format, rest))
}

/// The command line (without `--log-format`, taken out before) as a [`Command`]; `Err` is the
/// message for stderr (exit status 2), always ending with the usage that applies.
fn parse_args(args: &[String]) -> Result<Command, String> {
    if args.first().is_some_and(|a| a == "check") {
        return parse_check(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "import-config") {
        return parse_import(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "hash-password") {
        return match args.get(1).map(String::as_str) {
            None => Ok(Command::HashPassword),
            Some("-h" | "--help") => Ok(Command::Print(HASH_USAGE.to_owned())),
            Some(other) => Err(format!(
                "hash-password takes no arguments, got \"{other}\" (it reads the password from stdin)\n\n{HASH_USAGE}"
            )),
        };
    }
    let mut config = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Print(USAGE.to_owned())),
            "-V" | "--version" => {
                return Ok(Command::Print(format!(
                    "camhub {}",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "-c" | "--config" => {
                let Some(file) = args.next() else {
                    return Err(format!("{arg} needs a file name\n\n{USAGE}"));
                };
                config = Some(PathBuf::from(file));
            }
            _ if arg.starts_with("--config=") => {
                config = Some(PathBuf::from(&arg["--config=".len()..]));
            }
            _ if arg.ends_with(".toml") && config.is_none() => {
                return Err(format!(
                    "unexpected argument \"{arg}\": to run with this file write camhub --config {arg}\n\n{USAGE}"
                ));
            }
            _ => return Err(format!("unexpected argument \"{arg}\"\n\n{USAGE}")),
        }
    }
    Ok(Command::Run(config))
}

fn parse_import(args: &[String]) -> Result<Command, String> {
    let (mut input, mut output) = (None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Print(IMPORT_USAGE.to_owned())),
            "-o" | "--output" => match args.next() {
                Some(out) => output = Some(PathBuf::from(out)),
                None => return Err(format!("{arg} needs a file name\n\n{IMPORT_USAGE}")),
            },
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!("unknown option \"{arg}\"\n\n{IMPORT_USAGE}"))
            }
            _ if input.is_none() => input = Some(PathBuf::from(arg)),
            _ => {
                return Err(format!(
                    "import-config takes one file, got \"{arg}\" too\n\n{IMPORT_USAGE}"
                ))
            }
        }
    }
    match input {
        Some(input) => Ok(Command::Import { input, output }),
        None => Err(format!(
            "import-config needs the file to convert\n\n{IMPORT_USAGE}"
        )),
    }
}

/// `camhub import-config`: converts, checks the result with the same parser `camhub check` uses,
/// and prints or writes it; the notes go to stderr.
fn import_config(input: &Path, output: Option<&Path>) -> ExitCode {
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    let imported = match camhub_config::import::seed004(&text) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{}: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    let mut toml = imported.toml;
    if !imported.notes.is_empty() {
        toml.push_str("\n# Notes from the import:\n");
        for n in &imported.notes {
            toml.push_str(&format!("# - {}\n", n.replace('\n', " ")));
        }
    }
    // What we write must load: a failure here is a bug in the import, said as such.
    if let Err(e) = camhub_config::parse(&toml, "imported config") {
        eprintln!("the converted config does not check (a bug in camhub import-config):\n{e}");
        return ExitCode::from(2);
    }
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    match output {
        None => print!("{toml}"),
        Some(path) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, toml.as_bytes()));
            if let Err(e) = written {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
            eprintln!(
                "wrote {}; check it with: camhub check {}",
                path.display(),
                path.display()
            );
        }
    }
    ExitCode::SUCCESS
}

fn parse_check(args: &[String]) -> Result<Command, String> {
    let mut strict = false;
    let mut path = None;
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Print(CHECK_USAGE.to_owned())),
            "--strict" => strict = true,
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!("unknown option \"{arg}\"\n\n{CHECK_USAGE}"))
            }
            _ if path.is_none() => path = Some(PathBuf::from(arg)),
            _ => {
                return Err(format!(
                    "check takes one file, got \"{arg}\" too\n\n{CHECK_USAGE}"
                ))
            }
        }
    }
    match path {
        Some(path) => Ok(Command::Check { path, strict }),
        None => Err(format!(
            "check needs the config file to check\n\n{CHECK_USAGE}"
        )),
    }
}

/// `camhub hash-password`: the password from a terminal prompt (twice, not echoed) or the first
/// line of stdin, its argon2id hash to stdout.
fn hash_password() -> ExitCode {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ");
        let again = rpassword::prompt_password("again: ");
        match (first, again) {
            (Ok(a), Ok(b)) if a == b => a,
            (Ok(_), Ok(_)) => {
                eprintln!("the two passwords differ; nothing printed");
                return ExitCode::from(2);
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot read the password: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().read_line(&mut line) {
            eprintln!("cannot read the password from stdin: {e}");
            return ExitCode::from(2);
        }
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        eprintln!("the password is empty; nothing printed");
        return ExitCode::from(2);
    }
    match camhub::auth::hash_password(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (format, args) = match log_format(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Print(text) => {
            // `camhub --help | head` closes the pipe early: not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Command::Check { path, strict } => check(&path, strict),
        Command::Import { input, output } => import_config(&input, output.as_deref()),
        Command::HashPassword => hash_password(),
        Command::Run(path) => {
            // Without --config, the file the settings page created (in the default data_dir) is
            // the config: cameras added in the UI must survive a restart.
            let created = Config::demo().server.data_dir.join("camhub.toml");
            let path = path.or_else(|| created.is_file().then_some(created));
            let config = match &path {
                None => Config::demo(),
                Some(p) => match load(p) {
                    Ok(c) => c,
                    Err(errors) => {
                        eprintln!("{errors}");
                        eprintln!("camhub did not start: fix the config (camhub check {} shows the errors)", p.display());
                        return ExitCode::from(2);
                    }
                },
            };
            init_logging(&config, format);
            if let Some(p) = &path {
                info!("config {}", p.display());
            }
            for w in &config.warnings {
                warn!("config: {w}");
            }
            match run(config, path) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e:#}");
                    eprintln!("camhub: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(path: &Path, strict: bool) -> ExitCode {
    match load(path) {
        Ok(config) => {
            println!(
                "{}: valid, {} camera(s)",
                path.display(),
                config.cameras.len()
            );
            for cam in &config.cameras {
                let off = if cam.enabled { "" } else { "  (disabled)" };
                println!("  {:<20} {}{off}", cam.id, cam.source.redacted);
                if let Some(sub) = &cam.substream {
                    println!("  {:<20} {}", format!("{}/sub", cam.id), sub.redacted);
                }
            }
            if let Some(m) = &config.mqtt {
                let discovery = if m.discovery { "on" } else { "off" };
                println!(
                    "  mqtt: {} (topics {}/…, Home Assistant discovery {discovery})",
                    m.url, m.topic_prefix
                );
            }
            if config.cameras.is_empty() {
                println!("warning: no [[camera]] tables: camhub will serve nothing");
            }
            for w in &config.warnings {
                println!("warning: {w}");
            }
            match config.warnings.len() {
                0 => ExitCode::SUCCESS,
                n if strict => {
                    eprintln!(
                        "{}: {n} warning(s), and --strict fails on warnings",
                        path.display()
                    );
                    ExitCode::from(2)
                }
                n => {
                    println!("{n} warning(s): camhub runs with them (--strict fails on them)");
                    ExitCode::SUCCESS
                }
            }
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}

/// Logs go through [`ScrubbedStdout`]: whatever a library prints (retina and reqwest quote URLs,
/// and Xiongmai cameras carry the password in the path), no camera credential reaches the log. The
/// secrets are the ones the config took out of each URL. Colour codes only go to a terminal: in a
/// file, journald or a container log they are noise (and `NO_COLOR` turns them off everywhere).
fn init_logging(config: &Config, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,retina=warn,hyper=warn,reqwest=warn")
    });
    let mut secrets: Vec<String> = config
        .cameras
        .iter()
        .flat_map(|c| std::iter::once(&c.source).chain(c.substream.as_ref()))
        .flat_map(|spec| spec.secrets.iter().cloned())
        .chain(config.mqtt.iter().flat_map(camhub_config::Mqtt::secrets))
        .collect();
    secrets.sort();
    secrets.dedup();
    let writer = ScrubbedStdout {
        secrets: Arc::new(secrets),
        format,
    };
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    match format {
        LogFormat::Text => logs.with_ansi(colour).init(),
        LogFormat::Json => logs.with_ansi(false).json().init(),
    }
}

/// Makes one [`ScrubbedLine`] per log event.
struct ScrubbedStdout {
    secrets: Arc<Vec<String>>,
    format: LogFormat,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStdout {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> ScrubbedLine {
        ScrubbedLine {
            buf: Vec::new(),
            secrets: self.secrets.clone(),
            format: self.format,
        }
    }
}

/// Collects one event's text and writes it to stdout with every secret replaced, when dropped.
struct ScrubbedLine {
    buf: Vec<u8>,
    secrets: Arc<Vec<String>>,
    format: LogFormat,
}

impl std::io::Write for ScrubbedLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let clean = match self.format {
            LogFormat::Text => camhub_media::redact::scrub_secrets(&text, &self.secrets),
            LogFormat::Json => scrub_json_lines(&text, &self.secrets),
        };
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), clean.as_bytes());
    }
}

/// Scrubs JSON log lines inside their strings, not in the raw text: a secret as JSON escapes it
/// (a `"` or `\` in a password) would not match the raw text, and replacing raw text could cut
/// through the JSON's own quotes and leave a line no shipper can parse. A line that is not JSON
/// (never expected) is scrubbed as text.
fn scrub_json_lines(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        match serde_json::from_str::<serde_json::Value>(body) {
            Ok(mut value) => {
                scrub_json(&mut value, secrets);
                out.push_str(&value.to_string());
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            Err(_) => out.push_str(&camhub_media::redact::scrub_secrets(line, secrets)),
        }
    }
    out
}

/// Replaces the secrets in every string (keys included) of a JSON value; a number that spells one
/// becomes the string `***`.
fn scrub_json(value: &mut serde_json::Value, secrets: &[String]) {
    use camhub_media::redact::scrub_secrets;
    use serde_json::Value;
    match value {
        Value::String(s) => *s = scrub_secrets(s, secrets),
        Value::Number(n) => {
            let shown = n.to_string();
            let clean = scrub_secrets(&shown, secrets);
            if clean != shown {
                *value = Value::String(clean);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_json(v, secrets)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                scrub_json(&mut v, secrets);
                map.insert(scrub_secrets(&key, secrets), v);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("camhub-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, path))?;
    // MJPEG viewers of a stuck client could hold tasks; don't wait for them forever.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

async fn serve(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    camhub_codec::init();
    let listen = config.server.listen;
    // TLS files are read before the port is taken: a broken pair refuses to start, naming the file.
    let tls =
        camhub::http::tls::Tls::from_config(&config.server).map_err(|e| anyhow::anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (another program uses the port? set [server] listen in the config)")
    })?;
    // The RTSP server's ports are taken up front too: a port in use refuses to start.
    let rtsp = match config.server.rtsp_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen for RTSP on {addr} (another program uses the port? set [server] rtsp_listen in the config)")
            })?;
            let udp = match camhub::rtsp::Udp::bind(addr.ip()).await {
                Ok(u) => Some(u),
                Err(e) => {
                    warn!(
                        "RTSP over UDP is off (no UDP ports on {}: {e}); clients can use TCP",
                        addr.ip()
                    );
                    None
                }
            };
            Some((l, udp))
        }
        None => None,
    };
    // The store holds tokens and sessions, so login opens it here; otherwise the hub opens it when
    // the first camera with motion enabled starts (data_dir is created only when needed).
    let store = if config.auth_enforced() {
        let dir = config.server.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || camhub_store::Store::open_dir(&dir))
            .await
            .context("opening the store")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Some(Arc::new(store))
    } else {
        None
    };
    let auth =
        Arc::new(camhub::auth::Auth::new(&config, store.clone()).map_err(|e| anyhow::anyhow!(e))?);
    let hub = Hub::new(&config);
    // Motion events go into the same file as tokens and sessions.
    hub.set_store(store);
    hub.start();
    // Motion to the MQTT broker; one that is away is retried in the background.
    let mqtt = match &config.mqtt {
        Some(m) => {
            Some(camhub::mqtt::Publisher::start(m, hub.clone()).map_err(|e| anyhow::anyhow!(e))?)
        }
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown_wait = shutdown_rx.clone();
    // WebRTC: one UDP socket for every peer. A port set in the config must be had; the default
    // one may be taken (another camhub), and then browsers get MSE.
    let webrtc = {
        use camhub_config::WebrtcListen;
        let server = &config.server;
        let start = |addr| {
            camhub::webrtc::WebRtc::start(
                addr,
                server.webrtc_candidates.clone(),
                server.ice_servers.clone(),
                shutdown_rx.clone(),
            )
        };
        match server.webrtc_listen {
            WebrtcListen::Off => Err(Arc::<str>::from("webrtc_listen = \"off\" in the config")),
            WebrtcListen::At(addr) => Ok(Arc::new(start(addr).await.with_context(|| {
                format!("cannot bind WebRTC's UDP port {addr} (another program uses it? set [server] webrtc_listen)")
            })?)),
            WebrtcListen::Default => {
                let addr = std::net::SocketAddr::new(listen.ip(), WebrtcListen::DEFAULT_PORT);
                match start(addr).await {
                    Ok(w) => Ok(Arc::new(w)),
                    Err(e) => {
                        let why = format!("cannot bind UDP {addr} ({e}); set [server] webrtc_listen to another port");
                        camhub::webrtc::warn_off(&why);
                        Err(Arc::<str>::from(why))
                    }
                }
            }
        }
    };
    if let Ok(w) = &webrtc {
        info!("WebRTC on UDP {}", w.local_addr());
    }
    let reloader = Arc::new(camhub::reload::Reloader::new(path, config.clone()));
    let state = AppState {
        hub: hub.clone(),
        shutdown: shutdown_rx,
        auth: auth.clone(),
        tls: tls.is_some(),
        reloader: reloader.clone(),
        base_path: config.server.base_path.clone().into(),
        hls: Arc::default(),
        webrtc,
    };
    info!(
        "camhub {} serving {} camera(s) on {}://{}/",
        env!("CARGO_PKG_VERSION"),
        hub.cameras().len(),
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(listen)
    );
    if config.auth_enforced() {
        info!("login required ({} user(s))", config.users.len());
    } else if config.server.auth == camhub_config::AuthMode::None {
        warn!("auth = \"none\": anyone who can reach {listen} can watch every camera and change settings");
    }
    tokio::spawn(reload_on_sighup(reloader, hub.clone(), auth.clone()));
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
    });
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch());
    }
    if let Some((listener, udp)) = rtsp {
        let at = listener.local_addr().ok();
        let ports = udp.as_ref().map(|u| u.ports());
        if let Some(at) = at {
            info!(
                "RTSP server on rtsp://{at}/{{camera id}} (UDP RTP/RTCP ports {})",
                ports.map_or("off".to_owned(), |(a, b)| format!("{a}-{b}"))
            );
        }
        let ctx = camhub::rtsp::Context {
            hub: hub.clone(),
            auth: auth.clone(),
            stall_timeout: config.server.stall_timeout,
            max_connections: config.server.max_connections,
        };
        tokio::spawn(camhub::rtsp::serve(
            listener,
            udp,
            ctx,
            state.shutdown.clone(),
        ));
    }
    let options = serve::Options::new(&config.server, tls);
    serve::serve(listener, app(state), options, shutdown_wait).await;
    // Say goodbye to the cameras: close every connection, and wait (bounded) for each RTSP
    // session's TEARDOWN, so a camera with few session slots is free at once for the next start.
    // Meanwhile the broker is told camhub goes offline.
    let goodbye = async {
        if let Some(mqtt) = mqtt {
            mqtt.shutdown(Duration::from_secs(2)).await;
        }
    };
    tokio::join!(hub.shutdown(Duration::from_secs(3)), goodbye);
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `systemctl reload camhub` sends SIGHUP (whose default action would kill camhub): the config
/// file is read again and applied like `POST /api/config/reload` — only changed cameras restart,
/// and an invalid file changes nothing (its errors are logged).
async fn reload_on_sighup(
    reloader: Arc<camhub::reload::Reloader>,
    hub: Arc<Hub>,
    auth: Arc<camhub::auth::Auth>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot watch SIGHUP: {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match reloader.reload(&hub, &auth).await {
            Ok(_) => {}
            Err(camhub::reload::ReloadError::NoFile) => {
                info!("SIGHUP: running the built-in demo config, there is no file to re-read");
            }
            Err(e) => error!("SIGHUP: {e}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(parse_args(&args("")), Ok(Command::Run(None)));
        for line in ["-c a.toml", "--config a.toml", "--config=a.toml"] {
            assert_eq!(
                parse_args(&args(line)),
                Ok(Command::Run(Some("a.toml".into()))),
                "{line}"
            );
        }
        assert_eq!(
            parse_args(&args("check --strict a.toml")),
            Ok(Command::Check {
                path: "a.toml".into(),
                strict: true
            })
        );
        assert_eq!(
            parse_args(&args("check a.toml --strict")),
            Ok(Command::Check {
                path: "a.toml".into(),
                strict: true
            })
        );
        assert_eq!(
            parse_args(&args("check --help")),
            Ok(Command::Print(CHECK_USAGE.into()))
        );
        assert_eq!(
            parse_args(&args("--help")),
            Ok(Command::Print(USAGE.into()))
        );
        let e = parse_args(&args("check")).unwrap_err();
        assert!(e.starts_with("check needs the config file"), "{e}");
        assert!(e.ends_with(CHECK_USAGE), "{e}");
        let e = parse_args(&args("a.toml")).unwrap_err();
        assert!(e.contains("camhub --config a.toml"), "{e}");
        assert!(parse_args(&args("-c"))
            .unwrap_err()
            .contains("needs a file name"));
        assert!(parse_args(&args("check a.toml b.toml")).is_err());
        assert!(parse_args(&args("check --strcit a.toml")).is_err());
        assert!(parse_args(&args("--bogus")).is_err());
    }

    #[test]
    fn the_usage_names_every_option_parse_args_takes() {
        for option in [
            "-c, --config FILE",
            "--log-format",
            "--help",
            "--version",
            "check [--strict] FILE",
            "hash-password",
        ] {
            assert!(USAGE.contains(option), "{option}");
        }
        assert!(CHECK_USAGE.contains("--strict"));
    }
}
