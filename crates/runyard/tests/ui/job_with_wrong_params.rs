use runyard::{task, Params, TaskError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Params)]
struct Resize {
    width: u32,
}

#[derive(Serialize, Deserialize, Params)]
struct Crop {
    width: u32,
}

#[task]
fn resize(p: Resize) -> Result<u32, TaskError> {
    Ok(p.width)
}

fn main() {
    let _ = resize::job(Crop { width: 640 });
}
