//! The community resource directory: organisations and their services as FHIR Organization
//! and HealthcareService (which needs each service meets, its languages, hours, address and
//! how to refer), loaded by an administrator from a CSV or a FHIR Bundle. Every line is
//! checked before anything is written: a bad line is named and nothing is loaded; a good file
//! is written in one transaction (loading the same file again changes nothing).
//!
//! The CSV has a header and one row per service:
//! `organization_id,organization,service_id,service,needs,languages,hours,address,phone,email,refer_by`
//! where `needs` and `languages` are lists separated by `;` (needs are the screen's domains:
//! `food`, `transportation`, ...; languages BCP 47 tags), and `refer_by` is how a referral
//! reaches the organisation: `app` (its partner account), `phone`, `email` or `fax`.

use super::*;
use coproduce_core::social::ahc::Domain;
use std::collections::BTreeMap;

/// The code system of how a service takes referrals (FHIR's service-referral-method, and
/// `app` for an organisation that works its referrals in coproduce).
const REFERRAL_METHOD: &str = "http://terminology.hl7.org/CodeSystem/service-referral-method";
/// An organisation that works its referrals here (through a partner account).
pub const IN_APP: &str = "https://coproduce.health/fhir/CodeSystem/referral-method";

/// One service of the directory, as a CSV row gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub organization_id: String,
    pub organization: String,
    pub service_id: String,
    pub service: String,
    pub needs: Vec<Domain>,
    pub languages: Vec<String>,
    pub hours: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub refer_by: String,
}

/// Why a directory file cannot be loaded: the line (1 is the header) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {english}")]
pub struct DirectoryRefused {
    pub line: usize,
    pub english: String,
}

/// The directory CSV's columns, in order.
pub const COLUMNS: [&str; 11] = [
    "organization_id",
    "organization",
    "service_id",
    "service",
    "needs",
    "languages",
    "hours",
    "address",
    "phone",
    "email",
    "refer_by",
];

/// How a referral reaches a service.
pub const METHODS: [&str; 4] = ["app", "phone", "email", "fax"];

fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()))
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Reads a directory CSV, refusing the first bad line.
pub fn parse_csv(bytes: &[u8]) -> std::result::Result<Vec<ServiceRow>, DirectoryRefused> {
    let refuse = |line: usize, english: String| DirectoryRefused { line, english };
    let mut rows = Vec::new();
    let mut services = std::collections::HashSet::new();
    let mut organizations: BTreeMap<String, String> = BTreeMap::new();
    for (line, record) in
        crate::spreadsheet::lines(bytes, &COLUMNS).map_err(|(l, e)| refuse(l, e))?
    {
        let get = |k: usize| record.get(k).unwrap_or_default().to_string();
        for (k, name) in COLUMNS.iter().enumerate().take(6) {
            if get(k).is_empty() {
                return Err(refuse(line, format!("{name} is empty")));
            }
        }
        for k in [0, 2] {
            if !coproduce_fhir::primitives::is_valid_id(&get(k)) {
                return Err(refuse(
                    line,
                    format!(
                        "{} '{}' is not an id (letters, digits, '-' and '.', at most 64)",
                        COLUMNS[k],
                        get(k)
                    ),
                ));
            }
        }
        let needs = get(4)
            .split(';')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                Domain::parse(n).ok_or_else(|| {
                    refuse(
                        line,
                        format!(
                            "'{n}' is not a need (one of: {})",
                            Domain::ALL.map(Domain::as_str).join(", ")
                        ),
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let languages: Vec<String> = get(5)
            .split(';')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = languages.iter().find(|l| !is_language_tag(l)) {
            return Err(refuse(
                line,
                format!("'{bad}' is not a language tag (en, es, pt-BR, ht...)"),
            ));
        }
        let refer_by = get(10);
        if !METHODS.contains(&refer_by.as_str()) {
            return Err(refuse(
                line,
                format!("refer_by '{refer_by}' is not one of {}", METHODS.join(", ")),
            ));
        }
        if refer_by == "phone" && get(8).is_empty() || refer_by == "email" && get(9).is_empty() {
            return Err(refuse(
                line,
                format!("refer_by {refer_by} needs a {refer_by}"),
            ));
        }
        if !services.insert(get(2)) {
            return Err(refuse(
                line,
                format!("the service id '{}' is used twice", get(2)),
            ));
        }
        match organizations.get(&get(0)) {
            Some(name) if *name != get(1) => {
                return Err(refuse(
                    line,
                    format!(
                        "organization '{}' is named '{name}' on an earlier line",
                        get(0)
                    ),
                ));
            }
            _ => {
                organizations.insert(get(0), get(1));
            }
        }
        rows.push(ServiceRow {
            organization_id: get(0),
            organization: get(1),
            service_id: get(2),
            service: get(3),
            needs,
            languages,
            hours: get(6),
            address: get(7),
            phone: get(8),
            email: get(9),
            refer_by,
        });
    }
    if rows.is_empty() {
        return Err(refuse(1, "the file lists no services".into()));
    }
    Ok(rows)
}

fn telecom(phone: &str, email: &str) -> Vec<Value> {
    let mut t = Vec::new();
    if !phone.is_empty() {
        t.push(json!({"system": "phone", "value": phone, "use": "work"}));
    }
    if !email.is_empty() {
        t.push(json!({"system": "email", "value": email, "use": "work"}));
    }
    t
}

/// The rows as FHIR: one Organization per organisation, one HealthcareService per row.
pub fn resources(rows: &[ServiceRow]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        if seen.insert(r.organization_id.clone()) {
            let mut org = json!({
                "resourceType": "Organization",
                "id": r.organization_id,
                "active": true,
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "cg", "display": "Community Group"}]}],
                "name": r.organization,
            });
            if !r.address.is_empty() {
                org["address"] = json!([{"text": r.address}]);
            }
            let t = telecom(&r.phone, &r.email);
            if !t.is_empty() {
                org["telecom"] = json!(t);
            }
            out.push(org);
        }
        let method = if r.refer_by == "app" {
            json!({"coding": [{"system": IN_APP, "code": "app", "display": "Through coproduce"}]})
        } else {
            let code = match r.refer_by.as_str() {
                "email" => "semail",
                other => other,
            };
            json!({"coding": [{"system": REFERRAL_METHOD, "code": code}]})
        };
        let mut svc = json!({
            "resourceType": "HealthcareService",
            "id": r.service_id,
            "active": true,
            "providedBy": {"reference": format!("Organization/{}", r.organization_id), "display": r.organization},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-category", "code": "27", "display": "Specialist Social Services"}]}],
            "type": r.needs.iter().map(|d| json!({"coding": [
                {"system": NEED_SYSTEM, "code": d.as_str(), "display": d.english()},
            ]})).collect::<Vec<_>>(),
            "name": r.service,
            "communication": r.languages.iter().map(|l| json!({"coding": [{"system": "urn:ietf:bcp:47", "code": l}]})).collect::<Vec<_>>(),
            "referralMethod": [method],
        });
        if !r.hours.is_empty() {
            svc["availabilityExceptions"] = json!(r.hours);
        }
        let t = telecom(&r.phone, &r.email);
        if !t.is_empty() {
            svc["telecom"] = json!(t);
        }
        out.push(svc);
    }
    out
}

/// Checks a FHIR Bundle (or a single resource) of directory records: only Organizations and
/// HealthcareServices, each valid and with an id. The first bad entry is named.
pub fn parse_fhir(bytes: &[u8]) -> std::result::Result<Vec<Value>, DirectoryRefused> {
    let refuse = |line: usize, english: String| DirectoryRefused { line, english };
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| refuse(e.line(), format!("is not JSON: {e}")))?;
    let resources: Vec<Value> = if v["resourceType"] == "Bundle" {
        v["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"].clone())
            .collect()
    } else {
        vec![v]
    };
    for (i, r) in resources.iter().enumerate() {
        let what = format!("entry {}", i + 1);
        if !matches!(
            r["resourceType"].as_str(),
            Some("Organization" | "HealthcareService")
        ) {
            return Err(refuse(
                i + 1,
                format!("{what} is not an Organization or a HealthcareService"),
            ));
        }
        if r["id"].as_str().is_none() {
            return Err(refuse(i + 1, format!("{what} has no id")));
        }
        coproduce_fhir::validate::validate_resource(r)
            .map_err(|e| refuse(i + 1, format!("{what}: {e}")))?;
    }
    if resources.is_empty() {
        return Err(refuse(1, "the Bundle holds no entries".into()));
    }
    Ok(resources)
}

/// A service of the directory, as the referral form lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub organization_id: String,
    pub organization: String,
    pub languages: Vec<String>,
    pub hours: String,
    pub in_app: bool,
}

