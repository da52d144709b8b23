//! The command template of `runyard exec`: GNU parallel's replacement
//! strings, filled in per job as parallel fills them.
//!
//! A word of the command is literal text and placeholders. The placeholders
//! are parallel's: `{}` (the job's inputs, one from each input source, in
//! order), `{.}` (without the extension), `{/}` (the basename), `{//}` (the
//! directory, as Perl's `dirname`), `{/.}` (the basename without the
//! extension), `{#}` (the job number), and the same five for one input by
//! its position: `{1}`, `{2.}`, `{1/}`, `{3//}`, `{2/.}` (negative positions
//! count from the last, as in parallel). Any other text passes through,
//! braces and all, as it does in parallel (`${#1}`, `{a}`, `{/x}`,
//! `awk '{print}'`). Parallel's `{%}` (the job slot), `{0}` and
//! `{= perl =}` are refused: passing them through would run something other
//! than what a parallel user meant.
//!
//! Parallel runs every command through a shell, quoting what it fills in.
//! Without `--shell` runyard runs the words as an argv, so a word becomes
//! the words a shell would have made of parallel's line: `{}` of two inputs
//! makes two arguments (the first joined to the text before it, the last
//! to the text after it), and a word that is only a missing `{N}` makes
//! none. With `--shell` the line is parallel's line, quoted as parallel
//! quotes it.

use std::borrow::Cow;

/// How a placeholder changes an input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
}

impl Op {
    fn apply(self, s: &str) -> Cow<'_, str> {
        match self {
            Op::Whole => Cow::Borrowed(s),
            Op::NoExt => Cow::Borrowed(without_ext(s)),
            Op::Base => Cow::Borrowed(basename(s)),
            Op::Dir => Cow::Borrowed(dirname(s)),
            Op::BaseNoExt => Cow::Borrowed(without_ext(basename(s))),
        }
    }

    /// The op of what follows `{` or `{N` up to `}`.
    fn of(suffix: &str) -> Option<Op> {
        Some(match suffix {
            "" => Op::Whole,
            "." => Op::NoExt,
            "/" => Op::Base,
            "//" => Op::Dir,
            "/." => Op::BaseNoExt,
            _ => return None,
        })
    }
}

/// Which inputs of a job a placeholder takes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Which {
    /// Every one, in order.
    All,
    /// One by position: from 1, or from the last when negative.
    At(i64),
}

/// One piece of a command word.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Arg(Which, Op),
    Seq,
}

const SUPPORTED: &str = "placeholders are {}, {.}, {/}, {//}, {/.}, {#}, and {N}, {N.}, {N/}, {N//}, {N/.} for the Nth input";

/// What a `{...}` at the start of `rest` is: a placeholder and its length,
/// a refusal, or `None` for literal text.
fn placeholder(rest: &str, word: &str) -> Option<Result<(Piece, usize), String>> {
    if rest.starts_with("{=") && rest[2..].contains("=}") {
        return Some(Err(format!(
            "`{{= ... =}}` (a Perl expression) in `{word}` is not supported; {SUPPORTED}"
        )));
    }
    let end = rest.find('}')?;
    let body = &rest[1..end];
    let len = end + 1;
    if body == "#" {
        return Some(Ok((Piece::Seq, len)));
    }
    if body == "%" {
        return Some(Err(format!(
            "`{{%}}` (the job slot) in `{word}` is not supported; {SUPPORTED}"
        )));
    }
    if let Some(op) = Op::of(body) {
        return Some(Ok((Piece::Arg(Which::All, op), len)));
    }
    let digits_from = usize::from(body.starts_with('-'));
    let digits = body[digits_from..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return None;
    }
    let number_end = digits_from + digits;
    let op = Op::of(body[number_end..].trim_start())?;
    let n: i64 = match body[..number_end].parse() {
        Ok(0) | Err(_) => {
            return Some(Err(format!(
                "`{}` in `{word}`: inputs are numbered from 1 ({{1}} is the first); {SUPPORTED}",
                &rest[..len]
            )))
        }
        Ok(n) => n,
    };
    Some(Ok((Piece::Arg(Which::At(n), op), len)))
}

