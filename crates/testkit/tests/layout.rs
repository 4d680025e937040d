//! The layout holds: one module per workflow in each layer, workflows that meet only through
//! `core` types, the FHIR API and the store, no import circle between modules, and no source
//! file over 800 lines. Read from the code itself (every `crate::` and `super::` path), so
//! `cargo test -p coproduce-testkit --test layout -- --nocapture` prints the map of who uses
//! whom in each crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workflows (a new one joins this list). A workflow's module in `app` or `web` names no
/// other workflow's module.
const WORKFLOWS: &[&str] = &[
    "accounts",
    "care",
    "measures",
    "prescribing",
    "rescue",
    "social",
    "speakup",
];

/// The modules that put workflows together, by crate; nothing but another composer or the
/// crate root names them.
const COMPOSERS: &[(&str, &[&str])] = &[
    ("app", &["demo", "jobs", "synthetic", "workflows"]),
    ("web", &["home"]),
];

/// The most lines a source file may have, outside tests.
const MOST_LINES: usize = 800;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src`: `care/readings.rs` is `["care", "readings"]`,
/// `care/mod.rs` is `["care"]`, `lib.rs` is `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The top-level modules a file's code names, through `crate::x`, `super::x` (resolved from
/// where the file sits) and groups such as `use crate::{x, y::{z}}` over several lines.
fn named_units(text: &str, path: &[String]) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    scan(&code, "crate::", &mut out);
    // `super::x` from a top-level module (a file at the root or a folder's mod.rs) is the
    // crate root's `x`; from deeper it stays inside the same top-level module.
    if path.len() == 1 {
        scan(&code, "super::", &mut out);
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

fn ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every first name after `prefix` (not part of a longer name such as `coproduce_crate::`).
fn scan(code: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        let after = &rest[i + prefix.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        match after.strip_prefix('{') {
            Some(group) => {
                // The names at the group's own level, up to its closing brace.
                let (mut depth, mut item) = (0usize, String::new());
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(ident(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 || item.is_empty() {
                        item.push(c);
                    }
                }
                out.insert(ident(&item));
            }
            None => {
                out.insert(ident(after));
            }
        }
    }
}

/// Module-to-module uses in one crate: top-level module -> the top-level modules it names.
fn uses(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("crates").join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty(), "no source in {}", src.display());
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(&src, f).first().cloned())
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let path = module_path(&src, f);
        let from = path.first().cloned().unwrap_or_else(|| "lib".into());
        let text = std::fs::read_to_string(f).expect("a source file");
        let named = named_units(&text, &path);
        let entry = graph.entry(from.clone()).or_default();
        for n in named {
            if n != from && tops.contains(&n) {
                entry.insert(n);
            }
        }
    }
    graph
}

/// A circle in the graph, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut c = stack[start..].to_vec();
                    c.push(next.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn print_map(krate: &str, graph: &BTreeMap<String, BTreeSet<String>>) {
    println!("{krate}:");
    for (from, to) in graph {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("  {from:<14} -> {}", to.join(", "));
    }
}

#[test]
fn no_module_circles_in_any_crate() {
    for krate in [
        "core", "fhir", "store", "measures", "app", "web", "cli", "testkit",
    ] {
        let graph = uses(krate);
        print_map(krate, &graph);
        let mut without_root = graph.clone();
        without_root.remove("lib");
        without_root.remove("main");
        for to in without_root.values_mut() {
            to.remove("lib");
            to.remove("main");
        }
        assert_eq!(
            circle(&without_root),
            None,
            "an import circle between modules of {krate}"
        );
    }
}

#[test]
fn workflows_meet_only_through_core_the_api_and_the_store() {
    for krate in ["app", "web"] {
        let graph = uses(krate);
        let composers: &[&str] = COMPOSERS
            .iter()
            .find(|(k, _)| *k == krate)
            .map_or(&[], |(_, c)| c);
        for (from, to) in &graph {
            if from == "lib" || composers.contains(&from.as_str()) {
                continue;
            }
            for t in to {
                assert!(
                    !composers.contains(&t.as_str()),
                    "{krate}: {from} uses {t}, which puts the workflows together"
                );
                if WORKFLOWS.contains(&t.as_str()) {
                    assert!(
                        !WORKFLOWS.contains(&from.as_str()) || from == t,
                        "{krate}: the workflow {from} uses the workflow {t}"
                    );
                    assert!(
                        WORKFLOWS.contains(&from.as_str()),
                        "{krate}: {from}, shared by every workflow, uses the workflow {t}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_fhir_api_names_no_workflow() {
    let graph = uses("app");
    let api = graph.get("fhir_api").expect("the FHIR API module");
    for w in WORKFLOWS {
        assert!(!api.contains(*w), "the FHIR API uses the workflow {w}");
    }
}

#[test]
fn every_workflow_has_a_folder_in_app_and_web() {
    for krate in ["app", "web"] {
        for w in WORKFLOWS {
            let dir = root().join("crates").join(krate).join("src").join(w);
            assert!(
                dir.join("mod.rs").is_file(),
                "{krate}: the workflow {w} has no folder {}",
                dir.display()
            );
        }
    }
}

/// The lines of a file that count: all of them, less an inline `#[cfg(test)] mod tests`
/// block at the end.
fn counted_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let tests = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].starts_with("mod tests {"));
    tests.unwrap_or(lines.len())
}

#[test]
fn no_source_file_is_over_800_lines_outside_tests() {
    let mut files = Vec::new();
    for dir in ["crates", "bench"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut long = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root())
            .expect("under the root")
            .to_path_buf();
        let in_tests = rel
            .iter()
            .any(|c| c == "tests" || c == "target" || c == "benches")
            || rel.file_name().is_some_and(|n| n == "tests.rs");
        if in_tests {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a source file");
        let n = counted_lines(&text);
        if n > MOST_LINES {
            long.push(format!("{} ({n} lines)", rel.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MOST_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn the_reader_sees_the_uses_it_checks() {
    // The checks above are only as good as this reader: it must see each form of a path.
    let text = "use crate::care::Care;\nuse crate::{\n    fhir_api::{FhirApi, Write},\n    notify,\n};\nlet x = crate::rescue::f();\n// crate::measures in a comment\nuse coproduce_crate::x;\n";
    let named = named_units(text, &["demo".to_string()]);
    let want: BTreeSet<String> = ["care", "fhir_api", "notify", "rescue"]
        .map(String::from)
        .into();
    assert_eq!(named, want);
    let from_mod = named_units("use super::vocabulary::ROLES;", &["care".to_string()]);
    assert!(from_mod.contains("vocabulary"));
    let from_child = named_units("use super::*;", &["care".into(), "readings".into()]);
    assert!(from_child.is_empty());
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(circle(&g).is_some());
    g.remove("b");
    assert_eq!(circle(&g), None);
}
