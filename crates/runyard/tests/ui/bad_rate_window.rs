#[runyard::task(rate = "10/d")]
fn t(_: ()) -> Result<(), runyard::TaskError> {
    Ok(())
}

fn main() {}
