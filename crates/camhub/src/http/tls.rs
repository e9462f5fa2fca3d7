//! HTTPS for `[server] tls_cert` / `tls_key`: rustls with the ring provider (the one reqwest
//! already uses; no OpenSSL), ALPN `h2` then `http/1.1`. The certificate and key are read at start
//! (a missing file, a file without PEM, or a key that is not the certificate's refuses to start,
//! naming the file), then watched: every [`CHECK_EVERY`] their size and modification time are
//! compared, and on `SIGHUP` they are read again. A changed pair is loaded once it has stopped
//! changing for one check (a renewal tool writing two files is not caught half-way); new
//! handshakes get it, open connections keep theirs. A new pair that does not load is logged and the
//! old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

/// How often the certificate and key files are checked for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The ALPN protocols offered, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A TLS server: the acceptor and the files its certificate comes from.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
    /// The files' (size, mtime) as last seen by the watcher, and as last loaded (or tried).
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    last: Option<Signature>,
    loaded: Option<Signature>,
}

/// Size and modification time of the certificate and the key file (symlinks followed: a renewal
/// that points `live/` links at new files counts as a change).
type Signature = [(u64, Option<SystemTime>); 2];

impl Tls {
    /// Reads `cert` and `key` and builds the server. The error names the file and the fix.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signature = signature(cert, key);
        let certified = load_pair(cert, key, &provider)?;
        let resolver = Arc::new(Resolver(RwLock::new(Arc::new(certified))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(Tls {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            provider,
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            seen: Mutex::new(Seen {
                last: signature,
                loaded: signature,
            }),
        }))
    }

    /// `tls_cert` and `tls_key` of the config, loaded; `None` when TLS is off.
    pub fn from_config(server: &camhub_config::Server) -> Result<Option<Arc<Tls>>, String> {
        match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Tls::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// The acceptor for new connections (it always offers the newest loaded certificate).
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again now; on success new handshakes use them. `Err` says why not (the
    /// old certificate stays).
    pub fn reload(&self) -> Result<(), String> {
        let signature = signature(&self.cert_path, &self.key_path);
        let result = load_pair(&self.cert_path, &self.key_path, &self.provider);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.last = signature;
        seen.loaded = signature;
        drop(seen);
        let certified = result?;
        *self.resolver.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certified);
        Ok(())
    }

    /// Whether the files changed since they were last loaded and have not changed since the
    /// previous check (so a half-written renewal waits for the next check).
    fn due(&self) -> bool {
        let now = signature(&self.cert_path, &self.key_path);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let stable = seen.last == now;
        seen.last = now;
        stable && now.is_some() && seen.loaded != now
    }

    /// Watches the files (every [`CHECK_EVERY`]) and `SIGHUP`, reloading as described in the
    /// module doc. Runs until the process ends; spawn it.
    pub async fn watch(self: Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("TLS: cannot watch SIGHUP ({e}); the certificate files are still watched");
                None
            }
        };
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                _ = tick.tick() => {
                    if !self.due() {
                        continue;
                    }
                    "the files changed"
                }
                Some(()) = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => "SIGHUP",
            };
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(Ok(())) => info!(
                    "TLS: {why}: now serving the certificate in {}",
                    self.cert_path.display()
                ),
                Ok(Err(e)) => error!(
                    "TLS: {why}, but the new certificate cannot be used: {e}; still serving the previous one"
                ),
                Err(e) => error!("TLS: reloading the certificate failed: {e}"),
            }
        }
    }
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn signature(cert: &Path, key: &Path) -> Option<Signature> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    Some([one(cert)?, one(key)?])
}

