//! Workflows in job files: names, `after` and `run_if` read, linked,
//! ordered parents first, refused with the place at fault, and expanded
//! into batches with their edges.

use runyard::queue::{Capabilities, Durability, Enqueued, NewJob, Writes};
use runyard::workflow::{Parent, RunIf};

use super::*;

const ETL: &str = r#"
[[job]]
name = "load"
task = "noop"
after = ["transform"]

[[job]]
name = "extract"
task = "noop"

[[job]]
name = "transform"
task = "noop"
count = 3
after = ["extract"]

[[job]]
task = "noop"
"#;

fn all() -> Capabilities {
    Capabilities::new(Durability::Process, Writes::Concurrent).with_all()
}

fn names(jobs: &Jobs) -> Vec<String> {
    jobs.list
        .iter()
        .map(|p| p.job.name.clone().unwrap_or_else(|| "-".into()))
        .collect()
}

#[test]
fn parents_come_first_and_the_rest_keep_their_order() {
    let jobs = files(&[ETL]).unwrap();
    assert_eq!(names(&jobs), ["extract", "transform", "load", "-"]);
    let load = &jobs.list[2];
    assert_eq!(load.edges.len(), 1);
    assert_eq!(load.edges[0].to, Target::Entry(1));
    assert_eq!(load.edges[0].key, "transform");
    assert!(load.edges[0].many, "a name with a count stands for a list");
    assert!(!jobs.list[1].edges[0].many);
}

/// Enqueues `jobs` in batches of `chunk` into a pretend queue that numbers
/// jobs from 1; returns the batches.
fn batches(jobs: &Jobs, chunk: usize) -> Vec<Vec<NewJob>> {
    let mut out = Vec::new();
    let mut next = 1;
    enqueue(&jobs.list, chunk, |batch| {
        let ids = (next..next + batch.len() as u64)
            .map(|i| Enqueued::New(JobId(i)))
            .collect();
        next += batch.len() as u64;
        out.push(batch);
        Ok(ids)
    })
    .unwrap();
    out
}

#[test]
fn edges_point_into_the_batch_or_at_the_ids_of_earlier_batches() {
    let jobs = files(&[ETL]).unwrap();
    let one = batches(&jobs, 100);
    assert_eq!(one.len(), 1);
    let parents = |j: &NewJob| j.after.iter().map(|a| a.parent).collect::<Vec<_>>();
    assert_eq!(parents(&one[0][1]), [Parent::Batch(0)]);
    assert_eq!(
        parents(&one[0][4]),
        [Parent::Batch(1), Parent::Batch(2), Parent::Batch(3)]
    );
    assert!(one[0][4]
        .after
        .iter()
        .all(|a| a.key == "transform" && a.many));
    assert_eq!(one[0][4].name.as_deref(), Some("load"));
    // In twos: load (job 5) is in the third batch; its parents, jobs 2 to
    // 4, were sent before.
    let split = batches(&jobs, 2);
    assert_eq!(split.len(), 3);
    assert_eq!(parents(&split[0][1]), [Parent::Batch(0)]);
    assert_eq!(parents(&split[1][0]), [Parent::Job(JobId(1))]);
    assert_eq!(
        parents(&split[2][0]),
        [
            Parent::Job(JobId(2)),
            Parent::Job(JobId(3)),
            Parent::Job(JobId(4))
        ]
    );
    let split = batches(&jobs, 4);
    assert_eq!(
        parents(&split[1][0]),
        [
            Parent::Job(JobId(2)),
            Parent::Job(JobId(3)),
            Parent::Job(JobId(4))
        ]
    );
    let split = batches(&jobs, 3);
    assert_eq!(
        parents(&split[1][1]),
        [
            Parent::Job(JobId(2)),
            Parent::Job(JobId(3)),
            Parent::Batch(0)
        ]
    );
}

#[test]
fn after_may_name_a_job_of_another_file_or_an_id() {
    let a = "[[job]]\nname = \"build\"\ntask = \"noop\"\nafter = [17]\n";
    let b = "[[job]]\ntask = \"noop\"\nafter = [\"build\"]\nrun_if = \"always\"\n";
    let jobs = files(&[b, a]).unwrap();
    assert_eq!(names(&jobs), ["build", "-"]);
    assert_eq!(jobs.list[0].edges[0].to, Target::Id(JobId(17)));
    assert_eq!(jobs.list[0].edges[0].key, "17");
    assert_eq!(jobs.list[1].job.run_if, RunIf::Always);
    assert_eq!(jobs.list[0].job.run_if, RunIf::Success);
    let e = jobs.refuse_ids("the queue starts empty").unwrap_err();
    assert_eq!(e.location, "jobs2.toml:4:10");
}

