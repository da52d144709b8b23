//! What the tests of `runyard worker --config` and `runyard serve
//! --config` share: the binary run with none of the caller's `RUNYARD_`
//! variables, a command run to its end, config files written, and the
//! check that each bad file is refused with its file, line and column.

use std::path::Path;
use std::process::{Command, Stdio};

/// The binary under test, with no `RUNYARD_` variable of the caller's.
pub(crate) fn runyard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runyard"));
    c.env("NO_COLOR", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RUNYARD_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs `runyard COMMAND ARGS` with `env` to the end: exit code, stderr.
pub(crate) fn ends(command: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let o = runyard()
        .arg(command)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("runyard starts");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes `text` to `dir/NAME`; its path.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Each case `(text after head, line:column, what the message says)` as
/// a file in `dir` given to `runyard COMMAND --config`: refused (exit 2)
/// naming the file's place and the message, its line shown with the
/// place marked unless the key is unknown (its value may be a secret).
pub(crate) fn refuses_each_file(
    dir: &Path,
    command: &str,
    head: &str,
    cases: &[(&str, &str, &str)],
) {
    for (i, (text, place, message)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        let file = write(dir, &name, &format!("{head}{text}"));
        let (code, err) = ends(command, &["--config", &file], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(
            err.contains(&format!("{name}{place}")) && err.contains(message),
            "{text}: expected {name}{place} and {message:?} in:\n{err}"
        );
        assert_eq!(
            err.contains(" | "),
            !message.starts_with("unknown"),
            "{err}"
        );
    }
}
