#[runyard::task]
fn t(_: (), ctx: runyard::Context) -> Result<(), runyard::TaskError> {
    let _ = ctx;
    Ok(())
}

fn main() {}
