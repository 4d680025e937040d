//! Integration tests: the real router over HTTP, and bulk import of the reference data. One
//! test binary for all of them keeps build times down.

mod access;
mod browser;
mod browser_speakup;
mod care;
mod cli;
mod corpus;
mod demo;
mod http;
mod import;
mod measure;
mod rescue;
mod security;
mod sessions;
mod speakup;
mod speakup_pages;

/// The reference data the repository carries for its tests (see testdata/README.md).
pub fn testdata() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .expect("the repository root")
        .join("testdata")
}

/// Runs the `coproduce` binary on a database; whether it succeeded, and its output (stdout
/// then stderr).
pub fn coproduce(db: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coproduce"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run coproduce");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
