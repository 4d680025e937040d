//! The community directory's CSV and FHIR loaders: any bytes are a directory or a refusal
//! naming the line, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = coproduce_app::social::directory::parse_csv(data) {
        let _ = coproduce_app::social::directory::resources(&rows);
    }
    let _ = coproduce_app::social::directory::parse_fhir(data);
});
