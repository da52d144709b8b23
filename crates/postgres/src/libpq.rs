//! What a PostgreSQL user expects from libpq: the `PG*` environment
//! variables, the password file (`~/.pgpass`, `PGPASSFILE`), and the
//! `key=value` connection string's quoting.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The environment as libpq reads it: a variable's value, if set and not
/// empty.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Writes a warning to standard error, once per process for each text.
pub(crate) fn warn_once(text: String) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.contains(&text) {
        return;
    }
    let _ = writeln!(std::io::stderr(), "warning: {text}");
    said.push(text);
}

/// A `key=value` connection string's pairs, values unquoted.
pub(crate) fn split_key_values(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            // Not `key=value`: kept as a key alone for the driver to refuse.
            out.push((key, String::new()));
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    value.extend(chars.next());
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// Pairs back into a `key=value` string, each value quoted.
pub(crate) fn join_key_values(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('\'', "\\'");
            format!("{k}='{v}'")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL query value with its `%XX` escapes (and `+`) decoded.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user's home directory.
pub(crate) fn home(env: Env<'_>) -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

/// Where the password file is: `passfile=`, `PGPASSFILE`, or `~/.pgpass`.
pub(crate) fn passfile(given: Option<&str>, env: Env<'_>) -> Option<PathBuf> {
    given
        .map(PathBuf::from)
        .or_else(|| env("PGPASSFILE").map(PathBuf::from))
        .or_else(|| home(env).map(|h| h.join(".pgpass")))
}

/// What a password file's line is matched against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Login<'a> {
    /// The host's name; for a Unix socket, its directory.
    pub(crate) host: &'a str,
    pub(crate) unix: bool,
    pub(crate) port: u16,
    pub(crate) dbname: &'a str,
    pub(crate) user: &'a str,
}

/// The password for `login` in the password file at `path`: `None` when
/// the file does not exist, holds no line for it, or may be read by
/// others than its owner (then ignored with a warning, as libpq does).
pub(crate) fn pgpass_password(path: &Path, login: Login<'_>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        warn_once(format!(
            "password file {} is not a plain file; it is ignored",
            path.display()
        ));
        return None;
    }
    if meta.mode() & 0o077 != 0 {
        warn_once(format!(
            "password file {} has group or world access (mode {:o}); it is ignored: \
             make it u=rw (0600) or less (chmod 600 {})",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    pgpass_lookup(&text, login)
}

/// The password of the first line of a password file's `text` that
/// matches `login`. Each line is `host:port:database:user:password`, `*`
/// matching anything in the first four fields, `\:` and `\\` escapes.
pub(crate) fn pgpass_lookup(text: &str, login: Login<'_>) -> Option<String> {
    let port = login.port.to_string();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = pgpass_fields(line);
        let [host, p, db, user, password] = fields.as_slice() else {
            continue;
        };
        let any = |f: &(String, bool), want: &str| (f.0 == "*" && !f.1) || f.0 == want;
        // A Unix socket matches `localhost` as well as its directory.
        let host_ok = any(host, login.host) || (login.unix && host.0 == "localhost");
        if host_ok && any(p, &port) && any(db, login.dbname) && any(user, login.user) {
            return Some(password.0.clone());
        }
    }
    None
}

/// A line's fields, unescaped, each with whether it held an escape (an
/// escaped `\*` is a star, not a wildcard). The last field takes the rest
/// of the line.
fn pgpass_fields(line: &str) -> Vec<(String, bool)> {
    let mut fields = vec![(String::new(), false)];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let n = fields.len();
        let last = fields.last_mut().expect("one field at least");
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    last.0.push(n);
                    last.1 = true;
                }
            }
            ':' if n < 5 => fields.push((String::new(), false)),
            c => last.0.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login<'a>(host: &'a str, port: u16, dbname: &'a str, user: &'a str) -> Login<'a> {
        Login {
            host,
            unix: false,
            port,
            dbname,
            user,
        }
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# a comment\n\
                    db.example:5432:app:alice:first\n\
                    *:5433:*:bob:b\\:c\\\\d\n\
                    h\\:x:*:*:*:escaped-host\n\
                    *:*:*:*:fallback\n";
        let p = |l| pgpass_lookup(text, l);
        assert_eq!(
            p(login("db.example", 5432, "app", "alice")).as_deref(),
            Some("first")
        );
        assert_eq!(
            p(login("anywhere", 5433, "x", "bob")).as_deref(),
            Some("b:c\\d")
        );
        assert_eq!(
            p(login("h:x", 1, "d", "u")).as_deref(),
            Some("escaped-host")
        );
        assert_eq!(
            p(login("db.example", 5432, "app", "carol")).as_deref(),
            Some("fallback")
        );
        assert_eq!(
            pgpass_lookup("only:three:fields", login("only", 1, "a", "b")),
            None
        );
        let star = "\\*:*:*:*:literal\n";
        assert_eq!(pgpass_lookup(star, login("other", 1, "d", "u")), None);
        assert_eq!(
            pgpass_lookup(star, login("*", 1, "d", "u")).as_deref(),
            Some("literal")
        );
        let sock = Login {
            host: "/run/postgresql",
            unix: true,
            port: 5432,
            dbname: "d",
            user: "u",
        };
        assert_eq!(
            pgpass_lookup("localhost:5432:d:u:s\n", sock).as_deref(),
            Some("s")
        );
    }

    #[test]
    fn a_pgpass_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(&f, "*:*:*:*:pw\n").unwrap();
        let l = login("h", 5432, "d", "u");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(pgpass_password(&f, l).as_deref(), Some("pw"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(pgpass_password(&f, l), None);
        assert_eq!(pgpass_password(&dir.path().join("none"), l), None);
    }

    #[test]
    fn key_value_strings_split_and_join() {
        let pairs = split_key_values("host=db  user = me password='a b\\'c' sslmode=verify-full");
        assert_eq!(
            pairs,
            [
                ("host".into(), "db".into()),
                ("user".into(), "me".into()),
                ("password".into(), "a b'c".into()),
                ("sslmode".into(), "verify-full".into()),
            ]
        );
        assert_eq!(split_key_values(&join_key_values(&pairs)), pairs);
        assert_eq!(percent_decode("%2Ftmp%2Fca%20file.pem"), "/tmp/ca file.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
