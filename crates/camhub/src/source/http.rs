//! HTTP cameras: multipart MJPEG streams (what ESP32-CAMs serve at `:81/stream`) and JPEG snapshot
//! URLs (`/capture`), told apart by the response's Content-Type; `poll_interval` forces polling.
//! Basic and digest auth (answered on the camera's 401 challenge), and an opt-in for self-signed
//! HTTPS. The multipart parsing itself is the pure parser in `camhub_media::multipart`.

use std::time::Duration;

use bytes::Bytes;
use camhub_media::multipart::{boundary_from_content_type, MultipartParser};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};

use super::{OpenOptions, Scrubber, SourceError, SourceEvent};

/// How long a snapshot camera is polled apart when it serves `image/jpeg` and no `poll_interval` is
/// configured.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// An open HTTP camera.
pub struct HttpSource {
    client: Client,
    request: Target,
    mode: Mode,
    max_jpeg: usize,
    scrub: Scrubber,
}

/// The URL without credentials, and the credentials.
struct Target {
    url: url::Url,
    user: Option<(String, String)>,
}

#[allow(clippy::large_enum_variant)] // one per camera; boxing buys nothing
enum Mode {
    Stream {
        response: Response,
        parser: MultipartParser,
    },
    Poll {
        interval: tokio::time::Interval,
        first: Option<Bytes>,
    },
}

