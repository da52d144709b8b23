//! A command's settings from three places: its flags, its environment
//! variables and the TOML file of `--config FILE`, in that order of
//! precedence. `runyard worker` (`worker_config.rs`, variables
//! `RUNYARD_<KEY>`) and `runyard serve` (`serve_config.rs`, variables
//! `RUNYARD_SERVE_<KEY>`) both merge theirs here; each says which keys it
//! takes (a `#[serde(deny_unknown_fields)]` struct of [`Spanned`] values)
//! and with which flag parser each is read.
//!
//! A key is a long flag's name with `_` for `-`, its variable the key in
//! capitals after the command's prefix. Each value, wherever it comes
//! from, is read by the flag's own parser. A file with an unknown key, a
//! value of the wrong type or a value its flag refuses is an error naming
//! the file, line and column (as job files are); a variable's error names
//! the variable. The line is left out where it may hold a secret.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::exit::UsageError;
use crate::jobs::{InputError, Source};

/// The file of `--config`: where it is and what it says.
pub(crate) struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    fn source(&self) -> Source<'_> {
        Source {
            path: &self.path,
            text: &self.text,
        }
    }
}

/// Reads the file at `path` (when one is given) and its keys, `F`.
pub(crate) fn read<F: DeserializeOwned>(
    path: Option<&Path>,
) -> anyhow::Result<Option<(ConfigFile, F)>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("--config {}: cannot read it: {e}", path.display())))?;
    let file = ConfigFile {
        path: path.to_path_buf(),
        text,
    };
    let keys: F = toml::from_str(&file.text)
        .map_err(|e| discreet(file.source().error(e.span(), e.message().trim_end())))?;
    Ok(Some((file, keys)))
}

/// A value from the file, as its flag would read it, and where it is.
pub(crate) struct FileValue {
    text: String,
    span: Range<usize>,
}

impl FileValue {
    /// `text`, at the place of `v`.
    pub(crate) fn at<T>(v: &Spanned<T>, text: String) -> FileValue {
        FileValue {
            text,
            span: v.span(),
        }
    }
}

/// A string key's value.
pub(crate) fn text(v: &Option<Spanned<String>>) -> Option<FileValue> {
    v.as_ref().map(|v| FileValue::at(v, v.get_ref().clone()))
}

/// A number or boolean key's value, as its flag would read it.
pub(crate) fn shown<T: ToString>(v: &Option<Spanned<T>>) -> Option<FileValue> {
    v.as_ref()
        .map(|v| FileValue::at(v, v.get_ref().to_string()))
}

/// `e`, without its line when that may show a secret: a misspelled key's
/// value (a token under `tokn`, say) or a URL with credentials.
fn discreet(e: InputError) -> InputError {
    let url_with_user = e
        .line()
        .and_then(|l| l.split_once("://"))
        .is_some_and(|(_, rest)| rest.contains('@'));
    if url_with_user || e.message().starts_with("unknown field") {
        e.without_line()
    } else {
        e
    }
}

pub(crate) fn nonempty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

pub(crate) fn path_of(s: &str) -> Result<PathBuf, String> {
    nonempty(s).map(PathBuf::from)
}

/// Reads a boolean variable: `true`, `false`, `1` or `0`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("`{s}` is not true, false, 1 or 0")),
    }
}

/// Fills a command's settings that its flags left unset.
pub(crate) struct Merger<'a> {
    /// What its variables start with: `RUNYARD_`, `RUNYARD_SERVE_`.
    prefix: &'static str,
    file: Option<&'a ConfigFile>,
}

impl<'a> Merger<'a> {
    pub(crate) fn new(prefix: &'static str, file: Option<&'a ConfigFile>) -> Merger<'a> {
        Merger { prefix, file }
    }

    /// The variable of `key`.
    pub(crate) fn var(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key.to_ascii_uppercase())
    }

    /// `slot`, unless a flag set it: from the variable of `key` (when
    /// `reads_env`; otherwise the flag reads it), else from the file.
    /// Returns where the value came from, as a message about it should
    /// name it (`--token-file`, `$RUNYARD_SERVE_TOKEN_FILE`, `` `token_file`
    /// in FILE ``), or `None` when it is still unset.
    pub(crate) fn fill<T>(
        &self,
        slot: &mut Option<T>,
        key: &str,
        reads_env: bool,
        file: Option<FileValue>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<Option<String>> {
        if slot.is_some() {
            return Ok(Some(format!("--{}", key.replace('_', "-"))));
        }
        if reads_env {
            let var = self.var(key);
            if let Some(v) = std::env::var_os(&var) {
                let v = v
                    .into_string()
                    .map_err(|_| UsageError(format!("${var}: not UTF-8")))?;
                if !v.is_empty() {
                    *slot = Some(parse(&v).map_err(|e| UsageError(format!("${var}: {e}")))?);
                    return Ok(Some(format!("${var}")));
                }
            }
        }
        if let (Some(v), Some(f)) = (file, self.file) {
            *slot = Some(parse(&v.text).map_err(|e| {
                discreet(
                    f.source()
                        .error(Some(v.span.clone()), format!("`{key}`: {e}")),
                )
            })?);
            return Ok(Some(format!("`{key}` in {}", f.path.display())));
        }
        Ok(None)
    }

    /// A switch: on if its flag is given, else as its variable or the file
    /// says.
    pub(crate) fn flag(
        &self,
        slot: &mut bool,
        key: &str,
        file: Option<FileValue>,
    ) -> anyhow::Result<()> {
        if *slot {
            return Ok(());
        }
        let mut v = None;
        self.fill(&mut v, key, true, file, parse_bool)?;
        *slot = v.unwrap_or(false);
        Ok(())
    }
}
