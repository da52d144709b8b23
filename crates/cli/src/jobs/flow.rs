//! Workflows in job files: the jobs a command names, linked by `name` and
//! `after`, put in an order where parents come first, and enqueued in
//! batches with their edges.
//!
//! # The protocol
//!
//! 1. [`resolve`] links every `after` entry to a job of the command (by
//!    name) or to a job in the queue (by id), refuses a name given twice,
//!    an unknown name, a repeated entry and a cycle, and orders the jobs:
//!    each after the jobs it is after, otherwise as they were given (Kahn's
//!    algorithm, the earliest given first).
//! 2. The command checks the queue (it keeps dependencies, the ids exist)
//!    before anything is enqueued.
//! 3. [`enqueue`] expands the copies in that order and sends them in
//!    batches: an edge to a job of the same batch is a
//!    [`Parent::Batch`] index (it comes earlier), one to a job of an
//!    earlier batch the [`Parent::Job`] id that batch was given.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use runyard::queue::{Enqueued, NewJob};
use runyard::workflow::{After, Parent};
use runyard::JobId;

use super::fields::AfterEntry;

/// A checked job, with how many copies to run and the jobs it is after.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The job (its `name` and `run_if` set; its `after` is filled in by
    /// [`enqueue`] from `edges`).
    pub(crate) job: NewJob,
    pub(crate) count: u32,
    /// What it is after.
    pub(crate) edges: Vec<Edge>,
}

/// Where in the command's job files: which file, and the bytes.
#[derive(Debug, Clone)]
pub(crate) struct Spot {
    pub(crate) file: usize,
    pub(crate) span: Range<usize>,
}

/// What an edge points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A job of the command, by its place in the resolved order.
    Entry(usize),
    /// A job already in the queue.
    Id(JobId),
}

/// One entry of `after`, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) to: Target,
    /// The parent's name, or its id as text.
    pub(crate) key: String,
    /// Whether the name stands for several copies (a job with `count`).
    pub(crate) many: bool,
    /// The entry in its file.
    pub(crate) at: Spot,
}

/// A job file entry's workflow keys, as read.
#[derive(Debug, Default)]
pub(crate) struct Links {
    pub(crate) name: Option<(String, Spot)>,
    pub(crate) after: Vec<(AfterEntry, Spot)>,
    /// Whether the entry gave `count` (its name then stands for a list).
    pub(crate) counted: bool,
}

/// Why the jobs cannot be linked: where, and what.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) at: Spot,
    pub(crate) message: String,
    /// Another place the message names ("also named at ..."), rendered by
    /// the caller into `{other}` of the message.
    pub(crate) other: Option<Spot>,
}

/// Links and orders the jobs (see the module's protocol, step 1).
pub(crate) fn resolve(drafts: Vec<(Prepared, Links)>) -> Result<Vec<Prepared>, Refusal> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, (_, links)) in drafts.iter().enumerate() {
        if let Some((name, at)) = &links.name {
            if let Some(&first) = names.get(name.as_str()) {
                return Err(Refusal {
                    at: at.clone(),
                    message: format!(
                        "the name `{name}` is given to two jobs (the other at {{other}}); \
                         names are unique across the job files of a command"
                    ),
                    other: drafts[first].1.name.as_ref().map(|(_, s)| s.clone()),
                });
            }
            names.insert(name, i);
        }
    }
    // Edges by the drafts' own indices; parents of each draft.
    let mut edges: Vec<Vec<Edge>> = Vec::with_capacity(drafts.len());
    for (i, (_, links)) in drafts.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(links.after.len());
        for (entry, at) in &links.after {
            let edge = match entry {
                AfterEntry::Id(id) => Edge {
                    to: Target::Id(JobId(*id)),
                    key: id.to_string(),
                    many: false,
                    at: at.clone(),
                },
                AfterEntry::Name(n) => {
                    let Some(&p) = names.get(n.as_str()) else {
                        return Err(Refusal {
                            at: at.clone(),
                            message: unknown_name(n, names.keys().copied()),
                            other: None,
                        });
                    };
                    if p == i {
                        return Err(Refusal {
                            at: at.clone(),
                            message: format!("the job `{n}` is after itself"),
                            other: None,
                        });
                    }
                    Edge {
                        to: Target::Entry(p),
                        key: n.clone(),
                        many: drafts[p].1.counted,
                        at: at.clone(),
                    }
                }
            };
            if !seen.insert(edge.key.clone()) {
                return Err(Refusal {
                    at: at.clone(),
                    message: format!("`after` names `{}` twice", edge.key),
                    other: None,
                });
            }
            out.push(edge);
        }
        edges.push(out);
    }
    let order = order(&drafts, &edges)?;
    let mut place = vec![0; drafts.len()];
    for (new, &old) in order.iter().enumerate() {
        place[old] = new;
    }
    let mut slots: Vec<Option<(Prepared, Vec<Edge>)>> = drafts
        .into_iter()
        .zip(edges)
        .map(|((p, _), e)| Some((p, e)))
        .collect();
    Ok(order
        .iter()
        .map(|&old| {
            let (mut p, mut e) = slots[old].take().expect("each job is placed once");
            for edge in &mut e {
                if let Target::Entry(t) = edge.to {
                    edge.to = Target::Entry(place[t]);
                }
            }
            p.edges = e;
            p
        })
        .collect())
}

