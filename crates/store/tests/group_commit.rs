//! SQLite's group commit: concurrent writes share durable commits, each in its own
//! savepoint (but the first of a batch, which opened its transaction). One write that fails
//! or is dropped leaves the others whole; a commit that fails fails every write it carried,
//! and none of them is kept.

use coproduce_fhir::parse_resource;
use coproduce_store::{Store, StoreError};
use coproduce_testkit::{TestBackend, TestDb};
use std::sync::Arc;
use time::macros::datetime;

fn patient(id: &str) -> coproduce_fhir::Resource {
    parse_resource(format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#).as_bytes())
        .expect("a valid Patient")
}

async fn exists(store: &Store, id: &str) -> bool {
    match store.read("Patient", id).await {
        Ok(_) => true,
        Err(StoreError::NotFound { .. }) => false,
        Err(e) => panic!("reading Patient/{id}: {e}"),
    }
}

/// Writes `id` in a transaction of its own: Ok once durable.
async fn write(store: Store, id: String) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.create(patient(&id), datetime!(2026-12-05 10:00 UTC))
        .await?;
    tx.commit().await
}

#[tokio::test]
async fn concurrent_writes_share_commits_and_a_failed_one_sinks_no_other() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = db.store.clone();
    let (commits_before, writes_before) = store.group_commits().expect("SQLite groups");
    let barrier = Arc::new(tokio::sync::Barrier::new(61));
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            if n % 10 == 7 {
                // This one writes, then fails before it commits (its Tx is dropped).
                let mut tx = store.begin().await?;
                tx.create(patient(&format!("p{n}")), datetime!(2026-12-05 10:00 UTC))
                    .await?;
                return Err(StoreError::PreconditionFailed("gave up".into()));
            }
            if n % 10 == 3 {
                // This one writes, then makes the same resource again, which is refused.
                let mut tx = store.begin().await?;
                tx.create(patient(&format!("p{n}")), datetime!(2026-12-05 10:00 UTC))
                    .await?;
                tx.create(patient(&format!("p{n}")), datetime!(2026-12-05 10:00 UTC))
                    .await?;
                return tx.commit().await;
            }
            write(store, format!("p{n}")).await
        }));
    }
    barrier.wait().await;
    let mut failed = Vec::new();
    for (n, t) in tasks.into_iter().enumerate() {
        if t.await.expect("the task ends").is_err() {
            failed.push(n);
        }
    }
    assert_eq!(failed, [3, 7, 13, 17, 23, 27, 33, 37, 43, 47, 53, 57]);
    for n in 0..60 {
        assert_eq!(
            exists(&store, &format!("p{n}")).await,
            !failed.contains(&n),
            "p{n}: kept exactly when its write said so"
        );
    }
    let (commits, writes) = store.group_commits().unwrap();
    let (commits, writes) = (commits - commits_before, writes - writes_before);
    assert_eq!(
        writes, 48,
        "each write that succeeded was carried by a commit"
    );
    assert!(
        commits < writes,
        "{writes} concurrent writes shared commits ({commits} made)"
    );
    db.drop_db().await;
}

/// On PostgreSQL too: its writes keep transactions of their own, but the rows of reads
/// share commits, interleaved with the writes' own rows in one chain.
#[tokio::test]
async fn audit_rows_of_reads_share_commits_and_the_chain_holds_on_every_backend() {
    for backend in coproduce_testkit::backends() {
        audit_rows_share_commits(backend).await;
    }
}

/// An allowed event by `actor`.
fn event(actor: String, action: &str) -> coproduce_store::AuditEntry {
    coproduce_store::AuditEntry {
        actor,
        action: action.into(),
        outcome: "allowed".into(),
        ..Default::default()
    }
}

