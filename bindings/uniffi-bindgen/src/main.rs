//! `uniffi-bindgen generate <libwangge_ffi.so> --language kotlin|swift|python --out-dir <dir>`:
//! the generator at exactly the uniffi version the library was built with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