impl HttpSource {
    /// Connects and decides stream vs snapshot from the first response. `url` holds no userinfo: the
    /// config took the credentials apart (`SourceSpec::url_without_credentials` and `credentials`).
    pub async fn open(
        url: &str,
        credentials: Option<&camhub_config::Credentials>,
        poll_interval: Option<Duration>,
        insecure_tls: bool,
        opts: &OpenOptions,
        scrub: Scrubber,
    ) -> Result<HttpSource, SourceError> {
        let url = url::Url::parse(url).map_err(|e| scrub.err(format!("bad HTTP URL: {e}")))?;
        let user = credentials.map(|c| (c.user.clone(), c.password.clone()));
        let client = Client::builder()
            .connect_timeout(opts.connect_timeout)
            .danger_accept_invalid_certs(insecure_tls)
            .user_agent(format!("camhub/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| scrub.err(format!("cannot set up the HTTP client: {e}")))?;
        let target = Target { url, user };
        let response = get(&client, &target, &scrub).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut source = HttpSource {
            client,
            request: target,
            mode: Mode::Poll {
                interval: tokio::time::interval(Duration::from_secs(1)),
                first: None,
            },
            max_jpeg: opts.max_jpeg_bytes,
            scrub,
        };
        let is_multipart = content_type.starts_with("multipart/");
        if is_multipart && poll_interval.is_none() {
            let boundary = boundary_from_content_type(&content_type);
            source.mode = Mode::Stream {
                response,
                parser: MultipartParser::new(boundary.as_deref(), opts.max_jpeg_bytes),
            };
        } else {
            let first = if is_multipart {
                source.first_part(response).await?
            } else if content_type.starts_with("image/") || content_type.is_empty() {
                source.read_body(response).await?
            } else {
                return Err(source.scrub.err(format!(
                    "the camera answered with Content-Type \"{content_type}\", not an MJPEG stream (multipart/x-mixed-replace) or a JPEG (image/jpeg); check the URL"
                )));
            };
            let period = poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL);
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await; // the first tick is immediate: it paid for the response above
            source.mode = Mode::Poll {
                interval,
                first: Some(first),
            };
        }
        Ok(source)
    }

    /// The next JPEG.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        let max = self.max_jpeg;
        match &mut self.mode {
            Mode::Stream { response, parser } => loop {
                match parser.next_part() {
                    Ok(Some(jpeg)) => return Ok(SourceEvent::Jpeg(Bytes::from(jpeg))),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(self
                            .scrub
                            .err(format!("bad MJPEG stream from the camera: {e}")))
                    }
                }
                match response.chunk().await {
                    Ok(Some(chunk)) => parser.push(&chunk),
                    Ok(None) => {
                        return Err(SourceError("the camera closed the MJPEG stream".into()))
                    }
                    Err(e) => {
                        return Err(self.scrub.err(format!(
                            "reading the MJPEG stream failed: {}",
                            error_chain(&e)
                        )))
                    }
                }
                if parser.buffered() > max + 64 * 1024 {
                    return Err(SourceError(format!(
                        "a part of the MJPEG stream exceeds {max} bytes"
                    )));
                }
            },
            Mode::Poll { interval, first } => {
                if let Some(jpeg) = first.take() {
                    return Ok(SourceEvent::Jpeg(jpeg));
                }
                interval.tick().await;
                let response = get(&self.client, &self.request, &self.scrub).await?;
                let multipart = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/"));
                let jpeg = if multipart {
                    self.first_part(response).await?
                } else {
                    self.read_body(response).await?
                };
                Ok(SourceEvent::Jpeg(jpeg))
            }
        }
    }

    async fn read_body(&self, mut response: Response) -> Result<Bytes, SourceError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            self.scrub
                .err(format!("reading the snapshot failed: {}", error_chain(&e)))
        })? {
            if body.len() + chunk.len() > self.max_jpeg {
                return Err(SourceError(format!(
                    "the snapshot is larger than {} bytes",
                    self.max_jpeg
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if body.len() < 4 || body[0] != 0xFF || body[1] != 0xD8 {
            return Err(SourceError("the camera's snapshot is not a JPEG".into()));
        }
        Ok(Bytes::from(body))
    }

    async fn first_part(&self, mut response: Response) -> Result<Bytes, SourceError> {
        let ct = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut parser =
            MultipartParser::new(boundary_from_content_type(&ct).as_deref(), self.max_jpeg);
        loop {
            if let Some(jpeg) = parser
                .next_part()
                .map_err(|e| self.scrub.err(format!("bad MJPEG stream: {e}")))?
            {
                return Ok(Bytes::from(jpeg));
            }
            match response.chunk().await {
                Ok(Some(chunk)) => parser.push(&chunk),
                Ok(None) => {
                    return Err(SourceError(
                        "the camera closed the stream before a whole JPEG".into(),
                    ))
                }
                Err(e) => {
                    return Err(self
                        .scrub
                        .err(format!("reading the stream failed: {}", error_chain(&e))))
                }
            }
        }
    }
}

/// GET with auth: unauthenticated first; on a 401 challenge, answer it (basic or digest) once.
async fn get(client: &Client, target: &Target, scrub: &Scrubber) -> Result<Response, SourceError> {
    let send = |auth: Option<String>| {
        let mut req = client.get(target.url.clone());
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        req.send()
    };
    let response = send(None).await.map_err(|e| scrub.err(unreachable(&e)))?;
    let response = if response.status() == StatusCode::UNAUTHORIZED {
        let Some((user, pass)) = &target.user else {
            return Err(SourceError(
                "the camera requires a login: put user:password@ in the URL".into(),
            ));
        };
        let challenge = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let mut pw = http_auth::PasswordClient::try_from(challenge.as_str()).map_err(|e| {
            scrub.err(format!(
                "the camera's login challenge is not understood: {e}"
            ))
        })?;
        let uri = match target.url.query() {
            Some(q) => format!("{}?{}", target.url.path(), q),
            None => target.url.path().to_owned(),
        };
        let answer = pw
            .respond(&http_auth::PasswordParams {
                username: user,
                password: pass,
                uri: &uri,
                method: "GET",
                body: Some(&[]),
            })
            .map_err(|e| scrub.err(format!("cannot answer the camera's login challenge: {e}")))?;
        let r = send(Some(answer))
            .await
            .map_err(|e| scrub.err(format!("cannot reach the camera: {}", error_chain(&e))))?;
        if r.status() == StatusCode::UNAUTHORIZED {
            return Err(SourceError(
                "the camera rejected the user name or password (HTTP 401)".into(),
            ));
        }
        r
    } else {
        response
    };
    if !response.status().is_success() {
        return Err(SourceError(format!(
            "the camera answered HTTP {}",
            response.status()
        )));
    }
    Ok(response)
}

/// Why a request failed, with the fix for the commonest HTTPS problem.
fn unreachable(e: &reqwest::Error) -> String {
    let chain = error_chain(e);
    if chain.to_ascii_lowercase().contains("certificate") {
        format!(
            "cannot reach the camera: {chain} (a camera with a self-signed certificate needs insecure_tls = true)"
        )
    } else {
        format!("cannot reach the camera: {chain}")
    }
}

/// reqwest's Display hides the cause ("error sending request"); the chain says "connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
