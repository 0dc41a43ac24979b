#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wangge_fuzz::run(|| wangge_fuzz::targets::enrollment_link(data)));
