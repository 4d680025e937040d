-- A search by one reference (`Observation?subject=Patient/x`) in its default order, newest
-- first, reads its page from this index and stops: its cost grows with the page, not with
-- how many resources name the target. Each reference row carries its resource's
-- last_updated (rewritten with the resource, as every index row is).
ALTER TABLE search_reference ADD COLUMN last_updated INTEGER NOT NULL DEFAULT 0;
UPDATE search_reference SET last_updated = COALESCE((SELECT r.last_updated FROM resources r
    WHERE r.resource_type = search_reference.resource_type AND r.id = search_reference.resource_id), 0);
CREATE INDEX search_reference_newest ON search_reference (resource_type, param, target_id, last_updated DESC, resource_id);
