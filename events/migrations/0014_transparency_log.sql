-- The transparency log: an RFC 9162 Merkle tree over the global order of events (docs/audit-log.md).
--
-- Leaf i is the i-th event in position order (positions are commit-ordered by the append lock; a
-- rolled-back append may leave a gap in positions, never in leaf indices). Its leaf data is the 32
-- bytes of the event's stored hash, so the tree commits to every stored byte through the chains.
-- Only complete, aligned subtrees are stored: node (level, index) covers leaves
-- [index * 2^level, (index + 1) * 2^level). Every proof is read from O(log n) of these rows.
-- All three tables are append-only, as the events are: a proof once given stays provable.

CREATE TABLE log_leaves (
    leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
    position   bigint NOT NULL UNIQUE,
    hash       bytea  NOT NULL CHECK (octet_length(hash) = 32)  -- SHA-256(0x00 || event hash bytes)
);

CREATE TABLE log_nodes (
    level      smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
    node_index bigint   NOT NULL CHECK (node_index >= 0),
    hash       bytea    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, node_index)
);

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per tree size signed.
CREATE TABLE log_checkpoints (
    size      bigint      PRIMARY KEY CHECK (size >= 0),
    root      bytea       NOT NULL CHECK (octet_length(root) = 32),
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'log rule "append-only": % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();
CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE ON log_nodes
    FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
CREATE TRIGGER log_nodes_no_truncate BEFORE TRUNCATE ON log_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
CREATE TRIGGER log_checkpoints_no_truncate BEFORE TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();

REVOKE ALL ON log_leaves, log_nodes, log_checkpoints FROM escalations_app;
GRANT SELECT, INSERT ON log_leaves, log_nodes, log_checkpoints TO escalations_app;
