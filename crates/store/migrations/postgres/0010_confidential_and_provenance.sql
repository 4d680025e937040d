-- Records labelled confidential to the patient (meta.security v3-Confidentiality R) carry
-- `restricted = 1` on their current row and on each version's history row, so that queries
-- for someone who may not see them (a parent's grant) leave them out in SQL: in matches,
-- totals, includes and history alike.
ALTER TABLE resources ADD COLUMN restricted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE resource_history ADD COLUMN restricted BIGINT NOT NULL DEFAULT 0;

UPDATE resources SET restricted = 1
WHERE CASE WHEN content LIKE '%v3-Confidentiality%'
      THEN (content::jsonb -> 'meta' -> 'security') @> '[{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]'::jsonb
      ELSE false END;

UPDATE resource_history SET restricted = 1
WHERE CASE WHEN content LIKE '%v3-Confidentiality%'
      THEN (content::jsonb -> 'meta' -> 'security') @> '[{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]'::jsonb
      ELSE false END;

-- A current version's history row holds no content: it follows the live row.
UPDATE resource_history h SET restricted = 1
FROM resources r
WHERE h.content IS NULL AND h.deleted = 0 AND r.resource_type = h.resource_type
  AND r.id = h.id AND r.version_id = h.version_id AND r.restricted = 1;

-- A Provenance belongs to the chart of its target (it was stored in none before).
UPDATE resources p SET patient_id = t.patient_id
FROM resources t
WHERE p.resource_type = 'Provenance' AND p.patient_id IS NULL
  AND t.resource_type = split_part(p.content::jsonb #>> '{target,0,reference}', '/', 1)
  AND t.id = split_part(p.content::jsonb #>> '{target,0,reference}', '/', 2)
  AND t.patient_id IS NOT NULL;

UPDATE resource_history h SET patient_id = r.patient_id
FROM resources r
WHERE h.resource_type = 'Provenance' AND h.patient_id IS NULL
  AND r.resource_type = 'Provenance' AND r.id = h.id AND r.patient_id IS NOT NULL;
UPDATE search_token x SET patient_id = r.patient_id
FROM resources r
WHERE x.resource_type = 'Provenance' AND x.patient_id IS NULL
  AND r.resource_type = 'Provenance' AND r.id = x.resource_id AND r.patient_id IS NOT NULL;
UPDATE search_reference x SET patient_id = r.patient_id
FROM resources r
WHERE x.resource_type = 'Provenance' AND x.patient_id IS NULL
  AND r.resource_type = 'Provenance' AND r.id = x.resource_id AND r.patient_id IS NOT NULL;
UPDATE search_date x SET patient_id = r.patient_id
FROM resources r
WHERE x.resource_type = 'Provenance' AND x.patient_id IS NULL
  AND r.resource_type = 'Provenance' AND r.id = x.resource_id AND r.patient_id IS NOT NULL;
UPDATE search_string x SET patient_id = r.patient_id
FROM resources r
WHERE x.resource_type = 'Provenance' AND x.patient_id IS NULL
  AND r.resource_type = 'Provenance' AND r.id = x.resource_id AND r.patient_id IS NOT NULL;
