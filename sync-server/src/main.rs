//! wangge-server: the sync server. The protocol and storage arrive with the sync issue;
//! until then the binary only says what it is.

fn main() {
    println!(
        "wangge-server {}: the sync server is not built yet; see `cargo run --release -p wangge-core --example capture_demo`",
        env!("CARGO_PKG_VERSION")
    );
}
