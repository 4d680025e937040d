-- A search by one reference (`Observation?subject=Patient/x`) reads its page from this index
-- alone: with the target's type in it, each row of the page is checked against the type
-- without reading the index row's table row as well. And it serves every lookup
-- `search_reference_lookup` served (the page, a reference filter, `_revinclude`: each
-- names the resource type, the parameter and the target's id), so that index goes: each
-- reference a write adds or removes now changes one index B-tree fewer.
DROP INDEX search_reference_newest;
DROP INDEX search_reference_lookup;
CREATE INDEX search_reference_newest ON search_reference (resource_type, param, target_id, last_updated DESC, resource_id, target_type);
