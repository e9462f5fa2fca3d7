//! camhub's one error type: a kind (which decides the HTTP status) and a message written for the
//! user — what happened and what to do. Internals go to the log, never to clients. It knows nothing
//! of HTTP: the `http` layer maps kinds to statuses (`http::error`), so the hub does not depend on axum.

/// What went wrong, broadly; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (bad size, bad quality).
    BadRequest,
    /// No such camera.
    NotFound,
    /// The request did not say who it is (or its credentials are wrong).
    Unauthorized,
    /// Who it is may not do this (a camera not on their list, an admin route, a failed CSRF or
    /// origin check).
    Forbidden,
    /// A per-camera limit is reached (too many distinct variants).
    TooMany,
    /// The camera has no picture to give right now (down, still connecting).
    Unavailable,
    /// The camera's stream cannot be served in the form asked (e.g. MP4 of an MJPEG camera).
    UnsupportedMedia,
    /// A bug or resource failure inside camhub.
    Internal,
}

/// An error with a kind and a user-facing message.
#[derive(Debug, Clone)]
pub struct Error {
    /// Kind (HTTP status).
    pub kind: ErrorKind,
    /// What happened and what to do, safe to show (no credentials).
    pub message: String,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
