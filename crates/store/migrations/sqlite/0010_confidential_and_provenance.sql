-- Records labelled confidential to the patient (meta.security v3-Confidentiality R) carry
-- `restricted = 1` on their current row and on each version's history row, so that queries
-- for someone who may not see them (a parent's grant) leave them out in SQL: in matches,
-- totals, includes and history alike.
ALTER TABLE resources ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resource_history ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;

UPDATE resources SET restricted = 1
WHERE content LIKE '%v3-Confidentiality%' AND EXISTS (
    SELECT 1 FROM json_each(resources.content, '$.meta.security') l
    WHERE json_extract(l.value, '$.system') = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality'
      AND json_extract(l.value, '$.code') = 'R');

UPDATE resource_history SET restricted = 1
WHERE content LIKE '%v3-Confidentiality%' AND EXISTS (
    SELECT 1 FROM json_each(resource_history.content, '$.meta.security') l
    WHERE json_extract(l.value, '$.system') = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality'
      AND json_extract(l.value, '$.code') = 'R');

-- A current version's history row holds no content: it follows the live row.
UPDATE resource_history SET restricted = 1
WHERE content IS NULL AND deleted = 0 AND EXISTS (
    SELECT 1 FROM resources r
    WHERE r.resource_type = resource_history.resource_type AND r.id = resource_history.id
      AND r.version_id = resource_history.version_id AND r.restricted = 1);

-- A Provenance belongs to the chart of its target (it was stored in none before).
WITH p AS (
    SELECT id, json_extract(content, '$.target[0].reference') AS ref
    FROM resources WHERE resource_type = 'Provenance' AND patient_id IS NULL
), split AS (
    SELECT id, substr(ref, 1, instr(ref, '/') - 1) AS target_type,
           substr(ref, instr(ref, '/') + 1) AS rest
    FROM p WHERE instr(ref, '/') > 1
), target AS (
    SELECT id, target_type,
           CASE WHEN instr(rest, '/') > 0 THEN substr(rest, 1, instr(rest, '/') - 1) ELSE rest END AS target_id
    FROM split
)
UPDATE resources SET patient_id = t.patient_id
FROM target JOIN resources t ON t.resource_type = target.target_type AND t.id = target.target_id
WHERE resources.resource_type = 'Provenance' AND resources.id = target.id AND t.patient_id IS NOT NULL;

UPDATE resource_history SET patient_id = (
    SELECT r.patient_id FROM resources r WHERE r.resource_type = 'Provenance' AND r.id = resource_history.id)
WHERE resource_type = 'Provenance' AND patient_id IS NULL;
UPDATE search_token SET patient_id = (
    SELECT r.patient_id FROM resources r WHERE r.resource_type = 'Provenance' AND r.id = search_token.resource_id)
WHERE resource_type = 'Provenance' AND patient_id IS NULL;
UPDATE search_reference SET patient_id = (
    SELECT r.patient_id FROM resources r WHERE r.resource_type = 'Provenance' AND r.id = search_reference.resource_id)
WHERE resource_type = 'Provenance' AND patient_id IS NULL;
UPDATE search_date SET patient_id = (
    SELECT r.patient_id FROM resources r WHERE r.resource_type = 'Provenance' AND r.id = search_date.resource_id)
WHERE resource_type = 'Provenance' AND patient_id IS NULL;
UPDATE search_string SET patient_id = (
    SELECT r.patient_id FROM resources r WHERE r.resource_type = 'Provenance' AND r.id = search_string.resource_id)
WHERE resource_type = 'Provenance' AND patient_id IS NULL;
