include!("support/resize.rs");

fn main() {
    let _ = resize::job(Resize { widht: 640 });
}