fn refused(texts: &[&str]) -> InputError {
    files(texts).unwrap_err()
}

#[test]
fn an_unknown_name_is_refused_where_it_is_with_the_closest_name() {
    let e = refused(&[
        "[[job]]\nname = \"extract\"\ntask = \"noop\"\n\n[[job]]\ntask = \"noop\"\nafter = [\"extrct\"]\n",
    ]);
    assert_eq!(e.location, "jobs.toml:7:10");
    assert!(e.message.contains("`extrct`"), "{e}");
    assert!(e.message.contains("did you mean `extract`?"), "{e}");
    let e = refused(&["[[job]]\ntask = \"noop\"\nafter = [\"zzz\"]\n"]);
    assert!(e.message.contains("the `name` of a job"), "{e}");
}

#[test]
fn a_name_given_twice_is_refused_naming_both_places() {
    let a = "[[job]]\nname = \"x\"\ntask = \"noop\"\n";
    let b = "\n[[job]]\ntask = \"noop\"\nname = \"x\"\n";
    let e = refused(&[a, b]);
    assert_eq!(e.location, "jobs2.toml:4:8");
    assert!(e.message.contains("jobs.toml:2:8"), "{e}");
    assert!(e.message.contains("`x`"), "{e}");
}

#[test]
fn a_cycle_is_refused_naming_its_members_in_order() {
    let text = r#"
[[job]]
name = "free"
task = "noop"

[[job]]
name = "a"
task = "noop"
after = ["free", "c"]

[[job]]
name = "b"
task = "noop"
after = ["a"]

[[job]]
name = "c"
task = "noop"
after = ["b"]
"#;
    let e = refused(&[text]);
    assert_eq!(e.location, "jobs.toml:9:18");
    assert!(e.message.contains("`a` → `c` → `b` → `a`"), "{e}");
    let e = refused(&["[[job]]\nname = \"a\"\ntask = \"noop\"\nafter = [\"a\"]\n"]);
    assert!(e.message.contains("`a` is after itself"), "{e}");
}

#[test]
fn bad_workflow_keys_say_what_is_valid() {
    let e = refused(&["[[job]]\ntask = \"noop\"\nrun_if = \"sometimes\"\n"]);
    assert_eq!(e.location, "jobs.toml:3:10");
    assert!(
        e.message.contains("`sometimes`")
            && e.message.contains("\"success\"")
            && e.message.contains("\"always\""),
        "{e}"
    );
    let e = refused(&["[[job]]\ntask = \"noop\"\nname = \"12\"\n"]);
    assert!(e.message.contains("cannot be a number"), "{e}");
    let e = refused(&["[[job]]\ntask = \"noop\"\nafter = [0]\n"]);
    assert_eq!(e.location, "jobs.toml:3:10");
    let e = refused(&["[[job]]\ntask = \"noop\"\nafter = [1.5]\n"]);
    assert!(e.message.contains("the id of a job"), "{e}");
    let e = refused(&[
        "[[job]]\nname = \"a\"\ntask = \"noop\"\n[[job]]\ntask = \"noop\"\nafter = [\"a\", \"a\"]\n",
    ]);
    assert!(e.message.contains("names `a` twice"), "{e}");
}

#[test]
fn a_queue_without_dependencies_or_without_the_ids_is_refused_before_anything() {
    let jobs = files(&[
        "[[job]]\nname = \"a\"\ntask = \"noop\"\n[[job]]\ntask = \"noop\"\nafter = [\"a\", 9]\n",
    ])
    .unwrap();
    let without = all().without(Capability::Dependencies);
    let e = jobs
        .check_against(&without, |_| Ok(true))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("jobs.toml:6:10: "), "{e}");
    assert!(e.contains("dependencies"), "{e}");
    let e = jobs
        .check_against(&all(), |id| Ok(id != JobId(9)))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("jobs.toml:6:15: "), "{e}");
    assert!(e.contains("job 9, which is not in the queue"), "{e}");
    jobs.check_against(&all(), |_| Ok(true)).unwrap();
    // Jobs with no edges need nothing.
    files(&["[[job]]\ntask = \"noop\"\n"])
        .unwrap()
        .check_against(&without, |_| Ok(false))
        .unwrap();
}

#[test]
fn the_readme_workflow_is_valid() {
    let readme = include_str!("../../../../../README.md");
    let start = readme
        .find("```toml\n[[job]]\nname = \"extract\"")
        .expect("the README's workflow");
    let text = &readme[start + "```toml\n".len()..];
    let text = &text[..text.find("```").unwrap()];
    let jobs = files(&[text]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&jobs), ["extract", "transform", "load"]);
    assert_eq!(jobs.list[2].edges[1].to, Target::Id(JobId(17)));
}
