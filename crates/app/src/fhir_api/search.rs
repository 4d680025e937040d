//! Search, history and the access log: what a caller may see, filtered in the store.

use super::*;

impl FhirApi {
    /// History of a resource or a type, filtered by the caller's reach.
    pub async fn history(
        &self,
        caller: &Caller,
        rt: &str,
        id: Option<&str>,
        params: &[(String, String)],
    ) -> Result<(i64, Vec<HistoryEntry>, usize, usize), AppError> {
        let rt = ResourceType::parse(rt)?;
        if let Some(id) = id {
            check_id(id)?;
        }
        let mut count = coproduce_fhir::query::DEFAULT_COUNT;
        let mut offset = 0;
        let mut since = None;
        for (k, v) in params {
            let bad = || invalid(IssueCode::Value, k, format!("'{v}' is not valid for {k}"));
            match k.as_str() {
                "_count" => {
                    count = v
                        .parse::<usize>()
                        .map_err(|_| bad())?
                        .min(coproduce_fhir::query::MAX_COUNT)
                }
                "_offset" => {
                    offset = coproduce_fhir::query::parse_offset(v)
                        .map_err(|why| invalid(IssueCode::Value, k, why))?
                }
                "_since" => {
                    since = Some(
                        coproduce_fhir::primitives::date_range_millis(v)
                            .ok_or_else(bad)?
                            .0,
                    )
                }
                "_format" => {}
                other => {
                    return Err(invalid(
                        IssueCode::NotSupported,
                        other,
                        format!("history does not take '{other}'"),
                    ));
                }
            }
        }
        let action = if id.is_some() {
            Action::Read
        } else {
            Action::Search
        };
        if let Some(id) = id {
            // The resource as it stands decides whether its history may be read at all.
            if let Some(current) = self.store.current(rt.as_str(), id).await? {
                let labelled = if current.deleted {
                    Facts::default()
                } else {
                    stored_facts(&current)?
                };
                let r = self.check(
                    caller,
                    Action::Read,
                    rt.as_str(),
                    Some(id),
                    current.patient_id.as_deref(),
                    labelled,
                );
                self.settle(r).await?;
            }
        }
        let r = async {
            let compartments = match self.reach_of(caller, action, rt.as_str())? {
                Some(Reach::Patients(p)) => Some(p),
                // An organisation reads the history of a referral addressed to it (decided
                // above), never a type's.
                Some(Reach::AddressedTo(_)) if id.is_none() => {
                    let reason =
                        "an organisation reads the history of one referral at a time".to_string();
                    let entry = AuditEntry {
                        outcome: "denied".into(),
                        detail: Some(reason.clone()),
                        ..self.audit_entry(caller, "search", rt.as_str(), None, None)
                    };
                    return Err(Fail::Denied(Box::new(entry), reason));
                }
                _ => None,
            };
            let (total, entries) = self
                .store
                .history(
                    rt.as_str(),
                    id,
                    since,
                    count,
                    offset,
                    coproduce_store::Visible {
                        compartments: compartments.as_ref(),
                        hide_restricted: !sees_confidential(&caller.actor.who),
                        // A history listing leaves out every social-needs version unless
                        // each grant the family member holds covers them.
                        hide_social_needs: social_needs_of(&caller.actor.who, self.clock.now())
                            .is_some_and(|of| {
                                !compartments.as_ref().is_some_and(|c| c.is_subset(&of))
                            }),
                    },
                )
                .await?;
            Ok((total, entries))
        }
        .await;
        let (total, entries) = self.settle(r).await?;
        let patients = touched(entries.iter().map(|e| &e.stored));
        let entry = AuditEntry {
            detail: Some(format!("history: {total} versions")),
            ..self.audit_entry(
                caller,
                if id.is_some() { "read" } else { "search" },
                rt.as_str(),
                id,
                patients,
            )
        };
        self.store.audit(&entry).await?;
        if let (Some(id), 0) = (id, total) {
            return Err(AppError::NotFound(format!("{rt}/{id}")));
        }
        Ok((total, entries, count, offset))
    }

    /// A search, filtered by the caller's reach in the query itself.
    pub async fn search(
        &self,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
    ) -> Result<(SearchQuery, SearchResult), AppError> {
        let rt = ResourceType::parse(rt)?;
        if rt.as_str() == "AuditEvent" {
            return self.audit_events(caller, params).await;
        }
        let mut q = SearchQuery::parse(rt.as_str(), params)?;
        let r = self.limit(caller, Action::Search, rt.as_str(), &mut q);
        self.settle(r).await?;
        let now = self.clock.now();
        let actor = caller.actor.clone();
        let include_reach = move |t: &str| reach(&actor, Action::Search, t, is_clinical(t), now);
        let result = self.store.search_for(&q, &include_reach).await?;
        let patients = touched(result.matches.iter().chain(&result.included));
        let entry = AuditEntry {
            detail: Some(result.described()),
            ..self.audit_entry(caller, "search", rt.as_str(), None, patients)
        };
        self.store.audit(&entry).await?;
        Ok((q, result))
    }

    /// Every match of a search, not one page: for the app's own views (a chart, a panel),
    /// which need all of a patient's readings or all goals of a panel. Filtered by the
    /// caller's reach in the query, and audited once.
    pub async fn search_all(
        &self,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
    ) -> Result<Vec<Stored>, AppError> {
        let q = self.every_match(caller, rt, params).await?;
        let matches = self
            .store
            .search_for(&q, &|_| Reach::Nothing(String::new()))
            .await?
            .matches;
        self.audit_every_match(caller, rt, matches.iter()).await?;
        Ok(matches)
    }

