//! Where the inputs of `runyard exec` come from, and how they make jobs.
//!
//! An input source is a list: the words after `:::`, or the records of a
//! file given after `::::` or with `-a` (lines, or NUL-separated with `-0`;
//! `-` is standard input). With no source given, standard input is the
//! one. A job takes one input from each source: every combination, the
//! first source varying slowest, as GNU parallel combines them. A source
//! given with `:::+` or `::::+` is linked to the one before it instead: the
//! first input of each goes to one job, then the second of each, and so on
//! as far as the shorter goes. `-a` sources come first, then those after
//! the command, in order.
//!
//! A single file source (standard input by default: `seq N | runyard
//! exec ...`) is read as jobs are made ([`Inputs::Streamed`]: a record at a
//! time, through a buffer), so that the first jobs start before the input
//! ends and the inputs are never all in memory. Several sources are read
//! whole first, since every combination needs every list.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::exit::UsageError;

/// The most jobs one `exec` makes from several sources (their lists are
/// read whole and combined before any job starts). A single source read
/// as it goes has no such limit.
pub(super) const MAX_JOBS: u64 = 10_000_000;

/// The jobs' inputs, in order.
pub(super) enum Inputs {
    /// One file source, read a record at a time.
    Streamed(Records),
    /// Several sources, combined.
    Listed(std::vec::IntoIter<Vec<String>>),
}

impl Inputs {
    /// Opens the sources: one file source is opened and its first record
    /// read (so a file that cannot be read is refused before anything
    /// runs); several are read whole and combined.
    pub(super) fn open(
        arg_files: &[PathBuf],
        line: &CommandLine<'_>,
        null: bool,
    ) -> Result<Inputs, UsageError> {
        let sources = sources(arg_files, line);
        if let [Source {
            given: Given::File(f),
            ..
        }] = sources.as_slice()
        {
            let mut records = Records::open(f, null)?;
            records.peeked = records.read()?;
            return Ok(Inputs::Streamed(records));
        }
        Ok(Inputs::Listed(
            combine(read_sources(sources, null)?)?.into_iter(),
        ))
    }

    /// Whether the next input can be had without waiting for the source
    /// (it is already read, or in the reader's buffer).
    pub(super) fn ready(&self) -> bool {
        match self {
            Inputs::Streamed(r) => r.peeked.is_some() || !r.reader.buffer().is_empty(),
            Inputs::Listed(_) => true,
        }
    }
}

impl Iterator for Inputs {
    type Item = Result<Vec<String>, UsageError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Inputs::Listed(l) => l.next().map(Ok),
            Inputs::Streamed(r) => match r.peeked.take() {
                Some(p) => Some(Ok(vec![p])),
                None => r.read().transpose().map(|x| x.map(|p| vec![p])),
            },
        }
    }
}

/// The records of one file (or of standard input), read as asked for.
pub(super) struct Records {
    reader: BufReader<Box<dyn Read + Send>>,
    name: PathBuf,
    sep: u8,
    peeked: Option<String>,
    line: Vec<u8>,
}

impl Records {
    fn open(f: &Path, null: bool) -> Result<Records, UsageError> {
        let read: Box<dyn Read + Send> = if f == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(f).map_err(|e| {
                UsageError(format!("{}: cannot read the input file: {e}", f.display()))
            })?)
        };
        Ok(Records {
            reader: BufReader::with_capacity(64 * 1024, read),
            name: f.to_path_buf(),
            sep: if null { b'\0' } else { b'\n' },
            peeked: None,
            line: Vec::new(),
        })
    }

    /// The next record; `None` at the end. A final separator ends the last
    /// record; it does not start an empty one.
    fn read(&mut self) -> Result<Option<String>, UsageError> {
        self.line.clear();
        let n = self
            .reader
            .read_until(self.sep, &mut self.line)
            .map_err(|e| {
                UsageError(if self.name == Path::new("-") {
                    format!("cannot read inputs from standard input: {e}")
                } else {
                    format!("{}: cannot read the input file: {e}", self.name.display())
                })
            })?;
        if n == 0 {
            return Ok(None);
        }
        if self.line.last() == Some(&self.sep) {
            self.line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&self.line).into_owned()))
    }
}

/// One input source as given.
#[derive(Debug, Clone, PartialEq)]
enum Given {
    Words(Vec<String>),
    File(PathBuf),
}

/// An input source and whether it is linked to the one before it.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    given: Given,
    linked: bool,
}

/// The command words and the input sources after them.
#[derive(Debug, PartialEq)]
pub(super) struct CommandLine<'a> {
    pub(super) command: &'a [String],
    sources: Vec<Source>,
}

const SEPARATORS: [&str; 4] = [":::", ":::+", "::::", "::::+"];

impl CommandLine<'_> {
    /// Splits `COMMAND... [::: WORDS...] [:::: FILES...] ...`.
    pub(super) fn split(words: &[String]) -> CommandLine<'_> {
        let first = words
            .iter()
            .position(|w| SEPARATORS.contains(&w.as_str()))
            .unwrap_or(words.len());
        let mut sources = Vec::new();
        let mut rest = &words[first..];
        while let Some((sep, tail)) = rest.split_first() {
            let end = tail
                .iter()
                .position(|w| SEPARATORS.contains(&w.as_str()))
                .unwrap_or(tail.len());
            let (list, next) = tail.split_at(end);
            let linked = sep.ends_with('+');
            if sep.starts_with("::::") {
                sources.extend(list.iter().map(|f| Source {
                    given: Given::File(PathBuf::from(f)),
                    linked,
                }));
            } else {
                sources.push(Source {
                    given: Given::Words(list.to_vec()),
                    linked,
                });
            }
            rest = next;
        }
        CommandLine {
            command: &words[..first],
            sources,
        }
    }
}

