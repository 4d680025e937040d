fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}/manifest.json")).unwrap()).unwrap();
    for c in m.as_array().unwrap() {
        let bytes = std::fs::read(format!("{dir}/{}", c["file"].as_str().unwrap())).unwrap();
        let r = coproduce_fhir::parse_resource(&bytes);
        let got = if r.is_ok() { "accept" } else { "reject" };
        let mark = if got == c["expect"] { "  " } else { "XX" };
        println!(
            "{mark} {} {} -> {got} {}",
            c["name"],
            c["expect"],
            r.err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .chars()
                .take(150)
                .collect::<String>()
        );
    }
}