/// An unknown name in `after`, with the closest names given.
fn unknown_name<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let mut close: Vec<(f64, &str)> = known
        .filter_map(|k| {
            let s = strsim::normalized_damerau_levenshtein(name, k);
            (s >= 0.5).then_some((s, k))
        })
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let hint = match close.first() {
        Some((_, k)) => format!("; did you mean `{k}`?"),
        None => " (an entry of `after` is the `name` of a job of this command's job files, \
                  or the id of a job already in the queue)"
            .to_string(),
    };
    format!("`after` names `{name}`, which is the name of no job of this command{hint}")
}

/// The drafts' indices with parents first, otherwise in the order given;
/// a cycle is refused, naming its members.
fn order(drafts: &[(Prepared, Links)], edges: &[Vec<Edge>]) -> Result<Vec<usize>, Refusal> {
    let n = drafts.len();
    let mut waiting = vec![0usize; n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, es) in edges.iter().enumerate() {
        for e in es {
            if let Target::Entry(p) = e.to {
                waiting[i] += 1;
                children[p].push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        out.push(i);
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if out.len() == n {
        return Ok(out);
    }
    // Every job left waits on another job left: walk back from the first
    // until a job repeats.
    let start = (0..n).find(|&i| waiting[i] > 0).expect("a job is left");
    let mut path = vec![start];
    let mut at = start;
    loop {
        let parent = edges[at]
            .iter()
            .find_map(|e| match e.to {
                Target::Entry(p) if waiting[p] > 0 => Some(p),
                _ => None,
            })
            .expect("a job left waits on a job left");
        if let Some(k) = path.iter().position(|&j| j == parent) {
            path.drain(..k);
            break;
        }
        path.push(parent);
        at = parent;
    }
    let name = |i: usize| {
        drafts[i]
            .1
            .name
            .as_ref()
            .map_or_else(String::new, |(n, _)| n.clone())
    };
    let mut chain: Vec<String> = path.iter().map(|&i| format!("`{}`", name(i))).collect();
    chain.push(chain[0].clone());
    let first = path[0];
    let next = name(path[1 % path.len()]);
    let at = edges[first]
        .iter()
        .find(|e| e.key == next)
        .map(|e| e.at.clone())
        .expect("the edge of the cycle");
    Err(Refusal {
        at,
        message: format!(
            "these jobs are after one another in a cycle, so none could start: {} \
             (each is after the next)",
            chain.join(" → ")
        ),
        other: None,
    })
}

/// Expands the jobs' copies in order and sends them in batches of at most
/// `chunk` (see the module's protocol, step 3). `send` enqueues one batch
/// and returns what the queue did with each job.
pub(crate) fn enqueue(
    list: &[Prepared],
    chunk: usize,
    mut send: impl FnMut(Vec<NewJob>) -> anyhow::Result<Vec<Enqueued>>,
) -> anyhow::Result<()> {
    let linked = list.iter().any(|p| !p.edges.is_empty());
    let mut starts = Vec::with_capacity(list.len());
    let mut total = 0u64;
    for p in list {
        starts.push(total);
        total += u64::from(p.count);
    }
    // The ids of the jobs sent so far, by position, when edges need them.
    let mut ids: Vec<JobId> = Vec::new();
    let mut first = 0u64;
    let mut batch = Vec::with_capacity(total.min(chunk as u64).min(10_000) as usize);
    let mut flush = |batch: &mut Vec<NewJob>, first: &mut u64, ids: &mut Vec<JobId>| {
        let n = batch.len() as u64;
        let out = send(std::mem::take(batch))?;
        if linked {
            ids.extend(out.into_iter().map(Enqueued::id));
        }
        *first += n;
        anyhow::Ok(())
    };
    for p in list {
        for _ in 0..p.count {
            let mut job = p.job.clone();
            for e in &p.edges {
                match e.to {
                    Target::Id(id) => job.after.push(After {
                        parent: Parent::Job(id),
                        key: e.key.clone(),
                        many: false,
                    }),
                    Target::Entry(t) => {
                        let from = starts[t];
                        for g in from..from + u64::from(list[t].count) {
                            let parent = if g >= first {
                                Parent::Batch((g - first) as usize)
                            } else {
                                Parent::Job(ids[g as usize])
                            };
                            job.after.push(After {
                                parent,
                                key: e.key.clone(),
                                many: e.many,
                            });
                        }
                    }
                }
            }
            batch.push(job);
            if batch.len() >= chunk {
                flush(&mut batch, &mut first, &mut ids)?;
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut first, &mut ids)?;
    }
    Ok(())
}