/// The sources: `-a` files first, then those of the command line;
/// standard input when there is none.
fn sources(arg_files: &[PathBuf], line: &CommandLine<'_>) -> Vec<Source> {
    let mut sources: Vec<Source> = arg_files
        .iter()
        .map(|f| Source {
            given: Given::File(f.clone()),
            linked: false,
        })
        .collect();
    sources.extend(line.sources.iter().cloned());
    if sources.is_empty() {
        sources.push(Source {
            given: Given::File(PathBuf::from("-")),
            linked: false,
        });
    }
    sources
}

/// Reads every source whole.
fn read_sources(sources: Vec<Source>, null: bool) -> Result<Vec<(Vec<String>, bool)>, UsageError> {
    let mut stdin_read = false;
    sources
        .into_iter()
        .map(|s| {
            let list = match s.given {
                Given::Words(w) => w,
                Given::File(f) => {
                    if f == Path::new("-") {
                        if stdin_read {
                            return Err(UsageError(
                                "standard input (`-`) is given as an input source twice; it can be read once"
                                    .into(),
                            ));
                        }
                        stdin_read = true;
                    }
                    records(&f, null)?
                }
            };
            Ok((list, s.linked))
        })
        .collect()
}

/// The records of a file (or of standard input, `-`).
fn records(f: &Path, null: bool) -> Result<Vec<String>, UsageError> {
    let mut text = Vec::new();
    if f == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_end(&mut text)
            .map_err(|e| UsageError(format!("cannot read inputs from standard input: {e}")))?;
    } else {
        std::fs::File::open(f)
            .and_then(|mut file| file.read_to_end(&mut text))
            .map_err(|e| UsageError(format!("{}: cannot read the input file: {e}", f.display())))?;
    }
    let sep = if null { b'\0' } else { b'\n' };
    let mut records: Vec<String> = text
        .split(|b| *b == sep)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    // A final separator ends the last record; it does not start an empty one.
    if records.last().is_some_and(String::is_empty) {
        records.pop();
    }
    Ok(records)
}

/// The jobs' inputs: one from each source, combined as the module comment
/// says. Refuses more than [`MAX_JOBS`] jobs.
pub(super) fn combine(sources: Vec<(Vec<String>, bool)>) -> Result<Vec<Vec<String>>, UsageError> {
    // Linked sources form one group; a group is a list of tuples.
    let mut groups: Vec<Vec<Vec<String>>> = Vec::new();
    for (list, linked) in sources {
        match groups.last_mut() {
            Some(group) if linked => {
                group.truncate(list.len());
                for (tuple, input) in group.iter_mut().zip(list) {
                    tuple.push(input);
                }
            }
            _ => groups.push(list.into_iter().map(|i| vec![i]).collect()),
        }
    }
    let total = groups
        .iter()
        .try_fold(1u64, |n, g| n.checked_mul(g.len() as u64))
        .filter(|n| *n <= MAX_JOBS);
    let Some(total) = total else {
        let sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
        return Err(UsageError(format!(
            "the input sources make more than {MAX_JOBS} jobs (every combination of lists of {} inputs); \
             split the work into several runs, or link lists with :::+",
            sizes.join(" × ")
        )));
    };
    let mut jobs = Vec::with_capacity(total as usize);
    let mut index = vec![0usize; groups.len()];
    if total == 0 {
        return Ok(jobs);
    }
    loop {
        jobs.push(
            groups
                .iter()
                .zip(&index)
                .flat_map(|(g, &i)| g[i].iter().cloned())
                .collect(),
        );
        // The last source varies fastest.
        let mut k = groups.len();
        loop {
            if k == 0 {
                return Ok(jobs);
            }
            k -= 1;
            index[k] += 1;
            if index[k] < groups[k].len() {
                break;
            }
            index[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn list(s: &str, linked: bool) -> (Vec<String>, bool) {
        (words(s), linked)
    }

    #[test]
    fn the_command_ends_at_the_first_separator() {
        let w = words("echo {1} {2} ::: a b :::+ 1 2 :::: f g ::::+ h");
        let l = CommandLine::split(&w);
        assert_eq!(l.command, &w[..3]);
        let given: Vec<(Given, bool)> =
            l.sources.into_iter().map(|s| (s.given, s.linked)).collect();
        assert_eq!(
            given,
            [
                (Given::Words(words("a b")), false),
                (Given::Words(words("1 2")), true),
                (Given::File("f".into()), false),
                (Given::File("g".into()), false),
                (Given::File("h".into()), true),
            ]
        );
        assert!(CommandLine::split(&words("echo x")).sources.is_empty());
    }

    #[test]
    fn sources_combine_as_parallel_combines_them() {
        let jobs = combine(vec![list("a b", false), list("1 2 3", false)]).unwrap();
        let shown: Vec<String> = jobs.iter().map(|j| j.join(" ")).collect();
        assert_eq!(shown, ["a 1", "a 2", "a 3", "b 1", "b 2", "b 3"]);
        let jobs = combine(vec![
            list("a b", false),
            list("1 2 3", true),
            list("X Y", false),
        ])
        .unwrap();
        let shown: Vec<String> = jobs.iter().map(|j| j.join(" ")).collect();
        assert_eq!(shown, ["a 1 X", "a 1 Y", "b 2 X", "b 2 Y"]);
        assert!(combine(vec![list("a b", false), list("", false)])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn too_many_combinations_are_refused_before_anything_is_made() {
        let big: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let e = combine(vec![(big.clone(), false), (big, false)]).unwrap_err();
        assert!(e.0.contains("5000 × 5000"), "{}", e.0);
    }
}
