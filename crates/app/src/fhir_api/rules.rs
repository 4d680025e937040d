//! The rules workflows add to writes. A workflow registers a [`WriteRule`] for a resource
//! type; the API runs every rule registered for the type on each create and update (alone or
//! as a Bundle entry), after the policy has allowed it and before anything is stored, inside
//! the write's transaction; the importer runs them on every resource it reads. The API knows
//! no workflow: `crate::workflows` registers them.

use super::*;

/// A write a rule looks at: by whom, and whether it creates the resource.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub caller: &'a Caller,
    /// A create (POST, or a POST entry of a Bundle): true; an update, or a PUT that
    /// creates with the client's id: false.
    pub creating: bool,
    /// The record as it stands before an update (None: it is new, or an import).
    pub previous: Option<&'a Value>,
    /// A bulk import: records brought as they were elsewhere, not acts done here now (a
    /// rule derives from them but starts no new work on them).
    pub importing: bool,
    /// When the write happens.
    pub now: time::OffsetDateTime,
}

/// One workflow's rule on writes of one resource type.
pub trait WriteRule: Send + Sync {
    /// The resource type the rule applies to.
    fn resource_type(&self) -> &'static str;

    /// Refuses the resource with an error the client can act on (nothing is written), or
    /// lets it through, amended if the rule adds to it.
    fn check(&self, write: &Write<'_>, resource: Resource) -> Result<Resource, AppError>;

    /// The records the rule derives from the resource as checked (a screening's
    /// Observations...), written after it in the same transaction, with their own ids.
    fn derive(&self, _write: &Write<'_>, _resource: &Resource) -> Result<Vec<Derived>, AppError> {
        Ok(Vec::new())
    }
}

/// A record a rule derives from another.
#[derive(Debug, Clone)]
pub struct Derived {
    pub resource: Resource,
    pub keep: Keep,
}

/// What happens when a derived record already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// It follows its source: replaced when what the rule derives differs (an amended
    /// screening's answers). An import never replaces: what it brings is the record as it was.
    Following,
    /// A person may have changed it since (a proposed concern the team has verified): it is
    /// written only when absent.
    Existing,
}

/// The rules registered by the workflows, by resource type.
#[derive(Clone, Default)]
pub struct WriteRules {
    by_type: Arc<HashMap<&'static str, Vec<Arc<dyn WriteRule>>>>,
}

impl std::fmt::Debug for WriteRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<_> = self.by_type.keys().collect();
        types.sort();
        f.debug_struct("WriteRules").field("types", &types).finish()
    }
}

impl WriteRules {
    /// The rules, run in the order given for each resource type.
    pub fn new(rules: impl IntoIterator<Item = Arc<dyn WriteRule>>) -> Self {
        let mut by_type: HashMap<&'static str, Vec<Arc<dyn WriteRule>>> = HashMap::new();
        for r in rules {
            by_type.entry(r.resource_type()).or_default().push(r);
        }
        WriteRules {
            by_type: Arc::new(by_type),
        }
    }

    /// Every record the rules for the resource's type derive from it.
    pub(crate) fn derive(
        &self,
        write: &Write<'_>,
        resource: &Resource,
    ) -> Result<Vec<Derived>, AppError> {
        let Some(rules) = self.by_type.get(resource.type_name()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for rule in rules {
            out.extend(rule.derive(write, resource)?);
        }
        Ok(out)
    }

    /// Runs the rules for the resource's type, each on what the one before let through.
    pub(crate) fn apply(
        &self,
        write: &Write<'_>,
        resource: Resource,
    ) -> Result<Resource, AppError> {
        let Some(rules) = self.by_type.get(resource.type_name()) else {
            return Ok(resource);
        };
        rules
            .iter()
            .try_fold(resource, |resource, rule| rule.check(write, resource))
    }
}
