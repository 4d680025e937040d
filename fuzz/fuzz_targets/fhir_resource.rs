//! The FHIR JSON parser and validator: any bytes are a resource or an OperationOutcome, never
//! a panic; what parses serializes back and parses again to the same resource.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = coproduce_fhir::parse_resource(data) {
        let v = r.to_value();
        let _ = coproduce_fhir::validate::validate_resource(&v);
        let again = coproduce_fhir::parse_resource(v.to_string().as_bytes())
            .expect("a parsed resource parses again");
        assert_eq!(again.to_value(), v);
    }
});
