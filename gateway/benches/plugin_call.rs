fn main() {
    println!("not written yet");
}
