#[derive(serde::Serialize, serde::Deserialize, runyard::Params)]
struct P {
    #[param(minimum = 1)]
    n: u32,
}

fn main() {}
