#[runyard::task(backoff = "linear:1s")]
fn t(_: (), _ctx: &runyard::Context) -> Result<(), runyard::TaskError> {
    Ok(())
}

fn main() {}
