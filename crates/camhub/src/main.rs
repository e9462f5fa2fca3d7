//! The `camhub` command: `camhub` (built-in demo camera), `camhub --config FILE`, `camhub check FILE`.
//! Thin: parses arguments, sets up logging, runs the server until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camhub::http::{app, serve, AppState};
use camhub::hub::Hub;
use camhub_config::Config;
use tokio::sync::watch;
use tracing::{error, info, warn};

const USAGE: &str = "\
camhub — connect once to each camera, serve it to any number of viewers

usage:
  camhub                       run with the built-in demo camera on http://127.0.0.1:8080/
  camhub --config FILE         run with the cameras in FILE (see docs/config.md)
  camhub check FILE            validate FILE and exit (0 = valid, 2 = invalid)
  camhub --help | --version

logging: RUST_LOG=debug (default info)";

enum Command {
    Run(Option<PathBuf>),
    Check(PathBuf),
}

fn parse_args(args: &[String]) -> Result<Option<Command>, String> {
    match args {
        [] => Ok(Some(Command::Run(None))),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            Ok(None)
        }
        [flag] if flag == "--version" || flag == "-V" => {
            println!("camhub {}", env!("CARGO_PKG_VERSION"));
            Ok(None)
        }
        [flag, file] if flag == "--config" || flag == "-c" => {
            Ok(Some(Command::Run(Some(PathBuf::from(file)))))
        }
        [cmd, file] if cmd == "check" => Ok(Some(Command::Check(PathBuf::from(file)))),
        _ => Err(format!(
            "unexpected arguments: {}\n\n{USAGE}",
            args.join(" ")
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(Some(c)) => c,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Check(path) => check(&path),
        Command::Run(path) => {
            let config = match &path {
                None => Config::demo(),
                Some(p) => match camhub_config::load(p) {
                    Ok(c) => c,
                    Err(errors) => {
                        eprintln!("{errors}");
                        eprintln!("camhub did not start: fix the config (camhub check {} shows the errors)", p.display());
                        return ExitCode::from(2);
                    }
                },
            };
            init_logging(&config);
            match run(config) {
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

fn check(path: &std::path::Path) -> ExitCode {
    match camhub_config::load(path) {
        Ok(config) => {
            println!(
                "{}: valid, {} camera(s)",
                path.display(),
                config.cameras.len()
            );
            for cam in &config.cameras {
                println!("  {:<20} {}", cam.id, cam.source.redacted);
            }
            if config.cameras.is_empty() {
                println!("warning: no [[camera]] tables: camhub will serve nothing");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}

/// Logs go through [`ScrubbedStdout`]: whatever a library prints (retina and reqwest quote URLs,
/// and Xiongmai cameras carry the password in the path), no camera credential reaches the log.
fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,retina=warn,hyper=warn,reqwest=warn")
    });
    let mut secrets: Vec<String> = config
        .cameras
        .iter()
        .flat_map(|c| std::iter::once(&c.source).chain(c.substream.as_ref()))
        .flat_map(|spec| camhub::source::all_secrets(&spec.url))
        .collect();
    secrets.sort();
    secrets.dedup();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(ScrubbedStdout {
            secrets: Arc::new(secrets),
        })
        .init();
}

/// Makes one [`ScrubbedLine`] per log event.
struct ScrubbedStdout {
    secrets: Arc<Vec<String>>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStdout {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> ScrubbedLine {
        ScrubbedLine {
            buf: Vec::new(),
            secrets: self.secrets.clone(),
        }
    }
}

/// Collects one event's text and writes it to stdout with every secret replaced, when dropped.
struct ScrubbedLine {
    buf: Vec<u8>,
    secrets: Arc<Vec<String>>,
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
        let clean = camhub_media::redact::scrub_secrets(&text, &self.secrets);
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), clean.as_bytes());
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("camhub-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    // MJPEG viewers of a stuck client could hold tasks; don't wait for them forever.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    camhub_codec::init();
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (another program uses the port? set [server] listen in the config)")
    })?;
    let hub = Hub::new(&config);
    hub.start();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown_wait = shutdown_rx.clone();
    let state = AppState {
        hub: hub.clone(),
        shutdown: shutdown_rx,
    };
    info!(
        "camhub {} serving {} camera(s) on http://{}/",
        env!("CARGO_PKG_VERSION"),
        hub.cameras().len(),
        listener.local_addr().unwrap_or(listen)
    );
    if !listen.ip().is_loopback() {
        warn!("listening on {listen}: anyone who can reach this address can watch the cameras (there is no login yet)");
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
    });
    serve::serve(
        listener,
        app(state),
        config.server.stall_timeout,
        shutdown_wait,
    )
    .await;
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
