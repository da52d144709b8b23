#[runyard::task(rate = 10)]
fn t(_: ()) -> Result<(), runyard::TaskError> {
    Ok(())
}

fn main() {}
