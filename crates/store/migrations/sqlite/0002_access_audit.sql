-- Accounts, API tokens and the audit trail; and a flag that tells shared reference data
-- (Practitioner, Organization, Measure...) from records in a patient's compartment.

ALTER TABLE resources ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resource_history ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
UPDATE resources SET shared = 1 WHERE resource_type NOT IN ('Account', 'AdverseEvent', 'AllergyIntolerance', 'Appointment', 'AppointmentResponse', 'AuditEvent', 'Basic', 'BodyStructure', 'CarePlan', 'CareTeam', 'ChargeItem', 'Claim', 'ClaimResponse', 'ClinicalImpression', 'Communication', 'CommunicationRequest', 'Composition', 'Condition', 'Consent', 'Coverage', 'CoverageEligibilityRequest', 'CoverageEligibilityResponse', 'DetectedIssue', 'DeviceRequest', 'DeviceUseStatement', 'DiagnosticReport', 'DocumentManifest', 'DocumentReference', 'Encounter', 'EnrollmentRequest', 'EpisodeOfCare', 'ExplanationOfBenefit', 'FamilyMemberHistory', 'Flag', 'Goal', 'Group', 'ImagingStudy', 'Immunization', 'ImmunizationEvaluation', 'ImmunizationRecommendation', 'Invoice', 'List', 'MeasureReport', 'Media', 'MedicationAdministration', 'MedicationDispense', 'MedicationRequest', 'MedicationStatement', 'MolecularSequence', 'NutritionOrder', 'Observation', 'Patient', 'Person', 'Procedure', 'Provenance', 'QuestionnaireResponse', 'RelatedPerson', 'RequestGroup', 'ResearchSubject', 'RiskAssessment', 'Schedule', 'ServiceRequest', 'Specimen', 'SupplyDelivery', 'SupplyRequest', 'Task', 'VisionPrescription');
UPDATE resource_history SET shared = 1 WHERE resource_type NOT IN ('Account', 'AdverseEvent', 'AllergyIntolerance', 'Appointment', 'AppointmentResponse', 'AuditEvent', 'Basic', 'BodyStructure', 'CarePlan', 'CareTeam', 'ChargeItem', 'Claim', 'ClaimResponse', 'ClinicalImpression', 'Communication', 'CommunicationRequest', 'Composition', 'Condition', 'Consent', 'Coverage', 'CoverageEligibilityRequest', 'CoverageEligibilityResponse', 'DetectedIssue', 'DeviceRequest', 'DeviceUseStatement', 'DiagnosticReport', 'DocumentManifest', 'DocumentReference', 'Encounter', 'EnrollmentRequest', 'EpisodeOfCare', 'ExplanationOfBenefit', 'FamilyMemberHistory', 'Flag', 'Goal', 'Group', 'ImagingStudy', 'Immunization', 'ImmunizationEvaluation', 'ImmunizationRecommendation', 'Invoice', 'List', 'MeasureReport', 'Media', 'MedicationAdministration', 'MedicationDispense', 'MedicationRequest', 'MedicationStatement', 'MolecularSequence', 'NutritionOrder', 'Observation', 'Patient', 'Person', 'Procedure', 'Provenance', 'QuestionnaireResponse', 'RelatedPerson', 'RequestGroup', 'ResearchSubject', 'RiskAssessment', 'Schedule', 'ServiceRequest', 'Specimen', 'SupplyDelivery', 'SupplyRequest', 'Task', 'VisionPrescription');

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT,                      -- argon2id PHC string; NULL: no password login
    roles         TEXT NOT NULL,             -- space-separated
    fhir_ref      TEXT,                      -- Patient/ID, RelatedPerson/ID or Practitioner/ID
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,       -- SHA-256 of the secret; the secret is never stored
    user_id      TEXT REFERENCES users (id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    patient_id   TEXT,                       -- the patient a patient/ token is bound to
    expires_at   INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL
);

-- Append-only and hash-chained: each row's hash covers its fields and the previous hash.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,            -- Unix milliseconds
    actor         TEXT NOT NULL,             -- user:NAME, token:NAME or anonymous
    on_behalf_of  TEXT,                      -- Patient/ID when a family member or token acts for a patient
    action        TEXT NOT NULL,             -- read, search, create, update, delete, export, login...
    resource_type TEXT,
    resource_id   TEXT,
    patients      TEXT,                      -- compartments touched, space-separated
    outcome       TEXT NOT NULL,             -- allowed or denied
    detail        TEXT,                      -- the reason of a denial, a search's result count...
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_patient ON audit_log (patients);

-- The newest row's number and hash, updated with every append: removing rows from the end
-- of the chain is then as visible as changing one.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
