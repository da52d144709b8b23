include!("support/resize.rs");

#[derive(Serialize, Deserialize, Params)]
struct Crop {
    width: u32,
}

fn main() {
    let _ = resize::job(Crop { width: 640 });
}
