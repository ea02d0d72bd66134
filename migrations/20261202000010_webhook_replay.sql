-- A signed body replayed under another delivery id is refused: each body is remembered by its digest
-- (where the sender signs it) for as long as its delivery is kept.
alter table webhook_deliveries add column body_sha256 bytea;
create unique index webhook_deliveries_body on webhook_deliveries (source, body_sha256)
    where body_sha256 is not null;
