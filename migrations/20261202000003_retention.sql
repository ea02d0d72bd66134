-- The manager reads, per cluster, the newest change that took effect; this keeps that read bounded as
-- the audit trail grows (with the one-in-flight index for the other half of the facts).
create index decisions_last_change on decisions (cluster_id, (coalesce(finished_at, updated_at)) desc)
    where status in ('synced', 'applied', 'pr_open');
-- Retention deletes old final decisions and old deliveries by age.
create index decisions_finished_at on decisions (finished_at) where finished_at is not null;
create index webhook_deliveries_received_at on webhook_deliveries (received_at);
