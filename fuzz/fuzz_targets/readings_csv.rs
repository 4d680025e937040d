//! The readings CSV parser: any bytes are readings or a refusal naming the row, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = time::macros::datetime!(2026-12-01 12:00 UTC);
    let calendar = coproduce_core::calendar::BusinessCalendar::default();
    let _ = coproduce_app::care::parse_csv(data, now, &calendar);
});
