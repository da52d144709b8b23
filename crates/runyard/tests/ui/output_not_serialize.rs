struct NotSerialize;

#[runyard::task]
fn t(_: ()) -> Result<NotSerialize, runyard::TaskError> {
    Ok(NotSerialize)
}

fn main() {}
