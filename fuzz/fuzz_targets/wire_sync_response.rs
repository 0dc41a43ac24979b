#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wangge_fuzz::run(|| wangge_fuzz::targets::wire_sync_response(data)));