/// Reads a certificate chain and its key; the error names the file at fault and the fix.
fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            format!(
                "cannot read [server] {what} {}: {e} — check the path (a relative path is relative \
                 to the directory camhub runs in) and that camhub may read it, or remove tls_cert \
                 and tls_key to serve plain HTTP",
                shown.display()
            )
        })
    };
    let cert_pem = read(cert, "tls_cert")?;
    let key_pem = read(key, "tls_key")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(cert, "tls_cert", &e))?;
    if chain.is_empty() {
        let hint = if PrivateKeyDer::from_pem_slice(&cert_pem).is_ok() {
            " (it holds a private key: are tls_cert and tls_key swapped?)"
        } else {
            ""
        };
        return Err(format!(
            "[server] tls_cert {} has no certificate{hint} — it must be PEM text with \
             -----BEGIN CERTIFICATE-----: the server's certificate first, then any intermediates \
             (a \"fullchain.pem\")",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            let hint = if CertificateDer::pem_slice_iter(&key_pem).any(|c| c.is_ok()) {
                " (it holds a certificate: are tls_cert and tls_key swapped?)"
            } else {
                ""
            };
            format!(
                "[server] tls_key {} has no private key{hint} — it must be PEM text with \
                 -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, EC PRIVATE KEY), unencrypted",
                key.display()
            )
        }
        e => bad_pem(key, "tls_key", &e),
    })?;
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "the key in [server] tls_key {} is not the key of the certificate in tls_cert {} — \
             point both at the same certificate's files (after a renewal, at the new pair)",
            key.display(),
            cert.display()
        ),
        e => format!(
            "[server] tls_key {} cannot be used with tls_cert {}: {e} — use an RSA, ECDSA \
             (P-256/P-384) or Ed25519 key in PEM",
            key.display(),
            cert.display()
        ),
    })?;
    Ok(certified)
}

fn bad_pem(path: &Path, what: &str, e: &pem::Error) -> String {
    format!(
        "[server] {what} {} is not valid PEM ({e}) — use the PEM file your certificate authority or \
         tool made (text starting with -----BEGIN)",
        path.display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, rcgen::CertifiedKey<rcgen::KeyPair>) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key, made)
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.resolver.0.read().unwrap().cert[0].to_vec()
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = pair(dir.path(), "a");
        let (_, other_key, _) = pair(dir.path(), "b");
        let missing = dir.path().join("nope.pem");
        let err = |c: &Path, k: &Path| Tls::load(c, k).err().unwrap();

        let e = err(&cert, &missing);
        assert!(e.starts_with("cannot read [server] tls_key "), "{e}");
        assert!(e.contains("nope.pem: No such file"), "{e}");
        let e = err(&key, &cert);
        assert!(
            e.contains(
                "has no certificate (it holds a private key: are tls_cert and tls_key swapped?)"
            ),
            "{e}"
        );
        let e = err(&cert, &cert);
        assert!(
            e.contains("has no private key (it holds a certificate"),
            "{e}"
        );
        let e = err(&cert, &other_key);
        assert!(e.contains("is not the key of the certificate"), "{e}");
        assert!(e.contains("b.key"), "{e}");
        std::fs::write(&missing, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        let e = err(&missing, &key);
        assert!(
            e.contains("tls_cert") && e.contains("is not valid PEM"),
            "{e}"
        );
        assert!(Tls::load(&cert, &key).is_ok());
    }

    #[test]
    fn a_broken_new_pair_keeps_the_old_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, first) = pair(dir.path(), "a");
        let tls = Tls::load(&cert, &key).unwrap();
        assert_eq!(served(&tls), first.cert.der().to_vec());
        // Unchanged files: nothing to do.
        assert!(!tls.due());

        // Half a renewal: a new certificate with the old key.
        let next = rcgen::generate_simple_self_signed(vec!["next".to_owned()]).unwrap();
        std::fs::write(&cert, next.cert.pem()).unwrap();
        assert!(tls.reload().unwrap_err().contains("is not the key"));
        assert_eq!(served(&tls), first.cert.der().to_vec());

        std::fs::write(&key, next.signing_key.serialize_pem()).unwrap();
        tls.reload().unwrap();
        assert_eq!(served(&tls), next.cert.der().to_vec());
    }

    #[test]
    fn a_change_is_due_once_the_files_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = pair(dir.path(), "a");
        let tls = Tls::load(&cert, &key).unwrap();
        // Longer file: the size changes whatever the clock's granularity.
        let next =
            rcgen::generate_simple_self_signed(vec!["a-much-longer-name".to_owned()]).unwrap();
        std::fs::write(&cert, next.cert.pem()).unwrap();
        assert!(
            !tls.due(),
            "changed since the last check: wait for one more"
        );
        assert!(tls.due(), "stable for a check: load it");
        // What reload() recorded stops it being due again (even when the pair fails to load).
        assert!(tls.reload().is_err());
        assert!(!tls.due());
    }
}
