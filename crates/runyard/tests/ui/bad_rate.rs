#[runyard::task(rate = "ten/s")]
fn t(_: ()) -> Result<(), runyard::TaskError> {
    Ok(())
}

fn main() {}
