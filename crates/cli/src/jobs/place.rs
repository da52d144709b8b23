//! Where bad input is: an error naming the argument, or the file, line
//! and column with the line shown and the place marked.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::limits::{clip, LINE_CHARS, MESSAGE_CHARS};

/// Bad input: where, what, and the offending line when it is in a file.
#[derive(Debug)]
pub(crate) struct InputError {
    pub(super) location: String,
    pub(super) message: String,
    pub(super) snippet: Option<(usize, String, usize, usize)>,
}

impl InputError {
    /// An error at `location` (an argument, a file).
    pub(crate) fn new(location: impl Into<String>, message: impl fmt::Display) -> InputError {
        InputError {
            location: location.into(),
            message: clip(&message.to_string(), MESSAGE_CHARS).into_owned(),
            snippet: None,
        }
    }

    /// The same without the offending line shown (the place is still
    /// named): for a line that may hold a secret.
    pub(crate) fn without_line(self) -> InputError {
        InputError {
            snippet: None,
            ..self
        }
    }

    /// The offending line, as it would be shown.
    pub(crate) fn line(&self) -> Option<&str> {
        self.snippet.as_ref().map(|(_, text, _, _)| text.as_str())
    }

    /// The message, without the place.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// The part of a long `line` around the mark at column `col` (from 1, in
/// characters) that is `width` wide: the text, with `…` where it was cut,
/// and the mark's column and width in it.
fn around(line: &str, col: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= LINE_CHARS {
        return (line.to_string(), col, width);
    }
    let at = col.saturating_sub(1).min(chars.len());
    let end = (at.saturating_sub(LINE_CHARS / 3) + LINE_CHARS).min(chars.len());
    let start = end - LINE_CHARS;
    let mut text = String::new();
    if start > 0 {
        text.push('…');
    }
    text.extend(&chars[start..end]);
    if end < chars.len() {
        text.push('…');
    }
    let col = at - start + 1 + usize::from(start > 0);
    (text, col, width.min(end.saturating_sub(at)))
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some((line, text, col, width)) = &self.snippet {
            let num = line.to_string();
            let pad = " ".repeat(num.len());
            write!(
                f,
                "\n{pad} |\n{num} | {text}\n{pad} | {}{}",
                " ".repeat(col.saturating_sub(1)),
                "^".repeat((*width).max(1))
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// A file's text, to turn byte offsets into lines and columns.
pub(crate) struct Source<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl fmt::Display,
    ) -> InputError {
        let path = self.path.display();
        let Some(span) = span else {
            return InputError::new(path.to_string(), message);
        };
        let start = self.boundary(span.start);
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_no = self.text[..start].matches('\n').count() + 1;
        let col = self.text[line_start..start].chars().count() + 1;
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = self.text[line_start..line_end].trim_end_matches('\r');
        let end = self.boundary(span.end.min(line_end).max(start));
        let width = self.text[start..end].chars().count();
        let (text, mark, width) = around(line, col, width);
        InputError {
            snippet: Some((line_no, text, mark, width)),
            ..InputError::new(format!("{path}:{line_no}:{col}"), message)
        }
    }

    /// `at`, moved back to the start of its character (and into the text).
    fn boundary(&self, at: usize) -> usize {
        let mut at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}
