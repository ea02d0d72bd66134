-- A worker's lease on the decision it carries out, instead of a transaction-held advisory lock: the owner
-- renews it while it works; once it expires (the worker died) another worker may take the decision over.
alter table decisions add column lease_owner text;
alter table decisions add column lease_expires_at timestamptz;