/// Splits a word into literal text and placeholders.
fn parse_word(word: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('{') {
        lit.push_str(&rest[..i]);
        rest = &rest[i..];
        match placeholder(rest, word) {
            Some(Ok((p, len))) => {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(p);
                rest = &rest[len..];
            }
            Some(Err(e)) => return Err(e),
            None => {
                lit.push('{');
                rest = &rest[1..];
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// Everything after the last `/` (parallel's `s:.*/::`).
fn basename(s: &str) -> &str {
    s.rsplit_once('/').map_or(s, |(_, b)| b)
}

/// Everything before the last `.` after the last `/` (parallel's
/// `s:\.[^/.]*$::`: `.hidden` has no name left, only an extension).
fn without_ext(s: &str) -> &str {
    let base_start = s.rfind('/').map_or(0, |i| i + 1);
    match s[base_start..].rfind('.') {
        Some(dot) => &s[..base_start + dot],
        None => s,
    }
}

/// The directory of a path as Perl's `File::Basename::dirname` gives it
/// (which parallel uses for `{//}`): trailing slashes do not make a
/// directory (`a/b/` is in `a`), repeated ones count as one (`a//b` is in
/// `a`), and a path without one is in `.`.
fn dirname(s: &str) -> &str {
    // fileparse: the text up to and with the last `/` (or `./`), and the rest.
    fn split(p: &str) -> (&str, &str) {
        match p.rfind('/') {
            Some(i) => (&p[..=i], &p[i + 1..]),
            None => ("./", p),
        }
    }
    // Trailing slashes off, keeping at least one character.
    fn strip(d: &str) -> &str {
        match d.trim_end_matches('/') {
            "" => &d[..d.len().min(1)],
            t => t,
        }
    }
    let (dir, base) = split(s);
    let dir = strip(dir);
    if base.is_empty() {
        strip(split(dir).0)
    } else {
        dir
    }
}

/// Quotes a word for `sh` as GNU parallel does: as it is when it holds
/// only letters, digits and `-_.+/`; otherwise in single quotes, a single
/// quote written `'"'"'`.
pub(super) fn quote(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        return Cow::Borrowed("''");
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.+/".contains(&b))
    {
        return Cow::Borrowed(s);
    }
    let q = format!("'{}'", s.replace('\'', r#"'"'"'"#));
    let q = q.strip_prefix("''").unwrap_or(&q);
    let q = q.strip_suffix("''").unwrap_or(q);
    Cow::Owned(q.to_string())
}

/// The input at a position, if the job has one there.
fn at(args: &[String], n: i64) -> Option<&str> {
    let i = if n > 0 {
        usize::try_from(n - 1).ok()?
    } else {
        args.len()
            .checked_sub(usize::try_from(n.unsigned_abs()).ok()?)?
    };
    args.get(i).map(String::as_str)
}

/// The command template: its words, and whether any has a placeholder.
#[derive(Debug)]
pub(super) struct Template {
    words: Vec<Vec<Piece>>,
    has_placeholder: bool,
}

impl Template {
    pub(super) fn parse(words: &[String]) -> Result<Template, String> {
        let words = words
            .iter()
            .map(|w| parse_word(w))
            .collect::<Result<Vec<_>, _>>()?;
        let has_placeholder = words.iter().flatten().any(|p| !matches!(p, Piece::Lit(_)));
        Ok(Template {
            words,
            has_placeholder,
        })
    }

    /// The argv for one job (its inputs, one per source, and its number).
    /// Without a placeholder, the inputs are appended.
    pub(super) fn argv(&self, args: &[String], seq: u64) -> Vec<String> {
        let mut argv = Vec::with_capacity(self.words.len() + args.len());
        for word in &self.words {
            let mut cur = String::new();
            let mut keep = false;
            for p in word {
                match p {
                    Piece::Lit(s) => {
                        cur.push_str(s);
                        keep = true;
                    }
                    Piece::Seq => {
                        cur.push_str(&seq.to_string());
                        keep = true;
                    }
                    Piece::Arg(Which::All, op) => {
                        for (i, a) in args.iter().enumerate() {
                            if i > 0 {
                                argv.push(std::mem::take(&mut cur));
                            }
                            cur.push_str(&op.apply(a));
                        }
                        keep = true;
                    }
                    Piece::Arg(Which::At(n), op) => {
                        if let Some(a) = at(args, *n) {
                            cur.push_str(&op.apply(a));
                            keep = true;
                        }
                    }
                }
            }
            if keep {
                argv.push(cur);
            }
        }
        if !self.has_placeholder {
            argv.extend(args.iter().cloned());
        }
        argv
    }

    /// The `sh -c` line for one job, inputs quoted as parallel quotes them.
    pub(super) fn line(&self, args: &[String], seq: u64) -> String {
        self.joined(args, seq, Cow::Borrowed)
    }

    /// The argv of one job as a shell line (for the job log and
    /// `--dry-run`): the line parallel shows for the same command, each
    /// piece of literal text quoted too, as a parallel user quotes it.
    pub(super) fn shown(&self, args: &[String], seq: u64) -> String {
        self.joined(args, seq, quote)
    }

    fn joined<'s>(
        &'s self,
        args: &[String],
        seq: u64,
        lit: impl Fn(&'s str) -> Cow<'s, str>,
    ) -> String {
        let mut words: Vec<String> = self
            .words
            .iter()
            .map(|word| {
                word.iter()
                    .map(|p| match p {
                        Piece::Lit(s) => lit(s).into_owned(),
                        Piece::Seq => seq.to_string(),
                        Piece::Arg(Which::All, op) => args
                            .iter()
                            .map(|a| quote(&op.apply(a)).into_owned())
                            .collect::<Vec<_>>()
                            .join(" "),
                        Piece::Arg(Which::At(n), op) => at(args, *n)
                            .map(|a| quote(&op.apply(a)).into_owned())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .collect();
        if !self.has_placeholder {
            words.extend(args.iter().map(|a| quote(a).into_owned()));
        }
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(words: &[&str]) -> Template {
        Template::parse(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn one(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    #[test]
    fn placeholders_fill_inside_words() {
        let tp = t(&["gzip", "-c", "{}", "out/{/.}.gz", "#{#}"]);
        assert_eq!(
            tp.argv(&one("logs/app.log"), 3),
            ["gzip", "-c", "logs/app.log", "out/app.gz", "#3"]
        );
        let tp = t(&["echo", "{.}", "{/}", "{//}"]);
        assert_eq!(
            tp.argv(&one("a/b.tar.gz"), 1),
            ["echo", "a/b.tar", "b.tar.gz", "a"]
        );
        assert_eq!(tp.argv(&one("plain"), 1), ["echo", "plain", "plain", "."]);
        assert_eq!(tp.argv(&one(".hidden"), 1), ["echo", "", ".hidden", "."]);
    }

    #[test]
    fn dirname_is_perls() {
        for (path, dir) in [
            ("a//b", "a"),
            ("a/b/", "a"),
            ("a/b//", "a"),
            ("/", "/"),
            ("//a", "/"),
            ("/a", "/"),
            ("a/", "."),
            ("a", "."),
            ("", "."),
        ] {
            assert_eq!(dirname(path), dir, "dirname of `{path}`");
        }
    }

    #[test]
    fn without_a_placeholder_the_inputs_are_appended() {
        let tp = t(&["echo", "x"]);
        assert_eq!(tp.argv(&one("in put"), 1), ["echo", "x", "in put"]);
        assert_eq!(tp.line(&one("it's"), 1), r#"echo x 'it'"'"'s'"#);
        let two = vec!["a b".to_string(), "c".to_string()];
        assert_eq!(tp.argv(&two, 1), ["echo", "x", "a b", "c"]);
        assert_eq!(tp.line(&two, 1), "echo x 'a b' c");
    }

    #[test]
    fn several_inputs_fill_as_a_shell_would_split_parallels_line() {
        let args = vec!["d/a.x".to_string(), "b.y".to_string()];
        let tp = t(&[
            "echo",
            "pre{}post",
            "{2}",
            "{-1/.}",
            "{1//}",
            "[{3}]",
            "{3}",
            "{.}",
        ]);
        assert_eq!(
            tp.argv(&args, 1),
            ["echo", "pred/a.x", "b.ypost", "b.y", "b", "d", "[]", "d/a", "b"]
        );
        assert_eq!(tp.line(&args, 1), "echo pred/a.x b.ypost b.y b d []  d/a b");
    }

    #[test]
    fn other_braces_pass_through_and_parallels_others_are_refused() {
        let tp = t(&["printf", "{a}%s{", "${#1}", "{/x}", "out/{.", "{ }", "{{}}"]);
        assert_eq!(
            tp.argv(&one("z"), 1),
            ["printf", "{a}%s{", "${#1}", "{/x}", "out/{.", "{ }", "{z}"]
        );
        for (word, msg) in [
            ("{%}", "`{%}` (the job slot)"),
            ("x{= $_ =}", "a Perl expression"),
            ("{0}", "`{0}` in `{0}`: inputs are numbered from 1"),
            ("{-0.}", "numbered from 1"),
        ] {
            let e = parse_word(word).unwrap_err();
            assert!(e.contains(msg), "{word}: {e}");
        }
    }

    #[test]
    fn the_shown_line_quotes_literal_text_and_each_input_apart() {
        let tp = t(&["sh", "-c", "echo $1", "sh", "x{}", "{#}", ""]);
        assert_eq!(
            tp.shown(&one("a b"), 7),
            r#"sh -c 'echo $1' sh x'a b' 7 ''"#
        );
    }

    #[test]
    fn quoting_is_parallels() {
        for (s, q) in [
            ("plain-1.2+x/y_z", "plain-1.2+x/y_z"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", r#"'it'"'"'s'"#),
            ("'a", r#""'"'a'"#),
            ("a'", r#"'a'"'""#),
            ("a=b", "'a=b'"),
        ] {
            assert_eq!(quote(s), q, "{s}");
        }
    }
}
