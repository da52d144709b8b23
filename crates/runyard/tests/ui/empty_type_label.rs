#[derive(serde::Serialize, serde::Deserialize, runyard::Params)]
struct P {
    #[param(type = "")]
    cmd: serde_json::Value,
}

fn main() {}
