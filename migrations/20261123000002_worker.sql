-- The worker's bookkeeping. A decision superseded by a newer one in the same pull request ends as
-- 'superseded'. A decision waiting in an open pull request is not in flight: a newer decision may update
-- that pull request, so only the steps that write or sync stay one per cluster.
alter table decisions drop constraint decisions_status_check;
alter table decisions add constraint decisions_status_check check (status in (
    'pending', 'running', 'vetoed', 'skipped', 'committed', 'pr_open', 'merged', 'rejected',
    'syncing', 'synced', 'applied', 'failed', 'superseded'));

drop index decisions_one_in_flight;
create unique index decisions_one_in_flight on decisions (cluster_id)
    where status in ('pending', 'running', 'committed', 'merged', 'syncing');

-- What the worker did, step by step: [{"at": ..., "step": ..., "detail": ...}].
alter table decisions add column steps jsonb not null default '[]';
-- The pull request a decision lives in, to find it again (merge webhook, next decision).
create index decisions_open_pr on decisions (cluster_id) where status = 'pr_open';
