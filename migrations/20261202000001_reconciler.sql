-- The reconciler looks for open decisions by how long they sat; final ones (almost all rows) stay out of
-- this index.
create index decisions_open_since on decisions (updated_at)
    where status in ('pending', 'running', 'committed', 'merged', 'syncing', 'synced');