    /// [`FhirApi::search_all`] for a view that may hold what it built from the versions it
    /// finds: each match with what `known` holds for its version; the store reads no JSON
    /// for those ([`coproduce_store::Store::search_known`]). The same reach and audit.
    pub async fn search_all_known<V>(
        &self,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
        known: coproduce_store::search::Known<'_, V>,
    ) -> Result<Vec<(Stored, Option<V>)>, AppError> {
        let q = self.every_match(caller, rt, params).await?;
        let found = self.store.search_known(&q, known).await?;
        self.audit_every_match(caller, rt, found.iter().map(|(s, _)| s))
            .await?;
        Ok(found)
    }

    /// The query for every match of a search, limited to the caller's reach (a refusal
    /// audited).
    async fn every_match(
        &self,
        caller: &Caller,
        rt: &str,
        params: &[(String, String)],
    ) -> Result<SearchQuery, AppError> {
        let mut q = SearchQuery::parse(rt, params)?;
        let r = self.limit(caller, Action::Search, rt, &mut q);
        self.settle(r).await?;
        q.count = coproduce_fhir::query::EVERY_MATCH;
        q.offset = 0;
        Ok(q)
    }

    /// The audit row of a search for every match: how many, and whose records they are.
    async fn audit_every_match<'s>(
        &self,
        caller: &Caller,
        rt: &str,
        matches: impl ExactSizeIterator<Item = &'s Stored>,
    ) -> Result<(), AppError> {
        let entry = AuditEntry {
            detail: Some(SearchResult::counted(matches.len() as i64)),
            ..self.audit_entry(caller, "search", rt, None, touched(matches))
        };
        self.store.audit(&entry).await?;
        Ok(())
    }

    /// The audit trail as AuditEvents, newest first (`patient`, `_count`, `_offset`).
    pub(super) async fn audit_events(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<(SearchQuery, SearchResult), AppError> {
        let r = self.check(
            caller,
            Action::Search,
            "AuditEvent",
            None,
            None,
            Facts::default(),
        );
        self.settle(r).await?;
        let mut q = SearchQuery::all("AuditEvent");
        let mut patient = None;
        for (k, v) in params {
            let bad = || invalid(IssueCode::Value, k, format!("'{v}' is not valid for {k}"));
            match k.as_str() {
                "_count" => {
                    q.count = v
                        .parse::<usize>()
                        .map_err(|_| bad())?
                        .min(coproduce_fhir::query::MAX_COUNT)
                }
                "_offset" => {
                    q.offset = coproduce_fhir::query::parse_offset(v)
                        .map_err(|why| invalid(IssueCode::Value, k, why))?
                }
                "patient" => patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_string()),
                "_format" | "_total" => {}
                other => {
                    return Err(invalid(
                        IssueCode::NotSupported,
                        other,
                        format!(
                            "AuditEvent searches take patient, _count and _offset, not '{other}'"
                        ),
                    ));
                }
            }
        }
        let (limit, offset) = (q.count as i64, q.offset as i64);
        let (total, rows) = match &patient {
            Some(p) => self.store.audit_for_patient(p, limit, offset).await?,
            None => self.store.audit_newest(limit, offset).await?,
        };
        let matches = rows.iter().map(crate::audit_events::as_stored).collect();
        self.store
            .audit(&AuditEntry {
                detail: Some(format!("{total} audit events")),
                ..self.audit_entry(caller, "search", "AuditEvent", None, patient)
            })
            .await?;
        Ok((
            q,
            SearchResult {
                total: Some(total),
                more: offset.saturating_add(limit) < total,
                matches,
                included: Vec::new(),
            },
        ))
    }

    /// Who opened a patient's record, in plain words, for that patient (newest first).
    pub async fn access_log(&self, caller: &Caller, limit: i64) -> Result<Vec<String>, AppError> {
        let own = match &caller.actor.who {
            coproduce_core::access::Who::Patient { patient } => patient.clone(),
            _ => String::new(),
        };
        let (rows, names) = self.access_rows(caller, &own, limit).await?;
        Ok(rows
            .iter()
            .map(|r| crate::audit_events::plain_words(r, &names))
            .collect())
    }

    /// A patient's access log, newest first, with the names of the people in it (by sign-in
    /// name): the name on each one's record. Only that patient reads it.
    pub async fn access_rows(
        &self,
        caller: &Caller,
        of: &str,
        limit: i64,
    ) -> Result<(Vec<coproduce_store::AuditRow>, HashMap<String, String>), AppError> {
        let coproduce_core::access::Who::Patient { patient } = &caller.actor.who else {
            return Err(AppError::Forbidden(
                "the access log is shown to the patient whose record it is".into(),
            ));
        };
        if patient != of {
            return Err(AppError::Forbidden(
                "the access log is shown to the patient whose record it is".into(),
            ));
        }
        let (_, rows) = self.store.audit_for_patient(patient, limit, 0).await?;
        let mut names = HashMap::new();
        for r in &rows {
            let crate::audit_events::Actor::User(u) =
                crate::audit_events::Actor::of(&r.entry.actor)
            else {
                continue;
            };
            if names.contains_key(&u) {
                continue;
            }
            let Some(user) = self.store.user_by_name(&u).await? else {
                continue;
            };
            let named = match user.fhir_ref.as_deref().and_then(split_reference) {
                Some((rt, id)) => match self.store.read(rt, id).await {
                    Ok(s) => Some(crate::vocabulary::person_name(&s.json()?)),
                    Err(
                        coproduce_store::StoreError::NotFound { .. }
                        | coproduce_store::StoreError::Gone { .. },
                    ) => None,
                    Err(e) => return Err(e.into()),
                },
                None => None,
            };
            if let Some(n) = named.filter(|n| !n.is_empty() && n != "(no name)") {
                names.insert(u, n);
            }
        }
        Ok((rows, names))
    }
}
