//! Bulk import of the reference data: every eCQM test bundle and every Synthea patient
//! imports without a rejection, and importing again changes nothing.

use coproduce_testkit::{TestApp, TestBackend};

use crate::coproduce;

fn total_line(report: &str) -> Vec<u64> {
    let line = report
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("a total line");
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn reference_data_imports_cleanly_and_idempotently() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let data = crate::testdata();
    let dirs = [
        data.join("ecqm/CMS122/tests"),
        data.join("ecqm/CMS165/tests"),
        data.join("synthea/bundles"),
    ];
    let args: Vec<String> = std::iter::once("import".to_string())
        .chain(dirs.iter().map(|d| d.display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    app.db.store.close().await;
    let (ok, first) = coproduce(&app.db.url, &args);
    assert!(ok, "{first}");
    assert!(first.contains("134 files"), "{first}");
    let t = total_line(&first);
    assert_eq!(t[3], 0, "nothing rejected:\n{first}");
    // Every resource of the 124 eCQM test patients and the 10 Synthea records, created once.
    assert_eq!(t[0], 1461, "{first}");
    let (ok, second) = coproduce(&app.db.url, &args);
    assert!(ok, "{second}");
    let t2 = total_line(&second);
    assert_eq!(
        (t2[0], t2[1], t2[3]),
        (0, 0, 0),
        "the second import changes nothing:\n{second}"
    );
    assert_eq!(t2[2], t[0] + t[1] + t[2]);

    // Export writes one NDJSON file per type, and it imports back unchanged.
    let out = tempfile::tempdir().unwrap();
    let (ok, report) = coproduce(
        &app.db.url,
        &["export", "--out", out.path().to_str().unwrap()],
    );
    assert!(ok, "{report}");
    let patients = std::fs::read_to_string(out.path().join("Patient.ndjson")).unwrap();
    assert_eq!(patients.lines().count(), 10 + 124);
    let (ok, again) = coproduce(&app.db.url, &["import", out.path().to_str().unwrap()]);
    assert!(ok, "{again}");
    let t3 = total_line(&again);
    assert_eq!((t3[0], t3[1], t3[3]), (0, 0, 0), "{again}");
}