async fn audit_rows_share_commits(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    let store = db.store.clone().with_audit_key([7; 32]);
    let (commits_before, rows_before) = store.audit_commits();
    // Reads alone first (on an SQLite file, batches of audit rows with no write among them
    // are opened, appended and committed in one turn): each is told its own row.
    let alone: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let seq = store
                    .audit(&event(format!("alone{n}"), "read"))
                    .await
                    .expect("every row is written");
                (n, seq)
            })
        })
        .collect();
    for t in alone {
        let (n, seq) = t.await.unwrap();
        let row = store
            .audit_row(seq)
            .await
            .unwrap()
            .expect("the row it was told");
        assert_eq!(row.entry.actor, format!("alone{n}"), "{backend:?}");
    }
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if n % 4 == 0 {
                // Writes with audit rows of their own, in the same batches.
                let mut tx = store.begin().await?;
                tx.audit(&event(format!("w{n}"), "create")).await?;
                tx.commit().await?;
                return Ok(None);
            }
            store.audit(&event(format!("r{n}"), "read")).await.map(Some)
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        if let Some(seq) = t.await.unwrap().expect("every row is written") {
            seqs.push(seq);
        }
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 30, "each read's row has a number of its own");
    assert_eq!(
        store.verify_audit().await.unwrap(),
        coproduce_store::AuditVerdict::Intact(48),
        "{backend:?}: 48 rows, one chain, its head sealed"
    );
    for seq in seqs {
        let row = store
            .audit_row(seq)
            .await
            .unwrap()
            .expect("the row it was told");
        assert!(row.entry.actor.starts_with('r'), "{row:?}");
    }
    for seq in 1..=8 {
        let row = store.audit_row(seq).await.unwrap().expect("the first rows");
        assert!(row.entry.actor.starts_with("alone"), "{row:?}");
    }
    let (commits, rows) = store.audit_commits();
    let (commits, rows) = (commits - commits_before, rows - rows_before);
    assert!(
        rows >= 38,
        "{backend:?}: the reads' rows went through the groups"
    );
    assert!(
        commits < rows,
        "{backend:?}: {rows} rows, {commits} commits"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn a_commit_that_fails_fails_every_write_it_carried() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = db.store.clone();
    // A writes and commits; B, already queued behind it, finds the batch's transaction gone
    // (as after a full disk, when SQLite rolls the whole transaction back by itself).
    let a = store.begin().await.unwrap();
    let b = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await?;
            tx.db().run("ROLLBACK").await?;
            tx.commit().await
        }
    });
    // B is queued on the writer before A hands it on.
    tokio::task::yield_now().await;
    let mut a = a;
    a.create(patient("a"), datetime!(2026-12-05 10:00 UTC))
        .await
        .unwrap();
    let a = a.commit().await;
    assert!(b.await.unwrap().is_err(), "B's savepoint is gone");
    assert!(
        matches!(a, Err(StoreError::Shared(_))),
        "A was answered with the failure of the commit it shared: {a:?}"
    );
    assert!(!exists(&store, "a").await, "and nothing of A was kept");
    // The writer goes on: the next write commits.
    write(store.clone(), "c".into()).await.unwrap();
    assert!(exists(&store, "c").await);
    db.drop_db().await;
}

/// The first write of a batch opened its transaction and has no savepoint: when it fails,
/// the transaction goes, and the write queued behind it starts a new one and commits.
#[tokio::test]
async fn a_failed_first_write_of_a_batch_leaves_nothing_and_the_next_goes_on() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = db.store.clone();
    // It has no savepoint to release (so SQLite journals none of the pages it changes).
    let mut probe = store.begin().await.unwrap();
    assert!(
        probe.db().run("RELEASE SAVEPOINT write").await.is_err(),
        "the write that opened the transaction set no savepoint"
    );
    drop(probe);
    let mut first = store.begin().await.unwrap();
    first
        .create(patient("first"), datetime!(2026-12-05 10:00 UTC))
        .await
        .unwrap();
    let next = tokio::spawn(write(store.clone(), "next".into()));
    // The next write is queued on the writer before the first one fails.
    tokio::task::yield_now().await;
    drop(first);
    next.await.unwrap().expect("the next write commits");
    assert!(
        !exists(&store, "first").await,
        "nothing of the first was kept"
    );
    assert!(exists(&store, "next").await);
    // A write that joins a batch after its first one keeps that one when it fails itself.
    let mut first = store.begin().await.unwrap();
    first
        .create(patient("kept"), datetime!(2026-12-05 10:00 UTC))
        .await
        .unwrap();
    let joined = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await?;
            tx.create(patient("dropped"), datetime!(2026-12-05 10:00 UTC))
                .await?;
            Err::<(), _>(StoreError::PreconditionFailed("gave up".into()))
        }
    });
    tokio::task::yield_now().await;
    first.commit().await.expect("the first commits");
    assert!(joined.await.unwrap().is_err());
    assert!(exists(&store, "kept").await);
    assert!(!exists(&store, "dropped").await);
    db.drop_db().await;
}

#[tokio::test]
async fn a_write_dropped_on_its_own_lets_go_of_the_writer() {
    use sqlx::Connection;
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = db.store.clone();
    {
        let mut tx = store.begin().await.unwrap();
        tx.create(patient("gone"), datetime!(2026-12-05 10:00 UTC))
            .await
            .unwrap();
        // Dropped: it failed, or its request went away.
    }
    // Another process can take the write lock (waiting at most 5 s for it): the batch's
    // transaction ended although no other write came along to end it.
    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("the writer let go of SQLite's write lock");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    assert!(!exists(&store, "gone").await, "nothing of it was kept");
    // And the store closes: no connection is left in a forgotten transaction.
    store.close().await;
    db.drop_db().await;
}
