-- Crypto-shredding of personal data (docs/audit-log.md, "Erasure").
--
-- The fields a case's pinned policy marks as personal are stored sealed (AES-256-GCM) under a key of
-- the case's data subject, the customer. Keys live here, apart from the events; erasing a subject
-- destroys its keys (the key column is set to NULL, the row stays as the tombstone of when, by whom
-- and why). The events, their hashes and the transparency log are untouched, so every proof still holds.

CREATE TABLE personal_data_keys (
    key_id     uuid        PRIMARY KEY,
    subject    text        NOT NULL,
    key        bytea       CHECK (key IS NULL OR octet_length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
-- One live key per subject; a subject erased and seen again gets a new one.
CREATE UNIQUE INDEX personal_data_keys_live ON personal_data_keys (subject) WHERE erased_at IS NULL;

-- Which subject a case stream's sealed fields belong to, and which fields its pinned policy seals.
CREATE TABLE sealed_streams (
    stream_id text  PRIMARY KEY,
    subject   text  NOT NULL,
    paths     jsonb NOT NULL  -- event type -> [field path, ...]
);
CREATE INDEX sealed_streams_by_subject ON sealed_streams (subject);

-- Every erasure: append-only, like the events.
CREATE TABLE personal_data_erasures (
    erasure_id  uuid        PRIMARY KEY,
    subject     text        NOT NULL,
    actor_id    text        NOT NULL,
    actor_role  text        NOT NULL,
    reason      text        NOT NULL,
    keys        uuid[]      NOT NULL,
    case_ids    text[]      NOT NULL,
    erased_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION erasures_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'erasure rule "append-only": % on personal_data_erasures is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER personal_data_erasures_append_only BEFORE UPDATE OR DELETE ON personal_data_erasures
    FOR EACH ROW EXECUTE FUNCTION erasures_refuse_change();

-- A destroyed key stays destroyed: no UPDATE may bring key material back to an erased row.
CREATE FUNCTION keys_stay_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'erasure rule "erased stays erased": key % of % was erased at %', OLD.key_id, OLD.subject, OLD.erased_at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER personal_data_keys_stay_erased BEFORE UPDATE ON personal_data_keys
    FOR EACH ROW EXECUTE FUNCTION keys_stay_erased();

REVOKE ALL ON personal_data_keys, sealed_streams, personal_data_erasures FROM escalations_app;
GRANT SELECT, INSERT, UPDATE ON personal_data_keys TO escalations_app;
GRANT SELECT, INSERT ON sealed_streams, personal_data_erasures TO escalations_app;
