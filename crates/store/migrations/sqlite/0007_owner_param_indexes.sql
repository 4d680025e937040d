-- The owner indexes also carry the parameter name. A filter or sort on one resource's
-- index rows (`resource_type, resource_id, param`) then uses them; without `param` the
-- planner preferred the lookup index (`resource_type, param, ...`) and scanned every row of
-- that parameter once per result: a team-home search over 2,000 patients took seconds.
DROP INDEX search_token_owner;
CREATE INDEX search_token_owner ON search_token (resource_type, resource_id, param);
DROP INDEX search_reference_owner;
CREATE INDEX search_reference_owner ON search_reference (resource_type, resource_id, param);
DROP INDEX search_date_owner;
CREATE INDEX search_date_owner ON search_date (resource_type, resource_id, param, low, high);
DROP INDEX search_string_owner;
CREATE INDEX search_string_owner ON search_string (resource_type, resource_id, param);
