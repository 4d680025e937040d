//! The interactions on one resource: create (with If-None-Exist), update (with If-Match),
//! read, vread and delete, each with its Provenance and audit row.

use super::*;

/// A change Provenance records: the resource, the version written, its patient.
pub(super) struct Changed<'a> {
    rt: &'a str,
    id: &'a str,
    version: Option<i64>,
    patient: Option<&'a str>,
}

/// A create worked out before it is written: the resource with its id as the rules leave
/// it, its search index, its patient, and when it happens. Planning is CPU work that needs
/// no transaction, so a plain create does it before it takes the writer, which every other
/// write waits for.
pub(super) struct Planned {
    resource: Prepared,
    patient: Option<String>,
    now: OffsetDateTime,
    /// The Provenance of the resource's first version, built ahead (None: built when
    /// written).
    provenance: Option<Prepared>,
}

/// A create by `caller` at `now`, as the write rules see it.
fn creating(caller: &Caller, now: OffsetDateTime) -> Write<'_> {
    Write {
        caller,
        creating: true,
        previous: None,
        importing: false,
        now,
    }
}

impl FhirApi {
    /// Records who made a change and for whom, as a FHIR Provenance written in the same
    /// transaction: the author (their Practitioner, RelatedPerson or Patient, or the token's
    /// name), and the patient they acted for when that is someone else.
    pub(super) async fn record_provenance(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        changed: Changed<'_>,
        operation: &str,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        if let Some(p) = self.provenance(caller, changed, operation, now)? {
            tx.create_prepared(p).await?;
        }
        Ok(())
    }

