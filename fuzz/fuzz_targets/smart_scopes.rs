//! The SMART scope parser: any text is scopes or a reason, never a panic; parsed scopes print
//! back as text that parses to the same scopes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scopes) = coproduce_core::access::parse_scopes(text) {
        let printed: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        let again = coproduce_core::access::parse_scopes(&printed.join(" "))
            .expect("printed scopes parse again");
        assert_eq!(again, scopes);
    }
});
