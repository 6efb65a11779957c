-- The case list's folds no longer carry each case's whole policy (about 60% of a fold's bytes, and most of the
-- time the projector spent reading and writing a fold): a fold names its policy by hash, and the projection keeps
-- each policy once here, private to it like the folds. Filled from the folds written before this migration.
CREATE TABLE case_list_policies (
    content_hash  text PRIMARY KEY,       -- the policy_hash a fold names
    content       text NOT NULL           -- the policy's JSON
);
INSERT INTO case_list_policies (content_hash, content)
SELECT DISTINCT ON (state->>'policy_hash') state->>'policy_hash', (state->'policy')::text
  FROM case_list_folds
 WHERE state ? 'policy'
ON CONFLICT DO NOTHING;