    /// The Provenance of a change, ready to write (none for a change to a Provenance).
    fn provenance(
        &self,
        caller: &Caller,
        changed: Changed<'_>,
        operation: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Prepared>, AppError> {
        let Changed {
            rt,
            id,
            version,
            patient,
        } = changed;
        if rt == "Provenance" {
            return Ok(None);
        }
        let target = match version {
            Some(v) => format!("{rt}/{id}/_history/{v}"),
            None => format!("{rt}/{id}"),
        };
        let who = match &caller.fhir_ref {
            Some(r) => json!({"reference": r}),
            None => json!({"display": caller.label}),
        };
        let mut agent = json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
            "who": who,
        });
        let self_ref = patient.map(|p| format!("Patient/{p}"));
        if let Some(p) = &self_ref
            && caller.fhir_ref.as_ref() != Some(p)
            && matches!(caller.actor.who, coproduce_core::access::Who::Family { .. })
        {
            agent["onBehalfOf"] = json!({"reference": p});
        }
        let provenance = json!({
            "resourceType": "Provenance",
            "id": new_id(),
            "target": [{"reference": target}],
            "recorded": coproduce_store::Stored::instant(now),
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": operation}]},
            "agent": [agent],
        });
        Ok(Some(Prepared::new(parse_resource_value(provenance)?, now)?))
    }

    /// The workflows' rules on a write the policy allowed; when a rule labels the record
    /// (a screening as social needs), the policy decides again on the record as labelled.
    fn ruled(
        &self,
        write: &Write<'_>,
        resource: Resource,
        patient: Option<&str>,
    ) -> Outcome<Resource> {
        let before = facts(&resource.to_value());
        let resource = self.rules.apply(write, resource)?;
        let after = facts(&resource.to_value());
        if after != before {
            let action = if write.creating {
                Action::Create
            } else {
                Action::Update
            };
            self.check(
                write.caller,
                action,
                resource.type_name(),
                resource.id(),
                patient,
                after,
            )?;
        }
        Ok(resource)
    }

    /// Writes what the rules derived from `source`, each through the policy, with its
    /// Provenance and an audit row naming the source; one that exists is kept or replaced as
    /// its rule says.
    async fn write_derived(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        source: &str,
        derived: Vec<Derived>,
    ) -> Outcome<()> {
        for Derived { resource, keep } in derived {
            let rt = resource.type_name().to_string();
            let id = resource.id().unwrap_or_default().to_string();
            let existing = tx.current_stored(&rt, &id).await?.filter(|s| !s.deleted);
            if let Some(old) = &existing {
                let unchanged = parse_resource_value(old.json()?)?.content_without_meta_version()
                    == resource.content_without_meta_version();
                if keep == Keep::Existing || unchanged {
                    continue;
                }
            }
            let action = if existing.is_some() {
                Action::Update
            } else {
                Action::Create
            };
            let patient = tx.compartment_of(&resource, &extract(&resource)).await?;
            self.check(
                caller,
                action,
                &rt,
                Some(&id),
                patient.as_deref(),
                facts(&resource.to_value()),
            )?;
            let out = tx.update(resource, None, self.clock.now()).await?;
            let op = if out.created { "CREATE" } else { "UPDATE" };
            self.record_provenance(
                caller,
                tx,
                Changed {
                    rt: &rt,
                    id: &id,
                    version: Some(out.stored.version_id),
                    patient: out.stored.patient_id.as_deref(),
                },
                op,
            )
            .await?;
            let entry = AuditEntry {
                detail: Some(format!("derived from {source}")),
                ..self.audit_entry(
                    caller,
                    action_name(action),
                    &rt,
                    Some(&id),
                    out.stored.patient_id.clone(),
                )
            };
            tx.audit(&entry).await?;
        }
        Ok(())
    }

    /// POST /{type}: creates with a new id, or (with `If-None-Exist`) returns the one match.
    pub async fn create(
        &self,
        caller: &Caller,
        rt: &str,
        body: &[u8],
        if_none_exist: Option<&str>,
    ) -> Result<Written, AppError> {
        let rt = ResourceType::parse(rt)?;
        let resource = parse_body(&rt, body)?;
        let r = async {
            let mut tx;
            let written = if rt.as_str() == "Provenance" {
                tx = self.store.begin().await?;
                self.create_in(caller, &mut tx, resource, if_none_exist, None)
                    .await?
            } else {
                let planned = self.plan_new(caller, resource)?;
                tx = self.store.begin().await?;
                self.write_create(caller, &mut tx, planned, if_none_exist)
                    .await?
            };
            tx.commit().await?;
            Ok(written)
        }
        .await;
        self.settle(r).await
    }

    /// Creates inside a transaction, with `id` when the caller planned one (a transaction
    /// Bundle plans ids first so entries can refer to each other), else a new one.
    pub(super) async fn create_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        mut resource: Resource,
        if_none_exist: Option<&str>,
        id: Option<&str>,
    ) -> Outcome<Written> {
        // The id first: a new Patient is its own compartment.
        resource.set_id(&id.map_or_else(new_id, str::to_string));
        let patient = tx.compartment_of(&resource, &extract(&resource)).await?;
        let planned = self.plan_create(caller, resource, patient)?;
        self.write_create(caller, tx, planned, if_none_exist).await
    }

    /// A create with a new id planned with no transaction, Provenance and all. Not for a
    /// Provenance: its patient is its target's, which only the transaction can look up.
    fn plan_new(&self, caller: &Caller, mut resource: Resource) -> Outcome<Planned> {
        resource.set_id(&new_id());
        let patient = patient_compartment(&resource, &extract(&resource));
        let mut planned = self.plan_create(caller, resource, patient)?;
        planned.provenance = self.provenance(
            caller,
            Changed {
                rt: planned.resource.type_name(),
                id: planned.resource.id(),
                version: Some(1),
                patient: planned.patient.as_deref(),
            },
            "CREATE",
            planned.now,
        )?;
        Ok(planned)
    }

    /// The policy and the rules on a create of `resource` (with its id) in `patient`'s
    /// compartment, and its search index as the rules leave it.
    fn plan_create(
        &self,
        caller: &Caller,
        resource: Resource,
        patient: Option<String>,
    ) -> Outcome<Planned> {
        self.check(
            caller,
            Action::Create,
            resource.type_name(),
            None,
            patient.as_deref(),
            facts(&resource.to_value()),
        )?;
        let now = self.clock.now();
        let resource = self.ruled(&creating(caller, now), resource, patient.as_deref())?;
        Ok(Planned {
            resource: Prepared::new(resource, now)?,
            patient,
            now,
            provenance: None,
        })
    }

    /// Writes a planned create: its If-None-Exist search first, then the resource, its
    /// Provenance, its audit row and what the rules derive from it.
    async fn write_create(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        planned: Planned,
        if_none_exist: Option<&str>,
    ) -> Outcome<Written> {
        let Planned {
            resource,
            patient,
            now,
            provenance,
        } = planned;
        let rt = resource.type_name().to_string();
        if let Some(cond) = if_none_exist {
            let mut q = SearchQuery::parse(&rt, &query_pairs(cond.trim_start_matches('?')))?;
            q.count = 2;
            self.limit(caller, Action::Search, &rt, &mut q)?;
            let found = coproduce_store::search::search_on(tx.db(), &q).await?;
            match found.matches.len() {
                0 => {}
                1 => {
                    let stored = found.matches.into_iter().next().expect("one match");
                    let entry = AuditEntry {
                        detail: Some(
                            "If-None-Exist matched an existing resource; nothing written".into(),
                        ),
                        ..self.audit_entry(
                            caller,
                            "create",
                            &rt,
                            Some(&stored.id),
                            stored.patient_id.clone(),
                        )
                    };
                    tx.audit(&entry).await?;
                    return Ok(Written {
                        stored,
                        created: false,
                    });
                }
                _ => {
                    return Err(AppError::PreconditionFailed(format!(
                        "If-None-Exist '{cond}' matches more than one resource; it must match at most one"
                    ))
                    .into());
                }
            }
        }
        let derived = self
            .rules
            .derive(&creating(caller, now), resource.resource())?;
        let stored = tx.create_prepared(resource).await?;
        // Built ahead for the first version in the planned compartment, which is what a
        // new id almost always gets.
        let provenance = match provenance {
            Some(p) if stored.version_id == 1 && stored.patient_id == patient => Some(p),
            _ => self.provenance(
                caller,
                Changed {
                    rt: &stored.resource_type,
                    id: &stored.id,
                    version: Some(stored.version_id),
                    patient: stored.patient_id.as_deref(),
                },
                "CREATE",
                now,
            )?,
        };
        if let Some(p) = provenance {
            tx.create_prepared(p).await?;
        }
        let entry = self.audit_entry(
            caller,
            "create",
            &rt,
            Some(&stored.id),
            stored.patient_id.clone(),
        );
        tx.audit(&entry).await?;
        self.write_derived(caller, tx, &format!("{rt}/{}", stored.id), derived)
            .await?;
        Ok(Written {
            stored,
            created: true,
        })
    }

    /// PUT /{type}/{id}: updates, or creates with the client's id.
    pub async fn update(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
        body: &[u8],
        if_match: Option<i64>,
    ) -> Result<Written, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        let resource = parse_body(&rt, body)?;
        let r = async {
            let mut tx = self.store.begin().await?;
            let written = self
                .update_in(caller, &mut tx, resource, id, if_match)
                .await?;
            tx.commit().await?;
            Ok(written)
        }
        .await;
        self.settle(r).await
    }

    pub(super) async fn update_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        resource: Resource,
        id: &str,
        if_match: Option<i64>,
    ) -> Outcome<Written> {
        match resource.id() {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(invalid(
                    IssueCode::Invariant,
                    "id",
                    format!("the body's id '{body_id}' differs from the URL's id '{id}'"),
                )
                .into());
            }
            None => {
                return Err(invalid(
                    IssueCode::Required,
                    "id",
                    "an update needs the resource's id in the body",
                )
                .into());
            }
        }
        let rt = resource.type_name().to_string();
        // The record as it is, and as it would be: the caller must reach both.
        let existing = tx.current_stored(&rt, id).await?.filter(|s| !s.deleted);
        if let Some(old) = &existing {
            self.check(
                caller,
                Action::Update,
                &rt,
                Some(id),
                old.patient_id.as_deref(),
                stored_facts(old)?,
            )?;
        }
        let patient = tx.compartment_of(&resource, &extract(&resource)).await?;
        let action = if existing.is_some() {
            Action::Update
        } else {
            Action::Create
        };
        self.check(
            caller,
            action,
            &rt,
            Some(id),
            patient.as_deref(),
            facts(&resource.to_value()),
        )?;
        let previous = existing.as_ref().map(Stored::json).transpose()?;
        let write = Write {
            caller,
            creating: false,
            previous: previous.as_ref(),
            importing: false,
            now: self.clock.now(),
        };
        let resource = self.ruled(&write, resource, patient.as_deref())?;
        let derived = self.rules.derive(&write, &resource)?;
        let out = tx.update(resource, if_match, self.clock.now()).await?;
        let op = if out.created { "CREATE" } else { "UPDATE" };
        self.record_provenance(
            caller,
            tx,
            Changed {
                rt: &rt,
                id,
                version: Some(out.stored.version_id),
                patient: out.stored.patient_id.as_deref(),
            },
            op,
        )
        .await?;
        let entry = self.audit_entry(
            caller,
            action_name(action),
            &rt,
            Some(id),
            out.stored.patient_id.clone(),
        );
        tx.audit(&entry).await?;
        self.write_derived(caller, tx, &format!("{rt}/{id}"), derived)
            .await?;
        Ok(Written {
            stored: out.stored,
            created: out.created,
        })
    }

    /// GET /{type}/{id}.
    pub async fn read(&self, caller: &Caller, rt: &str, id: &str) -> Result<Stored, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        if rt.as_str() == "AuditEvent"
            && let Some(seq) = crate::audit_events::seq_of(id)
        {
            let r = self.check(
                caller,
                Action::Read,
                "AuditEvent",
                Some(id),
                None,
                Facts::default(),
            );
            self.settle(r).await?;
            let row = self
                .store
                .audit_row(seq)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("AuditEvent/{id}")))?;
            self.store
                .audit(&self.audit_entry(caller, "read", "AuditEvent", Some(id), None))
                .await?;
            return Ok(crate::audit_events::as_stored(&row));
        }
        let found = self.store.read(rt.as_str(), id).await;
        self.reading(caller, rt.as_str(), id, found, None).await
    }

    /// GET /{type}/{id}/_history/{version}.
    pub async fn vread(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
        version: &str,
    ) -> Result<Stored, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        let v: i64 = version.parse().map_err(|_| {
            invalid(
                IssueCode::Value,
                "",
                format!("'{version}' is not a version number"),
            )
        })?;
        let found = self.store.vread(rt.as_str(), id, v).await;
        // A past version of a record that is now confidential (or social needs) is so too,
        // and one addressed elsewhere now is no longer the organisation's.
        let now = match self.store.current(rt.as_str(), id).await? {
            Some(current) if !current.deleted => stored_facts(&current)?,
            _ => Facts::default(),
        };
        self.reading(caller, rt.as_str(), id, found, Some(now))
            .await
    }

    /// Decides and audits a read of what the store found.
    pub(super) async fn reading(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
        found: Result<Stored, StoreError>,
        now: Option<Facts>,
    ) -> Result<Stored, AppError> {
        let stored = match found {
            Ok(s) => s,
            Err(e) => {
                let e = AppError::from(e);
                if !matches!(e, AppError::Storage(_)) {
                    let entry = AuditEntry {
                        outcome: "failed".into(),
                        detail: Some(e.to_string()),
                        ..self.audit_entry(caller, "read", rt, Some(id), None)
                    };
                    self.store.audit(&entry).await?;
                }
                return Err(e);
            }
        };
        let version = stored_facts(&stored)?;
        let facts = match now {
            Some(now) => stricter(now, version),
            None => version,
        };
        let r = self.check(
            caller,
            Action::Read,
            rt,
            Some(id),
            stored.patient_id.as_deref(),
            facts,
        );
        self.settle(r).await?;
        let entry = self.audit_entry(caller, "read", rt, Some(id), stored.patient_id.clone());
        self.store.audit(&entry).await?;
        Ok(stored)
    }

    /// DELETE: returns the deletion's version, or None if there was nothing to delete
    /// (deleting twice is not an error).
    pub async fn delete(
        &self,
        caller: &Caller,
        rt: &str,
        id: &str,
    ) -> Result<Option<i64>, AppError> {
        let rt = ResourceType::parse(rt)?;
        check_id(id)?;
        let r = async {
            let mut tx = self.store.begin().await?;
            let v = self.delete_in(caller, &mut tx, rt.as_str(), id).await?;
            tx.commit().await?;
            Ok(v)
        }
        .await;
        self.settle(r).await
    }

    pub(super) async fn delete_in(
        &self,
        caller: &Caller,
        tx: &mut Tx,
        rt: &str,
        id: &str,
    ) -> Outcome<Option<i64>> {
        let existing = tx.current_stored(rt, id).await?.filter(|s| !s.deleted);
        let patient = existing.as_ref().and_then(|s| s.patient_id.clone());
        if let Some(old) = &existing {
            self.check(
                caller,
                Action::Delete,
                rt,
                Some(id),
                patient.as_deref(),
                stored_facts(old)?,
            )?;
        } else {
            self.check(caller, Action::Delete, rt, Some(id), None, Facts::default())?;
        }
        let v = tx.delete(rt, id, self.clock.now()).await?;
        if v.is_some() {
            self.record_provenance(
                caller,
                tx,
                Changed {
                    rt,
                    id,
                    version: v,
                    patient: patient.as_deref(),
                },
                "DELETE",
            )
            .await?;
        }
        let detail = v.is_none().then(|| "nothing to delete".to_string());
        let entry = AuditEntry {
            detail,
            ..self.audit_entry(caller, "delete", rt, Some(id), patient)
        };
        tx.audit(&entry).await?;
        Ok(v)
    }
}
