-- Where each engine instance's control API answers, as the instance announced it: a restart at a new
-- parallelism goes to every live instance, not to whichever one the spec's control_url balances to.
-- Null for an instance that announced none (an older engine, or a listen address nobody can reach).
alter table engine_workers add column control_url text;
