// The task the typed-job cases build jobs of (included by each).

use runyard::{task, Params, TaskError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Params)]
struct Resize {
    width: u32,
}

#[task]
fn resize(p: Resize) -> Result<u32, TaskError> {
    Ok(p.width)
}
