#[runyard::task(queue_concurrency = 0)]
fn t(_: ()) -> Result<(), runyard::TaskError> {
    Ok(())
}

fn main() {}
