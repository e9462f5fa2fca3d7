//! Load errors: each names the file, line and column, the dotted key, what is wrong and how to fix it.

use std::fmt;

/// Everything wrong with a config file, in file order. Displayed one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// One problem in a config file.
///
/// Displayed as `FILE:LINE:COLUMN: KEY: MESSAGE — FIX`, e.g.
/// `camhub.toml:14:16: camera[2].idle_timeout: invalid duration "30 sex" — use a duration like "30s", "500ms" or "2m"`.
/// Parts that are unknown (no line for an unreadable file, no key for a syntax error) are left out.
/// URLs in `message` and `fix` are always redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or other origin) the text came from.
    pub origin: String,
    /// 1-based line, when the error has a place in the text.
    pub line: Option<usize>,
    /// 1-based column in characters, when the error has a place in the text.
    pub column: Option<usize>,
    /// Dotted key path like `camera[2].idle_timeout` (cameras count from 0); empty when no key applies.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, e.g. `use a duration like "30s", "500ms" or "2m"`.
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if !self.fix.is_empty() {
            write!(f, " — {}", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Maps byte offsets in a text to 1-based (line, column-in-characters).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line and column of a byte offset (clamped to the text; never panics).
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = match self.text.get(start..offset) {
            Some(s) => s.chars().count(),
            None => offset - start,
        };
        (line, column + 1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let idx = LineIndex::new("ab\nçd\n\nx");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(1), (1, 2));
        assert_eq!(idx.position(2), (1, 3));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(5), (2, 2)); // after the two-byte 'ç'
        assert_eq!(idx.position(7), (3, 1));
        assert_eq!(idx.position(8), (4, 1));
        assert_eq!(idx.position(9), (4, 2));
        assert_eq!(idx.position(1000), (4, 2));
        assert_eq!(idx.position(4), (2, 2)); // inside 'ç': no panic
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        let mut e = ConfigError {
            origin: "camhub.toml".into(),
            line: Some(14),
            column: Some(16),
            key: "camera[2].idle_timeout".into(),
            message: "invalid duration \"30 sex\"".into(),
            fix: "use a duration like \"30s\", \"500ms\" or \"2m\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "camhub.toml:14:16: camera[2].idle_timeout: invalid duration \"30 sex\" — use a duration like \"30s\", \"500ms\" or \"2m\""
        );
        e.line = None;
        e.key = String::new();
        e.fix = String::new();
        assert_eq!(e.to_string(), "camhub.toml: invalid duration \"30 sex\"");
        let all = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string().lines().count(), 2);
    }
}
