include!("support/resize.rs");

fn main() {
    let _ = resise::job(Resize { width: 640 });
}
