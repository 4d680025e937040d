//! Views of stored versions, each built once: a version never changes once written, so the
//! reading, goal, task, plan activities or panel row it holds is built from its JSON the
//! first time a page lists it and kept by its (id, version) after. The team home lists a
//! panel's every patient, open goal and task, plan and recent reading: building them from
//! JSON on every load was a third of its time.
//!
//! What a caller sees is still decided by the search that found the versions (the policy's
//! reach, in the store's query); this only saves rebuilding what those versions say. A new
//! version is a new key, so a view is never older than the version it is asked for. Kept
//! views are bounded, and the least used are dropped first.

use super::*;
use quick_cache::sync::Cache;

/// How many views of one kind are kept (a view is a few hundred bytes).
const KEPT: usize = 100_000;

/// One kind of view (of one resource type), by the (id, version) it was built from.
pub(super) struct Memo<V>(Arc<Cache<(String, i64), V>>);

impl<V> Clone for Memo<V> {
    fn clone(&self) -> Self {
        Memo(self.0.clone())
    }
}

impl<V: Clone> Memo<V> {
    fn new() -> Self {
        Memo(Arc::new(Cache::new(KEPT)))
    }

    /// The view of `s`: kept, else built by `build` and kept if it could be built.
    pub(super) fn try_of<E>(
        &self,
        s: &Stored,
        build: impl FnOnce(&Stored) -> std::result::Result<V, E>,
    ) -> std::result::Result<V, E> {
        if let Some(kept) = self.0.get(&Version(&s.id, s.version_id)) {
            return Ok(kept);
        }
        let built = build(s)?;
        self.0.insert((s.id.clone(), s.version_id), built.clone());
        Ok(built)
    }
}

impl<V: Clone + Send + Sync> Memo<V> {
    /// The views of every match of a search on `api`, those kept without reading their JSON
    /// ([`FhirApi::search_all_known`]), the rest built by `build` (and kept).
    pub(super) async fn search(
        &self,
        api: &FhirApi,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
        build: impl Fn(&Stored) -> V,
    ) -> Result<Vec<V>> {
        self.try_search(api, caller, rt, params, |s| Ok(build(s)))
            .await
    }

    /// [`Memo::search`] with a `build` that can fail (the search fails with it).
    pub(super) async fn try_search(
        &self,
        api: &FhirApi,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
        build: impl Fn(&Stored) -> Result<V>,
    ) -> Result<Vec<V>> {
        let kept = |id: &str, version: i64| self.0.get(&Version(id, version));
        api.search_all_known(caller, rt, params, &kept)
            .await?
            .into_iter()
            .map(|(s, kept)| match kept {
                Some(view) => Ok(view),
                None => self.try_of(&s, &build),
            })
            .collect()
    }
}

/// A key looked up without copying the id: it hashes as `(String, i64)` does (a tuple hashes
/// its fields in order, and a `String` as its `str`).
#[derive(Hash)]
struct Version<'a>(&'a str, i64);

impl quick_cache::Equivalent<(String, i64)> for Version<'_> {
    fn equivalent(&self, key: &(String, i64)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// The views the team's pages build from the versions their searches find.
#[derive(Clone)]
pub(super) struct Views {
    /// Of Observations (None: not a reading).
    pub readings: Memo<Option<Reading>>,
    /// Of Goals (None: not one of ours).
    pub goals: Memo<Option<GoalView>>,
    /// Of Tasks (None: not one of ours).
    pub tasks: Memo<Option<TaskView>>,
    /// Of CarePlans: their activities.
    pub activities: Memo<Arc<[ActivityView]>>,
    /// Of Patients (None: unreadable).
    pub people: Memo<Option<PanelPerson>>,
}

impl Views {
    pub(super) fn new() -> Self {
        Views {
            readings: Memo::new(),
            goals: Memo::new(),
            tasks: Memo::new(),
            activities: Memo::new(),
            people: Memo::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, version: i64, content: &str) -> Stored {
        Stored {
            resource_type: "Patient".into(),
            id: id.into(),
            version_id: version,
            last_updated: 0,
            deleted: false,
            content: Some(content.into()),
            patient_id: Some(id.into()),
            shared: false,
            labels: 0,
        }
    }

    #[test]
    fn a_view_is_built_once_per_version_and_a_failure_is_not_kept() {
        let memo: Memo<String> = Memo::new();
        let builds = std::cell::Cell::new(0);
        let build = |s: &Stored| {
            builds.set(builds.get() + 1);
            Ok::<_, &str>(s.content.clone().unwrap_or_default())
        };
        let of = |id, version, content| memo.try_of(&stored(id, version, content), build);
        assert_eq!(of("a", 1, "first"), Ok("first".into()));
        assert_eq!(of("a", 1, "first"), Ok("first".into()));
        assert_eq!(builds.get(), 1, "the second time, the kept view");
        assert_eq!(of("a", 2, "second"), Ok("second".into()));
        assert_eq!(of("b", 1, "other"), Ok("other".into()));
        assert_eq!(builds.get(), 3, "a new version or another id is built");

        let failed: std::result::Result<String, &str> =
            memo.try_of(&stored("c", 1, "x"), |_| Err("unreadable"));
        assert_eq!(failed, Err("unreadable"));
        let again = memo.try_of(&stored("c", 1, "x"), |s| {
            Ok::<_, &str>(s.content.clone().unwrap_or_default())
        });
        assert_eq!(again, Ok("x".to_string()), "a failure is built again");
    }
}
