-- A token filter (`status=active`, `code=http://loinc.org|4548-4`) lists the matching
-- resources' ids from this index alone: the id is in the index, so listing thousands
-- (a panel's open tasks, every HbA1c) does not read each index row's table row as well,
-- and one code's ids come out in order.
DROP INDEX search_token_lookup;
CREATE INDEX search_token_lookup ON search_token (resource_type, param, code, system, resource_id);
