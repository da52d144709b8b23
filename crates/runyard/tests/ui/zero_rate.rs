#[runyard::task(rate = "0/s")]
fn t(_: ()) -> Result<(), runyard::TaskError> {
    Ok(())
}

fn main() {}
