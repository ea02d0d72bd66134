-- Recommend-only mode: a decision that would have changed the scale ends as 'recommended' and nothing is
-- written. A recommendation starts the cooldown like a change does, so that a rule that keeps firing
-- recommends once per cooldown rather than at every evaluation.
alter table decisions drop constraint decisions_status_check;
alter table decisions add constraint decisions_status_check check (status in (
    'pending', 'running', 'vetoed', 'skipped', 'committed', 'pr_open', 'merged', 'rejected',
    'syncing', 'synced', 'applied', 'failed', 'superseded', 'recommended'));

drop index decisions_last_change;
create index decisions_last_change on decisions (cluster_id, (coalesce(finished_at, updated_at)) desc)
    where status in ('synced', 'applied', 'pr_open', 'recommended');