impl Service {
    pub fn of(v: &Value) -> Option<Service> {
        let org = v["providedBy"]["reference"]
            .as_str()?
            .strip_prefix("Organization/")?;
        Some(Service {
            id: v["id"].as_str()?.to_string(),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            organization_id: org.to_string(),
            organization: v["providedBy"]["display"]
                .as_str()
                .unwrap_or(org)
                .to_string(),
            languages: v["communication"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["coding"][0]["code"].as_str().map(str::to_string))
                .collect(),
            hours: v["availabilityExceptions"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            in_app: v["referralMethod"].to_string().contains(IN_APP),
        })
    }
}

impl Social {
    /// Loads directory records in one transaction (the administrator's, or an integration's);
    /// returns how many were written.
    pub async fn load_directory(&self, caller: &Caller, records: Vec<Value>) -> Result<usize> {
        let n = records.len();
        let entries = records
            .into_iter()
            .map(|r| {
                let url = format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap_or_default(),
                    r["id"].as_str().unwrap_or_default()
                );
                (
                    caller,
                    json!({"resource": r, "request": {"method": "PUT", "url": url}}),
                )
            })
            .collect();
        self.api.transaction_with(entries, &[], None).await?;
        Ok(n)
    }

    /// The active services that meet a need, by name.
    pub async fn services_for(&self, caller: &Caller, need: Domain) -> Result<Vec<Service>> {
        let found = self
            .api
            .search_all(
                caller,
                "HealthcareService",
                &[
                    (
                        "service-type".into(),
                        format!("{NEED_SYSTEM}|{}", need.as_str()),
                    ),
                    ("active".into(), "true".into()),
                ],
            )
            .await?;
        let mut out: Vec<Service> = Vec::new();
        for s in found {
            out.extend(Service::of(&s.json()?));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// A service of the directory as the administrator sees and edits it: its row, whether it is
/// offered, and the version edited (a change since is refused, not overwritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub row: ServiceRow,
    pub active: bool,
    pub version: i64,
}

impl ServiceRow {
    /// The row a HealthcareService (and its Organization, for the address) says.
    fn of(svc: &Value, org: Option<&Value>) -> Option<ServiceRow> {
        let codes = |v: &Value, system: &str| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["coding"].as_array())
                .flatten()
                .filter(|c| c["system"] == system)
                .filter_map(|c| c["code"].as_str().map(str::to_string))
                .collect()
        };
        let telecom = |system: &str| {
            svc["telecom"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["system"] == system)
                .and_then(|t| t["value"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        let service = Service::of(svc)?;
        let refer_by = if service.in_app {
            "app".to_string()
        } else {
            match codes(&svc["referralMethod"], REFERRAL_METHOD)
                .first()
                .map(String::as_str)
            {
                Some("semail") => "email".into(),
                Some(other) => other.to_string(),
                None => "phone".into(),
            }
        };
        Some(ServiceRow {
            organization_id: service.organization_id,
            organization: service.organization,
            service_id: service.id,
            service: service.name,
            needs: codes(&svc["type"], NEED_SYSTEM)
                .iter()
                .filter_map(|c| Domain::parse(c))
                .collect(),
            languages: service.languages,
            hours: service.hours,
            address: org
                .and_then(|o| o["address"][0]["text"].as_str())
                .unwrap_or_default()
                .to_string(),
            phone: telecom("phone"),
            email: telecom("email"),
            refer_by,
        })
    }

    /// The row as a line of the directory CSV (with its header), so that an edit is checked
    /// by the same rules as a file.
    fn as_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let needs: Vec<&str> = self.needs.iter().map(|d| d.as_str()).collect();
        let fields = [
            self.organization_id.as_str(),
            &self.organization,
            &self.service_id,
            &self.service,
            &needs.join(";"),
            &self.languages.join(";"),
            &self.hours,
            &self.address,
            &self.phone,
            &self.email,
            &self.refer_by,
        ];
        let written = w
            .write_record(COLUMNS)
            .and_then(|()| w.write_record(fields));
        match (written, w.into_inner()) {
            (Ok(()), Ok(bytes)) => bytes,
            _ => Vec::new(),
        }
    }
}

impl Social {
    /// Loads a directory CSV the administrator gives (on the page): all of it or, with the
    /// first bad line named, nothing. Returns how many records were written.
    pub async fn load_directory_csv(&self, caller: &Caller, csv: &[u8]) -> Result<usize> {
        let rows = parse_csv(csv).map_err(|e| CareError::Input {
            key: "directory-file-refused",
            args: vec![("line", e.line.to_string()), ("why", e.english.clone())],
            english: e.to_string(),
        })?;
        self.load_directory(caller, resources(&rows)).await
    }

    /// Every service of the directory, by organisation then name, for its administrator.
    pub async fn directory(&self, caller: &Caller) -> Result<Vec<Listed>> {
        let orgs: std::collections::HashMap<String, Value> = self
            .api
            .search_all(caller, "Organization", &[])
            .await?
            .iter()
            .filter_map(|o| Some((o.id.clone(), o.json().ok()?)))
            .collect();
        let mut out = Vec::new();
        for s in self
            .api
            .search_all(caller, "HealthcareService", &[])
            .await?
        {
            let v = s.json()?;
            let org = v["providedBy"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Organization/"))
                .and_then(|id| orgs.get(id));
            if let Some(row) = ServiceRow::of(&v, org) {
                out.push(Listed {
                    row,
                    active: v["active"] != false,
                    version: s.version_id,
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.row.organization, &a.row.service).cmp(&(&b.row.organization, &b.row.service))
        });
        Ok(out)
    }

    /// Saves one service as edited (checked as a line of the directory file is), offered or
    /// not; `version` is the one the administrator saw.
    pub async fn save_service(
        &self,
        caller: &Caller,
        row: &ServiceRow,
        active: bool,
        version: i64,
    ) -> Result<()> {
        let rows = parse_csv(&row.as_csv()).map_err(|e| CareError::Input {
            key: "directory-refused",
            args: vec![("why", e.english.clone())],
            english: e.english,
        })?;
        // The service must exist (a new one comes with a file), and is written only if it
        // is still the version shown.
        self.api
            .read(caller, "HealthcareService", &row.service_id)
            .await?;
        let entries = resources(&rows)
            .into_iter()
            .map(|mut r| {
                let url = format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap_or_default(),
                    r["id"].as_str().unwrap_or_default()
                );
                let mut request = json!({"method": "PUT", "url": url});
                if r["resourceType"] == "HealthcareService" {
                    r["active"] = json!(active);
                    request["ifMatch"] = json!(format!("W/\"{version}\""));
                }
                (caller, json!({"resource": r, "request": request}))
            })
            .collect();
        self.api.transaction_with(entries, &[], None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "organization_id,organization,service_id,service,needs,languages,hours,address,phone,email,refer_by\n";

    #[test]
    fn a_good_file_becomes_organizations_and_services() {
        let csv = format!(
            "{HEADER}pantry,Eastside Food Pantry,pantry-groceries,Weekly groceries,food,en;es,Tue-Sat 9-5,12 Main St,555-0100,,app\n\
             pantry,Eastside Food Pantry,pantry-meals,Hot meals,food;housing-quality,es,,12 Main St,555-0100,,phone\n"
        );
        let rows = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        let r = resources(&rows);
        assert_eq!(r.len(), 3, "one organization, two services");
        for v in &r {
            coproduce_fhir::validate::validate_resource(v).unwrap();
        }
        assert_eq!(r[1]["type"][0]["coding"][0]["code"], "food");
        assert_eq!(r[1]["communication"][1]["coding"][0]["code"], "es");
        assert!(Service::of(&r[1]).unwrap().in_app);
        assert!(!Service::of(&r[2]).unwrap().in_app);
    }

    #[test]
    fn a_bad_line_is_named() {
        for (line, english) in [
            (
                "pantry,P,s1,S,groceries,en,,,,,app",
                "'groceries' is not a need",
            ),
            (
                "pantry,P,s1,S,food,english,,,,,app",
                "'english' is not a language tag",
            ),
            ("pantry,P,s1,S,food,en,,,,,pigeon", "refer_by 'pigeon'"),
            (
                "pantry,P,s1,S,food,en,,,,,phone",
                "refer_by phone needs a phone",
            ),
            ("pan try,P,s1,S,food,en,,,,,app", "is not an id"),
            ("pantry,P,s1,S,,en,,,,,app", "needs is empty"),
            ("pantry,P,s1,S,food,en,,,,app", "has 10 fields"),
        ] {
            let csv = format!("{HEADER}pantry,P,s0,S,food,en,,,,,app\n{line}\n");
            let e = parse_csv(csv.as_bytes()).unwrap_err();
            assert_eq!(e.line, 3, "{line}");
            assert!(e.english.contains(english), "{line}: {e}");
        }
        let twice =
            format!("{HEADER}pantry,P,s0,S,food,en,,,,,app\npantry,Q,s1,S,food,en,,,,,app\n");
        assert!(
            parse_csv(twice.as_bytes())
                .unwrap_err()
                .english
                .contains("named 'P'")
        );
        assert_eq!(parse_csv(b"id,name\n").unwrap_err().line, 1);
        assert!(parse_csv(HEADER.as_bytes()).is_err(), "no services");
    }

    #[test]
    fn a_fhir_file_holds_only_directory_records() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Organization", "id": "o1", "name": "O"}},
            {"resource": {"resourceType": "Patient", "id": "p1"}},
        ]});
        let e = parse_fhir(bundle.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.line, 2);
        let one = json!({"resourceType": "Organization", "id": "o1", "name": "O"});
        assert_eq!(parse_fhir(one.to_string().as_bytes()).unwrap().len(), 1);
    }
}
